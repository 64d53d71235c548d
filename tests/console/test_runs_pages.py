"""The runs list and the run page: every step, the person's decision and the reply."""

import html
import re

import pytest

from orchestration.engine.states import RunStatus
from orchestration.models import HumanTask
from tests.conftest import client_for
from tests.console.test_approvals import post_decision, table_rows
from tests.orchestration.test_runs import HOW_TO, SECURITY

STEP_CARD = re.compile(
    r'<li class="card step step-([a-z_]+)" id="step-(\d+)">(.*?)</li>'
    r'\s*(?=<li class="card step|</ol>)',
    re.S,
)
DURATION = re.compile(r"attempt (\d+) · (\d+(?:\.\d+)? (?:ms|s|min))")


def steps_on(page: str) -> list[dict]:
    """Each step card of the run page, in page order: its number, node, status, duration, and
    the text of its input and output blocks (unescaped)."""
    cards = STEP_CARD.findall(page)
    steps = []
    for status, sequence, body in cards:
        header = re.search(r"<header>(.*?)</header>", body, re.S).group(1)
        node = re.search(r"<strong>(.*?)</strong>", header).group(1)
        duration = DURATION.search(header)
        blocks = dict(re.findall(r"<summary>(Input|Output)</summary><pre>(.*?)</pre>", body, re.S))
        steps.append(
            {
                "sequence": int(sequence),
                "node": node,
                "status": status,
                "duration": duration.group(2) if duration else None,
                "input": html.unescape(blocks.get("Input", "")),
                "output": html.unescape(blocks.get("Output", "")),
                "body": body,
            }
        )
    return steps


def test_an_auto_sent_run_shows_every_step_in_order_with_its_input_output_and_time(
    autonomous, run_ticket, alice
):
    run = run_ticket(**HOW_TO)
    page = client_for(alice).get(f"/runs/{run.pk}/").content.decode()
    steps = steps_on(page)
    assert [(s["sequence"], s["node"]) for s in steps] == [
        (1, "triage"),
        (2, "research"),
        (3, "draft"),
        (4, "decide"),
        (5, "send"),
    ]
    stored = {s.sequence: s for s in run.steps.all()}
    for step in steps:
        assert step["status"] == "succeeded"
        assert step["duration"] is not None, f"step {step['node']} shows no duration"
        assert step["output"], f"step {step['node']} shows no output"
    assert '"category": "how_to"' in steps[0]["output"]
    assert f'"text_chars": {stored[1].input["text_chars"]}' in steps[0]["input"]
    assert '"route": "auto_send"' in steps[3]["output"]
    text = html.unescape(page)
    assert "Reply in the outbox" in text
    assert "sent automatically" in text
    assert run.replies.get().body in text


def test_a_run_waiting_for_a_person_links_to_its_task(run_ticket, carol):
    run = run_ticket(**SECURITY)
    task = HumanTask.objects.get(run=run)
    page = client_for(carol).get(f"/runs/{run.pk}/").content.decode()
    steps = steps_on(page)
    assert [s["node"] for s in steps] == ["triage", "research", "draft", "decide", "review"]
    review = steps[-1]
    assert review["status"] == "waiting_human"
    assert f'<a href="/approvals/{task.pk}/">task {task.pk}</a>' in review["body"]
    assert "Reply in the outbox" not in page


