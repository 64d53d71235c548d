"""Executing steps: claim a step, run its agent, record the result and go on.

A worker that finishes a step claims the run's next step in the same transaction and runs it
itself, without a trip through the broker, until it has spent STEP_CONTINUE_SECONDS on one
message; then the next step is queued for any worker. Every step is still its own committed
checkpoint with its own lease, so a worker killed between or inside steps loses nothing: the
sweeper hands the step on once its lease expires."""

import logging
import random
import time
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from orchestration.agents.base import AgentContext, AgentResult, TicketView
from orchestration.agents.registry import get_agent
from orchestration.agents.schemas import output_problems
from orchestration.engine.limits import retry_delay
from orchestration.engine.planner import NoRoute, next_node
from orchestration.engine.states import StepStatus
from orchestration.engine.workflow import NodeKind
from orchestration.models import Span, Step
from orchestration.services import live, statements
from orchestration.services.audit import append_params, ensure_chain_head
from orchestration.services.checkpoint import (
    NoChainHead,
    agent_span_attributes,
    claim_step,
    record_agent_step,
)
from orchestration.services.dispatch import enqueue_step_on_commit
from orchestration.services.failures import (
    fail_step,
    hold_for_tool_approval,
    hold_step,
    retry_step,
)
from orchestration.services.reviews import open_quality_review
from orchestration.services.runs import (
    Progress,
    RunChanged,
    answered,
    fold_step,
    next_agent_step,
    parked_human_step,
    write_progress,
)
from orchestration.services.timing import soft_time_limit

logger = logging.getLogger(__name__)
_jitter = random.SystemRandom()


def exc_kind(exc: Exception) -> str:
    """The error kind an exception declares (providers, the gateway and the step timer do);
    anything else is permanent."""
    return str(getattr(exc, "kind", "permanent"))


def execute_step(*, step_id: int) -> None:
    """Claim a pending step and run it, then the run's following steps while this message's
    time lasts. Only one conditional update from ``pending`` can claim a step, so a second
    delivery of the same message finds nothing to do and returns."""
    step = _claim(step_id)
    if step is None:
        logger.info("step %s is not pending; nothing to do", step_id)
        return
    go_on_until = time.monotonic() + settings.STEP_CONTINUE_SECONDS
    following: Step | None = step
    while following is not None:
        following = run_claimed_step(following, claim_next=time.monotonic() < go_on_until)


