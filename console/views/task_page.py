"""What the task page shows besides the task itself: a closed task's decision and feedback,
the chips and codes of the decision form, the review form's state, a tool call's expiry."""

from typing import Any

from django import forms
from django.conf import settings
from django.http import QueryDict
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from orchestration.engine.states import DecisionOutcome, TaskKind, TaskStatus
from orchestration.models import Decision, HumanTask
from orchestration.models.taxonomy import Category, Urgency


def decided_context(task: HumanTask) -> dict[str, Any]:
    """A closed task's decision, its feedback, and the task it was handed on as, if escalated."""
    decision = getattr(task, "decision", None) if task.status != TaskStatus.OPEN else None
    if decision is None:
        return {"decision": None}
    handed_on = None
    if decision.outcome == DecisionOutcome.ESCALATED:
        handed_on = (
            HumanTask.objects.filter(step_id=task.step_id, pk__gt=task.pk).order_by("pk").first()
        )
    return {
        "decision": decision,
        "feedback": decision_feedback(task, decision),
        "handed_on": handed_on,
    }


def decision_feedback(task: HumanTask, decision: Decision) -> dict[str, Any]:
    """What a decided task's page and its run's page show of the person's feedback besides
    the outcome: the size of the edit, the reason codes by their labels, and the labels the
    person corrected, each as (what, the agents' label, the person's)."""
    labels = settings.FEEDBACK_REASON_CODES
    edit_size = ""
    if decision.similarity is not None and decision.edit_chars:
        chars = decision.edit_chars
        edit_size = (
            f"{chars} character{'' if chars == 1 else 's'} changed, "
            f"similarity {decision.similarity:.0%}"
        )
    corrections = [
        (what, agents, person)
        for what, agents, person in (
            ("category", task.category, decision.corrected_category),
            ("urgency", task.urgency, decision.corrected_urgency),
        )
        if person
    ]
    return {
        "edit_size": edit_size,
        # A code no longer configured is still shown, as itself.
        "codes": [labels.get(code, code) for code in decision.reason_codes],
        "corrections": corrections,
    }


def feedback_choices(task: HumanTask, form: forms.Form) -> dict[str, Any]:
    """The reason codes and the label chips the decision form offers, as the operator left
    them in the form they posted; on a fresh form, no code and the agents' labels.

    The category chips list the agents' label first, then the classifier's other likely
    categories, then the rest; the agents' label carries its confidence."""
    posted = form.data if form.is_bound else QueryDict()
    codes = set(posted.getlist("reason_codes"))
    proposal = task.proposal
    scores = {alt.get("category"): alt.get("score") for alt in proposal.get("alternatives") or []}
    categories = [c for c in dict.fromkeys([task.category, *scores, *Category.values]) if c]
    return {
        "code_choices": code_choices(codes),
        "category_chips": _chips(
            Category,
            categories,
            chosen=posted.get("corrected_category") or task.category,
            guess=task.category,
            scores={**scores, task.category: proposal.get("category_confidence")},
        ),
        "urgency_chips": _chips(
            Urgency,
            Urgency.values,
            chosen=posted.get("corrected_urgency") or task.urgency,
            guess=task.urgency,
            scores={task.urgency: proposal.get("urgency_confidence")},
        ),
    }


def _chips(
    labels: type[Category] | type[Urgency],
    values: list[str],
    *,
    chosen: str,
    guess: str,
    scores: dict[str, float | None],
) -> list[dict[str, Any]]:
    """One radio chip per label, in this order. A posted value that is no label (a tampered
    form, whose error is shown) leaves the agents' guess chosen."""
    known = [v for v in values if v in labels.values]
    if chosen not in known:
        chosen = guess
    return [
        {
            "value": value,
            "label": labels(value).label,
            "checked": value == chosen,
            "guess": value == guess,
            "score": scores.get(value),
        }
        for value in known
    ]


def code_choices(ticked: set[str]) -> list[dict[str, Any]]:
    """The reason-code checkboxes of a form, each ticked as the person left it."""
    return [
        {"code": code, "label": label, "checked": code in ticked}
        for code, label in settings.FEEDBACK_REASON_CODES.items()
    ]


def review_choices(task: HumanTask, form: forms.Form) -> dict[str, Any]:
    """The review form as the reviewer left it: the codes they ticked and the reply they
    wrote, or on a fresh form the reply as it was sent, to correct in place."""
    posted = form.data if form.is_bound else QueryDict()
    codes = set(posted.getlist("reason_codes"))
    return {
        "code_choices": code_choices(codes),
        "review_text": posted.get("should_have_been", task.proposal.get("draft", "")),
        "review_note": posted.get("note", ""),
    }


def tool_call_expiry(task: HumanTask) -> dict:
    """When a tool-approval task's call stops being approvable, and whether that has passed."""
    if task.kind != TaskKind.TOOL_APPROVAL:
        return {}
    expires_at = parse_datetime(task.proposal.get("expires_at") or "")
    return {
        "call_expires_at": expires_at,
        "call_expired": expires_at is not None and expires_at <= timezone.now(),
    }
