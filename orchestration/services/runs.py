"""Runs and steps: start a run, execute a step, move the run on."""

import logging
import random
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from orchestration.agents.base import AgentContext, AgentResult, TicketView
from orchestration.agents.registry import get_agent
from orchestration.agents.schemas import output_problems
from orchestration.engine.limits import limit_reached, retry_delay
from orchestration.engine.planner import NoRoute, next_node
from orchestration.engine.states import RunStatus, StepStatus, check_run_transition
from orchestration.engine.workflow import NodeKind
from orchestration.models import Run, Span, Step, Ticket, Workflow
from orchestration.services import live
from orchestration.services.audit import record_event
from orchestration.services.dispatch import enqueue_step_on_commit
from orchestration.services.failures import (
    fail_step,
    hold_for_person,
    hold_step,
    retry_step,
)
from orchestration.services.workflows import support_desk_version

logger = logging.getLogger(__name__)
_jitter = random.SystemRandom()


def exc_kind(exc: Exception) -> str:
    """The error kind an exception declares (providers and the gateway do); else permanent."""
    return str(getattr(exc, "kind", "permanent"))


def start_run(*, ticket: Ticket, workflow: Workflow | None = None) -> Run:
    """Start a workflow version (by default the current support desk) for a ticket; the run is
    pinned to that version. The first step is queued when the caller's transaction commits."""
    workflow = workflow or support_desk_version()
    definition = workflow.parsed
    first = definition.node(definition.start)
    with transaction.atomic():
        run = Run.objects.create(workflow=workflow, ticket=ticket)
        step = Step.objects.create(
            run=run, sequence=1, node=first.name, kind=first.kind, agent=first.agent or ""
        )
        enqueue_step_on_commit(step.pk)
    return run


def execute_step(*, step_id: int) -> None:
    """Claim a pending step and run it. Only one conditional update from ``pending`` can claim
    a step, so a second delivery of the same message finds nothing to do and returns."""
    now = timezone.now()
    claimed = Step.objects.filter(pk=step_id, status=StepStatus.PENDING).update(
        status=StepStatus.RUNNING,
        attempt=F("attempt") + 1,
        started_at=now,
        lease_expires_at=now + timedelta(seconds=settings.STEP_LEASE_SECONDS),
    )
    if not claimed:
        logger.info("step %s is not pending; nothing to do", step_id)
        return
    step = Step.objects.select_related("run__workflow", "run__ticket").get(pk=step_id)
    run = step.run
    if run.is_final:
        Step.objects.filter(pk=step.pk, status=StepStatus.RUNNING).update(
            status=StepStatus.CANCELLED, finished_at=timezone.now(), lease_expires_at=None
        )
        return
    if step.kind == NodeKind.HUMAN:
        from orchestration.services.human import open_review_task

        open_review_task(step=step)
        return
    context = AgentContext(
        run_id=run.pk,
        step_sequence=step.sequence,
        ticket=TicketView(
            id=run.ticket.pk,
            subject=run.ticket.subject,
            body=run.ticket.body,
            customer_name=run.ticket.customer_name,
        ),
        state=run.state,
        config=run.workflow.config,
    )
    started = time.perf_counter()
    try:
        result = _ask_agent(step, context, max_reasks=run.limits.max_reasks)
    except InvalidOutput as invalid:
        hold_step(
            step=step,
            error_kind="invalid_output",
            message=f"{step.agent} returned output that breaks its schema {invalid.asks} "
            "times: " + "; ".join(invalid.problems),
        )
        return
    except Exception as exc:
        # A step interrupted by its soft time limit is worth another try, like a timeout.
        kind = "transient" if isinstance(exc, SoftTimeLimitExceeded) else exc_kind(exc)
        message = f"{type(exc).__name__}: {exc}"
        limits = run.limits
        if kind == "circuit_open":
            hold_step(step=step, error_kind=kind, message=message)
        elif kind == "transient" and step.attempt < limits.max_attempts:
            delay = retry_delay(
                step.attempt,
                base=limits.retry_base_seconds,
                cap=limits.retry_cap_seconds,
                jitter=_jitter.random(),
            )
            logger.warning("step %s failed (%s); retrying in %.1fs", step, message, delay)
            retry_step(step=step, message=message, delay=delay)
        else:
            logger.exception("agent %s failed on %s", step.agent, step)
            if kind == "transient":
                message += f" (gave up after {step.attempt} attempts)"
            fail_step(step=step, error_kind=kind, message=message)
        return
    complete_step(step=step, result=result, duration_ms=(time.perf_counter() - started) * 1000)


class InvalidOutput(Exception):
    def __init__(self, problems: list[str], asks: int) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.asks = asks


