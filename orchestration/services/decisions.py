"""People's decisions on approval tasks, exactly one per task: approve, edit, reject, or
escalate (the task closes and a new one, with the person's note, waits for someone else)."""

import difflib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from orchestration.engine.planner import next_node
from orchestration.engine.states import DecisionOutcome, StepStatus, TaskKind, TaskStatus
from orchestration.engine.workflow import NodeKind
from orchestration.models import Decision, HumanTask, Span, Step
from orchestration.services import live, statements
from orchestration.services.audit import append_params, record_event
from orchestration.services.autonomy import note_decision
from orchestration.services.decision_statement import load_task, record_decision
from orchestration.services.dispatch import enqueue_step_on_commit
from orchestration.services.feedback import (
    Feedback,
    FeedbackError,
    check_labels,
    checked_codes,
    edit_size,
)
from orchestration.services.runs import (
    RunChanged,
    advance_run,
    answered,
    fold_step,
    next_agent_step,
)

MAX_REPLY_CHARS = 20000


class DecisionError(Exception):
    """A decision that cannot be recorded; the message is meant for the operator, and
    ``field`` names the form field at fault, if one is."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class TaskConflict(DecisionError):
    """Someone else decided first, or the task changed since the form was opened."""


def line_diff(before: str, after: str) -> list[dict[str, Any]]:
    """A line-level diff as data: [{"op": "equal"|"delete"|"insert", "text": line}, ...]."""
    rows: list[dict[str, Any]] = []
    a, b = before.splitlines(), after.splitlines()
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            rows.extend({"op": "equal", "text": line} for line in a[i1:i2])
            continue
        rows.extend({"op": "delete", "text": line} for line in a[i1:i2])
        rows.extend({"op": "insert", "text": line} for line in b[j1:j2])
    return rows


def _same_text(a: str, b: str) -> bool:
    return a.replace("\r\n", "\n").strip() == b.replace("\r\n", "\n").strip()


def decide_task(
    *,
    task_id: int,
    actor: AbstractBaseUser,
    action: str,
    final_text: str = "",
    reason: str = "",
    expected_version: int | None = None,
    reason_codes: Sequence[str] = (),
    corrected_category: str = "",
    corrected_urgency: str = "",
) -> Decision:
    """Record a person's decision on an open task and resume its run.

    ``action`` is "approve" (send the draft as proposed), "edit" (send ``final_text``),
    "reject" (send nothing; a reason is required) or "escalate" (hand the task on: it is
    opened again for someone else, with the person's note; a note is required). Exactly one
    decision is ever recorded per task: the task row is locked, and a task that is no longer
    open, or whose version moved since the operator loaded it, is refused with a
    TaskConflict.

    The feedback rides along: ``reason_codes`` (from settings.FEEDBACK_REASON_CODES) and the
    category and urgency the person corrected (a "correction" equal to the agents' label is
    no correction). Once recorded, a decision on a draft the decider would have sent alone is
    evidence for its category's autonomy (services.autonomy.note_decision)."""
    if action not in ("approve", "edit", "reject", "escalate"):
        raise DecisionError(f"unknown action {action!r}")
    final_text = final_text.replace("\r\n", "\n")
    reason = reason.strip()
    try:
        codes = checked_codes(reason_codes)
        check_labels(corrected_category, corrected_urgency)
    except FeedbackError as error:
        raise DecisionError(str(error), field=error.field) from None
    if action == "reject" and not reason:
        raise DecisionError("A rejection needs a reason.", field="reason")
    if action == "escalate" and not reason:
        raise DecisionError("Say why you escalate, for whoever picks it up.", field="reason")
    if action == "edit" and not final_text.strip():
        raise DecisionError("The edited reply is empty.", field="final_text")
    if len(final_text) > MAX_REPLY_CHARS:
        raise DecisionError(
            f"The reply is longer than {MAX_REPLY_CHARS} characters.", field="final_text"
        )
    feedback = Feedback(codes, corrected_category, corrected_urgency)
    if statements.enabled() and action != "escalate":
        decided = _decide_in_one_statement(
            task_id, actor, action, final_text, reason, expected_version, feedback
        )
        if decided is not None:
            # The statement has committed; the evidence follows it at once.
            note_decision(decision_id=decided.pk)
            return decided
    now = timezone.now()
    with transaction.atomic():
        task = lock_open_task(task_id=task_id, expected_version=expected_version)
        if task.kind != TaskKind.APPROVAL:
            raise DecisionError("This task is a paused run: resume it or cancel the run.")
        if action == "escalate":
            return _escalate(task, actor, reason, feedback, now)
        decision, output = _decision(task, actor, action, final_text, reason, feedback)
        decision.save(force_insert=True)
        HumanTask.objects.filter(pk=task.pk).update(
            status=TaskStatus.DECIDED, version=task.version + 1, decided_at=now
        )
        step, run = task.step, task.run
        following = next_node(run.workflow.parsed, step.node, output)
        try:  # the run's row before the step's: task, run, step is every writer's lock order
            advance_run(run=run, step=step, output=output, following=following, now=now)
        except RunChanged:
            raise TaskConflict(
                "The run changed while you decided (it was cancelled); nothing was recorded."
            ) from None
        Step.objects.filter(pk=step.pk).update(
            status=StepStatus.SUCCEEDED, output=output, finished_at=now
        )
        _decision_span(task, decision, now).save(force_insert=True)
        # Evidence for the category's autonomy, in the same transaction as the decision.
        note_decision(decision_id=decision.pk)
        record_event(**_decided_event(task, decision), object_id=task.pk)
        live.publish_on_commit(live.QUEUE_GROUP, "queue.changed", task_id=task.pk)
    return decision


def _decide_in_one_statement(
    task_id: int,
    actor: AbstractBaseUser,
    action: str,
    final_text: str,
    reason: str,
    expected_version: int | None,
    feedback: Feedback,
) -> Decision | None:
    """The common decision on PostgreSQL, in one statement (services.checkpoint): the run
    goes on to an agent node or ends. None if it was not recorded this way; the caller then
    takes the transaction, which also explains any refusal (decided meanwhile, changed, a
    paused run, a task that does not exist)."""
    task = load_task(task_id)
    if task is None or task.status != TaskStatus.OPEN or task.kind != TaskKind.APPROVAL:
        return None
    if expected_version is not None and expected_version != task.version:
        return None
    decision, output = _decision(task, actor, action, final_text, reason, feedback)
    run, step, now = task.run, task.step, timezone.now()
    following = next_node(run.workflow.parsed, step.node, output)
    progress = fold_step(run=run, step=step, output=output, following=following, now=now)
    node = progress.following
    if node is not None and (node.kind != NodeKind.AGENT or progress.tripped):
        return None
    next_step = next_agent_step(run, step, node, now=now, claim=False) if node else None
    recorded = record_decision(
        task=task,
        decision=decision,
        output=output,
        span=_decision_span(task, decision, now),
        status_before=progress.status_before,
        steps_before=progress.steps_before,
        next_step=next_step,
        answered=answered(run),
        audit=append_params(**_decided_event(task, decision)),
        now=now,
    )
    if not recorded:
        return None
    # Outside a transaction these go out at once.
    if next_step is not None:
        enqueue_step_on_commit(next_step.pk)
    live.publish_on_commit(live.QUEUE_GROUP, "queue.changed", task_id=task.pk)
    live.publish_on_commit(live.run_group(run.pk), "run.changed", run_id=run.pk)
    return decision


def _decision(
    task: HumanTask,
    actor: AbstractBaseUser,
    action: str,
    final_text: str,
    reason: str,
    feedback: Feedback,
) -> tuple[Decision, dict[str, Any]]:
    """The unsaved decision on ``task``, and the output its human step records."""
    draft = task.proposal.get("draft", "")
    if action == "reject":
        outcome, text = DecisionOutcome.REJECTED, ""
    elif action == "edit" and not _same_text(final_text, draft):
        outcome, text = DecisionOutcome.EDITED, final_text.strip()
    else:
        outcome, text = DecisionOutcome.APPROVED, draft
    edit_chars, similarity = edit_size(draft, text) if text else (0, None)
    category, urgency = feedback.corrections(task)
    decision = Decision(
        task=task,
        actor=actor,
        outcome=outcome,
        final_text=text,
        diff=line_diff(draft, text) if outcome == DecisionOutcome.EDITED else [],
        reason=reason,
        reason_codes=feedback.codes,
        edit_chars=edit_chars,
        similarity=similarity,
        corrected_category=category,
        corrected_urgency=urgency,
    )
    output = {
        "approved": outcome != DecisionOutcome.REJECTED,
        "decision": str(outcome),
        "final_text": text,
        "decided_by": actor.get_username(),
        "decided_by_id": actor.pk,
        "reason": reason,
    }
    if outcome == DecisionOutcome.REJECTED:
        output["outcome"] = "rejected"
    return decision, output


def _escalate(
    task: HumanTask, actor: AbstractBaseUser, note: str, feedback: Feedback, now: datetime
) -> Decision:
    """Hand a locked task on: this person's decision is "escalated", and the same proposal
    waits in the queue again as a new task that says who escalated it and why. The run
    stays where it is."""
    category, urgency = feedback.corrections(task)
    decision = Decision(
        task=task,
        actor=actor,
        outcome=DecisionOutcome.ESCALATED,
        reason=note,
        reason_codes=feedback.codes,
        corrected_category=category,
        corrected_urgency=urgency,
    )
    decision.save(force_insert=True)
    HumanTask.objects.filter(pk=task.pk).update(
        status=TaskStatus.DECIDED, version=task.version + 1, decided_at=now
    )
    handed_on = HumanTask.objects.create(
        run_id=task.run_id,
        step_id=task.step_id,
        kind=task.kind,
        proposal=task.proposal,
        category=task.category,
        urgency=task.urgency,
        urgency_rank=task.urgency_rank,
        confidence=task.confidence,
        reason=f"Escalated by {actor.get_username()}: {note}"[:300],
        due_at=task.due_at,
    )
    _decision_span(task, decision, now).save(force_insert=True)
    record_event(**_decided_event(task, decision), object_id=task.pk)
    record_event(
        action="task.escalated",
        actor=actor,
        object_type="task",
        object_id=handed_on.pk,
        after={"from_task": task.pk, "run": task.run_id, "note": note},
    )
    live.publish_on_commit(live.QUEUE_GROUP, "queue.changed", task_id=handed_on.pk)
    live.publish_on_commit(live.run_group(task.run_id), "run.changed", run_id=task.run_id)
    return decision


def _decision_span(task: HumanTask, decision: Decision, now: datetime) -> Span:
    return Span(
        run_id=task.run_id,
        step_id=task.step_id,
        kind=Span.Kind.HUMAN,
        name=f"human decision: {decision.outcome}",
        attributes={
            "decision.outcome": str(decision.outcome),
            "decision.actor": decision.actor.get_username(),
        },
        started_at=task.created_at,
        duration_ms=(now - task.created_at).total_seconds() * 1000,
    )


def _decided_event(task: HumanTask, decision: Decision) -> dict[str, Any]:
    """The "task.decided" audit event, but for its object id."""
    return {
        "action": "task.decided",
        "actor": decision.actor,
        "object_type": "task",
        "before": {"status": TaskStatus.OPEN, "draft_chars": len(task.proposal.get("draft", ""))},
        "after": {
            "status": TaskStatus.DECIDED,
            "outcome": str(decision.outcome),
            "run": task.run_id,
            "reason": decision.reason,
            "reason_codes": decision.reason_codes,
            "corrected_category": decision.corrected_category,
            "corrected_urgency": decision.corrected_urgency,
        },
    }


def lock_open_task(*, task_id: int, expected_version: int | None) -> HumanTask:
    """Lock a task for a person's decision, inside the caller's transaction. Refused: a task
    that does not exist, one no longer open (the message names who decided it), and one whose
    version moved since the person loaded it."""
    try:
        # The task's row is the lock; its step, run and workflow come in the same query. Every
        # writer takes a run's task before the run itself (cancel_run too), so none deadlock.
        task = (
            HumanTask.objects.select_for_update(of=("self",))
            .select_related("step", "run__workflow")
            .get(pk=task_id)
        )
    except HumanTask.DoesNotExist:
        raise DecisionError("This task does not exist.") from None
    if task.status != TaskStatus.OPEN:
        raise TaskConflict(_already_decided_message(task))
    if expected_version is not None and expected_version != task.version:
        raise TaskConflict("This task changed since you opened it; reload to see it.")
    return task


def _already_decided_message(task: HumanTask) -> str:
    decision = Decision.objects.filter(task=task).select_related("actor").first()
    if decision is None:
        return f"This task is already {task.status}."
    when = timezone.localtime(decision.created_at).strftime("%H:%M:%S")
    return (
        f"{decision.actor.get_username()} already {decision.outcome} this task at {when}; "
        "your decision was not recorded."
    )
