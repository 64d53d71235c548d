"""One learning cycle of Agent E: read the decisions, make candidate versions of the
decider's thresholds (D), the triage classifier (A) and the drafter's exemplars (C), score
each through the evaluation gate, and promote it or leave it for an admin, as the settings
say.

Candidates are made and judged in that order; once one is promoted, the next is judged
against the agents as they now are. A cycle runs alone (a second trigger while one runs does
nothing) and is recorded with what it read and what became of each candidate."""

import json
import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from orchestration import dataset
from orchestration.agents.base import TicketView
from orchestration.agents.decider_model import DeciderModel
from orchestration.agents.triage_model import TriageModel
from orchestration.engine.states import DecisionOutcome
from orchestration.learning import decider_training, evaluation, exemplars, house_style
from orchestration.learning.active import (
    DECIDER,
    DRAFTER,
    EXEMPLARS_FORMAT,
    LEARNED_AGENTS,
    TRIAGE,
    current_version,
    exemplar_ids,
    house_edits,
)
from orchestration.models import Decision, Exemplar, LearningCycle, PolicyVersion, Step
from orchestration.services.audit import record_event
from orchestration.services.learning import (
    LEARNER,
    STALE_CYCLE,
    LearningError,
    collect_exemplars,
    learning_settings,
    promote_version,
    store_version,
)
from orchestration.services.replay import AgentMemo
from orchestration.services.workflows import support_desk_version

log = logging.getLogger(__name__)


def decisions_since_last_cycle() -> int:
    last = (
        LearningCycle.objects.exclude(status=LearningCycle.Status.RUNNING)
        .exclude(last_decision=None)
        .order_by("-pk")
        .values_list("last_decision_id", flat=True)
        .first()
    )
    decided = evaluation.learnable_decisions()
    return decided.filter(pk__gt=last).count() if last else decided.count()


def cycle_due() -> bool:
    """Whether enough new decisions arrived for a cycle (the settings' count)."""
    return decisions_since_last_cycle() >= learning_settings().decisions_per_cycle


def run_learning_cycle(
    *, trigger: str, actor: AbstractBaseUser | None = None
) -> LearningCycle | None:
    """Run a cycle now; None if one is running already."""
    cycle = _begin(trigger, actor)
    if cycle is None:
        return None
    try:
        summary, last = _learn(cycle)
    except Exception as exc:
        log.exception("learning cycle %s failed", cycle.pk)
        # The decisions it read count as seen: a cycle that fails is not retried on every
        # beat, only once as many new decisions have come in again (or when asked for).
        LearningCycle.objects.filter(pk=cycle.pk).update(
            status=LearningCycle.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            last_decision=evaluation.learnable_decisions().last(),
            finished_at=timezone.now(),
        )
        raise
    LearningCycle.objects.filter(pk=cycle.pk).update(
        status=LearningCycle.Status.FINISHED,
        summary=summary,
        last_decision=last,
        finished_at=timezone.now(),
    )
    cycle.refresh_from_db()
    return cycle


