"""Runs through the whole support desk, in-process, on the real database."""

import pytest

from orchestration.engine.states import RunStatus, StepStatus, TaskStatus
from orchestration.models import HumanTask, Reply, Span, Step, Workflow
from orchestration.services.runs import start_run
from orchestration.services.steps import execute_step
from orchestration.services.workflows import ensure_workflow_version, support_desk_version
from orchestration.workflows import support_desk as support_desk_workflow

HOW_TO = {
    "subject": "how do i put my logo on invoices",
    "body": "Hello! Where can I upload our company logo so it shows on the invoice PDF? "
    "Also can I change the invoice template colours? Thanks a lot, Mia",
}
SECURITY = {
    "subject": "Someone logged into our account from Brazil",
    "body": "We got a new sign-in alert from Sao Paulo at 3am. Nobody here was awake. "
    "Our bank details may have been changed. Please lock the account now!",
}


def test_a_clear_how_to_question_is_answered_without_a_person(autonomous, run_ticket):
    run = run_ticket(**HOW_TO)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.outcome == "auto_sent"
    assert [s.node for s in run.steps.all()] == ["triage", "research", "draft", "decide", "send"]
    reply = Reply.objects.get(run=run)
    assert reply.body.startswith("Hi Mia,")
    assert reply.approved_by is None
    assert run.state["draft"]["citations"], "the draft cites the article it used"


def test_a_security_incident_waits_for_a_person(run_ticket):
    run = run_ticket(**SECURITY)
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_HUMAN
    task = HumanTask.objects.get(run=run)
    assert task.status == TaskStatus.OPEN
    assert task.category == "security"
    assert "security tickets always go to a person" in task.proposal["reasons"]
    assert task.proposal["draft"]
    assert not Reply.objects.filter(run=run).exists()
    review = run.steps.get(node="review")
    assert review.status == StepStatus.WAITING_HUMAN


def test_every_agent_step_leaves_a_span_with_gen_ai_attributes(autonomous, run_ticket):
    run = run_ticket(**HOW_TO)
    agent_spans = Span.objects.filter(run=run, kind=Span.Kind.AGENT)
    assert agent_spans.count() == 5
    model_span = Span.objects.get(run=run, kind=Span.Kind.MODEL, step__node="draft")
    assert model_span.attributes["gen_ai.operation.name"] == "chat"
    assert model_span.attributes["gen_ai.usage.output_tokens"] > 0
    assert model_span.parent.kind == Span.Kind.AGENT


def test_a_step_delivered_twice_does_its_work_once(
    autonomous, support_desk, django_capture_on_commit_callbacks
):
    from orchestration.models import Ticket

    ticket = Ticket.objects.create(customer_email="x@example.com", **HOW_TO)
    with django_capture_on_commit_callbacks(execute=False):
        run = start_run(ticket=ticket)
    first = run.steps.get(sequence=1)
    with django_capture_on_commit_callbacks(execute=False):
        execute_step(step_id=first.pk)
        execute_step(step_id=first.pk)  # the redelivered message
    # The first delivery ran the whole run (each step's worker claims the next one); the
    # second found the step taken and did nothing.
    steps = list(Step.objects.filter(run=run))
    assert [s.node for s in steps] == ["triage", "research", "draft", "decide", "send"]
    assert {(s.status, s.attempt) for s in steps} == {(StepStatus.SUCCEEDED, 1)}
    assert Span.objects.filter(run=run, kind=Span.Kind.AGENT).count() == 5
    assert Reply.objects.filter(run=run).count() == 1


def test_a_run_keeps_the_workflow_version_it_started_on(support_desk, run_ticket):
    first_version = support_desk_version()
    run = run_ticket(**SECURITY)
    changed = {**support_desk_workflow.CONFIG, "auto_send_thresholds": {"how_to": 0.99}}
    second_version = ensure_workflow_version(
        definition=support_desk_workflow.DEFINITION, config=changed
    )
    assert second_version.version == first_version.version + 1
    run.refresh_from_db()
    assert run.workflow_id == first_version.pk
    again = ensure_workflow_version(definition=support_desk_workflow.DEFINITION, config=changed)
    assert again.pk == second_version.pk, "an unchanged definition makes no new version"
    assert Workflow.objects.filter(name="support_desk").count() == 2


