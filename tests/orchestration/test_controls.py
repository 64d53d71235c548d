"""Limits pause a run for a person; transient failures are retried; operators resume or cancel."""

import dataclasses

import pytest

from orchestration.engine.states import DecisionOutcome, RunStatus, StepStatus, TaskKind, TaskStatus
from orchestration.models import AuditEvent, HumanTask, Reply, Span
from orchestration.providers import TransientProviderError
from orchestration.services.controls import RunControlError, cancel_run, resume_run
from orchestration.services.decisions import DecisionError, TaskConflict, decide_task
from tests.conftest import client_for
from tests.orchestration.test_runs import HOW_TO, SECURITY


@pytest.fixture
def limits(monkeypatch):
    """Give the support desk these limits (a new workflow version, as in production)."""
    from orchestration.workflows import support_desk

    def set_limits(**values):
        monkeypatch.setattr(support_desk, "CONFIG", {**support_desk.CONFIG, "limits": values})

    return set_limits


def test_a_run_that_reaches_its_step_limit_pauses_for_a_person(run_ticket, limits):
    limits(max_steps=2)
    run = run_ticket(**HOW_TO)
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_HUMAN
    task = HumanTask.objects.get(run=run)
    assert task.kind == TaskKind.EXCEPTION
    assert "taken 2 steps, its limit" in task.reason
    held = run.steps.get(sequence=3)
    assert (held.node, held.status) == ("draft", StepStatus.WAITING_HUMAN)
    assert Span.objects.filter(run=run, kind=Span.Kind.POLICY, name="limit reached").exists()
    assert AuditEvent.objects.filter(action="run.paused", object_id=str(run.pk)).exists()


def test_resuming_with_more_budget_finishes_the_run(
    autonomous, run_ticket, limits, alice, django_capture_on_commit_callbacks
):
    limits(max_steps=2)
    run = run_ticket(**HOW_TO)
    task = HumanTask.objects.get(run=run)
    with django_capture_on_commit_callbacks(execute=True):
        decision = resume_run(task_id=task.pk, actor=alice, expected_version=task.version)
    assert decision.outcome == DecisionOutcome.RESUMED
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.extra_budget["steps"] == 10
    assert Reply.objects.filter(run=run).count() == 1
    with pytest.raises(TaskConflict):
        resume_run(task_id=task.pk, actor=alice)


def test_a_token_budget_pauses_the_run_before_it_spends_more(run_ticket, limits):
    limits(max_tokens=50)
    run = run_ticket(**HOW_TO)
    run.refresh_from_db()
    task = HumanTask.objects.get(run=run)
    assert "tokens of its budget of 50" in task.reason
    assert run.steps.get(status=StepStatus.WAITING_HUMAN).node == "decide"


def test_a_paused_run_cannot_be_approved_like_a_draft(run_ticket, limits, alice):
    limits(max_steps=2)
    task = HumanTask.objects.get(run=run_ticket(**HOW_TO))
    with pytest.raises(DecisionError, match="paused run"):
        decide_task(task_id=task.pk, actor=alice, action="approve")


def test_a_transient_failure_is_retried_and_the_run_goes_on(autonomous, run_ticket, monkeypatch):
    from orchestration.agents import registry, research

    failures = []

    def flaky(ctx):
        if len(failures) < 2:
            failures.append(1)
            raise TransientProviderError("search timed out")
        return research.run(ctx)

    monkeypatch.setitem(registry.AGENTS, "research", flaky)
    run = run_ticket(**HOW_TO)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    step = run.steps.get(node="research")
    assert step.attempt == 3
    assert AuditEvent.objects.filter(action="step.retrying").count() == 2


def test_a_failure_that_stays_transient_gives_up_after_the_last_attempt(run_ticket, monkeypatch):
    from orchestration.agents import registry

    def down(ctx):
        raise TransientProviderError("model server answered 503")

    monkeypatch.setitem(registry.AGENTS, "drafter", down)
    run = run_ticket(**HOW_TO)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "gave up after 4 attempts" in run.error
    assert run.steps.get(node="draft").attempt == 4


def test_a_permanent_failure_is_not_retried(run_ticket, monkeypatch):
    from orchestration.agents import registry
    from orchestration.providers import PermanentProviderError

    def refused(ctx):
        raise PermanentProviderError("model server refused the request (401)")

    monkeypatch.setitem(registry.AGENTS, "drafter", refused)
    run = run_ticket(**HOW_TO)
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.steps.get(node="draft").attempt == 1
    assert "401" in run.error


def test_cancelling_a_waiting_run_closes_its_task_and_sends_nothing(
    run_ticket, alice, django_capture_on_commit_callbacks
):
    run = run_ticket(**SECURITY)
    task = HumanTask.objects.get(run=run)
    with pytest.raises(RunControlError, match="needs a reason"):
        cancel_run(run_id=run.pk, actor=alice, reason=" ")
    cancel_run(run_id=run.pk, actor=alice, reason="customer phoned; handled by phone")
    run.refresh_from_db()
    task.refresh_from_db()
    assert (run.status, run.outcome) == (RunStatus.CANCELLED, "cancelled")
    assert "alice" in run.error
    assert task.status == TaskStatus.CANCELLED
    assert run.steps.get(node="review").status == StepStatus.CANCELLED
    with pytest.raises(TaskConflict):
        decide_task(task_id=task.pk, actor=alice, action="approve")
    assert not Reply.objects.filter(run=run).exists()
    event = AuditEvent.objects.get(action="run.cancelled")
    assert event.actor == alice
    with pytest.raises(RunControlError, match="already cancelled"):
        cancel_run(run_id=run.pk, actor=alice, reason="again")