def _begin(trigger: str, actor: AbstractBaseUser | None) -> LearningCycle | None:
    stale = timezone.now() - STALE_CYCLE
    LearningCycle.objects.filter(status=LearningCycle.Status.RUNNING, started_at__lt=stale).update(
        status=LearningCycle.Status.FAILED,
        error="did not finish (its worker stopped)",
        finished_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            return LearningCycle.objects.create(trigger=trigger, requested_by=actor)
    except IntegrityError:  # one is running
        return None


def _learn(cycle: LearningCycle) -> tuple[dict[str, Any], Decision | None]:
    settings = learning_settings()
    read = list(evaluation.learnable_decisions().select_related("task__run__ticket", "actor"))
    # A ticket of the shipped test split (the demo feeds some in) is never learned from:
    # the gate scores accuracy on those texts.
    decisions = [d for d in read if not evaluation.in_test_split(d.task.run.ticket)]
    LearningCycle.objects.filter(pk=cycle.pk).update(decisions=len(decisions))
    workflow = support_desk_version()
    library = evaluation.scenario_library()
    # Every play of the cycle uses these versions, but for the candidate's own agent; a
    # candidate is promoted only while they are still the ones in use (promote_version).
    in_use = {agent: current_version(agent) for agent in LEARNED_AGENTS}
    memo = AgentMemo()  # the agents a candidate does not change run once per scenario
    baseline_scores = evaluation.score(evaluation.play(library, workflow, in_use, memo))
    summary: dict[str, Any] = {
        "baseline": baseline_scores,
        "agents": {},
        # Decisions on tickets of the shipped test split (the demo's incoming tickets).
        "left_out_test_split": len(read) - len(decisions),
    }
    allowed_wrong = 1 - settings.target_precision
    # The gatekeeper first: its estimate says what people accept unchanged, and the next
    # candidates are judged by what would be sent unseen under it.
    for agent, make in ((DECIDER, _decider), (TRIAGE, _triage), (DRAFTER, _drafter)):
        made = make(decisions, settings)
        if isinstance(made, str):
            summary["agents"][agent] = {"candidate": None, "why": made}
            continue
        blob, lineage, learned_from = made
        baseline = in_use[agent]
        candidate = store_version(
            agent=agent,
            blob=blob,
            metrics={},
            lineage=lineage,
            learned_from=learned_from,
            baseline=baseline,
            cycle=cycle,
        )
        versions = {**in_use, agent: candidate}
        scores = evaluation.score(evaluation.play(library, workflow, versions, memo))
        verdict = evaluation.gate(scores, baseline_scores, allowed_wrong=allowed_wrong)
        judged = _judge(candidate, scores, baseline_scores, verdict, in_use)
        outcome = {"candidate": candidate.version, **judged}
        if verdict.passed and settings.promotion == settings.Promotion.AUTOMATIC:
            promote_version(version_id=candidate.pk, actor=None)
            outcome["promoted"] = True
            baseline_scores = scores  # the next candidate is judged against this
            in_use[agent] = candidate
        summary["agents"][agent] = outcome
    return summary, read[-1] if read else None


def _judge(
    candidate: PolicyVersion,
    scores: dict[str, Any],
    baseline_scores: dict[str, Any],
    verdict: evaluation.Verdict,
    in_use: dict[str, PolicyVersion | None],
) -> dict[str, Any]:
    status = PolicyVersion.Status.CANDIDATE if verdict.passed else PolicyVersion.Status.REJECTED
    record = {
        **verdict.as_dict(),
        "failures": verdict.failures,
        "baseline": baseline_scores,
        # The other agents' versions it was played with (None: none learned).
        "evaluated_with": {
            agent: getattr(version, "pk", None)
            for agent, version in in_use.items()
            if agent != candidate.agent
        },
    }
    with transaction.atomic():
        PolicyVersion.objects.filter(pk=candidate.pk).update(
            metrics=scores, evaluation=record, status=status
        )
        record_event(
            action="policy.evaluated",
            actor_label=LEARNER,
            object_type="policy",
            object_id=candidate.pk,
            after={
                "agent": candidate.agent,
                "version": candidate.version,
                "passed": verdict.passed,
                "failures": verdict.failures,
            },
        )
    return {"passed": verdict.passed, "failures": verdict.failures}


Made = tuple[bytes, dict[str, Any], list[int]] | str


def _triage(decisions: list[Decision], settings: Any) -> Made:
    """A: the classifier retrained on its base examples plus people's labels (the corrected
    ones, and the ones they confirmed by leaving them), one per ticket, the latest."""
    if not decisions:
        return "no decisions to learn from"
    active = current_version(TRIAGE)
    lineage_before = active.lineage if active else {}
    if lineage_before.get("last_decision") == decisions[-1].pk:
        return f"no new decisions since version {active.version if active else ''}"
    train, _ = dataset.split()
    base = int(lineage_before.get("base_examples", len(train)))
    latest: dict[int, Decision] = {}
    for decision in decisions:
        # Sending a draft confirms its labels (the form shows them, preselected); a
        # rejection says nothing of them unless the person corrected one.
        corrected = decision.corrected_category or decision.corrected_urgency
        if decision.outcome != DecisionOutcome.REJECTED or corrected:
            latest[decision.task.run.ticket_id] = decision
    texts = [t.text for t in train[:base]]
    categories = [t.category for t in train[:base]]
    urgencies = [t.urgency for t in train[:base]]
    for decision in latest.values():
        ticket = decision.task.run.ticket
        texts.append(TicketView.of(ticket).text)
        categories.append(decision.category)
        urgencies.append(decision.urgency)
    model = TriageModel.train(texts, categories, urgencies)
    corrected = sum(1 for d in latest.values() if d.corrected_category or d.corrected_urgency)
    lineage = {
        "dataset": dataset.dataset_fingerprint(),
        "base_examples": base,
        "decisions": len(latest),
        "corrected_labels": corrected,
        "first_decision": decisions[0].pk,
        "last_decision": decisions[-1].pk,
    }
    return model.dumps(), lineage, [d.pk for d in latest.values()]


def _drafter(decisions: list[Decision], settings: Any) -> Made:
    """C: the exemplars, from approved replies (edited ones weigh more)."""
    collect_exemplars(decisions)
    rows = Exemplar.objects.filter(retired_at__isnull=True).order_by("pk")
    chosen = exemplars.select(list(rows.values_list("pk", "category", "weight")))
    if not chosen:
        return "no approved replies yet"
    kept = list(
        rows.filter(pk__in=chosen).values_list(
            "decision_id", "draft", "reply", "decision__actor_id"
        )
    )
    house = house_style.house_edits((draft, reply, person) for _, draft, reply, person in kept)
    version = current_version(DRAFTER)
    in_use = exemplar_ids(version)
    if in_use is not None and set(chosen) == set(in_use) and set(house) == house_edits(version):
        return "the exemplars in use are already these"
    blob = json.dumps(
        {"format": EXEMPLARS_FORMAT, "exemplars": chosen, "house_edits": house}
    ).encode()
    lineage = {"exemplars": len(chosen), "decisions": len(kept), "house_edits": len(house)}
    return blob, lineage, sorted(decision for decision, *_ in kept)


def _decider(decisions: list[Decision], settings: Any) -> Made:
    """D: the estimate that a person sends a draft unchanged, retrained on the shipped
    history's cross-fitted replay plus people's decisions (the features the decider recorded
    for each draft; sent unchanged, or edited, rejected, escalated)."""
    features_by_run = dict(
        Step.objects.filter(
            run_id__in=[d.task.run_id for d in decisions], node="decide", output__isnull=False
        )
        .order_by("run_id", "sequence")
        .values_list("run_id", "output__features")
    )
    rows, labels, used = [], [], []
    for d in decisions:
        recorded = features_by_run.get(d.task.run_id)
        if not recorded:
            continue
        rows.append(recorded)
        labels.append(d.outcome == DecisionOutcome.APPROVED and not d.corrected_category)
        used.append(d.pk)
    if not rows:
        return "no decided drafts with the decider's features yet"
    base = decider_training.cross_fitted_replay()
    model = DeciderModel.train(
        [r.features for r in base] + rows, [r.unchanged for r in base] + labels
    )
    lineage = {
        "base_examples": len(base),
        "decisions": len(rows),
        "sent_unchanged": sum(labels),
    }
    return model.dumps(), lineage, used


__all__ = ["LearningError", "cycle_due", "decisions_since_last_cycle", "run_learning_cycle"]
