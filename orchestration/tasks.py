"""Celery tasks: each takes ids, calls one service, and is safe to run twice."""

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from orchestration.services import learning_cycle, steps, sweeper


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


@shared_task(name="orchestration.learn", acks_late=True, time_limit=30 * 60)
def learn_task(trigger: str = "schedule", actor_id: int | None = None) -> int | None:
    """A learning cycle (on the beat schedule, or asked for in the console)."""
    from django.contrib.auth import get_user_model

    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    cycle = learning_cycle.run_learning_cycle(trigger=trigger, actor=actor)
    return cycle.pk if cycle else None


@shared_task(name="orchestration.learn_if_due", acks_late=True, time_limit=30 * 60)
def learn_if_due_task() -> int | None:
    """A learning cycle once enough new decisions have come in since the last one."""
    if not learning_cycle.cycle_due():
        return None
    cycle = learning_cycle.run_learning_cycle(trigger="decisions")
    return cycle.pk if cycle else None
