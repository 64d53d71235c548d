"""The first versions of the learned agents, trained on the shipped data, and the demo's
decision history."""

from typing import Any

from orchestration import dataset
from orchestration.agents.decider_model import DeciderModel
from orchestration.agents.triage_model import TriageModel
from orchestration.engine.autonomy import AutonomyPolicy
from orchestration.learning import decider_training
from orchestration.learning.active import DECIDER, TRIAGE
from orchestration.models import PolicyVersion
from orchestration.services.autonomy import seed_history
from orchestration.services.learning import store_version
from orchestration.services.workflows import support_desk_version


def train_triage_version(*, activate: bool = True, examples: int | None = None) -> PolicyVersion:
    """Train the triage classifier on the shipped training split (or its first ``examples``
    tickets), score it on the held-out test split, and store it as the next version, active
    if asked (the previous active version is retired in the same transaction). The learner
    retrains later versions on the same base examples plus people's decisions."""
    train, test = dataset.split()
    base = train[: examples if examples is not None else len(train)]
    model = TriageModel.train(
        [t.text for t in base], [t.category for t in base], [t.urgency for t in base]
    )
    metrics = model.evaluate(
        [t.text for t in test], [t.category for t in test], [t.urgency for t in test]
    )
    return store_version(
        agent=TRIAGE,
        blob=model.dumps(),
        metrics=metrics,
        lineage={
            "dataset": dataset.dataset_fingerprint(),
            "base_examples": len(base),
            "train_examples": len(base),
            "test_examples": len(test),
            "split_seed": dataset.SPLIT_SEED,
        },
        status=PolicyVersion.Status.ACTIVE if activate else PolicyVersion.Status.CANDIDATE,
    )


def metrics_summary(metrics: dict[str, float]) -> str:
    return (
        f"category accuracy {metrics['category_accuracy']:.1%}, "
        f"macro-F1 {metrics['category_macro_f1']:.3f}; "
        f"urgency accuracy {metrics['urgency_accuracy']:.1%} "
        f"on {metrics['examples']:.0f} held-out tickets"
    )


def train_decider_version(*, activate: bool = True) -> PolicyVersion:
    """Train the decider's starting estimate on the shipped training split's cross-fitted
    replay (learning.decider_training) and store it as the next decider version."""
    rows = decider_training.cross_fitted_replay()
    model = DeciderModel.train([r.features for r in rows], [r.unchanged for r in rows])
    metrics = decider_training.replay_metrics(rows)
    return store_version(
        agent=DECIDER,
        blob=model.dumps(),
        metrics=metrics,
        lineage={
            "dataset": dataset.dataset_fingerprint(),
            "base_examples": len(rows),
            "folds": decider_training.FOLDS,
            "split_seed": dataset.SPLIT_SEED,
        },
        status=PolicyVersion.Status.ACTIVE if activate else PolicyVersion.Status.CANDIDATE,
    )


def seed_demo_history() -> list[Any]:
    """The demo's decision history: the shipped resolved tickets' cross-fitted replay, with
    their real resolutions standing in for the operators, as autonomy evidence. Only the
    decider's would-send recommendations count (no hard rule applied, estimate at or above
    the send threshold); a ticket is right when its category and primary article were."""
    workflow = support_desk_version()
    policy = AutonomyPolicy.from_config(workflow.config)
    outcomes = [
        (r.category, r.unchanged, r.score, r.ticket.external_id)
        for r in decider_training.cross_fitted_replay()
        if r.score >= policy.send_threshold
        and not decider_training.hard_rule_applies(r, workflow.config)
    ]
    return seed_history(outcomes=outcomes, policy=policy)
