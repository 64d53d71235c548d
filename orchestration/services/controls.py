"""An operator's controls on a run: cancel it, or resume one a limit paused."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from orchestration.engine.states import (
    DecisionOutcome,
    RunStatus,
    StepStatus,
    TaskKind,
    TaskStatus,
    check_run_transition,
)
from orchestration.models import Decision, HumanTask, Run, Step
from orchestration.services import live
from orchestration.services.audit import record_event
from orchestration.services.decisions import lock_open_task
from orchestration.services.dispatch import enqueue_step_on_commit

# What "resume with more budget" grants on top of the workflow's limits, each time.
EXTRA_BUDGET = {"steps": 10, "visits": 2, "tokens": 50_000}


class RunControlError(Exception):
    """A control that cannot be carried out; the message is meant for the operator."""


def cancel_run(*, run_id: int, actor: AbstractBaseUser, reason: str) -> Run:
    """Stop a run that has not finished. Its queued and waiting steps and its open tasks are
    cancelled; a step still running on a worker finds its claim gone and records nothing."""
    reason = reason.strip()
    if not reason:
        raise RunControlError("Cancelling a run needs a reason.")
    now = timezone.now()
    with transaction.atomic():
        # Open tasks before the run: the order decide_task and resume_run lock them in.
        list(
            HumanTask.objects.select_for_update()
            .filter(run_id=run_id, status=TaskStatus.OPEN)
            .values_list("pk", flat=True)
        )
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.is_final:
            raise RunControlError(f"Run {run.pk} has already {run.status}; nothing to cancel.")
        before = run.status
        check_run_transition(RunStatus(run.status), RunStatus.CANCELLED)
        Step.objects.filter(
            run=run,
            status__in=[StepStatus.PENDING, StepStatus.RUNNING, StepStatus.WAITING_HUMAN],
        ).update(status=StepStatus.CANCELLED, finished_at=now, lease_expires_at=None)
        HumanTask.objects.filter(run=run, status=TaskStatus.OPEN).update(
            status=TaskStatus.CANCELLED, version=F("version") + 1, decided_at=now
        )
        run.status = RunStatus.CANCELLED
        run.outcome = "cancelled"
        run.error = f"cancelled by {actor.get_username()}: {reason}"[:2000]
        run.finished_at = now
        run.save(update_fields=["status", "outcome", "error", "finished_at"])
        record_event(
            action="run.cancelled",
            actor=actor,
            object_type="run",
            object_id=run.pk,
            before={"status": before},
            after={"status": RunStatus.CANCELLED, "reason": reason},
        )
        live.publish_on_commit(live.QUEUE_GROUP, "queue.changed", run_id=run.pk)
        live.publish_on_commit(live.run_group(run.pk), "run.changed", run_id=run.pk)
    return run


def resume_run(
    *, task_id: int, actor: AbstractBaseUser, expected_version: int | None = None
) -> Decision:
    """Resume a run that a limit paused: grant it more budget (EXTRA_BUDGET on top of what it
    had), queue the step that was held back, and close the exception task. Exactly one person
    can resolve the task; a second gets a TaskConflict."""
    now = timezone.now()
    with transaction.atomic():
        task = lock_open_task(task_id=task_id, expected_version=expected_version)
        if task.kind != TaskKind.EXCEPTION:
            raise RunControlError("Only a paused run can be resumed.")
        run = Run.objects.select_for_update().select_related("workflow").get(pk=task.run_id)
        check_run_transition(RunStatus(run.status), RunStatus.RUNNING)
        granted = {k: run.extra_budget.get(k, 0) + v for k, v in EXTRA_BUDGET.items()}
        run.extra_budget = granted
        run.status = RunStatus.RUNNING
        run.save(update_fields=["extra_budget", "status"])
        Step.objects.filter(pk=task.step_id, status=StepStatus.WAITING_HUMAN).update(
            status=StepStatus.PENDING, queued_at=now
        )
        HumanTask.objects.filter(pk=task.pk).update(
            status=TaskStatus.DECIDED, version=task.version + 1, decided_at=now
        )
        decision = Decision.objects.create(
            task=task, actor=actor, outcome=DecisionOutcome.RESUMED, reason=task.reason
        )
        record_event(
            action="run.resumed",
            actor=actor,
            object_type="run",
            object_id=run.pk,
            before={"paused_because": task.reason},
            after={"extra_budget": granted},
        )
        enqueue_step_on_commit(task.step_id)
        live.publish_on_commit(live.QUEUE_GROUP, "queue.changed", task_id=task.pk)
        live.publish_on_commit(live.run_group(run.pk), "run.changed", run_id=run.pk)
    return decision


def retry_failed_step(*, run_id: int, actor: AbstractBaseUser) -> Run:
    """Send a failed run's failed step back to the queue, once the cause is mended (a model
    server back, a key fixed). The run goes on from that step; nothing before it is redone."""
    now = timezone.now()
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.status != RunStatus.FAILED:
            raise RunControlError(f"Run {run.pk} is {run.status}, not failed; nothing to retry.")
        step = Step.objects.filter(run=run, status=StepStatus.FAILED).order_by("-sequence").first()
        if step is None:
            raise RunControlError(f"Run {run.pk} has no failed step to retry.")
        check_run_transition(RunStatus.FAILED, RunStatus.RUNNING)
        Step.objects.filter(pk=step.pk, status=StepStatus.FAILED).update(
            status=StepStatus.PENDING, queued_at=now, finished_at=None
        )
        previous_error = run.error
        run.status = RunStatus.RUNNING
        run.error = ""
        run.finished_at = None
        run.save(update_fields=["status", "error", "finished_at"])
        record_event(
            action="step.retried",
            actor=actor,
            object_type="run",
            object_id=run.pk,
            before={"status": RunStatus.FAILED, "error": previous_error[:500]},
            after={"step": step.sequence, "node": step.node},
        )
        enqueue_step_on_commit(step.pk)
        live.publish_on_commit(live.run_group(run.pk), "run.changed", run_id=run.pk)
    return run
