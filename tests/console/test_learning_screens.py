"""The learning screens: each agent's versions and their scores, the chart, the learner's
settings and cycles, a version's page with its shadow view, promotion and rollback, and the
drafter's exemplars.

Who may open which screen is in the role matrix (test_access_matrix.py); here: what each page
shows, what each switch does, and that a reader who may not switch is offered nothing and
changes nothing."""

import hashlib
import html
import json
import re
from dataclasses import dataclass
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from orchestration.learning.active import THRESHOLDS_FORMAT
from orchestration.learning.evaluation import gate
from orchestration.models import (
    AuditEvent,
    Decision,
    Exemplar,
    HumanTask,
    LearningCycle,
    LearningSettings,
    PolicyVersion,
)
from orchestration.models.taxonomy import Category
from orchestration.services.decisions import decide_task
from orchestration.services.learning import learning_settings
from tests.conftest import client_for
from tests.console.test_approvals import messages_on, table_rows
from tests.orchestration.test_runs import SECURITY

SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"

# ---------------------------------------------------------------------------------------------
# Building the record: versions as the learner stores them


def scores(accuracy: float, edit: float, auto: float, wrong: float = 0.0) -> dict:
    return {
        "category_accuracy": accuracy,
        "category_macro_f1": round(accuracy - 0.05, 4),
        "edit_rate": edit,
        "auto_send_rate": auto,
        "wrong_auto_send_rate": wrong,
    }


def judged(candidate: dict, baseline: dict) -> dict:
    """The evaluation record the learner writes for ``candidate`` against ``baseline``."""
    verdict = gate(candidate, baseline, allowed_wrong=0.05)
    return {**verdict.as_dict(), "failures": verdict.failures, "baseline": baseline}


def thresholds_blob(**chosen: float | None) -> bytes:
    evidence = {
        c: {"reviewed": 40, "unchanged": 38, "lower_bound": 0.9, "why": "enough evidence"}
        for c in chosen
    }
    payload = {"format": THRESHOLDS_FORMAT, "thresholds": chosen, "evidence": evidence}
    return json.dumps(payload, sort_keys=True).encode()


def make_version(
    agent: str,
    number: int,
    status: str,
    *,
    metrics: dict | None = None,
    baseline: PolicyVersion | None = None,
    promoted: bool = False,
    blob: bytes = b"{}",
    lineage: dict | None = None,
) -> PolicyVersion:
    evaluation = judged(metrics, baseline.metrics) if metrics and baseline else {}
    return PolicyVersion.objects.create(
        agent=agent,
        version=number,
        artifact=blob,
        artifact_sha256=hashlib.sha256(blob).hexdigest(),
        metrics=metrics or {},
        lineage=lineage or {},
        evaluation=evaluation,
        baseline=baseline,
        status=status,
        promoted_at=timezone.now() if promoted else None,
    )


@dataclass
class Desk:
    """Decider v1 (was in use), v2 (in use), v3 (a candidate that passed), v4 (rejected:
    more edits), and triage v1 (in use, its first model)."""

    previous: PolicyVersion
    active: PolicyVersion
    passing: PolicyVersion
    rejected: PolicyVersion
    triage: PolicyVersion


def learning_desk() -> Desk:
    previous = make_version(
        "decider", 1, "retired", metrics=scores(0.80, 0.40, 0.10), promoted=True,
        blob=thresholds_blob(how_to=0.9),
    )  # fmt: skip
    active = make_version(
        "decider", 2, "active", metrics=scores(0.80, 0.35, 0.20), baseline=previous,
        promoted=True, blob=thresholds_blob(how_to=0.8),
    )  # fmt: skip
    passing = make_version(
        "decider", 3, "candidate", metrics=scores(0.82, 0.30, 0.25), baseline=active,
        blob=thresholds_blob(how_to=0.99, billing=None), lineage={"decisions": 57},
    )  # fmt: skip
    rejected = make_version(
        "decider", 4, "rejected", metrics=scores(0.80, 0.50, 0.30), baseline=active,
        blob=thresholds_blob(how_to=0.5),
    )  # fmt: skip
    # The support desk's triage model, where a test has one, else a first model.
    triage = PolicyVersion.objects.filter(agent="triage", status="active").first()
    if triage is None:
        triage = make_version("triage", 1, "active", blob=b"not loaded by these pages")
    PolicyVersion.objects.filter(pk=triage.pk).update(
        metrics={"category_accuracy": 0.7, "category_macro_f1": 0.65}
    )
    # Promoted in this order: decider v1, triage v1, decider v2.
    for offset, version in enumerate((previous, triage, active)):
        PolicyVersion.objects.filter(pk=version.pk).update(
            promoted_at=timezone.now() - timezone.timedelta(hours=3 - offset)
        )
    triage.refresh_from_db()
    return Desk(previous, active, passing, rejected, triage)


