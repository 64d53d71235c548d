"""The evaluation gate: a candidate version is scored against the version in use on the
same scenarios, and may be promoted only if it is no worse on any guarded metric.

The scenario library is the shipped held-out test split (true labels) plus the held-out
part of the tickets people decided (their corrected labels and approved texts). Each
scenario is replayed through the workflow as a dry run (services.replay): nothing is
written and no tool acts. One in five decided tickets, chosen by ticket id, is held out
for evaluation and never learned from."""

import difflib
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.db.models.functions import Mod
from sklearn.metrics import accuracy_score, f1_score

from orchestration import dataset
from orchestration.agents.base import TicketView
from orchestration.engine.states import DecisionOutcome
from orchestration.learning.active import LEARNED_AGENTS, current_version, using
from orchestration.models import Decision, PolicyVersion, Workflow

if TYPE_CHECKING:
    from orchestration.services.replay import AgentMemo

# A draft this similar to the text a person approved would not have needed an edit.
EDIT_SIMILARITY = 0.9
# Decided tickets whose id is a multiple of this are held out for evaluation.
HOLDOUT_MODULUS = 5
# The newest held-out decisions in the library.
MAX_DECISION_SCENARIOS = 300
# Metric -> which way is better. A candidate worse than its baseline on any is rejected.
GUARDED = {
    "category_accuracy": "higher",
    "category_macro_f1": "higher",
    # The labels people gave the held-out decided tickets: the desk's own traffic.
    "decided_category_accuracy": "higher",
    "edit_rate": "lower",
    "wrong_auto_send_rate": "lower",
}
REPORTED = (
    "category_accuracy",
    "category_macro_f1",
    "urgency_accuracy",
    "decided_category_accuracy",
    "edit_rate",
    "auto_send_rate",
    "wrong_auto_send_rate",
)
LEARNABLE = (DecisionOutcome.APPROVED, DecisionOutcome.EDITED, DecisionOutcome.REJECTED)


@dataclass(frozen=True)
class Scenario:
    key: str
    ticket: TicketView
    category: str
    urgency: str
    # For a decided ticket: what the person did, and the text they approved (if any).
    outcome: str = ""
    final_text: str = ""


@dataclass(frozen=True)
class Played:
    scenario: Scenario
    category: str
    urgency: str
    draft: str
    route: str  # "auto_send", "human" or "" (the replay stopped before the decider)


def in_test_split(ticket: Any) -> bool:
    """Whether a ticket is one of the shipped test split's (same subject and body)."""
    return (ticket.subject.strip(), ticket.body.strip()) in _test_texts()


@functools.cache
def _test_texts() -> frozenset[tuple[str, str]]:
    _, test = dataset.split()
    return frozenset((t.subject.strip(), t.body.strip()) for t in test)


def is_held_out(ticket_id: int) -> bool:
    return ticket_id % HOLDOUT_MODULUS == 0


def learnable_decisions() -> QuerySet[Decision]:
    """Decisions the learner may read: on approval tasks, not held out, in order made."""
    return (
        Decision.objects.filter(outcome__in=LEARNABLE, task__kind="approval")
        .annotate(bucket=Mod("task__run__ticket_id", HOLDOUT_MODULUS))
        .exclude(bucket=0)
        .order_by("pk")
    )


def scenario_library() -> list[Scenario]:
    _, test = dataset.split()
    scenarios = [
        Scenario(
            key=f"test:{t.external_id}",
            ticket=TicketView(id=0, subject=t.subject, body=t.body, customer_name=t.customer_name),
            category=t.category,
            urgency=t.urgency,
        )
        for t in test
    ]
    decided = (
        Decision.objects.filter(outcome__in=LEARNABLE, task__kind="approval")
        .select_related("task__run__ticket")
        .order_by("-pk")
    )
    seen: set[int] = set()
    for decision in decided.iterator():
        ticket = decision.task.run.ticket
        if not is_held_out(ticket.pk) or ticket.pk in seen:
            continue
        seen.add(ticket.pk)
        scenarios.append(
            Scenario(
                key=f"decision:{decision.pk}",
                ticket=TicketView.of(ticket),
                category=decision.category,
                urgency=decision.urgency,
                outcome=decision.outcome,
                final_text=decision.final_text,
            )
        )
        if len(seen) >= MAX_DECISION_SCENARIOS:
            break
    return scenarios


