"""The step path's two writes on PostgreSQL, one statement each: claiming a step, and the
checkpoint of an agent step.

Claiming a step (``claim_step``) is one ``UPDATE … FROM … RETURNING``: the compare-and-set
from ``pending``, the lease from the workflow's hard step limit, and the step, run and ticket
a worker needs, in one round trip, where the ORM needs a joined select and an update (and
spends more time compiling the join than the database spends running it).

Recording a finished step touches four rows: the run (state, counts, status), the step
(output, succeeded), its span, and the next step (queued, or claimed by this worker). As
separate statements in a transaction that is five round trips with the commit, the largest
cost of a step. Here it is one statement in autocommit, which PostgreSQL runs atomically:

1. ``locked`` locks the run's row, only if it is as this worker read it (same status and step
   count). A concurrent cancel either already committed, and the row no longer matches, or
   waits for this statement. Locking the run before the step is the order cancel_run uses.
2. ``done`` marks the step succeeded, only while this worker's claim is current.
3. Everything else is written only if ``done`` wrote a row, so a worker that lost its claim
   or its run writes nothing at all.

Only the common case comes here: an agent step whose run goes on to another agent node or
finishes. Pauses for a person and tripped limits write more (tasks, audit events) and take
the ORM path in services.steps, as every case does on SQLite."""

from datetime import datetime
from typing import Any, TypeVar

import psycopg
from django.db import connection, models
from psycopg.types.json import Jsonb

from orchestration.agents.base import AgentResult
from orchestration.engine.states import StepStatus
from orchestration.models import Run, Span, Step, Ticket, Workflow

RUN, STEP, SPAN, TICKET, WORKFLOW = (m._meta.db_table for m in (Run, Step, Span, Ticket, Workflow))
M = TypeVar("M", bound=models.Model)


def _columns(model: type[models.Model], alias: str) -> str:
    return ", ".join(f"{alias}.{f.column}" for f in model._meta.concrete_fields)


# Only table and column names from the models are formatted in; values are bound parameters.
CLAIM_SQL = f"""
UPDATE {STEP} AS s
SET status = 'running', attempt = s.attempt + 1, started_at = %(now)s,
    lease_expires_at = %(now)s + make_interval(secs => COALESCE(
        (w.config #>> '{{limits,step_hard_seconds}}')::float8, %(hard_seconds)s))
FROM {RUN} AS r
JOIN {WORKFLOW} AS w ON w.id = r.workflow_id
JOIN {TICKET} AS t ON t.id = r.ticket_id
WHERE s.id = %(step)s AND s.status = 'pending' AND r.id = s.run_id
RETURNING {_columns(Step, "s")}, {_columns(Run, "r")}, {_columns(Ticket, "t")},
    w.definition_hash
"""  # noqa: S608

_workflows: dict[tuple[int, str], Workflow] = {}


def claim_step(*, step_id: int, now: datetime, hard_seconds: float) -> Step | None:
    """Claim a pending step for this worker; None if it is not pending (another delivery
    took it, or it was cancelled). The step comes with its run, the run's ticket and its
    workflow version (kept per process: versions never change)."""
    params = {"step": step_id, "now": now, "hard_seconds": hard_seconds}
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(CLAIM_SQL, params, prepare=True)
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    step = _instance(Step, values)
    run = _instance(Run, values)
    ticket = _instance(Ticket, values)
    (definition_hash,) = values
    key = (run.workflow_id, definition_hash)
    if key not in _workflows:
        _workflows[key] = Workflow.objects.get(pk=run.workflow_id)
    run.workflow = _workflows[key]
    run.ticket = ticket
    step.run = run
    return step


def _instance(model: type[M], values: list[Any]) -> M:
    """A model instance from the next values of a returned row, converted as the ORM would
    (JSON arrives as text); the values are taken off the front of the list."""
    fields = model._meta.concrete_fields
    taken, values[:] = values[: len(fields)], values[len(fields) :]
    converted = [
        f.from_db_value(v, None, connection) if hasattr(f, "from_db_value") else v
        for f, v in zip(fields, taken, strict=True)
    ]
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


