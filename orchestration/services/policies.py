"""Learned agent parameters: train a version, make it the active one."""

import hashlib

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from orchestration import dataset
from orchestration.agents.triage_model import TriageModel
from orchestration.models import PolicyVersion
from orchestration.services.audit import record_event

TRIAGE = "triage"


def train_triage_version(*, activate: bool = True) -> PolicyVersion:
    """Train the triage classifier on the shipped training split, score it on the held-out
    test split, and store it as the next version (active, if asked: the previous active
    version is retired in the same transaction)."""
    train, test = dataset.split()
    model = TriageModel.train(
        [t.text for t in train], [t.category for t in train], [t.urgency for t in train]
    )
    metrics = model.evaluate(
        [t.text for t in test], [t.category for t in test], [t.urgency for t in test]
    )
    blob = model.dumps()
    with transaction.atomic():
        latest = PolicyVersion.objects.filter(agent=TRIAGE).aggregate(v=Max("version"))["v"]
        version = PolicyVersion.objects.create(
            agent=TRIAGE,
            version=(latest or 0) + 1,
            artifact=blob,
            artifact_sha256=hashlib.sha256(blob).hexdigest(),
            metrics=metrics,
            lineage={
                "dataset": dataset.dataset_fingerprint(),
                "train_examples": len(train),
                "test_examples": len(test),
                "split_seed": dataset.SPLIT_SEED,
            },
        )
        record_event(
            action="policy.trained",
            object_type="policy",
            object_id=version.pk,
            after={"agent": TRIAGE, "version": version.version, "metrics": metrics},
        )
        if activate:
            activate_version(version=version)
    return version


def metrics_summary(metrics: dict[str, float]) -> str:
    return (
        f"category accuracy {metrics['category_accuracy']:.1%}, "
        f"macro-F1 {metrics['category_macro_f1']:.3f}; "
        f"urgency accuracy {metrics['urgency_accuracy']:.1%} "
        f"on {metrics['examples']:.0f} held-out tickets"
    )


def activate_version(*, version: PolicyVersion) -> None:
    """Make ``version`` its agent's only active version."""
    with transaction.atomic():
        previous = list(
            PolicyVersion.objects.select_for_update()
            .filter(agent=version.agent, status=PolicyVersion.Status.ACTIVE)
            .exclude(pk=version.pk)
            .values_list("version", flat=True)
        )
        PolicyVersion.objects.filter(
            agent=version.agent, status=PolicyVersion.Status.ACTIVE
        ).exclude(pk=version.pk).update(status=PolicyVersion.Status.RETIRED)
        PolicyVersion.objects.filter(pk=version.pk).update(
            status=PolicyVersion.Status.ACTIVE, promoted_at=timezone.now()
        )
        record_event(
            action="policy.activated",
            object_type="policy",
            object_id=version.pk,
            before={"active_versions": previous},
            after={"agent": version.agent, "version": version.version},
        )