def decided(run, actor, **decision) -> Decision:
    task = HumanTask.objects.get(run=run)
    fields = {"action": "edit", "final_text": "Thanks, we locked the account.", **decision}
    return decide_task(task_id=task.pk, actor=actor, **fields)


def exemplar_of(decision: Decision, **fields) -> Exemplar:
    ticket = decision.task.run.ticket
    values = {
        "category": decision.category,
        "ticket_text": f"{ticket.subject}\n{ticket.body}",
        "reply": decision.final_text,
        "weight": 2.0,
        **fields,
    }
    return Exemplar.objects.create(decision=decision, **values)


def audited(prefix: str) -> int:
    return AuditEvent.objects.filter(action__startswith=prefix).count()


def statuses(agent: str = "decider") -> dict[int, str]:
    return dict(PolicyVersion.objects.filter(agent=agent).values_list("version", "status"))


def text_of(fragment: str) -> str:
    """The text as the browser shows it: inline tags leave no gap, block tags do."""
    inline = re.sub(r"</?(a|code|span|strong|time)\b[^>]*>", "", fragment)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", inline)).split())


def section(page: str, css_class: str) -> str:
    match = re.search(rf'<section class="card {css_class}"[^>]*>(.*?)</section>', page, re.S)
    assert match, f"no {css_class} section"
    return match.group(1)


@pytest.fixture
def desk(db) -> Desk:
    return learning_desk()


# ---------------------------------------------------------------------------------------------
# The overview


def test_each_agents_versions_are_listed_newest_first_with_the_one_in_use_marked(desk, carol):
    page = client_for(carol).get("/learning/").content.decode()
    rows = table_rows(page, "versions-decider")
    assert [r["cells"][0] for r in rows] == ["v4", "v3", "v2", "v1"]
    assert [r["cells"][1] for r in rows] == ["rejected", "candidate", "active (in use)", "retired"]
    assert rows[0]["links"][0] == f"/learning/versions/{desk.rejected.pk}/"
    assert page.count('class="version-row version-active"') == 2  # decider v2 and triage v1
    in_use = text_of(section(page, 'agent-versions" id="agent-decider'))
    assert "In use: decider v2." in in_use
    # The one in use shows its scores as they are: 80.0% accuracy, 35.0% edits, 20.0% sent.
    assert rows[2]["cells"][3:8] == ["80.0%", "0.750", "35.0%", "20.0%", "0.0%"]
    assert rows[2]["cells"][8] == "passed"
    # Drafter has none.
    assert "No drafter versions yet." in page


def test_a_candidate_sets_each_metric_beside_its_baseline_with_the_gates_verdict(desk, carol):
    page = client_for(carol).get("/learning/").content.decode()
    rejected, passing = table_rows(page, "versions-decider")[:2]
    assert passing["cells"][3] == "baseline 80.0% → 82.0% pass"
    assert passing["cells"][5] == "baseline 35.0% → 30.0% pass"
    # Auto-send rate is reported, not guarded: no verdict.
    assert passing["cells"][6] == "baseline 20.0% → 25.0%"
    assert passing["cells"][8] == "passed"
    assert rejected["cells"][5] == "baseline 35.0% → 50.0% fail"
    assert rejected["cells"][8] == "failed"
    # A first model was never gated.
    (triage,) = table_rows(page, "versions-triage")
    assert triage["cells"][3:6] == ["70.0%", "0.650", "–"]
    assert triage["cells"][8] == "not gated"