def test_an_agent_that_crashes_fails_the_run_with_a_readable_reason(run_ticket, monkeypatch):
    from orchestration.agents import registry

    def broken(ctx):
        raise RuntimeError("knowledge base unavailable")

    monkeypatch.setitem(registry.AGENTS, "research", broken)
    run = run_ticket(**HOW_TO)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "knowledge base unavailable" in run.error
    assert run.steps.get(node="research").status == StepStatus.FAILED
    assert not run.steps.filter(node="draft").exists()


def test_a_category_the_workflow_always_gives_a_person_never_auto_sends(
    autonomous, run_ticket, monkeypatch
):
    """Even where the category earned autonomy and the decider would send it."""
    from orchestration.workflows import support_desk as module

    held = {**module.CONFIG, "always_human_categories": ["how_to"]}
    monkeypatch.setattr(module, "CONFIG", held)
    run = run_ticket(**HOW_TO)
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_HUMAN
    assert "how to tickets always go to a person" in run.state["decide"]["reasons"]
    assert run.state["decide"]["would_send"] is False


def test_a_step_whose_worker_died_is_handed_back_and_finished(
    autonomous, support_desk, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from orchestration.models import Ticket
    from orchestration.services.sweeper import requeue_expired_steps

    ticket = Ticket.objects.create(customer_email="x@example.com", **HOW_TO)
    with django_capture_on_commit_callbacks(execute=False):
        run = start_run(ticket=ticket)
    first = run.steps.get(sequence=1)
    # A worker claimed the step, then died: the step is running with a lease in the past.
    Step.objects.filter(pk=first.pk).update(
        status=StepStatus.RUNNING, attempt=1, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert requeue_expired_steps() == 1
    run.refresh_from_db()
    first.refresh_from_db()
    assert first.status == StepStatus.SUCCEEDED
    assert first.attempt == 2
    assert run.status == RunStatus.SUCCEEDED
    assert Reply.objects.filter(run=run).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert requeue_expired_steps() == 0, "nothing is left to sweep"


def test_a_step_whose_message_was_lost_is_sent_again(
    autonomous, support_desk, django_capture_on_commit_callbacks, settings
):
    from datetime import timedelta

    from django.utils import timezone

    from orchestration.models import Ticket
    from orchestration.services.sweeper import requeue_expired_steps

    ticket = Ticket.objects.create(customer_email="x@example.com", **HOW_TO)
    with django_capture_on_commit_callbacks(execute=False):
        run = start_run(ticket=ticket)  # committed, but its message never reaches a worker
    with django_capture_on_commit_callbacks(execute=True):
        assert requeue_expired_steps() == 0, "a freshly queued step is left alone"
    Step.objects.filter(run=run).update(
        queued_at=timezone.now() - timedelta(seconds=settings.STEP_REDISPATCH_SECONDS + 1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert requeue_expired_steps() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert Reply.objects.filter(run=run).count() == 1


def test_the_reply_is_sent_through_the_gateway_and_recorded_once(autonomous, run_ticket):
    from tools_registry.models import ToolCall

    run = run_ticket(**HOW_TO)
    call = ToolCall.objects.get(run=run, tool="send_reply")
    assert (call.tool, call.agent, call.status) == ("send_reply", "sender", "succeeded")
    assert call.idempotency_key == f"run:{run.pk}:step:5:call:0"
    assert call.result == {"reply_id": Reply.objects.get(run=run).pk}


def test_a_workflow_version_with_malformed_limits_is_refused_by_name(db):
    with pytest.raises(ValueError, match="limits.max_steps must be a positive number"):
        ensure_workflow_version(
            definition=support_desk_workflow.DEFINITION,
            config={**support_desk_workflow.CONFIG, "limits": {"max_steps": "ten"}},
        )
    with pytest.raises(ValueError, match="unknown limits: max_stpes"):
        ensure_workflow_version(
            definition=support_desk_workflow.DEFINITION,
            config={**support_desk_workflow.CONFIG, "limits": {"max_stpes": 3}},
        )
    assert not Workflow.objects.exists()
