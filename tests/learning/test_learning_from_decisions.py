"""Agent E learning from people's decisions, end to end: a weak classifier gets better from
corrections, the drafts need fewer edits, and a poisoned burst of feedback is refused."""

import pytest
from django.contrib.auth.models import Group, User

from orchestration.learning.evaluation import GUARDED
from orchestration.models import AuditEvent, Decision, Exemplar, LearningCycle, PolicyVersion
from orchestration.services.audit import verify_chain
from orchestration.services.learning import learning_settings
from orchestration.services.learning_cycle import run_learning_cycle
from tests.learning import simulation

pytestmark = pytest.mark.django_db


def operator(name: str) -> User:
    user = User.objects.create_user(username=name, password=f"{name}-password")
    user.groups.add(Group.objects.get_or_create(name="operator")[0])
    return user


def automatic_promotion():
    settings = learning_settings()
    settings.promotion = settings.Promotion.AUTOMATIC
    settings.min_evidence = 20
    settings.save()


def test_corrections_make_a_weak_classifier_better_and_drafts_need_fewer_edits(
    django_capture_on_commit_callbacks,
):
    weak = simulation.desk(weak_examples=30)
    automatic_promotion()
    desk = [operator("sam"), operator("kim")]
    tally = simulation.feed(simulation.tickets(300), desk, django_capture_on_commit_callbacks)
    assert tally.decided >= 250 and tally.corrected >= 30, tally

    cycle = run_learning_cycle(trigger="command")

    assert cycle.status == LearningCycle.Status.FINISHED
    before = cycle.summary["baseline"]
    triage = PolicyVersion.objects.get(agent="triage", status="active")
    assert triage.pk != weak.pk and triage.promoted_by is None, cycle.summary  # by the learner
    drafter = PolicyVersion.objects.get(agent="drafter", status="active")
    after = drafter.metrics  # judged after the new classifier was switched on
    # On the held-out test split the classifier is right far more often...
    assert after["category_accuracy"] >= before["category_accuracy"] + 0.10, (before, after)
    # ...and people would need to edit fewer drafts.
    assert after["edit_rate"] < before["edit_rate"], (before, after)
    # Each version learned from the decisions, which are listed with it.
    assert triage.learned_from.count() >= 200
    assert triage.lineage["corrected_labels"] > 0 and triage.lineage["base_examples"] == 30
    assert not triage.learned_from.filter(task__run__ticket_id__in=_held_out()).exists()
    assert Exemplar.objects.filter(weight=2.0).exists()  # edited replies weigh more
    # No promoted version is worse than the one before it on a guarded metric, compared
    # here from the two versions' scores, with no allowance.
    promoted = PolicyVersion.objects.exclude(promoted_at=None).exclude(pk=weak.pk)
    assert {v.agent for v in promoted} == {"triage", "drafter", "decider"}
    for version in promoted:
        ours, theirs = version.metrics, version.evaluation["baseline"]
        for name, better in GUARDED.items():
            worse = ours[name] < theirs[name] if better == "higher" else ours[name] > theirs[name]
            assert not worse, (version, name, ours[name], theirs[name])
    # The house style the drafter learned came from both people, and carries nothing of
    # one customer's: every learned edit is one both of them made.
    assert drafter.lineage["house_edits"] >= 2
    by_learner = AuditEvent.objects.filter(action="policy.promoted", actor_label="agent:learner")
    assert by_learner.count() == promoted.count()
    assert verify_chain().intact


def _held_out():
    return [
        d.task.run.ticket_id
        for d in Decision.objects.select_related("task__run")
        if d.task.run.ticket_id % 5 == 0
    ]


def test_a_burst_of_wrong_corrections_from_one_operator_is_not_promoted(
    django_capture_on_commit_callbacks,
):
    good = simulation.desk()
    automatic_promotion()
    mallory = operator("mallory")
    # Every ticket she decides, whatever it is about, she files as a feature request.
    simulation.feed(
        simulation.tickets(120),
        mallory,
        django_capture_on_commit_callbacks,
        label_for=lambda known: "feature_request",
    )

    cycle = run_learning_cycle(trigger="command")

    outcome = cycle.summary["agents"]["triage"]
    assert outcome["passed"] is False and "category_accuracy" in outcome["failures"]
    # Nor does she, alone, teach the drafter a house style.
    drafter = cycle.summary["agents"]["drafter"]
    made = PolicyVersion.objects.get(agent="drafter", version=drafter["candidate"])
    assert made.lineage["exemplars"] > 0 and made.lineage["house_edits"] == 0
    candidate = PolicyVersion.objects.get(agent="triage", version=outcome["candidate"])
    assert candidate.status == PolicyVersion.Status.REJECTED
    checks = candidate.evaluation["checks"]["category_accuracy"]
    assert checks["candidate"] < checks["baseline"]
    assert PolicyVersion.objects.get(agent="triage", status="active").pk == good.pk
    assert AuditEvent.objects.filter(
        action="policy.evaluated", object_id=str(candidate.pk), after__passed=False
    ).exists()
