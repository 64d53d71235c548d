"""The learner on the production shape: the console's "learn now" goes through Redis to a
Celery worker process, which runs the cycle against the real database."""

import time

import pytest
from django.db import transaction

from orchestration.models import AuditEvent, LearningCycle
from orchestration.services.learning import request_learning_cycle
from tests.integration.processes import log_tail

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wait_for_cycle(timeout: float = 180.0) -> LearningCycle:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cycle = LearningCycle.objects.exclude(status=LearningCycle.Status.RUNNING).first()
        if cycle is not None:
            return cycle
        time.sleep(0.5)
    pytest.fail(f"no learning cycle finished in {timeout:.0f}s\n{log_tail('worker')}")


def test_learn_now_runs_a_cycle_on_a_worker(celery_worker_process, support_desk, bob):
    with transaction.atomic():
        request_learning_cycle(actor=bob)
        assert not LearningCycle.objects.exists()  # sent only once the request is committed

    cycle = wait_for_cycle()

    assert cycle.status == LearningCycle.Status.FINISHED, cycle.error
    assert (cycle.trigger, cycle.requested_by, cycle.decisions) == ("console", bob, 0)
    # With no decision yet there is nothing to learn: no candidate, and the reason why.
    assert cycle.summary["agents"]["triage"] == {
        "candidate": None,
        "why": "no decisions to learn from",
    }
    assert cycle.summary["baseline"]["test_tickets"] == 90
    assert AuditEvent.objects.filter(action="learning.requested", actor=bob).count() == 1
