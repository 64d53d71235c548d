"""Celery tasks: each takes ids, calls one service, and is safe to run twice."""

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from orchestration.services import runs, sweeper


@shared_task(
    name="orchestration.execute_step",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
    # Soft: the agent is interrupted and the step retried as a transient failure. Hard: the
    # worker process is killed; the message is redelivered and the lease sweeper takes over.
    soft_time_limit=settings.STEP_SOFT_TIME_LIMIT_SECONDS,
    time_limit=settings.STEP_HARD_TIME_LIMIT_SECONDS,
)
def execute_step_task(step_id: int) -> None:
    runs.execute_step(step_id=step_id)


@shared_task(name="orchestration.requeue_expired_steps", acks_late=True)
def requeue_expired_steps_task() -> int:
    return sweeper.requeue_expired_steps()