def _ask_agent(step: Step, context: AgentContext, *, max_reasks: int) -> AgentResult:
    """Run the agent; while its output breaks its schema, ask again with the errors."""
    agent = get_agent(step.agent)
    for ask in range(1, max_reasks + 2):
        result = agent(context)
        problems = output_problems(step.agent, result.output)
        if not problems:
            return result
        logger.warning("%s returned invalid output (ask %d): %s", step, ask, problems)
        context = replace(context, feedback=tuple(problems))
    raise InvalidOutput(problems, ask)


def complete_step(*, step: Step, result: AgentResult, duration_ms: float) -> None:
    """Record a finished agent step and move its run to the next node, or finish it.

    Only the worker whose claim is still current (same attempt, still running) records;
    a worker that lost its lease finds the step taken and its result is dropped."""
    definition = step.run.workflow.parsed
    try:
        following = next_node(definition, step.node, result.output)
    except NoRoute as exc:
        fail_step(step=step, error_kind="invalid_output", message=str(exc))
        return
    now = timezone.now()
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=step.run_id)
        run.workflow = step.run.workflow  # already loaded, with its parsed definition
        recorded = Step.objects.still_claimed(step).update(
            status=StepStatus.SUCCEEDED,
            input=result.input,
            output=result.output,
            finished_at=now,
            lease_expires_at=None,
        )
        if not recorded or run.is_final:
            return
        _record_spans(step=step, result=result, duration_ms=duration_ms)
        if run.status == RunStatus.QUEUED:
            check_run_transition(RunStatus(run.status), RunStatus.RUNNING)
            run.status = RunStatus.RUNNING
            run.started_at = step.started_at
        run.input_tokens += result.input_tokens
        run.output_tokens += result.output_tokens
        advance_run(run=run, step=step, output=result.output, following=following, now=now)
        record_event(
            action="step.completed",
            actor_label=f"agent:{step.agent}",
            object_type="run",
            object_id=run.pk,
            after={"step": step.sequence, "node": step.node, "next": following or "end"},
        )


def advance_run(
    *, run: Run, step: Step, output: dict[str, Any], following: str | None, now: datetime
) -> None:
    """Fold a finished step's output into the run and queue the next node, or finish the run.
    The caller holds the run's row lock and saves nothing else on the run afterwards."""
    status_before = run.status
    run.state = {**run.state, step.node: output}
    run.step_count += 1
    run.visits = {**run.visits, step.node: run.visits.get(step.node, 0) + 1}
    if following is None:
        check_run_transition(RunStatus(run.status), RunStatus.SUCCEEDED)
        run.status = RunStatus.SUCCEEDED
        run.outcome = str(output.get("outcome", ""))
        run.finished_at = now
        if run.outcome in ("sent", "auto_sent"):
            Ticket.objects.filter(pk=run.ticket_id).update(status=Ticket.Status.ANSWERED)
    else:
        if run.status == RunStatus.WAITING_HUMAN:
            check_run_transition(RunStatus.WAITING_HUMAN, RunStatus.RUNNING)
            run.status = RunStatus.RUNNING
        node = run.workflow.parsed.node(following)
        tripped = limit_reached(run.limits, run.usage, following)
        next_step = Step.objects.create(
            run=run,
            sequence=step.sequence + 1,
            node=node.name,
            kind=node.kind,
            agent=node.agent or "",
            status=StepStatus.WAITING_HUMAN if tripped else StepStatus.PENDING,
        )
        if tripped:
            hold_for_person(run=run, step=next_step, reason=tripped)
        else:
            enqueue_step_on_commit(next_step.pk)
    run.save(
        update_fields=[
            "state",
            "step_count",
            "visits",
            "status",
            "outcome",
            "started_at",
            "finished_at",
            "input_tokens",
            "output_tokens",
        ]
    )
    # Open run pages hear of changes a person would notice (paused, resumed, finished), not
    # of every agent step milliseconds apart: a publish costs about as much as the step.
    if run.status != status_before:
        live.publish_on_commit(live.run_group(run.pk), "run.changed", run_id=run.pk)


def _record_spans(*, step: Step, result: AgentResult, duration_ms: float) -> None:
    assert step.started_at is not None
    agent_span = Span.objects.create(
        run_id=step.run_id,
        step=step,
        kind=Span.Kind.AGENT,
        name=f"invoke_agent {step.agent}",
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": step.agent,
            "gen_ai.usage.input_tokens": result.input_tokens,
            "gen_ai.usage.output_tokens": result.output_tokens,
            **result.attributes,
        },
        started_at=step.started_at,
        duration_ms=duration_ms,
    )
    if result.spans:
        Span.objects.bulk_create(
            Span(
                run_id=step.run_id,
                step=step,
                parent=agent_span,
                kind=child.kind,
                name=child.name,
                attributes=child.attributes,
                status=child.status,
                started_at=child.started_at,
                duration_ms=child.duration_ms,
            )
            for child in result.spans
        )
