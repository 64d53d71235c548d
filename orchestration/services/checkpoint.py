"""The engine's common writes on PostgreSQL, one statement each: starting a run, claiming a
step, the checkpoint of an agent step (including a pause for a person) and a person's
decision.

Claiming a step (``claim_step``) is one ``UPDATE … FROM … RETURNING``: the compare-and-set
from ``pending``, the lease from the workflow's hard step limit, and the step, run and ticket
a worker needs, in one round trip, where the ORM needs a joined select and an update (and
spends more time compiling the join than the database spends running it).

Recording a finished step touches up to seven rows: the run (state, counts, status), the step
(output, succeeded), its spans, the next step (queued, claimed by this worker, or parked for
a person with its approval task and the task's audit event) and the ticket. As separate
statements in a transaction that is a round trip each plus the commit, the largest cost of a
step. Here it is one statement in autocommit, which PostgreSQL runs atomically:

1. ``locked`` locks the run's row, only if it is as this worker read it (same status and step
   count). A concurrent cancel either already committed, and the row no longer matches, or
   waits for this statement. Locking the run before the step is the order cancel_run uses.
2. ``done`` marks the step succeeded, only while this worker's claim is current.
3. Everything else is written only if ``done`` wrote a row, so a worker that lost its claim
   or its run writes nothing at all.

A decision is the same shape: the task is locked only if still open at the version read, the
run only if as read, and the rest hangs on the decision's insert. A decision that finds the
task decided or changed writes nothing, and services.human then takes the ORM transaction,
which explains the refusal.

Tripped limits, a person's step reached from a person's step, and every write on SQLite take
the ORM transaction (services.runs, services.steps, services.human); the setting
ENGINE_SINGLE_STATEMENT_WRITES turns these statements off, and tests hold both paths to the
same result."""

from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from orchestration.agents.base import AgentResult
from orchestration.models import HumanTask, Run, Span, Step, Ticket, Workflow
from orchestration.services.audit import HEAD_EXISTS, NO_EVENT, append_ctes
from orchestration.services.statements import (
    columns,
    compact,
    insert_cte,
    insert_params,
    instance_from_row,
    mark_saved,
    record,
    run_statement,
    table,
)

RUN, STEP, SPAN, TICKET, WORKFLOW, TASK = map(table, (Run, Step, Span, Ticket, Workflow, HumanTask))

# Only table and column names from the models are formatted in; values are bound parameters.
CLAIM_SQL = compact(f"""
UPDATE {STEP} AS s
SET status = 'running', attempt = s.attempt + 1, started_at = %(now)s,
    lease_expires_at = %(now)s + make_interval(secs => COALESCE(
        (w.config #>> '{{limits,step_hard_seconds}}')::float8, %(hard_seconds)s))
FROM {RUN} AS r
JOIN {WORKFLOW} AS w ON w.id = r.workflow_id
JOIN {TICKET} AS t ON t.id = r.ticket_id
WHERE s.id = %(step)s AND s.status = 'pending' AND r.id = s.run_id
RETURNING {columns(Step, "s")}, {columns(Run, "r")}, {columns(Ticket, "t")},
    w.definition_hash
""")  # noqa: S608

_workflows: dict[tuple[int, str], Workflow] = {}


def workflow_version(workflow_id: int, definition_hash: str) -> Workflow:
    """A workflow version, kept per process: versions never change."""
    key = (workflow_id, definition_hash)
    if key not in _workflows:
        _workflows[key] = Workflow.objects.get(pk=workflow_id)
    return _workflows[key]


def claim_step(*, step_id: int, now: datetime, hard_seconds: float) -> Step | None:
    """Claim a pending step for this worker; None if it is not pending (another delivery
    took it, or it was cancelled). The step comes with its run, the run's ticket and its
    workflow version."""
    row = run_statement(CLAIM_SQL, {"step": step_id, "now": now, "hard_seconds": hard_seconds})
    if row is None:
        return None
    values = list(row)
    step = instance_from_row(Step, values)
    run = instance_from_row(Run, values)
    run.ticket = instance_from_row(Ticket, values)
    (definition_hash,) = values
    run.workflow = workflow_version(run.workflow_id, definition_hash)
    step.run = run
    return step


# The run's columns a step moves on.
PROGRESS = (
    "status",
    "outcome",
    "state",
    "step_count",
    "visits",
    "started_at",
    "finished_at",
    "input_tokens",
    "output_tokens",
)


def progress_ctes() -> str:
    """What every checkpoint writes once ``done`` (the finished step) has written: the run's
    progress, the next step (if ``has_next``) and the ticket's "answered"."""
    return f"""
moved AS (
    UPDATE {RUN} AS r
    SET {", ".join(f"{c} = p.{c}" for c in PROGRESS)}
    FROM jsonb_populate_record(NULL::{RUN}, %(progress)s) AS p
    WHERE r.id = %(run)s AND EXISTS (SELECT 1 FROM done)
), {insert_cte("next_step", Step, "done", "%(has_next)s")},
answered AS (
    UPDATE {TICKET} SET status = 'answered'
    WHERE id = %(ticket)s AND %(answered)s AND EXISTS (SELECT 1 FROM done)
    RETURNING id
)"""  # noqa: S608


