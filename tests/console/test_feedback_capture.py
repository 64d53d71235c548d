"""Feedback on the task page: reason codes, corrected labels, the note and escalation, as an
operator gives them while deciding, and as everyone reads them afterwards."""

import html
import re
from html.parser import HTMLParser

import pytest

from orchestration.engine.states import DecisionOutcome, TaskStatus
from orchestration.models import Decision, HumanTask, Reply
from tests.conftest import client_for
from tests.console.test_approvals import messages_on, post_decision, textarea
from tests.orchestration.test_runs import SECURITY

LOCKED = "We have locked your account as a precaution."


class _Inputs(HTMLParser):
    """Every <input> of a page, as its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "input":
            self.inputs.append(dict(attrs))


def inputs_named(page: str, name: str) -> list[dict]:
    parser = _Inputs()
    parser.feed(page)
    return [i for i in parser.inputs if i.get("name") == name]


def chosen(page: str, name: str) -> list[str]:
    """The values of the ticked checkboxes or the chosen radio named ``name``."""
    return [i["value"] for i in inputs_named(page, name) if "checked" in i]


def field_error(page: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{field}_error">(.*?)</p>', page, re.S)
    return html.unescape(match.group(1)) if match else None


@pytest.fixture
def waiting_task(run_ticket):
    task = HumanTask.objects.get(run=run_ticket(**SECURITY))
    assert (task.category, task.urgency) == ("security", "critical"), "precondition"
    return task


# ---------------------------------------------------------------------------------------------
# The form


def test_the_form_offers_reason_codes_and_label_chips_with_the_agents_guess_chosen(
    waiting_task, alice
):
    page = client_for(alice).get(f"/approvals/{waiting_task.pk}/").content.decode()
    assert [i["value"] for i in inputs_named(page, "reason_codes")] == [
        "wrong_category",
        "wrong_urgency",
        "wrong_facts",
        "tone",
        "missing_step",
        "policy",
        "other",
    ]
    assert "Wrong category" in page and "Missing step" in page
    assert chosen(page, "reason_codes") == []
    categories = [i["value"] for i in inputs_named(page, "corrected_category")]
    assert categories[0] == "security", "the agents' guess comes first"
    assert len(categories) == 9
    likely = [a["category"] for a in waiting_task.proposal["alternatives"]]
    assert categories[: len(likely)] == likely, "then the classifier's other likely ones"
    assert chosen(page, "corrected_category") == ["security"]
    assert chosen(page, "corrected_urgency") == ["critical"]
    confidence = f"{waiting_task.proposal['category_confidence'] * 100:.0f}%"
    assert f"agents' guess {confidence}" in page
    assert "Note (required to reject or escalate)" in page
    assert re.search(r'<button[^>]*name="action" value="escalate"', page)


# ---------------------------------------------------------------------------------------------
# Recording the feedback


def test_approving_with_a_corrected_category_and_two_reason_codes_records_them(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    response = post_decision(
        client_for(alice),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="edit",
        final_text=waiting_task.proposal["draft"],
        reason_codes=["tone", "wrong_category"],
        corrected_category="billing",
        corrected_urgency="critical",  # the agents' own: no correction
    )
    assert response.status_code == 302
    decision = Decision.objects.get(task=waiting_task)
    assert decision.outcome == DecisionOutcome.APPROVED
    assert decision.actor == alice
    assert decision.reason_codes == ["wrong_category", "tone"]
    assert (decision.corrected_category, decision.corrected_urgency) == ("billing", "")
    assert (decision.category, decision.urgency) == ("billing", "critical")
    assert (decision.edit_chars, decision.similarity) == (0, 1.0)


def test_an_edit_records_its_diff_and_size_and_both_pages_show_the_feedback(
    waiting_task, alice, carol, django_capture_on_commit_callbacks
):
    draft = waiting_task.proposal["draft"]
    post_decision(
        client_for(alice),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="edit",
        final_text=f"{draft}\r\n{LOCKED}",
        reason="Always say the account is locked",
        reason_codes=["missing_step"],
        corrected_category="account_access",
        corrected_urgency="high",
    )
    decision = Decision.objects.get(task=waiting_task)
    assert decision.outcome == DecisionOutcome.EDITED
    assert {"op": "insert", "text": LOCKED} in decision.diff
    assert decision.edit_chars == len(LOCKED) + 1  # the line break too
    assert 0 < decision.similarity < 1

    size = f"{decision.edit_chars} characters changed, similarity {decision.similarity * 100:.0f}%"
    task_page = client_for(carol).get(f"/approvals/{waiting_task.pk}/").content.decode()
    run_page = client_for(carol).get(f"/runs/{waiting_task.run_id}/").content.decode()
    for name, page in {"task": task_page, "run": run_page}.items():
        text = html.unescape(page)
        assert "alice</strong> edited" in page, name
        assert size in text, name
        assert "Missing step" in text, name
        assert "category: security → account access" in text, name
        assert "urgency: critical → high" in text, name
        assert "Always say the account is locked" in text, name
        assert f'<div class="diff-insert">+ {LOCKED}</div>' in page, name
    assert "<textarea" not in task_page, "a decided task has no form"


# ---------------------------------------------------------------------------------------------
# Escalating


def test_escalating_without_a_note_is_refused_and_nothing_is_lost(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    typed = "Dear customer,\r\nwe are on it.\r\n-- Alice"
    response = post_decision(
        client_for(alice),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="escalate",
        final_text=typed,
        reason="  ",
        reason_codes=["tone", "policy"],
        corrected_category="billing",
        corrected_urgency="high",
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert field_error(page, "reason") == "Say why you escalate, for whoever picks it up."
    assert re.search(r'<textarea id="reason"[^>]*autofocus[^>]*aria-invalid="true"', page)
    assert textarea(page, "final_text").replace("\r\n", "\n") == typed.replace("\r\n", "\n")
    assert chosen(page, "reason_codes") == ["tone", "policy"]
    assert chosen(page, "corrected_category") == ["billing"]
    assert chosen(page, "corrected_urgency") == ["high"]
    assert not Decision.objects.exists()
    assert HumanTask.objects.get().status == TaskStatus.OPEN


def test_enter_on_a_chip_decides_nothing_and_keeps_what_was_chosen(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    page = client_for(alice).get(f"/approvals/{waiting_task.pk}/").content.decode()
    # The form's first button, the one a browser presses for Enter on a chip or a checkbox.
    first = re.search(r'<form method="post" action="[^"]*decide/".*?<button([^>]*)>', page, re.S)
    assert first and 'value="hold"' in first.group(1) and "disabled" not in first.group(1)
    typed = "Dear customer,\nwe are on it."

    response = post_decision(
        client_for(alice),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="hold",
        final_text=typed,
        reason_codes=["tone"],
        corrected_category="billing",
        corrected_urgency="high",
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing was sent" in " ".join(messages_on(page))
    assert textarea(page, "final_text").replace("\r\n", "\n") == typed
    assert chosen(page, "reason_codes") == ["tone"]
    assert chosen(page, "corrected_category") == ["billing"]
    assert not Decision.objects.exists() and not Reply.objects.exists()
    assert HumanTask.objects.get().status == TaskStatus.OPEN


def test_escalating_with_a_note_hands_the_task_on_to_the_queue(
    waiting_task, alice, bob, django_capture_on_commit_callbacks
):
    client = client_for(alice)
    response = post_decision(
        client,
        waiting_task,
        django_capture_on_commit_callbacks,
        action="escalate",
        reason="Needs the security team",
        reason_codes=["policy"],
        then="next",
    )
    # Nothing else waits for alice: the task she handed on is not "next" for her.
    assert response.status_code == 302
    assert response["Location"] == "/approvals/"
    waiting_task.refresh_from_db()
    assert waiting_task.status == TaskStatus.DECIDED
    decision = Decision.objects.get(task=waiting_task)
    assert (decision.outcome, decision.reason) == (
        DecisionOutcome.ESCALATED,
        "Needs the security team",
    )
    assert decision.reason_codes == ["policy"]
    assert not Reply.objects.exists()
    handed_on = HumanTask.objects.get(status=TaskStatus.OPEN)
    assert handed_on.step_id == waiting_task.step_id
    assert handed_on.reason == "Escalated by alice: Needs the security team"

    queue = client.get("/approvals/").content.decode()
    assert f"/approvals/{handed_on.pk}/" in queue
    assert "Escalated by alice: Needs the security team" in queue
    assert f"Task {waiting_task.pk}: escalated." in messages_on(queue)

    old_page = client.get(f"/approvals/{waiting_task.pk}/").content.decode()
    assert "<strong>alice</strong> escalated this" in old_page
    assert f'href="/approvals/{handed_on.pk}/"' in old_page
    # Someone else picks it up and decides it.
    response = post_decision(
        client_for(bob), handed_on, django_capture_on_commit_callbacks, action="approve"
    )
    assert response.status_code == 302
    assert Reply.objects.get().approved_by == bob


# ---------------------------------------------------------------------------------------------
# Tampered forms


@pytest.mark.parametrize(
    ("tampered", "field", "message"),
    [
        (
            {"reason_codes": ["tone", "free_lunch"]},
            "reason_codes",
            "Unknown reason code 'free_lunch'.",
        ),
        ({"corrected_category": "pets"}, "corrected_category", "Unknown category 'pets'."),
        ({"corrected_urgency": "whenever"}, "corrected_urgency", "Unknown urgency 'whenever'."),
        (
            {"corrected_category": "<script>alert(1)</script>"},
            "corrected_category",
            "Unknown category '<script>alert(1)</script>'.",
        ),
    ],
)
def test_a_tampered_code_or_label_is_refused_beside_its_field_keeping_what_was_typed(
    waiting_task, alice, django_capture_on_commit_callbacks, tampered, field, message
):
    fields = {
        "action": "edit",
        "final_text": "My careful rewrite & more",
        "reason": "A note <kept>",
        "reason_codes": ["tone"],
        "corrected_urgency": "high",
        **tampered,
    }
    response = post_decision(
        client_for(alice), waiting_task, django_capture_on_commit_callbacks, **fields
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert field_error(page, field) == message
    assert "<script>alert" not in page
    assert textarea(page, "final_text") == "My careful rewrite & more"
    assert textarea(page, "reason") == "A note <kept>"
    assert "tone" in chosen(page, "reason_codes")
    assert chosen(page, "corrected_urgency") == (
        ["critical"] if field == "corrected_urgency" else ["high"]
    )
    assert len(chosen(page, "corrected_category")) == 1
    assert not Decision.objects.exists()
    assert HumanTask.objects.get().status == TaskStatus.OPEN


# ---------------------------------------------------------------------------------------------
# Who may


def test_an_auditor_cannot_decide_but_reads_the_feedback(
    waiting_task, alice, carol, django_capture_on_commit_callbacks
):
    response = post_decision(
        client_for(carol),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="reject",
        reason="carol says no",
        reason_codes=["tone"],
    )
    assert response.status_code == 403
    assert not Decision.objects.exists()

    post_decision(
        client_for(alice),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="reject",
        reason="Handled by phone",
        reason_codes=["wrong_facts", "other"],
        corrected_urgency="normal",
    )
    page = html.unescape(client_for(carol).get(f"/approvals/{waiting_task.pk}/").content.decode())
    assert "alice</strong> rejected this" in page
    assert "Reason: Handled by phone" in page
    assert "Wrong facts" in page and "Other" in page
    assert "urgency: critical → normal" in page
    assert "characters changed" not in page, "nothing was sent: no edit size"


# ---------------------------------------------------------------------------------------------
# Escaping


def test_text_in_a_note_and_a_final_text_is_escaped_on_both_pages(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    post_decision(
        client_for(alice),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="edit",
        final_text=waiting_task.proposal["draft"] + "\n<script>alert('reply')</script>",
        reason='Customer wrote <img src=x onerror="alert(1)">',
        reason_codes=["other"],
    )
    client = client_for(alice)
    pages = {
        "task": client.get(f"/approvals/{waiting_task.pk}/").content.decode(),
        "run": client.get(f"/runs/{waiting_task.run_id}/").content.decode(),
    }
    for name, page in pages.items():
        assert "<script>alert" not in page, name
        assert "<img src=x" not in page, name
        assert "&lt;script&gt;alert(&#x27;reply&#x27;)&lt;/script&gt;" in page, name
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page, name
