"""The task page of a tool call waiting for a person: a refund above what the sender's grant
lets through alone (120 EUR; a person approves above 50) is shown exactly as the agent asked
for it, and approved or rejected there."""

import html
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from orchestration.agents import registry, triage
from orchestration.engine.states import DecisionOutcome, RunStatus, TaskKind, TaskStatus
from orchestration.models import Decision, HumanTask, Refund, Run
from orchestration.services.decisions import decide_task
from tests.conftest import client_for
from tests.console.test_approvals import csrf_token_in, messages_on, table_rows
from tools_registry.models import ToolApproval


@pytest.fixture
def refund_triage(monkeypatch):
    """The classifier files every ticket as a refund request."""

    def classify(ctx):
        result = triage.run(ctx)
        result.output["category"] = "refund"
        result.output["category_confidence"] = 0.95
        return result

    monkeypatch.setitem(registry.AGENTS, "triage", classify)


@pytest.fixture
def refund_run(run_ticket, refund_triage) -> Run:
    """A refund ticket's run, paused for a person to review the reply."""
    run = run_ticket(
        subject="Charged twice this month",
        body="You charged my card twice for March. Please refund 120 EUR. Thanks, Ana",
    )
    assert run.status == RunStatus.WAITING_HUMAN, "precondition: refunds go to a person"
    return run


@pytest.fixture
def tool_task(refund_run, bob, django_capture_on_commit_callbacks) -> HumanTask:
    """The open task asking a person to approve the sender's 120 EUR refund, once the
    reply was approved and sent."""
    review = HumanTask.objects.get(run=refund_run, kind=TaskKind.APPROVAL)
    with django_capture_on_commit_callbacks(execute=True):
        decide_task(task_id=review.pk, actor=bob, action="approve")
    return HumanTask.objects.get(
        run=refund_run, kind=TaskKind.TOOL_APPROVAL, status=TaskStatus.OPEN
    )