def test_an_operator_retries_a_failed_step_once_the_cause_is_mended(
    autonomous, run_ticket, monkeypatch, alice, django_capture_on_commit_callbacks
):
    from orchestration.agents import registry
    from orchestration.providers import PermanentProviderError
    from orchestration.services.controls import retry_failed_step

    original = registry.AGENTS["drafter"]

    def refused(ctx):
        raise PermanentProviderError("model server refused the request (401)")

    monkeypatch.setitem(registry.AGENTS, "drafter", refused)
    run = run_ticket(**HOW_TO)
    monkeypatch.setitem(registry.AGENTS, "drafter", original)  # the key is fixed
    with pytest.raises(RunControlError, match="not failed"):
        retry_failed_step(run_id=run_ticket(**SECURITY).pk, actor=alice)
    with django_capture_on_commit_callbacks(execute=True):
        retry_failed_step(run_id=run.pk, actor=alice)
    run.refresh_from_db()
    assert (run.status, run.outcome, run.error) == (RunStatus.SUCCEEDED, "auto_sent", "")
    draft = run.steps.get(node="draft")
    assert (draft.status, draft.attempt) == (StepStatus.SUCCEEDED, 2)
    assert run.steps.filter(node="triage").get().attempt == 1, "earlier steps are not redone"
    assert AuditEvent.objects.get(action="step.retried").actor == alice


def test_an_invalid_output_is_sent_back_with_its_errors_and_the_fix_is_used(
    autonomous, run_ticket, monkeypatch
):
    from orchestration.agents import drafter, registry

    seen_feedback = []

    def sloppy(ctx):
        seen_feedback.append(ctx.feedback)
        result = drafter.run(ctx)
        if not ctx.feedback:
            result.output = {"text": "", "citations": "none"}
        return result

    monkeypatch.setitem(registry.AGENTS, "drafter", sloppy)
    run = run_ticket(**HOW_TO)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert seen_feedback[0] == ()
    assert any("citations" in problem for problem in seen_feedback[1])
    assert any("text" in problem for problem in seen_feedback[1])


def test_an_agent_that_never_fits_its_schema_pauses_the_run_for_a_person(
    autonomous, run_ticket, monkeypatch, alice, django_capture_on_commit_callbacks
):
    from orchestration.agents import decider, registry

    asks = []

    def confused(ctx):
        asks.append(1)
        result = decider.run(ctx)
        result.output = {**result.output, "route": "maybe"}
        return result

    monkeypatch.setitem(registry.AGENTS, "decider", confused)
    run = run_ticket(**HOW_TO)
    run.refresh_from_db()
    assert len(asks) == 3, "asked once and re-asked twice"
    assert run.status == RunStatus.WAITING_HUMAN
    task = HumanTask.objects.get(run=run)
    assert task.kind == TaskKind.EXCEPTION
    assert "decider returned output that breaks its schema 3 times" in task.reason
    assert "route: 'maybe' is not one of" in task.reason
    step = run.steps.get(node="decide")
    assert (step.status, step.error_kind) == (StepStatus.WAITING_HUMAN, "invalid_output")
    assert Span.objects.filter(run=run, kind=Span.Kind.POLICY, name="invalid output").exists()
    monkeypatch.setitem(registry.AGENTS, "decider", decider.run)  # the agent is mended
    with django_capture_on_commit_callbacks(execute=True):
        resume_run(task_id=task.pk, actor=alice)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED


def test_a_step_past_its_workflows_soft_time_limit_is_interrupted_and_retried(
    autonomous, run_ticket, limits, monkeypatch
):
    import time as clock

    from orchestration.agents import registry, research

    limits(step_soft_seconds=1.5, step_hard_seconds=30)
    calls = []

    def slow_once(ctx):
        calls.append(clock.monotonic())
        if len(calls) == 1:
            clock.sleep(30)  # a model that hangs; the timer interrupts it
        return research.run(ctx)

    monkeypatch.setitem(registry.AGENTS, "research", slow_once)
    started = clock.monotonic()
    run = run_ticket(**HOW_TO)
    assert clock.monotonic() - started < 20, "the hung call was not interrupted"
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.steps.get(node="research").attempt == 2
    retry = AuditEvent.objects.get(action="step.retrying")
    assert "soft time limit of 1.5 s" in retry.after["error"]


