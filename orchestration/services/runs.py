"""Runs: start one, and move one on from a finished step."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from orchestration.engine.limits import limit_reached
from orchestration.engine.states import RunStatus, StepStatus, check_run_transition
from orchestration.engine.workflow import Node, NodeKind
from orchestration.models import Run, Step, Ticket, Workflow
from orchestration.services import live, statements
from orchestration.services.checkpoint import record_start
from orchestration.services.dispatch import enqueue_step_on_commit
from orchestration.services.failures import hold_for_person
from orchestration.services.workflows import support_desk_version


class RunChanged(Exception):
    """Someone else changed the run (a person cancelled it) since this writer read it."""


def start_run(*, ticket: Ticket, workflow: Workflow | None = None) -> Run:
    """Start a workflow version (by default the current support desk) for a ticket; the run is
    pinned to that version. The first step is queued when the caller's transaction commits."""
    workflow = workflow or support_desk_version()
    definition = workflow.parsed
    first = definition.node(definition.start)
    run = Run(workflow=workflow, ticket=ticket)
    step = Step(run=run, sequence=1, node=first.name, kind=first.kind, agent=first.agent or "")
    if statements.enabled(within_transaction=True):
        # One statement (services.checkpoint), on its own or in the caller's transaction
        # (ingest's); the message goes out once that commits.
        record_start(run=run, step=step)
        enqueue_step_on_commit(step.pk)
        return run
    with transaction.atomic():
        run.save(force_insert=True)
        step.run = run
        step.save(force_insert=True)
        enqueue_step_on_commit(step.pk)
    return run


@dataclass
class Progress:
    """How a finished step moves its run on, worked out before anything is written."""

    status_before: str
    steps_before: int
    following: Node | None
    # Why the next node may not run by itself (a limit tripped), if it may not.
    tripped: str | None


def fold_step(
    *, run: Run, step: Step, output: dict[str, Any], following: str | None, now: datetime
) -> Progress:
    """Fold a finished step's output into ``run`` in memory: its state, counts and status
    (running, waiting for a person, or succeeded). Nothing is written."""
    progress = Progress(run.status, run.step_count, None, None)
    if run.status == RunStatus.QUEUED:
        check_run_transition(RunStatus.QUEUED, RunStatus.RUNNING)
        run.status = RunStatus.RUNNING
        run.started_at = step.started_at
    elif run.status == RunStatus.WAITING_HUMAN:
        check_run_transition(RunStatus.WAITING_HUMAN, RunStatus.RUNNING)
        run.status = RunStatus.RUNNING
    run.state = {**run.state, step.node: output}
    run.step_count += 1
    run.visits = {**run.visits, step.node: run.visits.get(step.node, 0) + 1}
    if following is None:
        check_run_transition(RunStatus(run.status), RunStatus.SUCCEEDED)
        run.status = RunStatus.SUCCEEDED
        run.outcome = str(output.get("outcome", ""))
        run.finished_at = now
        return progress
    progress.following = run.workflow.parsed.node(following)
    progress.tripped = limit_reached(run.limits, run.usage, following)
    if progress.tripped or progress.following.kind == NodeKind.HUMAN:
        check_run_transition(RunStatus(run.status), RunStatus.WAITING_HUMAN)
        run.status = RunStatus.WAITING_HUMAN
    return progress


def answered(run: Run) -> bool:
    """Whether the finished run sent the customer a reply."""
    return run.status == RunStatus.SUCCEEDED and run.outcome in ("sent", "auto_sent")


def advance_run(
    *,
    run: Run,
    step: Step,
    output: dict[str, Any],
    following: str | None,
    now: datetime,
    claim_next: bool = False,
) -> Step | None:
    """Fold a finished step's output into the run and go on: finish the run, park it for a
    person at a human node, or create the next step, queued or (``claim_next``) claimed by
    the calling worker, which then runs it itself. Returns the step so claimed, if any."""
    progress = fold_step(run=run, step=step, output=output, following=following, now=now)
    return write_progress(run=run, step=step, progress=progress, now=now, claim_next=claim_next)