def page_of(client, task: HumanTask) -> str:
    response = client.get(f"/approvals/{task.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def decide_tool(client, task, captured, **fields):
    data = {"version": task.version, **fields}
    with captured(execute=True):
        return client.post(f"/approvals/{task.pk}/decide-tool/", data)


def nothing_changed(task: HumanTask) -> None:
    before = task.version
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN and task.version == before
    assert ToolApproval.objects.get(task=task).status == ToolApproval.Status.PENDING
    assert not Decision.objects.filter(task=task).exists()
    assert not Refund.objects.exists()


# ---------------------------------------------------------------------------------------------
# The page


def test_the_page_shows_the_exact_call_and_how_to_decide_it(tool_task, alice):
    page = page_of(client_for(alice), tool_task)
    text = html.unescape(page)
    assert "Approve this tool call?" in text
    assert "issue_refund" in text
    assert '<span class="pill risk risk-irreversible">irreversible</span>' in page
    assert re.search(r"<dt>Agent</dt><dd>sender</dd>", page)
    # The arguments, exactly as the agent asked for them, as JSON in a <pre>.
    arguments = re.search(r'<pre class="card call-arguments">(.*?)</pre>', page, re.S).group(1)
    assert "&quot;amount&quot;: &quot;120.00&quot;" in arguments
    assert "&quot;currency&quot;: &quot;EUR&quot;" in arguments
    assert "amount is above" in text, "why a person is asked"
    assert "expired" not in text
    assert f'href="/runs/{tool_task.run_id}/"' in page
    assert "Charged twice this month" in text
    assert "lets this one call through once, exactly as shown" in text
    assert f'action="/approvals/{tool_task.pk}/decide-tool/"' in page
    assert f'name="version" value="{tool_task.version}"' in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert 'value="approve"' in page and 'value="reject"' in page
    assert 'name="final_text"' not in page, "no reply editor for a tool call"


def test_arguments_are_shown_escaped_never_as_markup(tool_task, alice):
    # Arguments come from an agent, possibly shaped by the customer's text.
    proposal = tool_task.proposal
    proposal["arguments"]["reason"] = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    HumanTask.objects.filter(pk=tool_task.pk).update(proposal=proposal)
    page = page_of(client_for(alice), tool_task)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_an_expired_call_says_so_and_cannot_be_approved(
    tool_task, alice, django_capture_on_commit_callbacks
):
    past = timezone.now() - timedelta(minutes=1)
    ToolApproval.objects.filter(task=tool_task).update(expires_at=past)
    proposal = tool_task.proposal | {"expires_at": past.isoformat()}
    HumanTask.objects.filter(pk=tool_task.pk).update(proposal=proposal)
    client = client_for(alice)
    assert "This approval has expired" in page_of(client, tool_task)

    response = decide_tool(client, tool_task, django_capture_on_commit_callbacks, action="approve")
    assert response.status_code == 409
    assert "This approval had expired; the call was not made." in messages_on(
        response.content.decode()
    )
    assert not Refund.objects.exists()
    assert ToolApproval.objects.get(task=tool_task).status == ToolApproval.Status.EXPIRED


def test_the_queue_marks_the_task_as_a_tool_call(tool_task, alice):
    (row,) = table_rows(client_for(alice).get("/approvals/").content.decode(), "queue")
    assert row["links"][0] == f"/approvals/{tool_task.pk}/"
    why = row["cells"][4]
    assert why.startswith("tool call issue_refund")


# ---------------------------------------------------------------------------------------------
# Deciding


def test_approving_makes_the_call_once_and_the_run_finishes(
    tool_task, alice, django_capture_on_commit_callbacks
):
    client = client_for(alice, enforce_csrf_checks=True)
    token = csrf_token_in(page_of(client, tool_task))
    response = decide_tool(
        client,
        tool_task,
        django_capture_on_commit_callbacks,
        action="approve",
        csrfmiddlewaretoken=token,
    )
    assert response.status_code == 302
    assert response["Location"] == "/approvals/"
    run = tool_task.run
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    refund = Refund.objects.get()
    assert (refund.run_id, str(refund.amount), refund.currency) == (run.pk, "120.00", "EUR")
    assert ToolApproval.objects.get(task=tool_task).status == ToolApproval.Status.USED
    decision = Decision.objects.get(task=tool_task)
    assert (decision.outcome, decision.actor) == (DecisionOutcome.APPROVED, alice)
    assert f"Task {tool_task.pk}: the issue_refund call was approved." in messages_on(
        client.get("/approvals/").content.decode()
    )


def test_the_queue_filter_is_kept_on_the_way_back(
    tool_task, alice, django_capture_on_commit_callbacks
):
    response = decide_tool(
        client_for(alice),
        tool_task,
        django_capture_on_commit_callbacks,
        action="approve",
        queue="category=refund",
    )
    assert response["Location"] == "/approvals/?category=refund"


def test_rejecting_without_a_reason_changes_nothing(
    tool_task, alice, django_capture_on_commit_callbacks
):
    response = decide_tool(
        client_for(alice), tool_task, django_capture_on_commit_callbacks, action="reject"
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert '<p class="field-error" id="reason_error">A rejection needs a reason.</p>' in page
    assert 'aria-describedby="reason_error"' in page
    nothing_changed(tool_task)


def test_rejecting_with_a_reason_makes_no_call_and_the_run_waits(
    tool_task, alice, django_capture_on_commit_callbacks
):
    response = decide_tool(
        client_for(alice),
        tool_task,
        django_capture_on_commit_callbacks,
        action="reject",
        reason="Already refunded by bank transfer",
    )
    assert response.status_code == 302
    assert not Refund.objects.exists()
    run = tool_task.run
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_HUMAN
    held = HumanTask.objects.get(run=run, kind=TaskKind.EXCEPTION, status=TaskStatus.OPEN)
    assert "a person rejected this issue_refund call" in held.reason
    approval = ToolApproval.objects.get(task=tool_task)
    assert approval.status == ToolApproval.Status.REJECTED
    assert approval.decision_reason == "Already refunded by bank transfer"


def test_an_auditor_sees_the_call_but_cannot_decide_it(
    tool_task, carol, django_capture_on_commit_callbacks
):
    client = client_for(carol)
    page = page_of(client, tool_task)
    assert "issue_refund" in page and "&quot;120.00&quot;" in page
    assert "decide-tool" not in page
    assert "Your role can read this task but not decide it." in page
    response = decide_tool(client, tool_task, django_capture_on_commit_callbacks, action="approve")
    assert response.status_code == 403
    nothing_changed(tool_task)


def test_a_second_decision_is_refused_with_who_decided_first(
    tool_task, alice, bob, django_capture_on_commit_callbacks
):
    decide_tool(client_for(alice), tool_task, django_capture_on_commit_callbacks, action="approve")
    response = decide_tool(
        client_for(bob),
        tool_task,
        django_capture_on_commit_callbacks,
        action="reject",
        reason="too much",
    )
    assert response.status_code == 409
    (message,) = messages_on(response.content.decode())
    assert message.startswith("alice already approved this task at")
    assert Refund.objects.count() == 1
    assert Decision.objects.filter(task=tool_task).count() == 1


def test_a_stale_form_is_refused_as_a_conflict(
    tool_task, alice, django_capture_on_commit_callbacks
):
    response = decide_tool(
        client_for(alice),
        tool_task,
        django_capture_on_commit_callbacks,
        action="approve",
        version=tool_task.version + 1,
    )
    assert response.status_code == 409
    assert "This task changed since you opened it; reload to see it." in messages_on(
        response.content.decode()
    )
    nothing_changed(tool_task)


# ---------------------------------------------------------------------------------------------
# The other task actions turn a tool call away, and this one turns other tasks away


@pytest.mark.parametrize("action", ["decide", "resume"])
def test_the_reply_and_resume_actions_refuse_a_tool_call(
    tool_task, alice, django_capture_on_commit_callbacks, action
):
    client = client_for(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/approvals/{tool_task.pk}/{action}/",
            {"version": tool_task.version, "action": "approve"},
        )
    assert response.status_code == 302
    assert response["Location"] == f"/approvals/{tool_task.pk}/"
    assert "This task asks for a tool call's approval: approve or reject that call." in messages_on(
        client.get(response["Location"]).content.decode()
    )
    nothing_changed(tool_task)


def test_a_reply_task_cannot_be_decided_as_a_tool_call(
    refund_run, alice, django_capture_on_commit_callbacks
):
    review = HumanTask.objects.get(run=refund_run, kind=TaskKind.APPROVAL)
    client = client_for(alice)
    response = decide_tool(client, review, django_capture_on_commit_callbacks, action="approve")
    assert response["Location"] == f"/approvals/{review.pk}/"
    assert "This task does not ask for a tool call's approval." in messages_on(
        client.get(response["Location"]).content.decode()
    )
    review.refresh_from_db()
    assert review.status == TaskStatus.OPEN