def test_an_edited_decision_appears_as_a_step_with_who_why_and_the_changed_lines(
    run_ticket, alice, carol, django_capture_on_commit_callbacks
):
    run = run_ticket(**SECURITY)
    task = HumanTask.objects.get(run=run)
    draft = task.proposal["draft"]
    first_line = draft.splitlines()[0]
    edited = draft.replace(first_line, "Hello from the security team,", 1) + (
        "\nWe have locked your account as a precaution."
    )
    post_decision(
        client_for(alice),
        task,
        django_capture_on_commit_callbacks,
        action="edit",
        final_text=edited,
        reason="Told them we locked it",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED

    page = client_for(carol).get(f"/runs/{run.pk}/").content.decode()
    steps = steps_on(page)
    assert [s["node"] for s in steps] == [
        "triage",
        "research",
        "draft",
        "decide",
        "review",
        "send",
    ]
    review = steps[4]
    assert review["status"] == "succeeded"
    assert "person" in review["body"]
    assert review["duration"] is not None
    said = html.unescape(review["body"])
    assert "alice</strong> edited at" in said
    assert "“Told them we locked it”" in said
    diff = dict(
        (html.unescape(text).strip(), op)
        for op, text in re.findall(r'<div class="diff-(\w+)">(.*?)</div>', review["body"], re.S)
    )
    assert diff["− " + first_line] == "delete"
    assert diff["+ Hello from the security team,"] == "insert"
    assert diff["+ We have locked your account as a precaution."] == "insert"
    assert '"decided_by": "alice"' in review["output"]

    text = html.unescape(page)
    assert "approved by alice" in text
    reply_block = text.split("Reply in the outbox", 1)[1]
    assert "We have locked your account as a precaution." in reply_block
    assert "Hello from the security team," in reply_block


def test_a_rejected_decision_shows_the_reason_and_no_reply(
    run_ticket, alice, django_capture_on_commit_callbacks
):
    run = run_ticket(**SECURITY)
    task = HumanTask.objects.get(run=run)
    post_decision(
        client_for(alice),
        task,
        django_capture_on_commit_callbacks,
        action="reject",
        reason="Handled by phone",
    )
    page = client_for(alice).get(f"/runs/{run.pk}/").content.decode()
    steps = steps_on(page)
    assert [s["node"] for s in steps] == ["triage", "research", "draft", "decide", "review"]
    said = html.unescape(steps[-1]["body"])
    assert "alice</strong> rejected at" in said
    assert "“Handled by phone”" in said
    assert 'class="diff' not in steps[-1]["body"]
    assert "Reply in the outbox" not in page


def test_an_htmx_request_gets_only_the_run_body(run_ticket, alice):
    run = run_ticket(**HOW_TO)
    response = client_for(alice).get(f"/runs/{run.pk}/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    fragment = response.content.decode().strip()
    assert fragment.startswith('<div id="run-body"')
    assert fragment.endswith("</div>")
    assert "<html" not in fragment and "<nav" not in fragment
    assert len(steps_on(fragment)) == 5


def test_an_unknown_run_is_not_found(support_desk, alice):
    response = client_for(alice).get("/runs/999999/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode()


def test_the_runs_list_shows_newest_first_and_filters_by_status(autonomous, run_ticket, alice):
    sent = run_ticket(**HOW_TO)
    waiting = run_ticket(**SECURITY)
    client = client_for(alice)
    rows = table_rows(client.get("/runs/").content.decode(), "runs")
    assert [row["links"][0] for row in rows] == [f"/runs/{waiting.pk}/", f"/runs/{sent.pk}/"]
    assert rows[0]["cells"][2] == "waiting human"
    assert rows[1]["cells"][2:4] == ["succeeded", "auto sent"]

    rows = table_rows(client.get("/runs/?status=waiting_human").content.decode(), "runs")
    assert [row["links"][0] for row in rows] == [f"/runs/{waiting.pk}/"]


@pytest.mark.parametrize("query", ["status=bogus", "page=abc", "page=-1"])
def test_the_runs_list_survives_a_bad_query(run_ticket, alice, query):
    run_ticket(**HOW_TO)
    response = client_for(alice).get(f"/runs/?{query}")
    assert response.status_code == 200
    assert len(table_rows(response.content.decode(), "runs")) == 1


def test_an_operator_resumes_a_paused_run_from_its_task_page(
    autonomous, run_ticket, alice, monkeypatch, django_capture_on_commit_callbacks
):
    from orchestration.models import HumanTask
    from orchestration.workflows import support_desk

    monkeypatch.setattr(support_desk, "CONFIG", {**support_desk.CONFIG, "limits": {"max_steps": 2}})
    run = run_ticket(**HOW_TO)
    task = HumanTask.objects.get(run=run)
    client = client_for(alice)
    page = client.get(f"/approvals/{task.pk}/").content.decode()
    assert "Run paused" in page and "taken 2 steps, its limit" in page
    assert "Resume with more budget" in page and "Cancel run" in page
    queue = client.get("/approvals/").content.decode()
    assert "Run paused:" in queue
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/approvals/{task.pk}/resume/", {"version": task.version})
    assert response["Location"] == f"/runs/{run.pk}/"
    run.refresh_from_db()
    assert run.status == "succeeded"


def test_cancelling_from_the_run_page_needs_a_reason(run_ticket, alice):
    from orchestration.models import HumanTask

    run = run_ticket(**SECURITY)
    client = client_for(alice)
    assert "Cancel this run" in client.get(f"/runs/{run.pk}/").content.decode()
    response = client.post(f"/runs/{run.pk}/cancel/", {"reason": ""}, follow=True)
    assert "Cancelling a run needs a reason." in response.content.decode()
    run.refresh_from_db()
    assert run.status == "waiting_human"
    client.post(f"/runs/{run.pk}/cancel/", {"reason": "customer withdrew the ticket"})
    run.refresh_from_db()
    assert run.status == "cancelled"
    assert HumanTask.objects.get(run=run).status == "cancelled"
    assert "Cancel this run" not in client.get(f"/runs/{run.pk}/").content.decode()
