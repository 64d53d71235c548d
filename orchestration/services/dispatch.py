"""Sending a step's message to the workers."""

from django.db import transaction


def enqueue_step_on_commit(step_id: int, countdown: float = 0) -> None:
    """Send the step's message once the caller's transaction commits.

    Robust: if the broker is unreachable the step stays pending in the database and the
    sweeper sends its message again later; the caller's committed work must not fail."""
    from orchestration.tasks import execute_step_task  # tasks import services, not the reverse

    transaction.on_commit(
        lambda: execute_step_task.apply_async((step_id,), countdown=countdown or None),
        robust=True,
    )