def write_progress(
    *, run: Run, step: Step, progress: Progress, now: datetime, claim_next: bool
) -> Step | None:
    """Write what fold_step worked out, inside the caller's transaction.

    The run's row is written first and only if it is as the caller read it (same status,
    same step count); otherwise RunChanged is raised and the caller's transaction rolls back.
    Callers that hold the run's lock pass trivially; a worker holds no lock until this write."""
    _save_progress(run, status_before=progress.status_before, steps_before=progress.steps_before)
    if answered(run):
        Ticket.objects.filter(pk=run.ticket_id).update(status=Ticket.Status.ANSWERED)
    next_step = None
    if progress.following is not None:
        next_step = _create_next_step(run, step, progress, now=now, claim=claim_next)
    # Open run pages hear of changes a person would notice, not of every agent step.
    if run.status != progress.status_before:
        live.publish_on_commit(live.run_group(run.pk), "run.changed", run_id=run.pk)
    return next_step if next_step is not None and next_step.status == StepStatus.RUNNING else None


def _save_progress(run: Run, *, status_before: str, steps_before: int) -> None:
    saved = Run.objects.filter(pk=run.pk, status=status_before, step_count=steps_before).update(
        status=run.status,
        outcome=run.outcome,
        state=run.state,
        step_count=run.step_count,
        visits=run.visits,
        started_at=run.started_at,
        finished_at=run.finished_at,
        input_tokens=run.input_tokens,
        output_tokens=run.output_tokens,
    )
    if not saved:
        raise RunChanged(f"run {run.pk} changed since it was read")


def _create_next_step(
    run: Run, step: Step, progress: Progress, *, now: datetime, claim: bool
) -> Step:
    """The step for the next node: held for a person if a limit tripped, parked with an
    approval task at a human node, else claimed for the caller or queued for any worker."""
    node = progress.following
    assert node is not None
    fields: dict[str, Any] = {
        "run": run,
        "sequence": step.sequence + 1,
        "node": node.name,
        "kind": node.kind,
        "agent": node.agent or "",
    }
    if progress.tripped:
        held = Step.objects.create(**fields, status=StepStatus.WAITING_HUMAN)
        hold_for_person(run=run, step=held, reason=progress.tripped)
        return held
    if node.kind == NodeKind.HUMAN:
        from orchestration.services.human import open_approval_task  # human imports this module

        parked = parked_human_step(run, step, node, now=now)
        parked.save(force_insert=True)
        open_approval_task(run=run, step=parked)
        return parked
    following = next_agent_step(run, step, node, now=now, claim=claim)
    following.save(force_insert=True)
    if not claim:
        enqueue_step_on_commit(following.pk)
    return following


def parked_human_step(run: Run, step: Step, node: Node, *, now: datetime) -> Step:
    """The unsaved step that waits at human node ``node`` after ``step``."""
    return Step(
        run=run,
        sequence=step.sequence + 1,
        node=node.name,
        kind=node.kind,
        agent=node.agent or "",
        status=StepStatus.WAITING_HUMAN,
        attempt=1,
        started_at=now,
    )


def next_agent_step(run: Run, step: Step, node: Node, *, now: datetime, claim: bool) -> Step:
    """The unsaved step that runs agent node ``node`` after ``step``: claimed for the
    calling worker (running, with its lease) or queued for any worker."""
    return Step(
        run=run,
        sequence=step.sequence + 1,
        node=node.name,
        kind=node.kind,
        agent=node.agent or "",
        status=StepStatus.RUNNING if claim else StepStatus.PENDING,
        attempt=1 if claim else 0,
        started_at=now if claim else None,
        lease_expires_at=(now + timedelta(seconds=run.limits.step_hard_seconds) if claim else None),
    )
