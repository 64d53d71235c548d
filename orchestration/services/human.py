"""Human tasks: open one when a run needs a person (an approval, or an exception that asks
a person to resume or cancel). Decisions on them are in services.decisions."""

from typing import Any

from django.db import transaction

from orchestration.engine.states import RunStatus, StepStatus, TaskKind, check_run_transition
from orchestration.models import HumanTask, Run, Step
from orchestration.models.taxonomy import URGENCY_RANK, Urgency
from orchestration.services import live
from orchestration.services.audit import record_event


def open_review_task(*, step: Step) -> HumanTask | None:
    """Park a human step a worker claimed (a workflow that starts with a person, or a step
    handed back by the sweeper): open its approval task and put the run in
    ``waiting_human``. A human node reached from an agent step is parked by advance_run."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=step.run_id)
        parked = Step.objects.still_claimed(step).update(
            status=StepStatus.WAITING_HUMAN, lease_expires_at=None
        )
        if not parked or run.is_final:
            return None
        check_run_transition(RunStatus(run.status), RunStatus.WAITING_HUMAN)
        run.status = RunStatus.WAITING_HUMAN
        if run.started_at is None:
            run.started_at = step.started_at
        run.save(update_fields=["status", "started_at"])
        live.publish_on_commit(live.run_group(run.pk), "run.changed", run_id=run.pk)
        return open_approval_task(run=run, step=step)


def open_approval_task(*, run: Run, step: Step) -> HumanTask:
    """Open the task where a person approves, edits or rejects what the agents propose for
    ``run``, parked at ``step``. The caller holds the run and moves it to waiting_human."""
    task = approval_task(run)
    task.step = step
    task.save(force_insert=True)
    record_event(**opened_event(run, task), object_id=task.pk)
    live.publish_on_commit(live.QUEUE_GROUP, "queue.changed", task_id=task.pk)
    return task


def approval_task(run: Run) -> HumanTask:
    """The unsaved approval task for ``run``: the draft and the evidence behind it, from the
    run's state."""
    state = run.state
    triage = state.get("triage", {})
    urgency = triage.get("urgency", Urgency.NORMAL)
    proposal = {
        "draft": state.get("draft", {}).get("text", ""),
        "citations": state.get("draft", {}).get("citations", []),
        "category": triage.get("category", ""),
        "urgency": urgency,
        "category_confidence": triage.get("category_confidence", 0.0),
        "urgency_confidence": triage.get("urgency_confidence", 0.0),
        "alternatives": triage.get("alternatives", []),
        "articles": state.get("research", {}).get("articles", []),
        "similar_tickets": state.get("research", {}).get("similar_tickets", []),
        "reasons": state.get("decide", {}).get("reasons", []),
        # The decider's estimate and why, what it would have done, and what the instruction
        # detector found: the operator sees the evidence the decision would have rested on.
        "decider": {
            key: state.get("decide", {}).get(key)
            for key in ("score", "send_threshold", "would_send", "shadow", "why", "instructions")
        },
        # A refund the drafter found asked for: made after the reply, within the grant.
        "refund": state.get("draft", {}).get("refund"),
    }
    return HumanTask(
        run=run,
        kind=TaskKind.APPROVAL,
        proposal=proposal,
        category=proposal["category"],
        urgency=urgency,
        urgency_rank=URGENCY_RANK.get(urgency, 1),
        confidence=float(proposal["category_confidence"]),
        reason="; ".join(proposal["reasons"])[:300],
    )


def open_exception_task(*, run: Run, step: Step, reason: str) -> HumanTask:
    """Open a task asking a person to resume or cancel a run that cannot go on by itself.
    The caller holds the run's lock and moves the run to ``waiting_human``."""
    triage = run.state.get("triage", {})
    urgency = triage.get("urgency", Urgency.NORMAL)
    task = HumanTask.objects.create(
        run=run,
        step=step,
        kind=TaskKind.EXCEPTION,
        proposal={"reason": reason, "held_node": step.node},
        category=triage.get("category", ""),
        urgency=urgency,
        urgency_rank=URGENCY_RANK.get(urgency, 1),
        confidence=float(triage.get("category_confidence", 0.0)),
        reason=reason[:300],
    )
    live.publish_on_commit(live.QUEUE_GROUP, "queue.changed", task_id=task.pk)
    return task


def opened_event(run: Run, task: HumanTask) -> dict[str, Any]:
    """The "task.opened" audit event, but for its object id (the task's, once stored)."""
    return {
        "action": "task.opened",
        "actor_label": "agent:decider",
        "object_type": "task",
        "after": {"run": run.pk, "category": task.category, "urgency": task.urgency},
    }
