"""The learner's parts one by one: exemplars the drafter follows and admins retire, the
shadow view of a candidate, promotion and rollback, the learner's settings, and
`manage.py evaluate`."""

import hashlib
import io
import json

import pytest
from django.core.management import call_command

from orchestration import dataset
from orchestration.engine.states import TaskStatus
from orchestration.learning.active import EXEMPLARS_FORMAT, THRESHOLDS_FORMAT
from orchestration.learning.house_style import edits_of, house_edits, in_house_style
from orchestration.learning.shadow import shadow
from orchestration.models import (
    AuditEvent,
    Exemplar,
    HumanTask,
    LearningCycle,
    LearningSettings,
    PolicyVersion,
)
from orchestration.providers.local import stock_reply
from orchestration.services.audit import verify_chain
from orchestration.services.decisions import decide_task
from orchestration.services.learning import (
    LearningError,
    collect_exemplars,
    learning_settings,
    promote_version,
    reactivate,
    request_learning_cycle,
    retire_exemplar,
    roll_back,
    store_version,
    update_learning_settings,
)
from tests.learning.simulation import HOUSE_CLOSING, HOUSE_OPENING, house_reply

pytestmark = pytest.mark.django_db

INVOICES = [
    {
        "slug": "invoice-logo",
        "title": "Add your logo to invoices",
        "summary": "Upload a logo under Settings > Branding.",
        "body": "1. Open Settings\n2. Choose Branding\n3. Upload the logo",
    }
]
EXPORTS = [
    {
        "slug": "export-csv",
        "title": "Export your data",
        "summary": "Any report can be exported as CSV.",
        "body": "1. Open the report\n2. Click Export",
    }
]


def thresholds_version(thresholds: dict, status=PolicyVersion.Status.ACTIVE) -> PolicyVersion:
    blob = json.dumps({"format": THRESHOLDS_FORMAT, "thresholds": thresholds}).encode()
    return store_version(agent="decider", blob=blob, metrics={}, lineage={}, status=status)


def ask_a_person_always() -> PolicyVersion:
    """A decider version with no threshold for any category: every draft goes to a person."""
    return thresholds_version({})


def open_task(run) -> HumanTask:
    return HumanTask.objects.get(run=run, status=TaskStatus.OPEN)


def reply_to(subject, name, articles=INVOICES):
    passages = [
        {"ref": f"{a['slug']}#0", "slug": a["slug"], "title": a["title"], "text": a["body"]}
        for a in articles
    ]
    return stock_reply({"greeting_name": name, "category": "how_to", "passages": passages})


def decider_model_version(blob: bytes, status=PolicyVersion.Status.CANDIDATE) -> PolicyVersion:
    """A decider version holding a real estimate (the starting model's)."""
    return store_version(agent="decider", blob=blob, metrics={}, lineage={}, status=status)


def test_the_edits_people_make_again_and_again_carry_over_and_one_customers_details_do_not():
    mia = reply_to("Logo?", "Mia")
    personal = "I have also refunded 30 EUR to your card ending 4242, Mia."
    approved = house_reply(mia, "how_to").replace("Settings > Branding", "Settings > Brand")
    approved = approved.replace(HOUSE_OPENING, f"{HOUSE_OPENING}\n{personal}")
    others = [reply_to(f"Logo {n}", name) for n, name in enumerate(["Ann", "Ben", "Cem"])]
    sam, kim = 1, 2
    replies = [(mia, approved, sam)] + [
        (draft, house_reply(draft, "how_to"), person)
        for draft, person in zip(others, [sam, kim, kim], strict=True)
    ]
    house = house_edits(replies)
    ours = reply_to("CSV export", "Omar", EXPORTS)

    carried = in_house_style(house, ours)

    assert carried.startswith("Hi Omar,")
    assert HOUSE_OPENING in carried and carried.endswith(HOUSE_CLOSING)
    assert "2. Click Export" in carried and "[export-csv#0]" in carried
    # Mia's refund, her name and the fix to her article stay with her ticket.
    assert "4242" not in carried and "Mia" not in carried and "Brand" not in carried
    assert carried == house_reply(ours, "how_to")
    # One person alone, however often, does not make the house style.
    assert not house_edits([(d, house_reply(d, "how_to"), sam) for d in others])
    assert in_house_style((), ours) == ours


