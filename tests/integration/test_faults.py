"""Fault injection: workers SIGKILLed at random moments and Redis restarted mid-run lose no
run and send no reply twice. Run alone with `make test PYTEST_ARGS="-m faults"`."""

import contextlib
import os
import random
import shutil
import signal
import subprocess
import time

import pytest
import redis
from django.conf import settings
from django.db.models import Count

from orchestration import dataset
from orchestration.engine.states import RunStatus
from orchestration.models import AuditEvent, Reply, Run
from orchestration.services.audit import verify_chain
from orchestration.services.tickets import NewTicket, ingest_tickets
from tests.integration.conftest import SETTLED
from tests.integration.processes import log_tail, process_env, start_celery, start_worker, stop

pytestmark = [
    pytest.mark.integration,
    pytest.mark.faults,
    pytest.mark.django_db(transaction=True),
]

TICKETS = 300
KILLS = 20
REDIS_START = [
    "redis-server",
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    "6379",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log",
]


def restart_redis() -> None:
    """Stop Redis without saving (every queued message is lost) and start it again."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    with contextlib.suppress(redis.ConnectionError):  # it hangs up before answering
        client.shutdown(nosave=True)
    time.sleep(0.5)
    subprocess.run(REDIS_START, check=True)
    for _ in range(50):
        try:
            if client.ping():
                return
        except redis.ConnectionError:
            time.sleep(0.1)
    pytest.fail("Redis did not come back")


def settled_count(run_ids) -> int:
    return Run.objects.filter(pk__in=run_ids, status__in=SETTLED).count()


def test_killed_workers_and_a_redis_restart_lose_nothing_and_repeat_nothing(autonomous):
    if not shutil.which("redis-server"):
        pytest.fail("the fault test restarts Redis and needs redis-server on PATH")
    rng = random.Random(20261122)
    env = process_env(
        STEP_SOFT_TIME_LIMIT_SECONDS="2",
        STEP_HARD_TIME_LIMIT_SECONDS="3",
        STEP_REDISPATCH_SECONDS="4",
        SWEEP_INTERVAL_SECONDS="1",
        CELERY_VISIBILITY_TIMEOUT="30",
    )
    redis.Redis.from_url(settings.REDIS_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    workers = {name: start_worker(name, env, pool="solo") for name in ("fault-a", "fault-b")}
    beat = start_celery(
        "fault-beat",
        [
            "beat",
            "--schedule",
            str(settings.VAR_DIR / "test-beat-schedule"),
            "--loglevel",
            "WARNING",
        ],
        env,
    )
    _, test_split = dataset.split()
    tickets = [
        NewTicket(
            subject=test_split[n % len(test_split)].subject,
            body=test_split[n % len(test_split)].body,
            customer_email=test_split[n % len(test_split)].customer_email,
            customer_name=test_split[n % len(test_split)].customer_name,
            external_id=f"fault-{n}",
        )
        for n in range(TICKETS)
    ]
    try:
        run_ids = []
        for start in range(0, TICKETS, 50):
            stored = ingest_tickets(tickets=tickets[start : start + 50], actor_label="fault-test")
            run_ids += [t.runs.get().pk for t in stored]

        kills = 0
        redis_restarted = False
        deadline = time.monotonic() + 600
        while settled_count(run_ids) < TICKETS and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.2, 1.2))
            if kills < KILLS:
                name = rng.choice(sorted(workers))
                os.kill(workers[name].pid, signal.SIGKILL)
                workers[name].wait()
                kills += 1
                time.sleep(rng.uniform(0.0, 0.5))
                workers[name] = start_worker(name, env, pool="solo")
            if kills == KILLS // 2 and not redis_restarted:
                restart_redis()
                redis_restarted = True
        done = settled_count(run_ids)
        assert done == TICKETS, (
            f"{TICKETS - done} runs never settled\n{log_tail('fault-a')}\n{log_tail('fault-beat')}"
        )
        assert kills >= KILLS, f"the runs settled after only {kills} kills; add tickets"
        assert redis_restarted
    finally:
        for process in [*workers.values(), beat]:
            stop(process)

    runs = list(Run.objects.filter(pk__in=run_ids))
    assert {r.status for r in runs} <= {RunStatus.SUCCEEDED, RunStatus.WAITING_HUMAN}
    auto_sent = sorted(r.pk for r in runs if r.outcome == "auto_sent")
    assert auto_sent
    replies = Reply.objects.filter(run_id__in=run_ids)
    assert not replies.values("run").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert sorted(replies.values_list("run_id", flat=True)) == auto_sent
    assert AuditEvent.objects.filter(action="step.requeued").exists(), "kills hit running steps"
    assert verify_chain().intact
