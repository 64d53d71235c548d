"""What happens when a step cannot simply succeed: retry it later, fail the run, or hold
the step for a person."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from orchestration.engine.states import RunStatus, StepStatus, TaskKind, check_run_transition
from orchestration.models import Run, Span, Step
from orchestration.services import live
from orchestration.services.audit import record_event
from orchestration.services.dispatch import enqueue_step_on_commit


def retry_step(*, step: Step, message: str, delay: float) -> None:
    """Put a step that failed transiently back in the queue, to run again after ``delay``."""
    with transaction.atomic():
        back = Step.objects.still_claimed(step).update(
            status=StepStatus.PENDING,
            error_kind="transient",
            error_message=message[:2000],
            lease_expires_at=None,
            queued_at=timezone.now() + timedelta(seconds=delay),
        )
        if not back:
            return
        record_event(
            action="step.retrying",
            actor_label=f"agent:{step.agent}",
            object_type="run",
            object_id=step.run_id,
            after={
                "step": step.sequence,
                "attempt": step.attempt,
                "in_seconds": round(delay, 2),
                "error": message[:300],
            },
        )
        enqueue_step_on_commit(step.pk, countdown=delay)


def fail_step(*, step: Step, error_kind: str, message: str) -> None:
    """Fail a step and its run with a reason an operator can read."""
    now = timezone.now()
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=step.run_id)
        failed = Step.objects.still_claimed(step).update(
            status=StepStatus.FAILED,
            error_kind=error_kind,
            error_message=message[:2000],
            finished_at=now,
            lease_expires_at=None,
        )
        if not failed or run.is_final:
            return
        check_run_transition(RunStatus(run.status), RunStatus.FAILED)
        run.status = RunStatus.FAILED
        run.error = f"{step.node}: {message}"[:2000]
        run.finished_at = now
        run.save(update_fields=["status", "error", "finished_at"])
        record_event(
            action="run.failed",
            actor_label=f"agent:{step.agent or step.node}",
            object_type="run",
            object_id=run.pk,
            after={"step": step.sequence, "error_kind": error_kind, "error": message[:500]},
        )
        live.publish_on_commit(live.run_group(run.pk), "run.changed", run_id=run.pk)


def hold_for_person(*, run: Run, step: Step, reason: str, cause: str = "limit reached") -> None:
    """``step`` cannot run by itself (a limit tripped, or it was held after failing): keep
    the step and open an exception task where a person resumes the run or cancels it. The
    caller holds the run (its lock, or a conditional write) and has moved it to
    ``waiting_human``; ``cause`` names the span."""
    from orchestration.services.human import open_exception_task

    open_exception_task(run=run, step=step, reason=reason)
    Span.objects.create(
        run=run,
        step=step,
        kind=Span.Kind.POLICY,
        name=cause,
        attributes={"switchboard.pause.reason": reason},
        status="error",
        started_at=timezone.now(),
    )
    record_event(
        action="run.paused",
        object_type="run",
        object_id=run.pk,
        after={"before_node": step.node, "reason": reason},
    )


def hold_step(*, step: Step, error_kind: str, message: str) -> None:
    """The step cannot go on by itself (its agent never produced a valid output, or a tool it
    needs keeps failing): keep it for a person, who sees why and may run it again (resume)
    or cancel the run."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=step.run_id)
        held = Step.objects.still_claimed(step).update(
            status=StepStatus.WAITING_HUMAN,
            error_kind=error_kind,
            error_message=message[:2000],
            lease_expires_at=None,
        )
        if not held or run.is_final:
            return
        check_run_transition(RunStatus(run.status), RunStatus.WAITING_HUMAN)
        run.status = RunStatus.WAITING_HUMAN
        hold_for_person(
            run=run, step=step, reason=message[:300], cause=error_kind.replace("_", " ")
        )
        run.save(update_fields=["status"])
        live.publish_on_commit(live.run_group(run.pk), "run.changed", run_id=run.pk)


def hold_for_tool_approval(*, step: Step, approval_id: int) -> None:
    """The step's agent wants to make a tool call its grant lets through only with a
    person's approval: keep the step and open a task that shows the exact call. Once the
    person decides, the step runs again and the gate uses (or refuses) the approval."""
    from orchestration.models import HumanTask
    from orchestration.models.taxonomy import URGENCY_RANK, Urgency
    from tools_registry.approvals import approval_proposal
    from tools_registry.models import ToolApproval

    with transaction.atomic():
        # The approval before the run: the order decide_tool_approval takes them in.
        approval = (
            ToolApproval.objects.select_for_update().select_related("tool").get(pk=approval_id)
        )
        run = Run.objects.select_for_update().get(pk=step.run_id)
        held = Step.objects.still_claimed(step).update(
            status=StepStatus.WAITING_HUMAN, lease_expires_at=None
        )
        if not held or run.is_final:
            return
        check_run_transition(RunStatus(run.status), RunStatus.WAITING_HUMAN)
        run.status = RunStatus.WAITING_HUMAN
        run.save(update_fields=["status"])
        if approval.task_id is not None and approval.task.status == "open":
            return  # a second delivery of the same step: the task is there
        triage = run.state.get("triage", {})
        urgency = triage.get("urgency", Urgency.NORMAL)
        proposal = approval_proposal(approval)
        task = HumanTask.objects.create(
            run=run,
            step=step,
            kind=TaskKind.TOOL_APPROVAL,
            proposal=proposal,
            category=triage.get("category", ""),
            urgency=urgency,
            urgency_rank=URGENCY_RANK.get(urgency, 1),
            confidence=float(triage.get("category_confidence", 0.0)),
            reason=f"{proposal['tool']} for {proposal['agent']}: {approval.reason}"[:300],
        )
        ToolApproval.objects.filter(pk=approval.pk).update(task=task)
        Span.objects.create(
            run=run,
            step=step,
            kind=Span.Kind.POLICY,
            name=f"approval required: {proposal['tool']}",
            attributes={"gen_ai.tool.name": proposal["tool"], "switchboard.policy": "ask"},
            started_at=timezone.now(),
        )
        record_event(
            action="tool.approval_requested",
            actor_label=f"agent:{approval.agent}",
            object_type="tool_approval",
            object_id=approval.pk,
            after={"tool": proposal["tool"], "run": run.pk, "reason": approval.reason},
        )
        live.publish_on_commit(live.QUEUE_GROUP, "queue.changed", task_id=task.pk)
        live.publish_on_commit(live.run_group(run.pk), "run.changed", run_id=run.pk)