def play(
    scenarios: Iterable[Scenario],
    workflow: Workflow,
    versions: Mapping[str, PolicyVersion | None],
    memo: "AgentMemo | None" = None,
) -> list[Played]:
    """Each scenario replayed through ``workflow`` with ``versions`` in place. Plays that
    share a ``memo`` run an agent again only where its version or its input differs."""
    from orchestration.services.replay import replay_ticket

    played = []
    with using(versions):
        if memo is not None:
            memo.versions = {a: getattr(current_version(a), "pk", None) for a in LEARNED_AGENTS}
        for scenario in scenarios:
            steps, _ = replay_ticket(ticket=scenario.ticket, workflow=workflow, memo=memo)
            outputs = {s.agent: s.replayed or {} for s in steps if s.agent}
            triage = outputs.get("triage", {})
            played.append(
                Played(
                    scenario=scenario,
                    category=triage.get("category", ""),
                    urgency=triage.get("urgency", ""),
                    draft=outputs.get("drafter", {}).get("text", ""),
                    route=outputs.get("decider", {}).get("route", ""),
                )
            )
    return played


def needs_edit(draft: str, final_text: str) -> bool:
    ratio = difflib.SequenceMatcher(a=draft.strip(), b=final_text.strip(), autojunk=False).ratio()
    return ratio < EDIT_SIMILARITY


def _wrong_to_send(p: Played) -> bool:
    """Whether sending this draft unseen would have been wrong, as far as the record says."""
    s = p.scenario
    if s.outcome == DecisionOutcome.REJECTED:
        return True
    if s.final_text and needs_edit(p.draft, s.final_text):
        return True
    return p.category != s.category


def score(played: list[Played]) -> dict[str, Any]:
    """The metrics of one version over the library (rates are shares, 0 to 1)."""
    test = [p for p in played if not p.scenario.outcome]
    decided = [p for p in played if p.scenario.outcome]
    with_text = [p for p in decided if p.scenario.final_text]
    auto = [p for p in played if p.route == "auto_send"]
    metrics: dict[str, Any] = {
        "scenarios": len(played),
        "test_tickets": len(test),
        "decided_tickets": len(decided),
    }
    if test:
        truth, guess = [p.scenario.category for p in test], [p.category for p in test]
        metrics["category_accuracy"] = round(accuracy_score(truth, guess), 4)
        metrics["category_macro_f1"] = round(
            f1_score(truth, guess, average="macro", zero_division=0), 4
        )
        metrics["urgency_accuracy"] = round(
            accuracy_score([p.scenario.urgency for p in test], [p.urgency for p in test]), 4
        )
    if decided:
        metrics["decided_category_accuracy"] = round(
            sum(p.category == p.scenario.category for p in decided) / len(decided), 4
        )
    metrics["edit_rate"] = (
        round(
            sum(needs_edit(p.draft, p.scenario.final_text) for p in with_text) / len(with_text), 4
        )
        if with_text
        else 0.0
    )
    metrics["auto_send_rate"] = round(len(auto) / len(played), 4) if played else 0.0
    metrics["wrong_auto_send_rate"] = (
        round(sum(_wrong_to_send(p) for p in auto) / len(auto), 4) if auto else 0.0
    )
    return metrics


@dataclass(frozen=True)
class Verdict:
    passed: bool
    # Per guarded metric: candidate, baseline, and whether the candidate is no worse.
    checks: dict[str, dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": self.checks}

    @property
    def failures(self) -> list[str]:
        return [name for name, check in self.checks.items() if not check["ok"]]


def gate(
    candidate: Mapping[str, Any], baseline: Mapping[str, Any], *, allowed_wrong: float
) -> Verdict:
    """No worse than the baseline on every guarded metric. A wrong-auto-send rate within
    ``allowed_wrong`` (1 - the admins' target precision) counts as no worse."""
    checks = {}
    for name, better in GUARDED.items():
        new, old = candidate.get(name), baseline.get(name)
        if new is None or old is None:
            ok = new is None and old is None
        elif better == "higher":
            ok = new >= old - 1e-9
        else:
            ok = new <= old + 1e-9 or (name == "wrong_auto_send_rate" and new <= allowed_wrong)
        checks[name] = {"candidate": new, "baseline": old, "better": better, "ok": ok}
    return Verdict(all(c["ok"] for c in checks.values()), checks)