# Only table names from the models are formatted in; every value is a bound parameter.
CHECKPOINT_SQL = f"""
WITH locked AS (
    SELECT id FROM {RUN}
    WHERE id = %(run)s AND status = %(status_before)s AND step_count = %(steps_before)s
    FOR UPDATE
), done AS (
    UPDATE {STEP}
    SET status = 'succeeded', input = %(input)s, output = %(output)s,
        finished_at = %(now)s, lease_expires_at = NULL
    WHERE id = %(step)s AND status = 'running' AND attempt = %(attempt)s
      AND EXISTS (SELECT 1 FROM locked)
    RETURNING id
), moved AS (
    UPDATE {RUN}
    SET status = %(status)s, outcome = %(outcome)s, state = %(state)s,
        step_count = %(step_count)s, visits = %(visits)s, started_at = %(started_at)s,
        finished_at = %(finished_at)s, input_tokens = %(input_tokens)s,
        output_tokens = %(output_tokens)s
    WHERE id = %(run)s AND EXISTS (SELECT 1 FROM done)
), agent_span AS (
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
), next_step AS (
    INSERT INTO {STEP} (run_id, sequence, node, kind, agent, status, attempt, input,
                        output, error_kind, error_message, lease_expires_at, queued_at,
                        started_at, finished_at)
    SELECT %(run)s, %(next_sequence)s, %(next_node)s, 'agent', %(next_agent)s,
           %(next_status)s, %(next_attempt)s, '{{}}'::jsonb, NULL, '', '',
           %(next_lease)s, %(now)s, %(next_started_at)s, NULL
    FROM done
    WHERE %(has_next)s
    RETURNING id
), answered AS (
    UPDATE {TICKET} SET status = 'answered'
    WHERE id = %(ticket)s AND %(answered)s AND EXISTS (SELECT 1 FROM done)
)
SELECT (SELECT count(*) FROM done), (SELECT id FROM next_step)
"""  # noqa: S608


def record_agent_step(
    *,
    run: Run,
    step: Step,
    result: AgentResult,
    duration_ms: float,
    status_before: str,
    steps_before: int,
    next_step: Step | None,
    answered: bool,
    now: datetime,
) -> bool:
    """Write the checkpoint; False if nothing was written (the claim or the run moved on).
    ``run`` already holds the folded state; ``next_step``, if any, is unsaved and receives
    its primary key."""
    params: dict[str, Any] = {
        "run": run.pk,
        "status_before": status_before,
        "steps_before": steps_before,
        "step": step.pk,
        "attempt": step.attempt,
        "input": Jsonb(result.input),
        "output": Jsonb(result.output),
        "now": now,
        "status": run.status,
        "outcome": run.outcome,
        "state": Jsonb(run.state),
        "step_count": run.step_count,
        "visits": Jsonb(run.visits),
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "input_tokens": run.input_tokens,
        "output_tokens": run.output_tokens,
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
        "has_next": next_step is not None,
        "next_sequence": next_step.sequence if next_step else 0,
        "next_node": next_step.node if next_step else "",
        "next_agent": next_step.agent if next_step else "",
        "next_status": next_step.status if next_step else StepStatus.PENDING,
        "next_attempt": next_step.attempt if next_step else 0,
        "next_lease": next_step.lease_expires_at if next_step else None,
        "next_started_at": next_step.started_at if next_step else None,
        "ticket": run.ticket_id,
        "answered": answered,
    }
    connection.ensure_connection()
    # Autocommit: the one statement is its own transaction. Prepared on the server, so it is
    # planned once per connection rather than on every step.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(CHECKPOINT_SQL, params, prepare=True)
        row = cursor.fetchone()
    assert row is not None
    recorded, next_id = row
    if next_step is not None and recorded:
        next_step.pk = next_id
        next_step._state.adding = False
    return bool(recorded)


def agent_span_attributes(step: Step, result: AgentResult) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": step.agent,
        "gen_ai.usage.input_tokens": result.input_tokens,
        "gen_ai.usage.output_tokens": result.output_tokens,
        **result.attributes,
    }
