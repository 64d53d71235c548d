"""Earned autonomy per category: the evidence, the judgement and its audit trail.

A category's status changes only here (reassess_category), from its evidence rows, by the
rules of engine.autonomy, and every change is an audit event ("autonomy.earned",
"autonomy.lost") that names the evidence behind it."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from orchestration.engine.autonomy import (
    AutonomyPolicy,
    AutonomyStatus,
    Evidence,
    judge,
    review_share,
    sampled,
    wilson_interval,
)
from orchestration.engine.states import DecisionOutcome, StepStatus, TaskKind
from orchestration.models import AutonomyEvidence, CategoryAutonomy, Decision, Step
from orchestration.models.taxonomy import Category
from orchestration.services import live
from orchestration.services.audit import record_event
from orchestration.workflows import support_desk

DECIDER = "agent:decider"


def autonomy_row(category: str, workflow: str = support_desk.NAME) -> CategoryAutonomy:
    row, _ = CategoryAutonomy.objects.get_or_create(workflow=workflow, category=category)
    return row


def autonomy_table(workflow: str = support_desk.NAME) -> list[CategoryAutonomy]:
    """Every category's row, in the taxonomy's order (a category never judged is shadow)."""
    rows = {r.category: r for r in CategoryAutonomy.objects.filter(workflow=workflow)}
    return [rows.get(c) or CategoryAutonomy(workflow=workflow, category=c) for c in Category.values]


def evidence_of(row: CategoryAutonomy) -> Evidence:
    rows = AutonomyEvidence.objects.filter(workflow=row.workflow, category=row.category)
    if row.evidence_since is not None:
        rows = rows.filter(created_at__gte=row.evidence_since)
    counts = rows.aggregate(n=Count("id"), right=Count("id", filter=Q(right=True)))
    return Evidence(recommendations=counts["n"], unchanged=counts["right"])


def reassess_category(
    *, category: str, policy: AutonomyPolicy, workflow: str = support_desk.NAME, actor: Any = None
) -> CategoryAutonomy:
    """Judge a category on its evidence and record the verdict; a change of status is
    audited and shown to the console at once."""
    with transaction.atomic():
        autonomy_row(category, workflow)  # exists before it is locked
        row = CategoryAutonomy.objects.select_for_update().get(workflow=workflow, category=category)
        evidence = evidence_of(row)
        verdict = judge(AutonomyStatus(row.status), evidence, policy)
        before = row.status
        row.why = verdict.why
        row.recommendations, row.right = evidence.recommendations, evidence.unchanged
        row.lower_bound = round(evidence.lower_bound, 4)
        changed = verdict.status != before
        if changed:
            now = timezone.now()
            row.status, row.changed_at = verdict.status, now
            if verdict.status == AutonomyStatus.EARNED:
                row.auto_sent_since_earned = 0
            else:  # lost: only evidence from now on counts towards earning it again
                row.evidence_since = now
        row.save()
        if changed:  # the audit event last: it holds the chain's lock until commit
            earned = verdict.status == AutonomyStatus.EARNED
            record_event(
                action="autonomy.earned" if earned else "autonomy.lost",
                actor=actor,
                actor_label="" if actor else DECIDER,
                object_type="autonomy",
                object_id=row.pk,
                before={"category": category, "status": before},
                after={
                    "category": category,
                    "status": verdict.status,
                    "why": verdict.why,
                    "recommendations": evidence.recommendations,
                    "right": evidence.unchanged,
                    "lower_bound": row.lower_bound,
                    "target_precision": policy.target_precision,
                    "wrong_tolerance": policy.wrong_tolerance,
                },
            )
            live.publish_on_commit(live.QUEUE_GROUP, "autonomy.changed", category=category)
    return row


def add_evidence(
    *,
    category: str,
    source: str,
    right: bool,
    score: float,
    ref: str,
    policy: AutonomyPolicy,
    run_id: int | None = None,
    decision_id: int | None = None,
    workflow: str = support_desk.NAME,
    actor: Any = None,
) -> CategoryAutonomy:
    """One would-send recommendation's outcome, and the category judged again at once (a
    change it causes is attributed to ``actor``, the person whose verdict it was)."""
    AutonomyEvidence.objects.create(
        workflow=workflow,
        category=category,
        source=source,
        right=right,
        score=score,
        ref=ref[:120],
        run_id=run_id,
        decision_id=decision_id,
    )
    return reassess_category(category=category, policy=policy, workflow=workflow, actor=actor)


def seed_history(
    *, outcomes: Iterable[tuple[str, bool, float, str]], policy: AutonomyPolicy
) -> list[CategoryAutonomy]:
    """The shipped history's would-send recommendations as evidence, (category, right,
    score, ref) each, once: a database that has history evidence already is left as it is."""
    if AutonomyEvidence.objects.filter(source=AutonomyEvidence.Source.HISTORY).exists():
        return autonomy_table()
    AutonomyEvidence.objects.bulk_create(
        AutonomyEvidence(
            workflow=support_desk.NAME,
            category=category,
            source=AutonomyEvidence.Source.HISTORY,
            right=right,
            score=score,
            ref=ref[:120],
        )
        for category, right, score, ref in outcomes
    )
    return [reassess_category(category=c, policy=policy) for c in Category.values]


def review_sampled(
    *, category: str, key: str, policy: AutonomyPolicy, workflow: str = support_desk.NAME
) -> bool:
    """Whether the reply sent alone under ``key`` is one a person reviews afterwards; counts
    the category's auto-sends since it earned autonomy (the first are reviewed more)."""
    row = autonomy_row(category, workflow)
    share = review_share(policy, row.auto_sent_since_earned)
    CategoryAutonomy.objects.filter(pk=row.pk).update(
        auto_sent_since_earned=F("auto_sent_since_earned") + 1
    )
    return sampled(key, share, secret=settings.SECRET_KEY)


