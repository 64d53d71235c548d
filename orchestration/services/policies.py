"""The triage classifier's first versions, trained on the shipped data."""

from orchestration import dataset
from orchestration.agents.triage_model import TriageModel
from orchestration.learning.active import TRIAGE
from orchestration.models import PolicyVersion
from orchestration.services.learning import store_version


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