def test_the_drafter_writes_in_its_versions_house_style_and_offers_exemplars_till_retired(
    run_ticket, alice, bob
):
    ask_a_person_always()
    first = run_ticket()
    task = open_task(first)
    draft = task.proposal["draft"]
    decision = decide_task(
        task_id=task.pk, actor=alice, action="edit", final_text=house_reply(draft, "how_to")
    )
    collect_exemplars([decision])
    exemplar = Exemplar.objects.get(decision=decision)
    assert exemplar.weight == 2.0 and exemplar.draft == draft  # edited: weighs more
    # The version's house style: this person's edits (a learned one needs them to recur).
    house = [e.signature for e in edits_of(draft, decision.final_text)]
    blob = json.dumps(
        {"format": EXEMPLARS_FORMAT, "exemplars": [exemplar.pk], "house_edits": house}
    ).encode()
    store_version(
        agent="drafter", blob=blob, metrics={}, lineage={}, status=PolicyVersion.Status.ACTIVE
    )

    second = run_ticket(
        subject="Can I put our logo on the invoices?",
        body="Where do I upload the company logo so that invoices show it?",
        customer_name="Omar Haddad",
        customer_email="omar@example.com",
    )
    followed = open_task(second).proposal["draft"]
    assert followed.startswith("Hi Omar,") and HOUSE_OPENING in followed
    assert followed.endswith(HOUSE_CLOSING) and "Mia" not in followed
    drafted = second.steps.get(node="draft").output
    assert drafted["exemplar"]["id"] == exemplar.pk

    with pytest.raises(LearningError, match="why"):
        retire_exemplar(exemplar_id=exemplar.pk, actor=bob, reason="  ")
    retire_exemplar(exemplar_id=exemplar.pk, actor=bob, reason="outdated sign-off")
    third = run_ticket(customer_name="Lena Vogel", customer_email="lena@example.com")
    # No longer an example; the house style stays with the version until the next one.
    assert "exemplar" not in third.steps.get(node="draft").output
    assert HOUSE_OPENING in open_task(third).proposal["draft"]
    retired = AuditEvent.objects.get(action="exemplar.retired", object_id=str(exemplar.pk))
    assert retired.actor == bob and retired.after["reason"] == "outdated sign-off"
    with pytest.raises(LearningError, match="already retired"):
        retire_exemplar(exemplar_id=exemplar.pk, actor=bob, reason="again")


def test_the_shadow_view_lists_the_past_decisions_a_candidate_would_route_otherwise(
    autonomous, run_ticket, alice, decider_artifact
):
    ask_a_person_always()
    approved = run_ticket()
    decide_task(task_id=open_task(approved).pk, actor=alice, action="approve")
    edited = run_ticket(customer_name="Omar Haddad", customer_email="omar@example.com")
    task = open_task(edited)
    decide_task(task_id=task.pk, actor=alice, action="edit", final_text="Hi Omar, see [x].")
    refund = run_ticket(subject="Refund please", body="Please refund the 30 EUR you charged.")

    # A decider with an estimate, where every category but the hard rules' earned autonomy
    # and every estimate is enough (the autonomous desk): it would send the drafts alone.
    candidate = decider_model_version(decider_artifact)
    view = shadow(candidate)

    assert view.considered == 3
    flipped = {row.run_id: row for row in view.flipped}
    assert set(flipped) == {approved.pk, edited.pk}  # the refund request still asks a person
    assert refund.pk not in flipped
    assert all(r.route_then == "human" and r.route_now == "auto_send" for r in view.flipped)
    assert flipped[approved.pk].person_outcome == "approved"
    assert flipped[edited.pk].person_outcome == "edited"
    # One of the drafts it would have sent alone was one a person had to change.
    assert view.auto_sends_a_person_changed == 1
    assert not shadow(thresholds_version({}, status="candidate")).flipped, "no estimate"
    drafter = store_version(agent="drafter", blob=b"{}", metrics={}, lineage={})
    assert shadow(drafter).not_applicable


