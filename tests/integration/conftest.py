"""A real Celery worker process against the real PostgreSQL test database and Redis."""

import time

import pytest
import redis
from django.conf import settings

from orchestration.engine.states import RunStatus
from orchestration.models import Run
from tests.integration.processes import log_tail, process_env, start_worker, stop

SETTLED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.WAITING_HUMAN)


@pytest.fixture(scope="module")
def celery_worker_process(django_db_setup):
    """One worker process (concurrency 1) consuming the test queue, for one test module."""
    if not settings.REDIS_URL:
        pytest.fail("integration tests need REDIS_URL (make test sets it)")
    redis.Redis.from_url(settings.REDIS_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    worker = start_worker("worker", process_env())
    yield worker
    stop(worker)


def wait_until_settled(run_ids, timeout: float = 240.0) -> list[Run]:
    """Poll the database (never a Celery result) until every run is final or waiting."""
    deadline = time.monotonic() + timeout
    while True:
        runs = list(Run.objects.filter(pk__in=run_ids))
        if len(runs) == len(run_ids) and all(r.status in SETTLED for r in runs):
            return runs
        if time.monotonic() > deadline:
            stuck = [(r.pk, r.status) for r in runs if r.status not in SETTLED]
            pytest.fail(
                f"runs did not settle in {timeout:.0f}s: {stuck[:10]}\n"
                f"worker log:\n{log_tail('worker')}"
            )
        time.sleep(0.2)
