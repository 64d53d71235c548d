"""Quality sampling: a share of the replies sent alone becomes a review task *after* the reply
went out, and a person says whether it was right.

Which replies are reviewed is a stable hash of the run (engine.autonomy.sampled), at the
workflow's ``autonomy.sample_share`` (higher just after a category earned autonomy). A
reviewer marks the reply right, or wrong with reason codes and the reply it should have
been. The verdict is a decision like any other: evidence for the category's autonomy (a
wrong one can take it away at once), and feedback for the learner."""

from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from orchestration.engine.autonomy import AutonomyPolicy
from orchestration.engine.states import DecisionOutcome, TaskKind, TaskStatus
from orchestration.models import Decision, HumanTask, Reply, Run, Step
from orchestration.models.taxonomy import URGENCY_RANK
from orchestration.services import live
from orchestration.services.audit import record_event
from orchestration.services.autonomy import note_decision, review_sampled
from orchestration.services.decisions import (
    MAX_REPLY_CHARS,
    DecisionError,
    TaskConflict,
    line_diff,
    lock_open_task,
)
from orchestration.services.feedback import FeedbackError, checked_codes, edit_size

RIGHT, WRONG = "right", "wrong"


def open_quality_review(*, run_id: int) -> HumanTask | None:
    """If the reply ``run_id`` sent alone is sampled, open its review task (once: a second
    call finds it open or decided). The run stays finished; the task only asks."""
    run = Run.objects.select_related("workflow").get(pk=run_id)
    decided = run.state.get("decide", {})
    if decided.get("route") != "auto_send":
        return None
    category = run.state.get("triage", {}).get("category", "")
    policy = AutonomyPolicy.from_config(run.workflow.config)
    if HumanTask.objects.filter(run_id=run_id, kind=TaskKind.REVIEW).exists():
        return None
    reply = Reply.objects.filter(run_id=run_id).order_by("pk").first()
    step = Step.objects.filter(run_id=run_id, node="send").order_by("-sequence").first()
    if reply is None or step is None:
        return None
    sampled = review_sampled(
        category=category, key=f"run:{run_id}", policy=policy, workflow=run.workflow.name
    )
    if not sampled:
        return None
    triage = run.state.get("triage", {})
    urgency = triage.get("urgency", "normal")
    try:
        with transaction.atomic():
            task = HumanTask.objects.create(
                run_id=run_id,
                step=step,
                kind=TaskKind.REVIEW,
                proposal={
                    "draft": reply.body,
                    "sent_at": timezone.localtime(reply.created_at).strftime("%Y-%m-%d %H:%M"),
                    "reply_id": reply.pk,
                    "citations": run.state.get("draft", {}).get("citations", []),
                    "articles": run.state.get("research", {}).get("articles", []),
                    "category": category,
                    "urgency": urgency,
                    "category_confidence": triage.get("category_confidence"),
                    "urgency_confidence": triage.get("urgency_confidence"),
                    "alternatives": triage.get("alternatives", []),
                    "reasons": [],
                    "decider": {
                        key: decided.get(key)
                        for key in ("score", "send_threshold", "would_send", "why", "instructions")
                    },
                },
                category=category,
                urgency=urgency,
                urgency_rank=URGENCY_RANK.get(urgency, 1),
                confidence=float(triage.get("category_confidence", 0.0)),
                reason="Sent alone; sampled for review",
            )
            record_event(
                action="task.opened",
                actor_label="agent:decider",
                object_type="task",
                object_id=task.pk,
                after={"run": run_id, "kind": TaskKind.REVIEW, "category": category},
            )
    except IntegrityError:  # another worker opened it first (one open task per step)
        return None
    live.publish_on_commit(live.QUEUE_GROUP, "queue.changed", task_id=task.pk)
    return task


def review_reply(
    *,
    task_id: int,
    actor: AbstractBaseUser,
    verdict: str,
    reason_codes: Sequence[str] = (),
    should_have_been: str = "",
    note: str = "",
    expected_version: int | None = None,
) -> Decision:
    """Record a reviewer's verdict on a reply that went out alone. ``verdict`` is "right"
    or "wrong"; a wrong one needs at least one reason code and the reply it should have
    been (or a note saying no reply should have gone out). A task reviewed already, or
    changed since the reviewer opened it, is refused with a TaskConflict; nothing is
    half-written."""
    if verdict not in (RIGHT, WRONG):
        raise DecisionError("Say whether the reply was right or wrong.", field="verdict")
    try:
        codes = checked_codes(reason_codes)
    except FeedbackError as error:
        raise DecisionError(str(error), field=error.field) from None
    text = should_have_been.replace("\r\n", "\n").strip()
    note = note.strip()
    if verdict == WRONG and not codes:
        raise DecisionError("Say what was wrong: pick a reason.", field="reason_codes")
    if verdict == WRONG and not (text or note):
        raise DecisionError(
            "Give the reply it should have been, or a note if none should have gone out.",
            field="should_have_been",
        )
    if len(text) > MAX_REPLY_CHARS:
        raise DecisionError(
            f"The reply is longer than {MAX_REPLY_CHARS} characters.", field="should_have_been"
        )
    now = timezone.now()
    with transaction.atomic():
        task = lock_open_task(task_id=task_id, expected_version=expected_version)
        if task.kind != TaskKind.REVIEW:
            raise DecisionError("This task is not a review of a reply sent alone.")
        sent = task.proposal.get("draft", "")
        if verdict == WRONG and text == sent.strip():
            # The box starts with the reply as sent: left as it was, it corrects nothing.
            if not note:
                raise DecisionError(
                    "The reply below is the one that was sent: change it to what it should "
                    "have been, or clear it and say in the note why none should have gone out.",
                    field="should_have_been",
                )
            text = ""
        if verdict == RIGHT:
            outcome, final = DecisionOutcome.APPROVED, sent
        elif text:
            outcome, final = DecisionOutcome.EDITED, text
        else:
            outcome, final = DecisionOutcome.REJECTED, ""
        edit_chars, similarity = edit_size(sent, final) if final else (0, None)
        decision = Decision.objects.create(
            task=task,
            actor=actor,
            outcome=outcome,
            final_text=final,
            diff=line_diff(sent, final) if outcome == DecisionOutcome.EDITED else [],
            reason=note,
            reason_codes=codes,
            edit_chars=edit_chars,
            similarity=similarity,
        )
        closed = HumanTask.objects.filter(pk=task.pk, status=TaskStatus.OPEN).update(
            status=TaskStatus.DECIDED, version=task.version + 1, decided_at=now
        )
        if not closed:
            raise TaskConflict("This reply was reviewed meanwhile; reload to see the verdict.")
        # The verdict and its evidence (which may take autonomy away) are one transaction.
        note_decision(decision_id=decision.pk)
        record_event(
            action="task.reviewed",
            actor=actor,
            object_type="task",
            object_id=task.pk,
            before={"status": TaskStatus.OPEN},
            after={
                "status": TaskStatus.DECIDED,
                "verdict": verdict,
                "run": task.run_id,
                "reason_codes": codes,
            },
        )
        live.publish_on_commit(live.QUEUE_GROUP, "queue.changed", task_id=task.pk)
    return decision
