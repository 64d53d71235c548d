"""Celery tasks: each takes ids, calls one service, and is safe to run twice."""

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from orchestration.services import steps, sweeper


@shared_task(
    name="orchestration.execute_step",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=8,
    # Each step's soft limit is enforced by the engine, and its hard limit is its lease. This
    # is the last resort against a wedged process (prefork pools): the message is redelivered.
    time_limit=settings.STEP_TASK_TIME_LIMIT_SECONDS,
)
def execute_step_task(step_id: int) -> None:
    steps.execute_step(step_id=step_id)


@shared_task(name="orchestration.requeue_expired_steps", acks_late=True)
def requeue_expired_steps_task() -> int:
    return sweeper.requeue_expired_steps()