def svg_of(page: str) -> str:
    match = re.search(r'<svg class="chart-svg".*?</svg>', page, re.S)
    assert match, "no chart"
    return match.group(0)


def test_the_chart_draws_each_metric_of_each_promoted_version_in_the_order_switched_on(desk, carol):
    page = client_for(carol).get("/learning/").content.decode()
    svg = svg_of(page)
    # Three versions were switched on; the first triage model has an accuracy only.
    assert svg.count('<circle class="chart-point"') == 3 + 1 + 3
    assert 'data-points="7"' in svg
    assert '<title id="learning-chart-title">' in svg
    assert 'aria-labelledby="learning-chart-title learning-chart-desc"' in svg
    assert svg.count("<polyline") == 3
    labels = re.findall(r'class="chart-tick"[^>]*transform="rotate[^"]*">([^<]+)<', svg)
    assert labels == ["decider v1", "triage v1", "decider v2"]
    for axis in ("Share of scenarios", "Promoted versions, in the order they were switched on"):
        assert axis in svg
    for legend in ("Accuracy", "Edit rate", "Auto-send rate"):
        assert f">{legend}</text>" in svg
    desc = re.search(r"<desc[^>]*>(.*?)</desc>", svg, re.S).group(1)
    assert html.unescape(desc) == (
        "from decider v1 to decider v2: accuracy 80.0% → 80.0%; edit rate 40.0% → 35.0%; "
        "auto-send rate 10.0% → 20.0%."
    )
    numbers = table_rows(page, "chart-data")
    assert numbers[1]["cells"] == ["triage v1", "70.0%", "–", "–"]
    # No inline style: the policy allows the stylesheet only.
    assert " style=" not in svg


def test_the_chart_of_one_version_is_points_without_lines_and_of_none_a_sentence(db, carol):
    client = client_for(carol)
    page = client.get("/learning/").content.decode()
    assert "chart-svg" not in page
    assert "No version has been switched on yet" in page

    make_version("decider", 1, "active", metrics=scores(0.8, 0.3, 0.2), promoted=True)
    svg = svg_of(client.get("/learning/").content.decode())
    assert svg.count('<circle class="chart-point"') == 3
    assert "<polyline" not in svg


def test_recent_cycles_say_what_each_proposed_and_why_not(desk, carol):
    cycle = LearningCycle.objects.create(
        trigger="console",
        requested_by=carol,
        status="finished",
        decisions=57,
        finished_at=timezone.now(),
        summary={
            "left_out_test_split": 12,
            "agents": {
                "decider": {"candidate": 4, "passed": False, "failures": ["edit_rate"]},
                "triage": {"candidate": None, "why": "no new decisions since version 1"},
                "drafter": {"candidate": None, "why": f"no approved replies {SCRIPT}"},
            },
        },
    )
    PolicyVersion.objects.filter(pk=desk.rejected.pk).update(cycle=cycle)
    LearningCycle.objects.create(trigger="schedule", status="failed", error=f"boom {SCRIPT}")
    page = client_for(carol).get("/learning/").content.decode()
    failed, finished = table_rows(page, "cycles")
    assert finished["cells"][1:4] == ["console by carol", "finished", finished["cells"][3]]
    # The decisions it read, and why those on the test split's tickets were not.
    assert finished["cells"][4].startswith("57")
    assert "12 left out: their tickets are in the evaluation's test split" in finished["cells"][4]
    assert "decider: v4 rejected (worse edit rate) (now rejected)" in finished["cells"][5]
    assert "triage: no candidate: no new decisions since version 1" in finished["cells"][5]
    assert f"/learning/versions/{desk.rejected.pk}/" in finished["links"]
    assert failed["cells"][2] == "failed"
    assert failed["cells"][6] == f"boom {SCRIPT}"
    assert SCRIPT not in page and ESCAPED_SCRIPT in page


# ---------------------------------------------------------------------------------------------
# Settings and "learn now"

