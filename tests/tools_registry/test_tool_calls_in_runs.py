"""Tool calls inside real support-desk runs: a refund within the grant goes out with the
reply, a larger one waits for a person's approval of that exact call, and a grant revoked or
a tool switched off while a run waits is enforced when the run goes on."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orchestration.agents import registry, triage
from orchestration.engine.states import RunStatus, TaskKind, TaskStatus
from orchestration.models import HumanTask, Refund, Reply, Run
from orchestration.services.decisions import decide_task
from tests.conftest import client_for
from tools_registry.approvals import decide_tool_approval, expire_tool_approvals
from tools_registry.catalog import set_tool_enabled
from tools_registry.grants import revoke_grant
from tools_registry.models import Grant, PolicyViolation, ToolApproval, ToolCall


@pytest.fixture
def refund_triage(monkeypatch):
    """The classifier files every ticket as a refund request (the local model's reading of a
    short test ticket is not what these tests are about)."""

    def classify(ctx):
        result = triage.run(ctx)
        result.output.update(category="refund", category_confidence=0.95)
        return result

    monkeypatch.setitem(registry.AGENTS, "triage", classify)


@pytest.fixture
def refund_ticket(run_ticket, refund_triage):
    def start(amount: str) -> Run:
        return run_ticket(
            subject="Charged twice this month",
            body=f"You charged my card twice for March. Please refund {amount} EUR. Thanks, Ana",
        )

    return start


def approve_reply(run: Run, actor, captured) -> None:
    task = HumanTask.objects.get(run=run, kind=TaskKind.APPROVAL)
    with captured(execute=True):
        decide_task(task_id=task.pk, actor=actor, action="approve")
    run.refresh_from_db()


def test_a_refund_within_the_grant_goes_out_with_the_reply(
    refund_ticket, alice, django_capture_on_commit_callbacks
):
    run = refund_ticket("30")
    assert run.status == RunStatus.WAITING_HUMAN  # refund tickets always go to a person
    task = HumanTask.objects.get(run=run)
    assert task.proposal["refund"] == {"amount": "30.00", "currency": "EUR"}
    page = client_for(alice).get(f"/approvals/{task.pk}/").content.decode()
    assert "also issues the refund" in page and "30.00 EUR" in page
    approve_reply(run, alice, django_capture_on_commit_callbacks)
    assert run.status == RunStatus.SUCCEEDED
    refund = Refund.objects.get(run=run)
    assert (str(refund.amount), refund.currency) == ("30.00", "EUR")
    assert Reply.objects.filter(run=run).count() == 1
    assert not ToolApproval.objects.exists()
    assert run.steps.get(node="send").output["refund_id"] == refund.pk


def test_a_larger_refund_waits_for_a_person_to_approve_that_exact_call(
    refund_ticket, alice, bob, django_capture_on_commit_callbacks
):
    run = refund_ticket("120")
    approve_reply(run, alice, django_capture_on_commit_callbacks)
    assert run.status == RunStatus.WAITING_HUMAN
    assert Reply.objects.filter(run=run).count() == 1, "the reply went out; the refund waits"
    assert not Refund.objects.exists()
    task = HumanTask.objects.get(run=run, kind=TaskKind.TOOL_APPROVAL, status=TaskStatus.OPEN)
    assert task.proposal["tool"] == "issue_refund" and task.proposal["agent"] == "sender"
    assert task.proposal["arguments"]["amount"] == "120.00"
    assert "amount is above" in task.proposal["reason"]
    with django_capture_on_commit_callbacks(execute=True):
        decide_tool_approval(task_id=task.pk, actor=bob, approve=True)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert str(Refund.objects.get(run=run).amount) == "120.00"
    assert ToolApproval.objects.get().status == "used"
    assert Reply.objects.filter(run=run).count() == 1, "resuming did not send the reply again"


def test_a_rejected_refund_is_not_made_and_a_person_sees_why(
    refund_ticket, alice, bob, django_capture_on_commit_callbacks
):
    run = refund_ticket("120")
    approve_reply(run, alice, django_capture_on_commit_callbacks)
    task = HumanTask.objects.get(run=run, kind=TaskKind.TOOL_APPROVAL)
    with django_capture_on_commit_callbacks(execute=True):
        decide_tool_approval(task_id=task.pk, actor=bob, approve=False, reason="already refunded")
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_HUMAN and not Refund.objects.exists()
    held = HumanTask.objects.get(run=run, kind=TaskKind.EXCEPTION, status=TaskStatus.OPEN)
    assert "a person rejected this issue_refund call" in held.reason
    assert PolicyViolation.objects.get(run=run).failed_check == "approval_rejected"


def test_a_refund_above_the_grants_limit_is_refused_and_recorded(
    refund_ticket, alice, django_capture_on_commit_callbacks
):
    run = refund_ticket("900")
    approve_reply(run, alice, django_capture_on_commit_callbacks)
    assert run.status == RunStatus.WAITING_HUMAN and not Refund.objects.exists()
    violation = PolicyViolation.objects.get(run=run)
    assert violation.failed_check == "constraint" and "amount is at most" in violation.reason
    assert HumanTask.objects.filter(run=run, kind=TaskKind.EXCEPTION).exists()
    assert not ToolApproval.objects.exists()


def test_a_grant_revoked_while_the_run_waits_refuses_the_resumed_call(
    refund_ticket, alice, bob, django_capture_on_commit_callbacks
):
    run = refund_ticket("120")
    approve_reply(run, alice, django_capture_on_commit_callbacks)
    task = HumanTask.objects.get(run=run, kind=TaskKind.TOOL_APPROVAL)
    grant = Grant.objects.get(agent="sender", tool__name="issue_refund", revoked_at=None)
    revoke_grant(grant_id=grant.pk, actor=bob, reason="refunds move to finance")
    with django_capture_on_commit_callbacks(execute=True):
        decide_tool_approval(task_id=task.pk, actor=bob, approve=True)
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_HUMAN and not Refund.objects.exists()
    assert PolicyViolation.objects.get(run=run).failed_check == "no_grant"
    assert ToolApproval.objects.get().status == "approved", "the approval was never used"


def test_the_kill_switch_mid_run_stops_the_next_send(
    run_ticket, alice, bob, django_capture_on_commit_callbacks
):
    from tests.orchestration.test_runs import SECURITY
    from tools_registry.models import Tool

    run = run_ticket(**SECURITY)  # waits for a person
    outbox = Tool.objects.get(name="send_reply")
    set_tool_enabled(tool_id=outbox.pk, enabled=False, actor=bob, reason="mail provider incident")
    approve_reply(run, alice, django_capture_on_commit_callbacks)
    assert run.status == RunStatus.WAITING_HUMAN
    assert not Reply.objects.filter(run=run).exists()
    assert PolicyViolation.objects.get(run=run).failed_check == "disabled"
    held = HumanTask.objects.get(run=run, kind=TaskKind.EXCEPTION)
    assert "send_reply is switched off" in held.reason
    assert ToolCall.objects.get(run=run, tool="send_reply").status == "denied"


def test_an_unanswered_approval_expires_to_rejected(
    refund_ticket, alice, django_capture_on_commit_callbacks
):
    run = refund_ticket("120")
    approve_reply(run, alice, django_capture_on_commit_callbacks)
    ToolApproval.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert expire_tool_approvals() == 1
    task = HumanTask.objects.get(run=run, kind=TaskKind.TOOL_APPROVAL)
    assert task.status == TaskStatus.EXPIRED
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_HUMAN and not Refund.objects.exists()
    assert PolicyViolation.objects.get(run=run).failed_check == "approval_expired"