def progress_params(run: Run, next_step: Step | None, answered: bool) -> dict[str, Any]:
    return {
        "run": run.pk,
        "progress": record(Run, {c: getattr(run, c) for c in PROGRESS}),
        "has_next": next_step is not None,
        **insert_params("next_step", next_step),
        "ticket": run.ticket_id,
        "answered": answered,
    }


# An agent step's checkpoint. ``locked`` takes the run's row only if it is as the worker read
# it; ``done`` marks the step succeeded only while the worker's claim is current; everything
# else hangs on ``done``. The next step may be a person's: then it is parked with its
# approval task and the task's audit event.
CHECKPOINT_SQL = compact(f"""
WITH locked AS (
    SELECT id FROM {RUN}
    WHERE id = %(run)s AND status = %(status_before)s AND step_count = %(steps_before)s
    FOR UPDATE
), done AS (
    UPDATE {STEP}
    SET status = 'succeeded', input = %(input)s, output = %(output)s,
        finished_at = %(now)s, lease_expires_at = NULL
    WHERE id = %(step)s AND status = 'running' AND attempt = %(attempt)s
      AND EXISTS (SELECT 1 FROM locked) AND (NOT %(opens_task)s OR {HEAD_EXISTS})
    RETURNING id
), {progress_ctes()},
agent_span AS (
    INSERT INTO {SPAN} (run_id, step_id, parent_id, kind, name, attributes, status,
                        started_at, duration_ms)
    SELECT %(run)s, done.id, NULL, 'agent', %(span_name)s, %(span_attributes)s, 'ok',
           %(step_started_at)s, %(duration_ms)s
    FROM done
    RETURNING id
), child_spans AS (
    INSERT INTO {SPAN} (run_id, step_id, parent_id, kind, name, attributes, status,
                        started_at, duration_ms)
    SELECT %(run)s, %(step)s, agent_span.id, c.kind, c.name, c.attributes, c.status,
           c.started_at, c.duration_ms
    FROM agent_span, jsonb_to_recordset(%(children)s) AS c(
        kind text, name text, attributes jsonb, status text,
        started_at timestamptz, duration_ms float8)
), {insert_cte("task", HumanTask, "next_step", "%(opens_task)s", step_id="next_step.id")},
{append_ctes(source="task", object_id="task.id::text", after=("done", "answered"))}
SELECT (SELECT count(*) FROM done), (SELECT id FROM next_step), (SELECT id FROM task),
       {HEAD_EXISTS}
""")  # noqa: S608


class NoChainHead(Exception):
    """The audit chain's head row is missing; nothing was written."""


def record_agent_step(
    *,
    run: Run,
    step: Step,
    result: AgentResult,
    duration_ms: float,
    status_before: str,
    steps_before: int,
    next_step: Step | None,
    task: HumanTask | None,
    task_event: dict[str, Any] | None,
    answered: bool,
    now: datetime,
) -> bool:
    """Write the checkpoint; False if nothing was written (the claim or the run moved on).
    ``run`` already holds the folded state; ``next_step`` and ``task`` (the approval task
    parking ``next_step``), if any, are unsaved and receive their primary keys;
    ``task_event`` is append_params for the task's "task.opened" event."""
    opens_task = task is not None
    params: dict[str, Any] = {
        **progress_params(run, next_step, answered),
        "status_before": status_before,
        "steps_before": steps_before,
        "step": step.pk,
        "attempt": step.attempt,
        "input": Jsonb(result.input),
        "output": Jsonb(result.output),
        "now": now,
        "opens_task": opens_task,
        "span_name": f"invoke_agent {step.agent}",
        "span_attributes": Jsonb(agent_span_attributes(step, result)),
        "step_started_at": step.started_at,
        "duration_ms": duration_ms,
        "children": Jsonb(
            [
                {
                    "kind": child.kind,
                    "name": child.name,
                    "attributes": child.attributes,
                    "status": child.status,
                    "started_at": child.started_at.isoformat(),
                    "duration_ms": child.duration_ms,
                }
                for child in result.spans
            ]
        ),
        **insert_params("task", task, "step_id"),
        **(task_event or NO_EVENT),
    }
    row = run_statement(CHECKPOINT_SQL, params)
    assert row is not None
    recorded, next_id, task_id, head_exists = row
    if not recorded and opens_task and not head_exists:
        raise NoChainHead
    if recorded and next_step is not None:
        mark_saved(next_step, next_id)
    if recorded and task is not None:
        task.step = next_step
        mark_saved(task, task_id)
    return bool(recorded)


def agent_span_attributes(step: Step, result: AgentResult) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": step.agent,
        "gen_ai.usage.input_tokens": result.input_tokens,
        "gen_ai.usage.output_tokens": result.output_tokens,
        **result.attributes,
    }


# A run's first write: the run and its first step.
START_SQL = compact(f"""
WITH {insert_cte("new_run", Run, "(SELECT 1) AS one")},
{insert_cte("first_step", Step, "new_run", run_id="new_run.id")}
SELECT (SELECT id FROM new_run), (SELECT id FROM first_step)
""")  # noqa: S608


def record_start(*, run: Run, step: Step) -> None:
    """Insert an unsaved run and its unsaved first step; both receive their keys."""
    params = {**insert_params("new_run", run), **insert_params("first_step", step, "run_id")}
    row = run_statement(START_SQL, params)
    assert row is not None
    mark_saved(run, row[0])
    mark_saved(step, row[1])
    step.run = run
