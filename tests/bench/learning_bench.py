"""Learning benchmark: how long Agent E takes to make its candidates from 10,000 decisions.

    make bench-learning   # or: .venv/bin/python -m tests.bench.learning_bench --decisions 10000

Needs PostgreSQL on loopback (BENCH_DATABASE_URL overrides); creates and migrates its own
database. The first time, it writes ``--decisions`` learnable decisions there: synthetic
tickets made by mixing sentences of the shipped training tickets of one category and
urgency, each through a run, a review step and an approval task to a person's decision
(a fifth of them with a corrected category, a third edited, a tenth rejected; most held
for their confidence alone, some by a rule), plus the
held-out ones the learner never reads. It then times, per round, each candidate the learner
makes in a cycle, exactly as the cycle makes it: A, the triage classifier retrained on its
base examples plus the decisions' labels (reading the decisions included); C, the exemplars
collected and chosen; D, the decider's estimate retrained. The evaluation replay that follows in a
cycle is timed apart, per scenario. Target: A within 10 s. Prints JSON and writes
var/bench-learning.json."""

import argparse
import json
import os
import random
import re
import statistics
import time
from typing import Any

# Importing the engine bench sets DATABASE_URL, REDIS_URL, SECRET_KEY and the settings module.
from tests.bench.engine_bench import ROOT, prepare_database

TARGET_SECONDS = 10.0
BENCH_EMAIL = "learning-bench@example.com"
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def synthetic_tickets(count: int, seed: int = 7) -> list[tuple[str, str, str, str]]:
    """(subject, body, category, urgency): sentences of tickets of the same labels, mixed."""
    from orchestration import dataset

    train, _ = dataset.split()
    pools: dict[tuple[str, str], list[Any]] = {}
    for t in train:
        pools.setdefault((t.category, t.urgency), []).append(t)
    labels = sorted(pools)
    rng = random.Random(seed)
    made = []
    for _ in range(count):
        category, urgency = rng.choice(labels)
        sources = rng.sample(pools[(category, urgency)], min(3, len(pools[(category, urgency)])))
        sentences = [s for t in sources for s in _SENTENCE.split(t.body) if s]
        body = " ".join(rng.sample(sentences, min(len(sentences), rng.randint(2, 5))))
        made.append((rng.choice(sources).subject, body, category, urgency))
    return made


def ensure_decisions(wanted: int) -> int:
    """At least ``wanted`` learnable decisions in the bench database; returns how many."""
    from django.contrib.auth.models import User
    from django.db import transaction

    from orchestration.engine.states import DecisionOutcome, RunStatus, StepStatus, TaskKind
    from orchestration.learning.evaluation import learnable_decisions
    from orchestration.models import Decision, HumanTask, Run, Step, Ticket
    from orchestration.models.taxonomy import URGENCY_RANK
    from orchestration.services.workflows import support_desk_version

    have = learnable_decisions().count()
    if have >= wanted:
        return have
    workflow = support_desk_version()
    person, _ = User.objects.get_or_create(username="learning-bench")
    rng = random.Random(wanted)
    categories = sorted({c for _, _, c, _ in synthetic_tickets(200)})
    # One in five tickets is held out by its id: make a quarter more than wanted.
    rows = synthetic_tickets(int((wanted - have) * 1.25) + 10, seed=have)
    with transaction.atomic():
        tickets = Ticket.objects.bulk_create(
            Ticket(subject=s[:200], body=b, customer_email=BENCH_EMAIL, customer_name="Bench")
            for s, b, _, _ in rows
        )
        runs = Run.objects.bulk_create(
            Run(workflow=workflow, ticket=t, status=RunStatus.SUCCEEDED) for t in tickets
        )
        guesses = [c if rng.random() > 0.2 else rng.choice(categories) for _, _, c, _ in rows]
        confidences = [round(rng.uniform(0.3, 1.0), 3) for _ in rows]
        # The decider's step: most drafts held for the estimate alone, some by a rule; each
        # with the features the decider recorded (the learner retrains its estimate on them).
        from orchestration.agents.decider_model import NUMERIC

        def recorded(guess: str, confidence: float) -> dict[str, float]:
            row = {name: round(rng.random(), 3) for name in NUMERIC}
            row["category_confidence"] = confidence
            return row | {f"category={c}": float(c == guess) for c in categories}

        Step.objects.bulk_create(
            Step(
                run=r,
                sequence=4,
                node="decide",
                kind="agent",
                agent="decider",
                status=StepStatus.SUCCEEDED,
                output={
                    "route": "human",
                    "reasons": [
                        "the estimate that a person sends it unchanged, 60%, is below the "
                        "send threshold of 70%"
                        if rng.random() > 0.15
                        else "policy flag: money requested"
                    ],
                    "features": recorded(guess, confidence),
                },
            )
            for r, guess, confidence in zip(runs, guesses, confidences, strict=True)
        )
        steps = Step.objects.bulk_create(
            Step(run=r, sequence=5, node="review", kind="human", status=StepStatus.SUCCEEDED)
            for r in runs
        )
        tasks = []
        for step, guess, confidence, (_, _, _, urgency) in zip(
            steps, guesses, confidences, rows, strict=True
        ):
            tasks.append(
                HumanTask(
                    run_id=step.run_id,
                    step=step,
                    kind=TaskKind.APPROVAL,
                    status="decided",
                    proposal={"draft": f"Hi Bench,\n\nAbout your {guess} question.\n\nBye"},
                    category=guess,
                    urgency=urgency,
                    urgency_rank=URGENCY_RANK[urgency],
                    confidence=confidence,
                )
            )
        tasks = HumanTask.objects.bulk_create(tasks)
        decisions = []
        for task, guess, (_, _, category, _) in zip(tasks, guesses, rows, strict=True):
            roll = rng.random()
            outcome = (
                DecisionOutcome.REJECTED
                if roll < 0.1
                else DecisionOutcome.EDITED
                if roll < 0.43 or guess != category
                else DecisionOutcome.APPROVED
            )
            final = "" if outcome == DecisionOutcome.REJECTED else task.proposal["draft"]
            if outcome == DecisionOutcome.EDITED:
                final = final.replace("Bye", "Kind regards,\nSam")
            decisions.append(
                Decision(
                    task=task,
                    actor=person,
                    outcome=outcome,
                    final_text=final,
                    reason="not for us" if outcome == DecisionOutcome.REJECTED else "",
                    corrected_category=category if guess != category else "",
                )
            )
        Decision.objects.bulk_create(decisions)
    return learnable_decisions().count()