VALID_SETTINGS = {
    "promotion": "automatic",
    "target_precision": "97.5",
    "min_evidence": "40",
    "decisions_per_cycle": "25",
}


def test_an_admin_changes_the_learners_settings(db, bob):
    response = client_for(bob).post("/learning/settings/", VALID_SETTINGS, follow=True)
    assert response.redirect_chain == [("/learning/", 302)]
    assert messages_on(response.content.decode()) == [
        "The learner's settings are saved; the next cycle uses them."
    ]
    row = learning_settings()
    assert (row.promotion, row.min_evidence, row.decisions_per_cycle) == ("automatic", 40, 25)
    assert row.target_precision == pytest.approx(0.975)
    assert row.updated_by == bob
    assert AuditEvent.objects.get(action="learning.settings_changed").actor == bob
    page = response.content.decode()
    assert "97.5%" in text_of(section(page, 'learning-settings" id="settings'))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"target_precision": "120"}, "The target precision must be at least 50% and below 100%."),
        ({"target_precision": "40"}, "The target precision must be at least 50% and below 100%."),
        ({"min_evidence": "0"}, "A category needs at least 1 decision as evidence."),
        ({"decisions_per_cycle": "0"}, "A cycle needs at least 1 new decision."),
        ({"decisions_per_cycle": "many"}, "Enter a whole number."),
        ({"promotion": "sometimes"}, "Select a valid choice. sometimes is not one of the"),
    ],
)
def test_settings_that_do_not_hold_are_refused_shown_and_not_saved(db, bob, change, error):
    before = learning_settings()
    response = client_for(bob).post("/learning/settings/", {**VALID_SETTINGS, **change})
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert error in page
    # The error stands beside its field, which is marked invalid and focused.
    ((name, typed),) = change.items()
    if name != "promotion":
        assert f'<p class="field-error" id="id_{name}_error">{error}' in page
        field = re.search(rf'<input[^>]*name="{name}"[^>]*>', page).group(0)
        assert 'aria-invalid="true"' in field and "autofocus" in field
    # The form keeps what was typed.
    assert f'value="{typed}"' in page or typed == "sometimes"
    after = LearningSettings.objects.get(pk=before.pk)
    assert (after.promotion, after.target_precision, after.min_evidence) == (
        before.promotion,
        before.target_precision,
        before.min_evidence,
    )
    assert audited("learning.settings") == 0


