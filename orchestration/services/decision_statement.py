"""A person's decision on PostgreSQL in one statement: the checkpoint of a human step.

``load_task`` reads the task with its step, run and workflow version, without a lock;
services.decisions works out the decision and the run's progress from it. ``DECIDE_SQL``
then locks the task only if it is still open at the version read, and the run only if it is
as read (task, run, step: every writer's lock order), and writes the decision, the task's
move to decided, the step, the run's progress, the next step, the decision's span and its
audit event, all hanging on the decision's insert. If the task or the run moved, nothing is
written and the caller takes the ORM transaction, which explains the refusal."""

from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from orchestration.models import Decision, HumanTask, Run, Span, Step, Workflow
from orchestration.services.audit import HEAD_EXISTS, append_ctes
from orchestration.services.checkpoint import progress_ctes, progress_params, workflow_version
from orchestration.services.statements import (
    columns,
    compact,
    insert_cte,
    insert_params,
    instance_from_row,
    mark_saved,
    run_statement,
    table,
)

RUN, STEP, TASK, WORKFLOW = map(table, (Run, Step, HumanTask, Workflow))

LOAD_TASK_SQL = compact(f"""
SELECT {columns(HumanTask, "t")}, {columns(Step, "s")}, {columns(Run, "r")}, w.definition_hash
FROM {TASK} AS t
JOIN {STEP} AS s ON s.id = t.step_id
JOIN {RUN} AS r ON r.id = t.run_id
JOIN {WORKFLOW} AS w ON w.id = r.workflow_id
WHERE t.id = %(task)s
""")  # noqa: S608

DECIDE_SQL = compact(f"""
WITH task_locked AS (
    SELECT id FROM {TASK}
    WHERE id = %(task)s AND status = 'open' AND version = %(task_version)s AND {HEAD_EXISTS}
    FOR UPDATE
), locked AS (
    SELECT id FROM {RUN}
    WHERE id = %(run)s AND status = %(status_before)s AND step_count = %(steps_before)s
      AND EXISTS (SELECT 1 FROM task_locked)
    FOR UPDATE
), {insert_cte("decision", Decision, "locked")},
decided AS (
    UPDATE {TASK} SET status = 'decided', version = version + 1, decided_at = %(now)s
    WHERE id = %(task)s AND EXISTS (SELECT 1 FROM decision)
), done AS (
    UPDATE {STEP} SET status = 'succeeded', output = %(output)s, finished_at = %(now)s
    WHERE id = %(step)s AND EXISTS (SELECT 1 FROM decision)
    RETURNING id
), {progress_ctes()},
{insert_cte("human_span", Span, "done")},
{append_ctes(source="decision", object_id="%(audit_object_id)s", after=("done", "answered"))}
SELECT (SELECT id FROM decision), (SELECT id FROM next_step)
""")  # noqa: S608


def load_task(task_id: int) -> HumanTask | None:
    """A task with its step, run and workflow version, read without a lock."""
    row = run_statement(LOAD_TASK_SQL, {"task": task_id})
    if row is None:
        return None
    values = list(row)
    task = instance_from_row(HumanTask, values)
    task.step = instance_from_row(Step, values)
    task.run = instance_from_row(Run, values)
    (definition_hash,) = values
    task.run.workflow = workflow_version(task.run.workflow_id, definition_hash)
    return task


def record_decision(
    *,
    task: HumanTask,
    decision: Decision,
    output: dict[str, Any],
    span: Span,
    status_before: str,
    steps_before: int,
    next_step: Step | None,
    answered: bool,
    audit: dict[str, Any],
    now: datetime,
) -> bool:
    """Write a decision on ``task`` (as loaded by load_task) and move its run on; False if
    nothing was written: the task was decided or changed, the run moved, or the audit chain
    has no head. ``decision``, ``span`` and ``next_step`` are unsaved and receive their keys;
    ``audit`` is append_params for the "task.decided" event."""
    params: dict[str, Any] = {
        **progress_params(task.run, next_step, answered),
        "task": task.pk,
        "task_version": task.version,
        "status_before": status_before,
        "steps_before": steps_before,
        "step": task.step_id,
        "output": Jsonb(output),
        "now": now,
        **insert_params("decision", decision),
        **insert_params("human_span", span),
        **audit,
        "audit_object_id": str(task.pk),
    }
    row = run_statement(DECIDE_SQL, params)
    assert row is not None
    decision_id, next_id = row
    if decision_id is None:
        return False
    mark_saved(decision, decision_id)
    if next_step is not None:
        mark_saved(next_step, next_id)
    return True
