"""A real Celery worker process against the real PostgreSQL test database and Redis."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection

from orchestration.engine.states import RunStatus
from orchestration.models import Run

ROOT = Path(__file__).resolve().parents[2]
SETTLED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.WAITING_HUMAN)


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup):
    """One worker process (concurrency 1) consuming the test queue, for the whole session."""
    if not settings.REDIS_URL:
        pytest.fail("integration tests need REDIS_URL (make test sets it)")
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "PYTHONPATH": str(ROOT),
    }
    (ROOT / "var").mkdir(exist_ok=True)
    log = open(ROOT / "var" / "test-worker.log", "w")  # noqa: SIM115  (closed at teardown)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "console",
            "worker",
            "--concurrency",
            "1",
            "--pool",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield worker
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()
    log.close()


def wait_until_settled(run_ids, timeout: float = 240.0) -> list[Run]:
    """Poll the database (never a Celery result) until every run is final or waiting."""
    deadline = time.monotonic() + timeout
    while True:
        runs = list(Run.objects.filter(pk__in=run_ids))
        if len(runs) == len(run_ids) and all(r.status in SETTLED for r in runs):
            return runs
        if time.monotonic() > deadline:
            stuck = [(r.pk, r.status) for r in runs if r.status not in SETTLED]
            log = (ROOT / "var" / "test-worker.log").read_text()[-3000:]
            pytest.fail(f"runs did not settle in {timeout:.0f}s: {stuck[:10]}\nworker log:\n{log}")
        time.sleep(0.2)