def test_learn_now_queues_a_cycle_for_a_worker_after_the_request_commits(
    db, bob, settings, django_capture_on_commit_callbacks
):
    # With a broker configured the cycle goes to a worker (the embedded default runs it in
    # a thread of its own instead).
    settings.REDIS_URL = settings.REDIS_URL or "redis://127.0.0.1:6379/15"
    with (
        mock.patch("orchestration.tasks.learn_task.delay") as delay,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = client_for(bob).post("/learning/learn/", follow=True)
    assert len(callbacks) == 1
    delay.assert_called_once_with(trigger="console", actor_id=bob.pk)
    assert messages_on(response.content.decode()) == [
        "A learning cycle is queued; it is listed below once it starts."
    ]
    assert AuditEvent.objects.get(action="learning.requested").actor == bob


# ---------------------------------------------------------------------------------------------
# A version's page, promotion and rollback


def test_a_candidates_page_shows_its_evaluation_lineage_and_thresholds(desk, carol):
    page = client_for(carol).get(f"/learning/versions/{desk.passing.pk}/").content.decode()
    evaluation = {r["cells"][0]: r["cells"][1:] for r in table_rows(page, "evaluation")}
    assert evaluation["Accuracy"] == ["80.0%", "82.0%", "higher", "pass"]
    assert evaluation["Edit rate"] == ["35.0%", "30.0%", "lower", "pass"]
    assert evaluation["Auto-send rate"] == ["20.0%", "25.0%", "–", "not guarded"]
    assert "passed No worse than v2 on any guarded metric." in text_of(page)
    assert "Decisions 57" in text_of(section(page, "version-lineage"))
    thresholds = {r["cells"][0]: r["cells"][1] for r in table_rows(page, "thresholds")}
    assert thresholds == {"billing": "never: a person decides", "how to": "99% or more"}


def test_a_rejected_versions_page_names_the_metric_it_was_worse_on(desk, carol):
    page = client_for(carol).get(f"/learning/versions/{desk.rejected.pk}/").content.decode()
    assert "failed Worse than v2 on edit rate." in text_of(page)
    (failed,) = [r for r in table_rows(page, "evaluation") if r["cells"][-1] == "fail"]
    assert failed["cells"][:3] == ["Edit rate", "35.0%", "50.0%"]


def test_an_admin_promotes_a_candidate_that_passed(desk, bob):
    client = client_for(bob)
    page = client.get(f"/learning/versions/{desk.passing.pk}/").content.decode()
    assert f'action="/learning/versions/{desk.passing.pk}/promote/"' in page
    assert "csrfmiddlewaretoken" in page and "confirm(" not in page

    response = client.post(f"/learning/versions/{desk.passing.pk}/promote/", follow=True)
    assert response.redirect_chain == [(f"/learning/versions/{desk.passing.pk}/", 302)]
    assert messages_on(response.content.decode()) == [
        "decider v3 is active: the agent uses it from its next step on."
    ]
    assert statuses() == {1: "retired", 2: "retired", 3: "active", 4: "rejected"}
    assert AuditEvent.objects.get(action="policy.promoted").actor == bob


def test_promoting_a_candidate_that_failed_the_gate_shows_why_and_changes_nothing(desk, bob):
    failing = make_version(
        "decider", 5, "candidate", metrics=scores(0.70, 0.35, 0.20), baseline=desk.active
    )
    client = client_for(bob)
    page = client.get(f"/learning/versions/{failing.pk}/").content.decode()
    assert "promote/" not in page
    assert "It did not pass the evaluation gate: worse category accuracy, category macro f1." in (
        text_of(page)
    )
    response = client.post(f"/learning/versions/{failing.pk}/promote/", follow=True)
    assert messages_on(response.content.decode()) == [
        "decider v5 (candidate) did not pass the evaluation gate "
        "(category_accuracy, category_macro_f1)."
    ]
    response = client.post(f"/learning/versions/{desk.rejected.pk}/promote/", follow=True)
    assert messages_on(response.content.decode()) == ["decider v4 (rejected) is not a candidate."]
    assert statuses() == {1: "retired", 2: "active", 3: "candidate", 4: "rejected", 5: "candidate"}
    assert audited("policy.") == 0


def test_a_candidate_judged_against_a_version_no_longer_in_use_is_not_offered(desk, bob):
    PolicyVersion.objects.filter(pk=desk.active.pk).update(status="retired")
    PolicyVersion.objects.filter(pk=desk.previous.pk).update(status="active")
    page = client_for(bob).get(f"/learning/versions/{desk.passing.pk}/").content.decode()
    assert "promote/" not in page
    assert "It was evaluated against v2, but v1 is in use now: promoting it is refused." in (
        text_of(page)
    )


def test_an_admin_rolls_back_to_the_version_in_use_before(desk, bob):
    client = client_for(bob)
    page = client.get(f"/learning/versions/{desk.active.pk}/").content.decode()
    assert "Roll back to v1" in page
    response = client.post(f"/learning/versions/{desk.active.pk}/roll-back/", follow=True)
    assert response.redirect_chain == [(f"/learning/versions/{desk.previous.pk}/", 302)]
    assert messages_on(response.content.decode()) == [
        "Rolled back: decider v1 is active again; v2 is retired."
    ]
    assert statuses() == {1: "active", 2: "retired", 3: "candidate", 4: "rejected"}
    assert AuditEvent.objects.get(action="policy.rolled_back").actor == bob

    # v2 was in use once: it can come back.
    page = client.get(f"/learning/versions/{desk.active.pk}/").content.decode()
    assert "Make v2 active again" in page
    response = client.post(f"/learning/versions/{desk.active.pk}/reactivate/", follow=True)
    assert messages_on(response.content.decode()) == ["decider v2 is active again."]
    assert statuses()[2] == "active" and statuses()[1] == "retired"


def test_rolling_back_the_only_decider_version_leaves_the_workflows_thresholds(db, bob):
    only = make_version("decider", 1, "active", promoted=True)
    client = client_for(bob)
    page = text_of(client.get(f"/learning/versions/{only.pk}/").content.decode())
    assert "rolling back retires this one, and then the decider uses the workflow's" in page
    response = client.post(f"/learning/versions/{only.pk}/roll-back/", follow=True)
    assert messages_on(response.content.decode()) == [
        "Rolled back: decider v1 is retired and the decider uses the workflow's configured "
        "thresholds."
    ]
    assert statuses() == {1: "retired"}


def test_the_first_triage_model_cannot_be_rolled_back_and_says_so(desk, bob):
    client = client_for(bob)
    page = text_of(client.get(f"/learning/versions/{desk.triage.pk}/").content.decode())
    assert "No earlier triage version was in use: there is nothing to roll back to." in page
    response = client.post(f"/learning/versions/{desk.triage.pk}/roll-back/", follow=True)
    assert messages_on(response.content.decode()) == [
        "The triage classifier has no earlier version to go back to."
    ]
    assert statuses("triage") == {1: "active"}
    # Nor is a version that is no longer in use rolled back.
    response = client.post(f"/learning/versions/{desk.previous.pk}/roll-back/", follow=True)
    assert messages_on(response.content.decode()) == [
        "decider v1 (retired) is not active; nothing was rolled back."
    ]
    assert statuses()[2] == "active"
    assert audited("policy.") == 0


def test_a_version_never_in_use_cannot_be_made_active_again(desk, bob):
    response = client_for(bob).post(
        f"/learning/versions/{desk.rejected.pk}/reactivate/", follow=True
    )
    assert messages_on(response.content.decode()) == [
        "decider v4 (rejected) was never active; only such a version comes back."
    ]
    assert statuses()[4] == "rejected"


def test_an_unknown_version_is_not_found(db, bob):
    client = client_for(bob)
    assert client.get("/learning/versions/999/").status_code == 404
    assert client.post("/learning/versions/999/promote/").status_code == 404


# ---------------------------------------------------------------------------------------------
# What a version learned from, and the shadow view


def test_a_version_lists_the_decisions_it_learned_from_with_links_to_their_runs(
    run_ticket, bob, carol, monkeypatch
):
    first = decided(
        run_ticket(**SECURITY), bob,
        corrected_category="account_access", corrected_urgency="high",
        reason_codes=["wrong_category", "tone"], reason=f"Not a breach {SCRIPT}",
    )  # fmt: skip
    second = decided(run_ticket(**{**SECURITY, "subject": "Login alert"}), bob, action="approve")
    triage = make_version("triage", 2, "rejected", lineage={"decisions": 2})
    triage.learned_from.add(first, second)
    monkeypatch.setattr("console.views.learning_versions.DECISIONS_PER_PAGE", 1)

    client = client_for(carol)
    page = client.get(f"/learning/versions/{triage.pk}/").content.decode()
    (row,) = table_rows(page, "learned-from")
    assert row["cells"][0] == str(second.pk)  # newest first
    assert row["cells"][4] == "approved"
    assert "Page 1 of 2" in page
    page = client.get(f"/learning/versions/{triage.pk}/?page=2").content.decode()
    (row,) = table_rows(page, "learned-from")
    assert row["cells"][:5] == [
        str(first.pk),
        f"run {first.task.run_id}",
        row["cells"][2],
        "bob",
        "edited",
    ]
    assert row["links"] == [f"/runs/{first.task.run_id}/"]
    assert row["cells"][5] == "security → account access"
    assert row["cells"][6] == "critical → high"
    assert row["cells"][7] == "Wrong category, Tone"
    assert row["cells"][8] == f"Not a breach {SCRIPT}"
    assert SCRIPT not in page and ESCAPED_SCRIPT in page


def test_the_shadow_view_lists_the_runs_a_decider_candidate_would_route_the_other_way(
    autonomous, run_ticket, bob, carol
):
    sent = run_ticket()  # a how-to question, sent alone where how-to earned autonomy
    waiting = run_ticket(**SECURITY)  # a security ticket always goes to a person
    decided(waiting, bob)
    # A version of the earlier threshold format holds no estimate: a person decides.
    candidate = make_version(
        "decider", 2, "candidate", blob=thresholds_blob(how_to=0.99),
        metrics=scores(0.8, 0.3, 0.1),
    )  # fmt: skip
    page = client_for(carol).get(f"/learning/versions/{candidate.pk}/").content.decode()
    shadow = text_of(section(page, "version-shadow"))
    assert "Of the latest 2 runs that reached the decider, 1 would have gone the other way" in (
        shadow
    )
    assert "0 sent alone instead of asking a person, and 1 asked a person" in shadow
    (row,) = table_rows(page, "shadow")
    assert row["links"] == [f"/runs/{sent.pk}/"]
    assert row["cells"][1] == sent.ticket.subject
    assert row["cells"][2] == "how to → how to"
    assert row["cells"][4] == "auto send → human"
    assert "no decider model is trained" in row["cells"][5]
    assert row["cells"][6] == "sent alone, no person saw it"


def test_a_drafter_candidate_changes_no_route_and_says_so(db, carol):
    candidate = make_version("drafter", 1, "candidate", blob=b'{"exemplars": []}')
    page = client_for(carol).get(f"/learning/versions/{candidate.pk}/").content.decode()
    assert "A drafter version changes the drafts, not where they go." in page
    assert 'class="shadow"' not in page


def test_only_a_candidate_has_a_shadow_view(desk, carol):
    page = client_for(carol).get(f"/learning/versions/{desk.active.pk}/").content.decode()
    assert "version-shadow" not in page


# ---------------------------------------------------------------------------------------------
# Exemplars


@pytest.fixture
def exemplar(run_ticket, bob) -> Exemplar:
    run = run_ticket(subject=f"Locked out {SCRIPT}", body=SECURITY["body"])
    decision = decided(run, bob, final_text=f"We locked it. {SCRIPT}")
    return exemplar_of(decision, draft="We will look into it.")


def test_exemplars_are_listed_per_category_with_their_text_escaped(
    exemplar, run_ticket, bob, carol
):
    other = decided(run_ticket(**{**SECURITY, "subject": "Invoice twice"}), bob, action="approve")
    retired = exemplar_of(other, category="billing", weight=1.0)
    Exemplar.objects.filter(pk=retired.pk).update(
        retired_at=timezone.now(), retired_by=bob, retire_reason="outdated prices"
    )
    client = client_for(carol)
    page = client.get("/learning/exemplars/").content.decode()
    assert SCRIPT not in page
    assert f"Locked out {ESCAPED_SCRIPT}" in page
    assert f"We locked it. {ESCAPED_SCRIPT}" in page
    headings = re.findall(r'<section class="card exemplar-group"[^>]*>\s*<h2>([^<]+)</h2>', page)
    assert headings == ["Billing", dict(Category.choices)[exemplar.category]]
    assert "by bob: outdated prices" in page
    assert f'href="/runs/{exemplar.decision.task.run_id}/"' in page
    # One category at a time.
    page = client.get("/learning/exemplars/?category=billing").content.decode()
    assert re.findall(r'id="exemplar-(\d+)"', page) == [str(retired.pk)]
    assert 'Billing <span class="count">(0, 1 retired)</span>' in page


def test_retiring_an_exemplar_needs_a_reason(exemplar, bob):
    client = client_for(bob)
    page = client.get("/learning/exemplars/").content.decode()
    assert f'action="/learning/exemplars/{exemplar.pk}/retire/"' in page
    for reason in ("", "   "):
        response = client.post(f"/learning/exemplars/{exemplar.pk}/retire/", {"reason": reason})
        assert response.status_code == 400
        assert "Say why the exemplar is retired." in response.content.decode()
        assert 'aria-invalid="true"' in response.content.decode()
    exemplar.refresh_from_db()
    assert exemplar.retired_at is None
    assert audited("exemplar.") == 0

    response = client.post(
        f"/learning/exemplars/{exemplar.pk}/retire/", {"reason": "promises a refund"}, follow=True
    )
    assert response.redirect_chain == [("/learning/exemplars/", 302)]
    assert messages_on(response.content.decode()) == [
        f"Exemplar {exemplar.pk} is retired: the drafter no longer follows it."
    ]
    exemplar.refresh_from_db()
    assert exemplar.retired_by == bob and exemplar.retire_reason == "promises a refund"
    assert f'action="/learning/exemplars/{exemplar.pk}/retire/"' not in response.content.decode()


# ---------------------------------------------------------------------------------------------
# Who is offered what


ADMIN_FORMS = (
    'action="/learning/learn/"',
    'action="/learning/settings/"',
    "/promote/",
    "/roll-back/",
    "/reactivate/",
    "/retire/",
)


@pytest.mark.parametrize("persona", ["bob", "carol"])
def test_only_an_admin_is_offered_the_switches_and_forms(request, exemplar, persona):
    desk = learning_desk()
    client = client_for(request.getfixturevalue(persona))
    pages = "".join(
        client.get(path).content.decode()
        for path in (
            "/learning/",
            f"/learning/versions/{desk.passing.pk}/",
            f"/learning/versions/{desk.active.pk}/",
            f"/learning/versions/{desk.previous.pk}/",
            "/learning/exemplars/",
        )
    )
    for form in ADMIN_FORMS:
        assert (form in pages) is (persona == "bob"), form
    assert ("Your role can read this version but not switch it." in pages) is (persona == "carol")


@pytest.mark.parametrize("persona", ["carol", "alice", "dave", "ivan"])
def test_a_reader_or_outsider_posting_a_switch_is_refused_and_nothing_changes(
    request, exemplar, persona
):
    desk = learning_desk()
    client = client_for(request.getfixturevalue(persona))
    posts = {
        "/learning/settings/": VALID_SETTINGS,
        "/learning/learn/": {},
        f"/learning/versions/{desk.passing.pk}/promote/": {},
        f"/learning/versions/{desk.active.pk}/roll-back/": {},
        f"/learning/versions/{desk.previous.pk}/reactivate/": {},
        f"/learning/exemplars/{exemplar.pk}/retire/": {"reason": "not mine to retire"},
    }
    for path, data in posts.items():
        response = client.post(path, data)
        assert response.status_code == 403, path
    assert statuses() == {1: "retired", 2: "active", 3: "candidate", 4: "rejected"}
    assert learning_settings().promotion == "manual"
    exemplar.refresh_from_db()
    assert exemplar.retired_at is None
    assert audited("policy.") + audited("learning.") + audited("exemplar.") == 0


def test_a_signed_out_visitor_is_sent_to_sign_in_and_changes_nothing(desk):
    browser = Client()
    for path in ("/learning/", f"/learning/versions/{desk.passing.pk}/", "/learning/exemplars/"):
        response = browser.get(path)
        assert response.status_code == 302
        assert response["Location"] == f"/login/?next={path}"
    response = browser.post(f"/learning/versions/{desk.passing.pk}/promote/")
    # A posted switch cannot be replayed after signing in.
    assert response["Location"] == "/login/?next=/"
    assert statuses()[3] == "candidate"


def test_a_switch_posted_without_the_csrf_token_is_refused(desk, bob):
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    response = client.post(f"/learning/versions/{desk.passing.pk}/promote/")
    assert response.status_code == 403
    assert statuses()[3] == "candidate"


@pytest.mark.parametrize("path", ["/learning/", "version", "/learning/exemplars/"])
def test_learning_pages_carry_no_inline_script_or_style(request, exemplar, bob, path):
    desk = learning_desk()
    if path == "version":
        path = f"/learning/versions/{desk.passing.pk}/"
    page = client_for(bob).get(path).content.decode()
    for chunk in page.split("<script")[1:]:
        assert "src=" in chunk.split(">", 1)[0]
    assert " style=" not in page and "<style" not in page
    assert " onclick=" not in page and " onsubmit=" not in page