def test_only_a_candidate_that_passed_against_the_version_in_use_is_promoted_and_any_rolls_back(
    support_desk, triage_artifact, bob
):
    first = PolicyVersion.objects.get(agent="triage", status="active")

    def candidate(evaluation, baseline=first):
        return PolicyVersion.objects.create(
            agent="triage",
            version=PolicyVersion.objects.filter(agent="triage").count() + 1,
            artifact=triage_artifact,
            artifact_sha256=hashlib.sha256(triage_artifact).hexdigest(),
            baseline=baseline,
            evaluation=evaluation,
        )

    failed = candidate({"passed": False, "failures": ["category_accuracy"]})
    with pytest.raises(LearningError, match="category_accuracy"):
        promote_version(version_id=failed.pk, actor=bob)
    passed = candidate({"passed": True, "failures": []})
    stale = candidate({"passed": True, "failures": []})

    promote_version(version_id=passed.pk, actor=bob)

    first.refresh_from_db()
    passed.refresh_from_db()
    assert (first.status, passed.status, passed.promoted_by) == ("retired", "active", bob)
    with pytest.raises(LearningError, match="another version"):
        promote_version(version_id=stale.pk, actor=bob)  # judged against the old one

    assert roll_back(version_id=passed.pk, actor=bob).pk == first.pk
    assert PolicyVersion.objects.get(agent="triage", status="active").pk == first.pk
    with pytest.raises(LearningError, match="not active"):
        roll_back(version_id=passed.pk, actor=bob)  # the admin saw an older page
    reactivate(version_id=passed.pk, actor=bob)
    assert PolicyVersion.objects.get(agent="triage", status="active").pk == passed.pk
    with pytest.raises(LearningError, match="never active"):
        reactivate(version_id=failed.pk, actor=bob)
    # A rollback goes back to the version active before, not to the lower number.
    reactivate(version_id=first.pk, actor=bob)
    assert roll_back(version_id=first.pk, actor=bob).pk == passed.pk
    actions = list(
        AuditEvent.objects.filter(object_type="policy", actor=bob)
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["policy.promoted"] + ["policy.rolled_back"] * 4
    assert verify_chain().intact


def test_rolling_back_the_only_decider_version_brings_back_the_workflows_thresholds(bob):
    learned = ask_a_person_always()
    assert roll_back(version_id=learned.pk, actor=bob) is None
    learned.refresh_from_db()
    assert learned.status == "retired"
    with pytest.raises(LearningError, match="not active"):
        roll_back(version_id=learned.pk, actor=bob)


def test_the_learners_settings_refuse_nonsense_and_record_each_change(bob):
    before = learning_settings()
    with pytest.raises(LearningError, match="at least 50%"):
        update_learning_settings(
            actor=bob,
            promotion="automatic",
            target_precision=1.0,
            min_evidence=30,
            decisions_per_cycle=50,
        )
    with pytest.raises(LearningError, match="Promotion"):
        update_learning_settings(
            actor=bob,
            promotion="sometimes",
            target_precision=0.9,
            min_evidence=30,
            decisions_per_cycle=50,
        )
    assert LearningSettings.objects.get(pk=before.pk).promotion == "manual"

    update_learning_settings(
        actor=bob,
        promotion="automatic",
        target_precision=0.9,
        min_evidence=40,
        decisions_per_cycle=25,
    )

    event = AuditEvent.objects.get(action="learning.settings_changed")
    assert event.before["target_precision"] == 0.95 and event.after["target_precision"] == 0.9
    assert learning_settings().decisions_per_cycle == 25


def test_evaluate_prints_the_scores_and_fails_a_candidate_the_gate_refuses(
    autonomous, decider_artifact
):
    ask_a_person_always()
    out = io.StringIO()
    call_command("evaluate", "--json", stdout=out)
    report = json.loads(out.getvalue())
    active = report["active"]
    assert active["test_tickets"] == 90 and 0.7 < active["category_accuracy"] <= 1.0
    assert active["hard_tickets"] == len(dataset.hard_test())
    for split in ("", "hard_"):
        assert {
            f"{split}{m}"
            for m in (
                "category_accuracy",
                "retrieval_recall_at_3",
                "retrieval_mrr",
                "auto_send_rate",
                "wrong_auto_send_rate",
                "hard_rule_auto_sent",
            )
        } <= set(active)
    assert active["wrong_auto_send"]["of"] == 0, "asking a person always sends nothing alone"
    assert 0.9 <= active["instruction_recall"] <= 1.0

    # Sending every draft no hard rule holds, whatever the estimate, sends wrong ones too.
    reckless = decider_model_version(decider_artifact)
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_status:
        call_command("evaluate", "--candidate", str(reckless.pk), stdout=out)
    assert exit_status.value.code == 1
    table = out.getvalue()
    assert f"decider v{reckless.version}" in table
    assert "fails the gate:" in table and "wrong_auto_send_rate" in table
    assert PolicyVersion.objects.get(pk=reckless.pk).status == "candidate"  # writes nothing


def test_a_cycle_is_due_only_once_enough_decisions_came_in(run_ticket, alice):
    from orchestration.services.learning_cycle import cycle_due, decisions_since_last_cycle
    from orchestration.tasks import learn_if_due_task

    ask_a_person_always()
    settings = learning_settings()
    settings.decisions_per_cycle = 2
    settings.save()
    while decisions_since_last_cycle() < 1:  # one ticket in five is held out, by its id
        decide_task(task_id=open_task(run_ticket()).pk, actor=alice, action="approve")

    assert not cycle_due() and learn_if_due_task() is None
    assert not LearningCycle.objects.exists()
    settings.decisions_per_cycle = 1
    settings.save()
    assert cycle_due()


def test_plays_that_share_a_memo_score_as_plays_that_run_every_agent(autonomous, decider_artifact):
    from orchestration.learning import evaluation
    from orchestration.services.replay import AgentMemo
    from orchestration.services.workflows import support_desk_version

    library, workflow, memo = (
        evaluation.scenario_library()[:12],
        support_desk_version(),
        AgentMemo(),
    )
    ask_a_person_always()
    reckless = decider_model_version(decider_artifact)
    with_memo = [
        evaluation.play(library, workflow, {}, memo),
        evaluation.play(library, workflow, {"decider": reckless}, memo),
    ]
    without = [
        evaluation.play(library, workflow, {}),
        evaluation.play(library, workflow, {"decider": reckless}),
    ]

    assert with_memo == without
    assert [p.route for p in with_memo[0]] != [p.route for p in with_memo[1]]
    # The second play ran only the decider again: triage, research and drafter were kept.
    assert memo.hits == 3 * len(library)


@pytest.mark.django_db(transaction=True)
def test_without_a_worker_learn_now_runs_beside_the_request_not_in_it(
    support_desk, bob, settings, django_capture_on_commit_callbacks
):
    import threading
    import time

    settings.REDIS_URL = ""  # the embedded default: no broker, no worker
    before = threading.active_count()
    with django_capture_on_commit_callbacks(execute=True):
        request_learning_cycle(actor=bob)
    assert threading.active_count() == before + 1  # the request returns while it learns

    deadline = time.monotonic() + 120
    while not LearningCycle.objects.filter(status="finished").exists():
        assert time.monotonic() < deadline, "the cycle did not finish"
        time.sleep(0.2)
    cycle = LearningCycle.objects.get()
    assert (cycle.trigger, cycle.requested_by) == ("console", bob)
    while threading.active_count() > before:  # its connection closed before the flush
        time.sleep(0.05)


def test_a_candidate_is_not_promoted_once_a_version_it_was_played_with_has_changed(
    support_desk, triage_artifact, bob
):
    first = PolicyVersion.objects.get(agent="triage", status="active")
    candidate = PolicyVersion.objects.create(
        agent="triage",
        version=2,
        artifact=triage_artifact,
        artifact_sha256=hashlib.sha256(triage_artifact).hexdigest(),
        baseline=first,
        # Scored with no learned decider; one is switched on before the admin's click.
        evaluation={"passed": True, "failures": [], "evaluated_with": {"decider": None}},
    )
    ask_a_person_always()

    with pytest.raises(LearningError, match="another decider version"):
        promote_version(version_id=candidate.pk, actor=bob)
    assert PolicyVersion.objects.get(agent="triage", status="active").pk == first.pk
