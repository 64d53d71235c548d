"""The sweeper, run by Celery beat: no step stays stuck."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orchestration.engine.states import StepStatus
from orchestration.models import Step
from orchestration.services.audit import record_event
from orchestration.services.dispatch import enqueue_step_on_commit


def requeue_expired_steps(*, limit: int = 500) -> int:
    """Hand stalled steps back to the queue, so that no run stays stuck.

    - A running step whose lease expired (its worker died or hung) goes back to ``pending``
      by one conditional update, so two sweepers cannot both take it, and its message is
      sent again. If the old worker was only slow, it finds its claim gone when it records.
    - A pending step whose message has waited longer than ``STEP_REDISPATCH_SECONDS`` is sent
      again: the message may have been lost (a worker killed after commit but before it
      enqueued, or a broker restarted without persistence). A duplicate is harmless, since
      only one delivery can claim the step."""
    now = timezone.now()
    requeued = 0
    expired = list(
        Step.objects.filter(status=StepStatus.RUNNING, lease_expires_at__lt=now)
        .order_by("lease_expires_at")
        .values_list("pk", flat=True)[:limit]
    )
    for step_id in expired:
        with transaction.atomic():
            taken = Step.objects.filter(
                pk=step_id, status=StepStatus.RUNNING, lease_expires_at__lt=now
            ).update(status=StepStatus.PENDING, lease_expires_at=None, queued_at=now)
            if taken:
                requeued += 1
                record_event(
                    action="step.requeued",
                    object_type="step",
                    object_id=step_id,
                    after={"reason": "lease expired"},
                )
                enqueue_step_on_commit(step_id)
    stale = now - timedelta(seconds=settings.STEP_REDISPATCH_SECONDS)
    forgotten = list(
        Step.objects.filter(status=StepStatus.PENDING, queued_at__lt=stale)
        .order_by("queued_at")
        .values_list("pk", flat=True)[:limit]
    )
    for step_id in forgotten:
        with transaction.atomic():
            if Step.objects.filter(
                pk=step_id, status=StepStatus.PENDING, queued_at__lt=stale
            ).update(queued_at=now):
                requeued += 1
                enqueue_step_on_commit(step_id)
    return requeued