def timed(action: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenarios", type=int, default=40, help="replayed to time a play")
    args = parser.parse_args()
    prepare_database()
    import django

    django.setup()
    from orchestration import dataset
    from orchestration.learning import evaluation
    from orchestration.models import Exemplar, PolicyVersion
    from orchestration.services.knowledge import upsert_articles
    from orchestration.services.learning import learning_settings
    from orchestration.services.learning_cycle import _decider, _drafter, _triage
    from orchestration.services.policies import train_triage_version
    from orchestration.services.workflows import support_desk_version

    upsert_articles(rows=dataset.articles())
    if not PolicyVersion.objects.filter(agent="triage", status="active").exists():
        train_triage_version()
    seconds_to_write, learnable = timed(lambda: ensure_decisions(args.decisions))
    settings = learning_settings()

    def decisions() -> list[Any]:
        rows = evaluation.learnable_decisions().select_related("task__run__ticket", "actor")
        return list(rows[: args.decisions])

    per_round: dict[str, list[float]] = {"triage": [], "drafter": [], "decider": []}
    lineage: dict[str, Any] = {}
    for _ in range(args.rounds):
        seconds, made = timed(lambda: _triage(decisions(), settings))
        per_round["triage"].append(seconds)
        lineage = made[1]
        Exemplar.objects.all().delete()  # each round collects them afresh
        per_round["drafter"].append(timed(lambda: _drafter(decisions(), settings))[0])
        per_round["decider"].append(timed(lambda: _decider(decisions(), settings))[0])
    library = evaluation.scenario_library()[: args.scenarios]
    workflow = support_desk_version()
    play_seconds, _ = timed(lambda: evaluation.play(library, workflow, {}))
    medians = {agent: round(statistics.median(v), 3) for agent, v in per_round.items()}
    report = {
        "decisions": min(learnable, args.decisions),
        "triage_training_examples": lineage.get("base_examples", 0) + lineage.get("decisions", 0),
        "seconds": medians,
        "round_seconds": {agent: [round(s, 3) for s in v] for agent, v in per_round.items()},
        "target_seconds": TARGET_SECONDS,
        "triage_within_target": medians["triage"] < TARGET_SECONDS,
        "evaluation_ms_per_scenario": round(play_seconds * 1000 / max(len(library), 1), 1),
        "seconds_to_write_decisions": round(seconds_to_write, 1),
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(report, indent=2))
    (ROOT / "var").mkdir(exist_ok=True)
    (ROOT / "var" / "bench-learning.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
