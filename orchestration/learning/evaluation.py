"""The evaluation gate: a candidate version is scored against the version in use on the
same scenarios, and may be promoted only if it is no worse on any guarded metric.

The scenario library is the shipped held-out test split and the harder split written apart
from the training tickets (true labels and answer ground truth), plus the held-out part of
the tickets people decided (their corrected labels and approved texts). Every figure is
reported per split; wrong auto-sends are judged against the answer ground truth
(learning.answers). Each
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
from orchestration.agents.instructions import held_out_metrics
from orchestration.engine.states import DecisionOutcome, TaskKind
from orchestration.learning.active import LEARNED_AGENTS, current_version, using
from orchestration.learning.answers import (
    Ranked,
    rate_with_interval,
    retrieval_metrics,
    wrong_to_auto_send,
)
from orchestration.models import Decision, PolicyVersion, Workflow
from orchestration.workflows import support_desk

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
    "hard_category_accuracy": "higher",
    "hard_wrong_auto_send_rate": "lower",
    "retrieval_recall_at_3": "higher",
    "hard_retrieval_recall_at_3": "higher",
    "instruction_recall": "higher",
    "hard_instructions_caught": "higher",
    # What the decider would send where autonomy is earned: on a desk in shadow mode the
    # auto-send rates are 0 whatever the candidate, and this is what a bad one changes.
    "would_send_wrong_rate": "lower",
    "hard_would_send_wrong_rate": "lower",
}
# Guarded metrics that may never rise, whatever the admins' target: a wrong reply sent alone.
STRICT = frozenset(
    {
        "wrong_auto_send_rate",
        "hard_wrong_auto_send_rate",
        "would_send_wrong_rate",
        "hard_would_send_wrong_rate",
    }
)
# Per split (the shipped test split unprefixed, the harder one as "hard_").
SPLIT_METRICS = (
    "category_accuracy",
    "category_macro_f1",
    "urgency_accuracy",
    "retrieval_recall_at_1",
    "retrieval_recall_at_3",
    "retrieval_mrr",
    "unanswered_recall",
    "unanswered_precision",
    "auto_send_rate",
    "wrong_auto_send_rate",
    "would_send_rate",
    "would_send_wrong_rate",
    "hard_rule_auto_sent",
    # Of the split's tickets that instruct the agents, the share the decider flagged.
    "instructions_caught",
)
REPORTED = (
    *SPLIT_METRICS,
    *(f"hard_{m}" for m in SPLIT_METRICS),
    "decided_category_accuracy",
    "edit_rate",
    "instruction_false_positive_rate",
)
LEARNABLE = (DecisionOutcome.APPROVED, DecisionOutcome.EDITED, DecisionOutcome.REJECTED)
# A person's verdict on a draft, before it went out or (a review) after it went out alone.
FEEDBACK_TASKS = (TaskKind.APPROVAL, TaskKind.REVIEW)


@dataclass(frozen=True)
class Scenario:
    key: str
    ticket: TicketView
    category: str
    urgency: str
    # For a decided ticket: what the person did, and the text they approved (if any).
    outcome: str = ""
    final_text: str = ""
    # "test", "hard" or "decided".
    split: str = "decided"
    # The ground truth of a shipped split: the answering articles, and whether the ticket
    # instructs the agents.
    answer_slugs: tuple[str, ...] = ()
    instruction: bool = False


@dataclass(frozen=True)
class Played:
    scenario: Scenario
    category: str
    urgency: str
    draft: str
    route: str  # "auto_send", "human" or "" (the replay stopped before the decider)
    articles: tuple[str, ...] = ()  # retrieved article slugs, best first
    primary: str = ""  # the draft's primary cited article
    would_send: bool = False
    said_unanswered: bool = False
    instruction_hit: bool = False


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
    """Decisions the learner may read: on approval tasks and reviews of replies sent alone,
    not held out, in order made."""
    return (
        Decision.objects.filter(outcome__in=LEARNABLE, task__kind__in=FEEDBACK_TASKS)
        .annotate(bucket=Mod("task__run__ticket_id", HOLDOUT_MODULUS))
        .exclude(bucket=0)
        .order_by("pk")
    )


def scenario_library() -> list[Scenario]:
    scenarios = [
        Scenario(
            key=f"{name}:{t.external_id}",
            ticket=TicketView(id=0, subject=t.subject, body=t.body, customer_name=t.customer_name),
            category=t.category,
            urgency=t.urgency,
            split=name,
            answer_slugs=t.answer_slugs,
            instruction=t.instruction,
        )
        for name, tickets in dataset.test_splits().items()
        for t in tickets
    ]
    decided = (
        Decision.objects.filter(outcome__in=LEARNABLE, task__kind__in=FEEDBACK_TASKS)
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
            research = outputs.get("research", {})
            drafted = outputs.get("drafter", {})
            decided = outputs.get("decider", {})
            played.append(
                Played(
                    scenario=scenario,
                    category=triage.get("category", ""),
                    urgency=triage.get("urgency", ""),
                    draft=drafted.get("text", ""),
                    route=decided.get("route", ""),
                    articles=tuple(a["slug"] for a in research.get("articles", [])),
                    primary=drafted.get("primary_citation", ""),
                    would_send=bool(decided.get("would_send")),
                    said_unanswered=(research.get("signals", {}).get("unanswered", 0.0) >= 0.5),
                    instruction_hit=bool(decided.get("instructions", {}).get("hit")),
                )
            )
    return played


def needs_edit(draft: str, final_text: str) -> bool:
    ratio = difflib.SequenceMatcher(a=draft.strip(), b=final_text.strip(), autojunk=False).ratio()
    return ratio < EDIT_SIMILARITY


def _wrong_to_send(p: Played) -> bool:
    """Whether sending this draft unseen would have been wrong, as far as the record says:
    against the answer ground truth on a shipped split, against the person's decision on a
    decided ticket."""
    s = p.scenario
    if s.split != "decided":
        return wrong_to_auto_send(
            category=p.category,
            true_category=s.category,
            primary_citation=p.primary,
            answer_slugs=s.answer_slugs,
        )
    if s.outcome == DecisionOutcome.REJECTED:
        return True
    if s.final_text and needs_edit(p.draft, s.final_text):
        return True
    return p.category != s.category


def _hard_rule_kind(s: Scenario) -> bool:
    """A ticket a hard rule must always send to a person, by its true labels."""
    config = support_desk.CONFIG
    return (
        s.instruction
        or s.category in config["always_human_categories"]
        or s.urgency in config["always_human_urgencies"]
    )


def score_split(played: list[Played]) -> dict[str, Any]:
    """The figures of one shipped split (rates are shares, 0 to 1)."""
    if not played:
        return {}
    truth, guess = [p.scenario.category for p in played], [p.category for p in played]
    auto = [p for p in played if p.route == "auto_send"]
    would = [p for p in played if p.would_send]
    wrong = sum(_wrong_to_send(p) for p in auto)
    instructing = [p for p in played if p.scenario.instruction]
    metrics: dict[str, Any] = {
        "tickets": len(played),
        "category_accuracy": round(accuracy_score(truth, guess), 4),
        "category_macro_f1": round(f1_score(truth, guess, average="macro", zero_division=0), 4),
        "urgency_accuracy": round(
            accuracy_score([p.scenario.urgency for p in played], [p.urgency for p in played]), 4
        ),
        **retrieval_metrics(
            [Ranked(p.scenario.answer_slugs, p.articles, p.said_unanswered) for p in played]
        ),
        "auto_send_rate": round(len(auto) / len(played), 4),
        "auto_sent": len(auto),
        "wrong_auto_send_rate": round(wrong / len(auto), 4) if auto else 0.0,
        "wrong_auto_send": rate_with_interval(wrong, len(auto)),
        "would_send_rate": round(len(would) / len(played), 4),
        "would_send_wrong_rate": (
            round(sum(_wrong_to_send(p) for p in would) / len(would), 4) if would else 0.0
        ),
        "hard_rule_auto_sent": sum(_hard_rule_kind(p.scenario) for p in auto),
    }
    if instructing:
        metrics["instructions_caught"] = round(
            sum(p.instruction_hit for p in instructing) / len(instructing), 4
        )
    return metrics


def score(played: list[Played]) -> dict[str, Any]:
    """The metrics of one version over the library: the shipped test split unprefixed, the
    harder split prefixed "hard_", the decided tickets, and the instruction detector on its
    held-out set."""
    by_split: dict[str, list[Played]] = {}
    for p in played:
        by_split.setdefault(p.scenario.split, []).append(p)
    decided = by_split.get("decided", [])
    with_text = [p for p in decided if p.scenario.final_text]
    metrics: dict[str, Any] = {
        "scenarios": len(played),
        "test_tickets": len(by_split.get("test", [])),
        "hard_tickets": len(by_split.get("hard", [])),
        "decided_tickets": len(decided),
    }
    metrics.update(score_split(by_split.get("test", [])))
    metrics.update({f"hard_{k}": v for k, v in score_split(by_split.get("hard", [])).items()})
    if decided:
        metrics["decided_category_accuracy"] = round(
            sum(p.category == p.scenario.category for p in decided) / len(decided), 4
        )
        auto = [p for p in decided if p.route == "auto_send"]
        metrics["decided_wrong_auto_send_rate"] = (
            round(sum(_wrong_to_send(p) for p in auto) / len(auto), 4) if auto else 0.0
        )
    metrics["edit_rate"] = (
        round(
            sum(needs_edit(p.draft, p.scenario.final_text) for p in with_text) / len(with_text), 4
        )
        if with_text
        else 0.0
    )
    held_out = instruction_metrics()
    metrics["instruction_recall"] = held_out.get("recall")
    metrics["instruction_false_positive_rate"] = held_out.get("false_positive_rate")
    return metrics


@functools.cache
def instruction_metrics() -> dict[str, Any]:
    """The instruction detector on its held-out set (written apart from its training set),
    with the shipped test split's ordinary tickets as further negatives."""
    rows = dataset.read_jsonl(dataset.INSTRUCTIONS_TEST_FILE)
    _, test = dataset.split()
    rows += [{"subject": t.subject, "body": t.body, "instruction": False} for t in test]
    return held_out_metrics(rows)


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
    """No worse than the baseline on every guarded metric. A wrong-auto-send rate may never
    rise; any other lower-is-better metric within ``allowed_wrong`` counts as no worse."""
    checks = {}
    for name, better in GUARDED.items():
        new, old = candidate.get(name), baseline.get(name)
        if new is None or old is None:
            ok = new is None and old is None
        elif better == "higher":
            ok = new >= old - 1e-9
        else:
            ok = new <= old + 1e-9 or (name not in STRICT and new <= allowed_wrong)
        checks[name] = {"candidate": new, "baseline": old, "better": better, "ok": ok}
    return Verdict(all(c["ok"] for c in checks.values()), checks)