def _claim(step_id: int) -> Step | None:
    """The step, claimed for this worker with its lease set, or None if it is not pending."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        return claim_step(
            step_id=step_id, now=now, hard_seconds=settings.STEP_HARD_TIME_LIMIT_SECONDS
        )
    step = Step.objects.select_related("run__workflow", "run__ticket").filter(pk=step_id).first()
    if step is None or step.status != StepStatus.PENDING:
        return None
    try:
        hard_seconds = step.run.limits.step_hard_seconds
    except ValueError:  # reported when the step runs; the lease only needs a length
        hard_seconds = settings.STEP_HARD_TIME_LIMIT_SECONDS
    lease = now + timedelta(seconds=hard_seconds)
    claimed = Step.objects.filter(pk=step_id, status=StepStatus.PENDING).update(
        status=StepStatus.RUNNING, attempt=F("attempt") + 1, started_at=now, lease_expires_at=lease
    )
    if not claimed:
        return None
    step.status, step.attempt, step.started_at = StepStatus.RUNNING, step.attempt + 1, now
    step.lease_expires_at = lease
    return step


def run_claimed_step(step: Step, *, claim_next: bool) -> Step | None:
    """Run a step this worker has claimed; return the run's next step if this worker claimed
    it too (``claim_next``), else None."""
    run = step.run
    if run.is_final:
        Step.objects.still_claimed(step).update(
            status=StepStatus.CANCELLED, finished_at=timezone.now(), lease_expires_at=None
        )
        return None
    if step.kind == NodeKind.HUMAN:
        from orchestration.services.human import open_review_task

        open_review_task(step=step)
        return None
    context = AgentContext(
        run_id=run.pk,
        step_sequence=step.sequence,
        ticket=TicketView.of(run.ticket),
        state=run.state,
        config=run.workflow.config,
        workflow=run.workflow.name,
    )
    try:
        limits = run.limits
    except ValueError as bad:  # a deployment default changed under a stored config
        fail_step(step=step, error_kind="permanent", message=f"the workflow's limits: {bad}")
        return None
    started = time.perf_counter()
    try:
        with soft_time_limit(limits.step_soft_seconds):
            result = _ask_agent(step, context, max_reasks=limits.max_reasks)
    except InvalidOutput as invalid:
        hold_step(
            step=step,
            error_kind="invalid_output",
            message=f"{step.agent} returned output that breaks its schema {invalid.asks} "
            "times: " + "; ".join(invalid.problems),
        )
        return None
    except Exception as exc:
        _handle_failure(step, exc)
        return None
    duration_ms = (time.perf_counter() - started) * 1000
    following = complete_step(
        step=step, result=result, duration_ms=duration_ms, claim_next=claim_next
    )
    if result.output.get("outcome") == "auto_sent":
        _sample_for_review(run.pk)
    return following


def _sample_for_review(run_id: int) -> None:
    """A reply that went out alone may be sampled for a person's review afterwards. The
    reply is sent whatever happens here; a failure to open the review is logged, not fatal."""
    try:
        open_quality_review(run_id=run_id)
    except Exception:
        logger.exception("could not sample run %s for review", run_id)


def _handle_failure(step: Step, exc: Exception) -> None:
    kind = exc_kind(exc)
    message = f"{type(exc).__name__}: {exc}"
    limits = step.run.limits
    if kind == "approval_required":
        hold_for_tool_approval(step=step, approval_id=exc.approval.pk)  # type: ignore[attr-defined]
    elif kind in ("circuit_open", "policy_denied"):
        # Refused by the gate: recorded there as a violation; a person sees why and decides.
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


class _ClaimLost(Exception):
    """The step was handed to another worker while this one ran it."""


def complete_step(
    *, step: Step, result: AgentResult, duration_ms: float, claim_next: bool = False
) -> Step | None:
    """Record a finished agent step and move its run on: queue the next node (or claim it
    for this worker, with ``claim_next``), open a person's task, or finish the run.

    Only the worker whose claim is still current (same attempt, still running) records; one
    that lost its lease, or whose run was cancelled meanwhile, has its result dropped.
    Returns the step claimed for this worker, if any."""
    run = step.run
    try:
        following = next_node(run.workflow.parsed, step.node, result.output)
    except NoRoute as exc:
        fail_step(step=step, error_kind="invalid_output", message=str(exc))
        return None
    now = timezone.now()
    run.input_tokens += result.input_tokens
    run.output_tokens += result.output_tokens
    progress = fold_step(run=run, step=step, output=result.output, following=following, now=now)
    if statements.enabled() and not progress.tripped:
        return _checkpoint(step, result, duration_ms, progress, now, claim_next)
    try:
        with transaction.atomic():
            # The run's row first: the order in which cancel_run takes the same locks.
            claimed = write_progress(
                run=run, step=step, progress=progress, now=now, claim_next=claim_next
            )
            recorded = Step.objects.still_claimed(step).update(
                status=StepStatus.SUCCEEDED,
                input=result.input,
                output=result.output,
                finished_at=now,
                lease_expires_at=None,
            )
            if not recorded:
                raise _ClaimLost
            _record_spans(step=step, result=result, duration_ms=duration_ms)
    except (RunChanged, _ClaimLost):
        logger.info("%s: the run moved on without this worker; its result is dropped", step)
        return None
    return claimed


def _checkpoint(
    step: Step,
    result: AgentResult,
    duration_ms: float,
    progress: Progress,
    now: datetime,
    claim_next: bool,
) -> Step | None:
    """On PostgreSQL, every step that trips no limit, in one statement (services.checkpoint):
    the run goes on to an agent node, parks at a person's, or finishes."""
    from orchestration.services.human import approval_task, opened_event  # imports runs

    run, node = step.run, progress.following
    following, task, task_event = None, None, None
    if node is not None and node.kind == NodeKind.HUMAN:
        following, task = parked_human_step(run, step, node, now=now), approval_task(run)
        task_event = append_params(**opened_event(run, task))
    elif node is not None:
        following = next_agent_step(run, step, node, now=now, claim=claim_next)
    checkpoint = partial(
        record_agent_step,
        run=run,
        step=step,
        result=result,
        duration_ms=duration_ms,
        status_before=progress.status_before,
        steps_before=progress.steps_before,
        next_step=following,
        task=task,
        task_event=task_event,
        answered=answered(run),
        now=now,
    )
    try:
        recorded = checkpoint()
    except NoChainHead:  # a fresh or flushed database: the first event creates the head
        ensure_chain_head()
        recorded = checkpoint()
    if not recorded:
        logger.info("%s: the run moved on without this worker; its result is dropped", step)
        return None
    # Outside a transaction these go out at once.
    if run.status != progress.status_before:
        live.publish_on_commit(live.run_group(run.pk), "run.changed", run_id=run.pk)
    if task is not None:
        live.publish_on_commit(live.QUEUE_GROUP, "queue.changed", task_id=task.pk)
        return None
    if following is not None and not claim_next:
        enqueue_step_on_commit(following.pk)
        return None
    return following


def _record_spans(*, step: Step, result: AgentResult, duration_ms: float) -> None:
    assert step.started_at is not None
    agent_span = Span.objects.create(
        run_id=step.run_id,
        step=step,
        kind=Span.Kind.AGENT,
        name=f"invoke_agent {step.agent}",
        attributes=agent_span_attributes(step, result),
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
