"""A person's approval of one exact tool call: asking for it (the step waits), deciding it,
and letting an unanswered one expire to "rejected"."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
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
from orchestration.services.decisions import DecisionError, TaskConflict, lock_open_task
from orchestration.services.dispatch import enqueue_step_on_commit
from tools_registry.models import ToolApproval


def approval_proposal(approval: ToolApproval) -> dict:
    """What the approval task shows: the exact call."""
    return {
        "tool": approval.tool.name,
        "risk": approval.tool.risk,
        "agent": approval.agent,
        "arguments": approval.arguments,
        "reason": approval.reason,
        "expires_at": approval.expires_at.isoformat(),
        "idempotency_key": approval.idempotency_key,
    }


def decide_tool_approval(
    *,
    task_id: int,
    actor: AbstractBaseUser,
    approve: bool,
    reason: str = "",
    expected_version: int | None = None,
) -> Decision:
    """Approve or reject the call a task shows, and let its run go on: the waiting step runs
    again and the gate uses the approval once (or refuses the call, if rejected)."""
    reason = reason.strip()
    if not approve and not reason:
        raise DecisionError("A rejection needs a reason.", field="reason")
    now = timezone.now()
    with transaction.atomic():
        task = lock_open_task(task_id=task_id, expected_version=expected_version)
        if task.kind != TaskKind.TOOL_APPROVAL:
            raise DecisionError("This task does not ask for a tool call's approval.")
        approval = ToolApproval.objects.select_for_update().select_related("tool").get(task=task)
        if approval.status != ToolApproval.Status.PENDING:
            raise TaskConflict(f"This call's approval is already {approval.status}.")
        expired = approval.expires_at <= now
        approval.status = (
            ToolApproval.Status.EXPIRED
            if expired
            else ToolApproval.Status.APPROVED
            if approve
            else ToolApproval.Status.REJECTED
        )
        approval.decided_by, approval.decided_at, approval.decision_reason = actor, now, reason
        approval.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
        outcome = DecisionOutcome.APPROVED if approve and not expired else DecisionOutcome.REJECTED
        decision = Decision.objects.create(task=task, actor=actor, outcome=outcome, reason=reason)
        HumanTask.objects.filter(pk=task.pk).update(
            status=TaskStatus.DECIDED, version=task.version + 1, decided_at=now
        )
        _let_run_go_on(task, now)
        record_event(
            action=f"tool.call_{approval.status}",
            actor=actor,
            object_type="tool_approval",
            object_id=approval.pk,
            before={"status": ToolApproval.Status.PENDING},
            after={
                "status": approval.status,
                "tool": approval.tool.name,
                "agent": approval.agent,
                "run": approval.run_id,
                "reason": reason,
            },
        )
    if expired:
        raise TaskConflict("This approval had expired; the call was not made.")
    return decision


def _let_run_go_on(task: HumanTask, now) -> None:  # type: ignore[no-untyped-def]
    run = Run.objects.select_for_update().get(pk=task.run_id)
    if run.is_final:
        return
    check_run_transition(RunStatus(run.status), RunStatus.RUNNING)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    Step.objects.filter(pk=task.step_id, status=StepStatus.WAITING_HUMAN).update(
        status=StepStatus.PENDING, queued_at=now
    )
    enqueue_step_on_commit(task.step_id)
    live.publish_on_commit(live.QUEUE_GROUP, "queue.changed", task_id=task.pk)
    live.publish_on_commit(live.run_group(run.pk), "run.changed", run_id=run.pk)


def expire_tool_approvals(*, limit: int = 200) -> int:
    """Unanswered approvals past their time count as rejected: the task closes as expired
    and the run goes on, where the gate refuses the call."""
    now = timezone.now()
    expired = 0
    due = ToolApproval.objects.filter(
        status=ToolApproval.Status.PENDING, expires_at__lte=now
    ).values_list("pk", "task_id")[:limit]
    for approval_id, task_id in due:
        with transaction.atomic():
            # The task before the approval: the order decide_tool_approval locks them in.
            task = HumanTask.objects.select_for_update().filter(pk=task_id).first()
            approval = (
                ToolApproval.objects.select_for_update()
                .filter(pk=approval_id, status=ToolApproval.Status.PENDING)
                .first()
            )
            if approval is None:
                continue
            ToolApproval.objects.filter(pk=approval.pk).update(status=ToolApproval.Status.EXPIRED)
            if task is not None and task.status == TaskStatus.OPEN:
                HumanTask.objects.filter(pk=task.pk).update(
                    status=TaskStatus.EXPIRED, version=task.version + 1, decided_at=now
                )
                _let_run_go_on(task, now)
            record_event(
                action="tool.call_expired",
                object_type="tool_approval",
                object_id=approval.pk,
                after={"tool_id": approval.tool_id, "agent": approval.agent},
            )
            expired += 1
    return expired