def test_a_steps_lease_is_its_workflows_hard_time_limit(run_ticket, limits, monkeypatch):
    from orchestration.agents import registry, research
    from orchestration.models import Step

    limits(step_soft_seconds=5, step_hard_seconds=45)
    leases = []

    def note_lease(ctx):
        step = Step.objects.get(run_id=ctx.run_id, sequence=ctx.step_sequence)
        leases.append((step.lease_expires_at - step.started_at).total_seconds())
        return research.run(ctx)

    monkeypatch.setitem(registry.AGENTS, "research", note_lease)
    run_ticket(**HOW_TO)
    assert leases == [45.0]


def test_a_soft_limit_above_the_hard_one_is_refused():
    from orchestration.engine.limits import Limits

    with pytest.raises(ValueError, match="step_soft_seconds"):
        Limits.from_config({"limits": {"step_soft_seconds": 200, "step_hard_seconds": 100}})


def test_a_failing_tool_trips_its_breaker_and_later_runs_wait_for_a_person(
    autonomous, run_ticket, monkeypatch, settings, alice, django_capture_on_commit_callbacks
):
    import time as clock

    from tools_registry import builtin
    from tools_registry.models import ToolBreaker

    settings.TOOL_BREAKER_FAILURES = 2
    settings.TOOL_BREAKER_COOLDOWN_SECONDS = 30
    real = builtin.BUILTIN_TOOLS["send_reply"]

    def outbox_down(arguments, key):
        raise ConnectionError("outbox unreachable")

    monkeypatch.setitem(
        builtin.BUILTIN_TOOLS,
        "send_reply",
        dataclasses.replace(real, handler=outbox_down),
    )
    first, second = run_ticket(**HOW_TO), run_ticket(**HOW_TO)
    for run in (first, second):
        run.refresh_from_db()
        assert run.status == RunStatus.FAILED and "outbox unreachable" in run.error
    assert ToolBreaker.objects.get(tool="send_reply").state == "open"

    third = run_ticket(**HOW_TO)
    third.refresh_from_db()
    assert third.status == RunStatus.WAITING_HUMAN, "not failed: paused until the tool recovers"
    task = HumanTask.objects.get(run=third)
    assert task.kind == TaskKind.EXCEPTION and "circuit breaker is open" in task.reason
    assert third.steps.get(node="send").error_kind == "circuit_open"
    assert AuditEvent.objects.filter(action="tool.breaker_open").count() == 1
    # The operator deciding what to do sees which tool is failing and when a resume may probe.
    page = client_for(alice).get(f"/approvals/{task.pk}/").content.decode()
    assert "Tools that are failing" in page
    assert "<strong>send_reply</strong>: circuit breaker" in page and "2 recent failures" in page
    assert "is let through as a test call" in page

    monkeypatch.setitem(builtin.BUILTIN_TOOLS, "send_reply", real)  # the outbox is back
    later = clock.time() + 31
    monkeypatch.setattr("tools_registry.breakers.time.time", lambda: later)
    with django_capture_on_commit_callbacks(execute=True):
        resume_run(task_id=task.pk, actor=alice)
    third.refresh_from_db()
    assert third.status == RunStatus.SUCCEEDED, "the probe went through and closed the breaker"
    assert ToolBreaker.objects.get(tool="send_reply").state == "closed"
    assert Reply.objects.filter(run=third).count() == 1


def test_a_soft_limit_never_cuts_a_transaction_the_step_opened(
    autonomous, run_ticket, limits, monkeypatch
):
    import time as clock

    from django.db import transaction

    from orchestration.agents import registry, research
    from orchestration.models import Ticket

    limits(step_soft_seconds=1, step_hard_seconds=30)
    finished_inside = []

    def slow_in_a_transaction(ctx):
        if not finished_inside:
            with transaction.atomic():
                Ticket.objects.count()
                clock.sleep(2)  # the limit passes here, inside the step's own transaction
                Ticket.objects.count()
                finished_inside.append(True)
        return research.run(ctx)

    monkeypatch.setitem(registry.AGENTS, "research", slow_in_a_transaction)
    run = run_ticket(**HOW_TO)
    run.refresh_from_db()
    assert finished_inside == [True], "the transaction ran to its end before the interrupt"
    assert run.status == RunStatus.SUCCEEDED
    assert run.steps.get(node="research").attempt == 2


def test_limits_are_checked_against_the_deployments_defaults_and_bounded(db, settings):
    from orchestration.services.workflows import ensure_workflow_version
    from orchestration.workflows import support_desk

    settings.STEP_SOFT_TIME_LIMIT_SECONDS = 100
    with pytest.raises(ValueError, match="must not exceed"):
        ensure_workflow_version(
            definition=support_desk.DEFINITION,
            config={**support_desk.CONFIG, "limits": {"step_hard_seconds": 90}},
        )
    with pytest.raises(ValueError, match="must be at most"):
        ensure_workflow_version(
            definition=support_desk.DEFINITION,
            config={**support_desk.CONFIG, "limits": {"step_hard_seconds": 1e300}},
        )


def test_a_real_send_must_name_its_reply():
    from orchestration.agents.schemas import output_problems

    assert output_problems("sender", {"outcome": "sent", "reply_id": None})
    assert not output_problems("sender", {"outcome": "sent", "reply_id": 7})
    assert not output_problems("sender", {"outcome": "sent", "reply_id": None, "executed": False})