def note_decision(*, decision_id: int) -> CategoryAutonomy | None:
    """A person's decision on a draft the decider would have sent alone (shadow mode) is
    evidence for its category: right if they sent it unchanged with the category as it was.
    A reviewer's verdict on a reply that went out alone is evidence the same way. Other
    decisions are not evidence; an escalation waits for the person it was handed to."""
    decision = Decision.objects.select_related("task__run__workflow").filter(pk=decision_id).first()
    if decision is None or hasattr(decision, "autonomy_evidence"):
        return None
    task = decision.task
    if task.kind not in (TaskKind.APPROVAL, TaskKind.REVIEW):
        return None
    if decision.outcome not in (
        DecisionOutcome.APPROVED,
        DecisionOutcome.EDITED,
        DecisionOutcome.REJECTED,
    ):
        return None
    decided = (
        Step.objects.filter(run_id=task.run_id, node="decide", status=StepStatus.SUCCEEDED)
        .order_by("-sequence")
        .values_list("output", flat=True)
        .first()
    ) or {}
    if not decided.get("would_send"):
        return None
    right = decision.outcome == DecisionOutcome.APPROVED and not decision.corrected_category
    review = task.kind == TaskKind.REVIEW
    return add_evidence(
        category=task.category,
        source=AutonomyEvidence.Source.REVIEW if review else AutonomyEvidence.Source.DECISION,
        right=right,
        score=float(decided.get("score") or 0.0),
        ref=f"run {task.run_id}",
        policy=AutonomyPolicy.from_config(task.run.workflow.config),
        run_id=task.run_id,
        decision_id=decision.pk,
        workflow=task.run.workflow.name,
        actor=decision.actor,
    )


@dataclass(frozen=True)
class CategoryReport:
    """One category's autonomy as the Learning screen shows it."""

    row: CategoryAutonomy
    # Sampled reviews of its replies sent alone, the wrong ones, and the wrong rate's
    # 95% interval from those samples.
    reviewed: int
    wrong: int
    wrong_low: float
    wrong_high: float
    # Where its evidence came from: {"history": n, "decision": n, "review": n}.
    sources: dict[str, int]


def autonomy_report(workflow: str = support_desk.NAME) -> list[CategoryReport]:
    reviews = {
        category: (n, bad)
        for category, n, bad in AutonomyEvidence.objects.filter(
            workflow=workflow, source=AutonomyEvidence.Source.REVIEW
        )
        .values("category")
        .annotate(n=Count("id"), wrong=Count("id", filter=Q(right=False)))
        .values_list("category", "n", "wrong")
    }
    sources: dict[str, dict[str, int]] = {}
    for category, source, n in (
        AutonomyEvidence.objects.filter(workflow=workflow)
        .values("category", "source")
        .annotate(n=Count("id"))
        .values_list("category", "source", "n")
    ):
        sources.setdefault(category, {})[source] = n
    reports = []
    for row in autonomy_table(workflow):
        n, bad = reviews.get(row.category, (0, 0))
        low, high = wilson_interval(bad, n)
        reports.append(
            CategoryReport(
                row, n, bad, round(low, 4), round(high, 4), sources.get(row.category, {})
            )
        )
    return reports
