"""What the gate reads before a call and writes after one, in as few round trips as it can.

Before a call the gate needs the tool, the agent's active grant for it, the tool's breaker
state, an earlier call under the same idempotency key, an approval bound to that key and the
run's status. On PostgreSQL that is one prepared SELECT; elsewhere (the embedded SQLite) a
few ORM queries give the same ``GateState``. After a successful call, the call's completion
and its audit event are one statement on PostgreSQL."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from orchestration.models import Run
from orchestration.services import statements
from orchestration.services.audit import (
    HEAD_EXISTS,
    append_ctes,
    append_params,
    ensure_chain_head,
    record_event,
)
from orchestration.services.statements import columns, compact, instance_from_row, table
from tools_registry.models import (
    Grant,
    PolicyViolation,
    Tool,
    ToolApproval,
    ToolBreaker,
    ToolCall,
)


@dataclass
class GateState:
    tool: Tool | None
    grant: Grant | None
    breaker_state: str
    earlier: ToolCall | None
    approval: ToolApproval | None
    run_status: str | None


# What the gate reads of a tool and a grant each call; a tool's schemas are kept per
# definition hash (which covers them), so each call reads only these narrow columns.
TOOL_FIELDS = (
    "id",
    "name",
    "source",
    "server_id",
    "remote_name",
    "risk",
    "idempotent",
    "timeout_seconds",
    "rate_limit_per_minute",
    "enabled",
    "available",
    "definition_hash",
)
GRANT_FIELDS = (
    "id",
    "agent",
    "tool_id",
    "definition_hash",
    "constraints",
    "approval",
    "approval_conditions",
    "expires_at",
)

STATE_SQL = compact(f"""
SELECT {columns(Tool, "t", TOOL_FIELDS)}, {columns(Grant, "g", GRANT_FIELDS)},
       {columns(ToolCall, "c")},
       {columns(ToolApproval, "a")}, b.state, r.status
FROM (SELECT 1) AS one
LEFT JOIN {table(Tool)} AS t ON t.name = %(tool)s
LEFT JOIN {table(Grant)} AS g
       ON g.tool_id = t.id AND g.agent = %(agent)s AND g.revoked_at IS NULL
LEFT JOIN {table(ToolCall)} AS c ON c.idempotency_key = %(key)s
LEFT JOIN {table(ToolApproval)} AS a ON a.idempotency_key = %(key)s
LEFT JOIN {table(ToolBreaker)} AS b ON b.tool = %(tool)s
LEFT JOIN {table(Run)} AS r ON r.id = %(run)s
""")  # noqa: S608


def read_state(*, tool: str, agent: str, key: str, run_id: int | None) -> GateState:
    if statements.enabled(within_transaction=True):
        row = statements.run_statement(
            STATE_SQL, {"tool": tool, "agent": agent, "key": key, "run": run_id}
        )
        assert row is not None
        values = list(row)
        found = [
            instance_from_row(Tool, values, TOOL_FIELDS),
            instance_from_row(Grant, values, GRANT_FIELDS),
            instance_from_row(ToolCall, values),
            instance_from_row(ToolApproval, values),
        ]
        tool_row, grant, earlier, approval = (i if i.pk is not None else None for i in found)
        breaker_state, run_status = values
        if tool_row is not None:
            tool_row.input_schema, tool_row.output_schema = tool_schemas(
                tool_row.pk, tool_row.definition_hash
            )
        if grant is not None and tool_row is not None:
            grant.tool = tool_row
        return GateState(tool_row, grant, breaker_state or "closed", earlier, approval, run_status)
    tool_row = Tool.objects.filter(name=tool).first()
    grant = None
    if tool_row is not None:
        grant = Grant.objects.filter(tool=tool_row, agent=agent, revoked_at__isnull=True).first()
    breaker = ToolBreaker.objects.filter(tool=tool).values_list("state", flat=True).first()
    return GateState(
        tool=tool_row,
        grant=grant,
        breaker_state=breaker or "closed",
        earlier=ToolCall.objects.filter(idempotency_key=key).first(),
        approval=ToolApproval.objects.filter(idempotency_key=key).first(),
        run_status=(
            Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
            if run_id is not None
            else None
        ),
    )


_schemas: dict[tuple[int, str], tuple[Any, Any]] = {}


def tool_schemas(tool_id: int, definition_hash: str) -> tuple[Any, Any]:
    """A tool's input and output schemas as of ``definition_hash``, read once per process:
    a changed schema changes the hash, and with it the key."""
    key = (tool_id, definition_hash)
    if key in _schemas:
        return _schemas[key]
    rows = Tool.objects.filter(pk=tool_id).values_list(
        "input_schema", "output_schema", "definition_hash"
    )
    input_schema, output_schema, current_hash = rows.get()
    if current_hash == definition_hash:  # else changed a moment ago: not kept under this key
        if len(_schemas) >= 1024:
            _schemas.clear()
        _schemas[key] = (input_schema, output_schema)
    return input_schema, output_schema


# A write whose loss in a crash of the database server changes nothing that matters commits
# without waiting for its WAL to reach the disk: the next durable commit on the connection
# (the step's checkpoint, say) flushes it with its own. ``ASYNC_COMMIT`` is a SELECT-list
# item that sets this for the statement's own transaction.
ASYNC_COMMIT = "set_config('synchronous_commit', 'off', true)"
COMMIT_MODE = (
    "set_config('synchronous_commit', CASE WHEN %(durable)s THEN "
    "current_setting('synchronous_commit') ELSE 'off' END, true)"
)


COMPLETE_SQL = compact(f"""
WITH done AS (
    UPDATE {table(ToolCall)}
    SET status = 'succeeded', result = %(result)s, finished_at = %(now)s,
        latency_ms = %(latency_ms)s
    WHERE id = %(call)s AND {HEAD_EXISTS}
    RETURNING id
), {append_ctes(source="done", object_id="done.id::text")}
SELECT count(*), {ASYNC_COMMIT} FROM done
""")  # noqa: S608


def record_success(
    *, call: ToolCall, result: dict[str, Any], latency_ms: float, now: datetime
) -> None:
    """Complete the call's record and put the call on the audit trail.

    The statement commits asynchronously: a crash of the database server that loses it
    leaves the call "started", as a crash while the tool ran would, and the gate treats
    that case already (it repeats an idempotent tool, asks a person about any other)."""
    event: dict[str, Any] = {
        "action": "tool.called",
        "actor_label": f"agent:{call.agent}",
        "object_type": "tool_call",
        "after": {"tool": call.tool, "run": call.run_id, "decision": call.decision},
    }
    if statements.enabled():
        params = {
            "result": Jsonb(result),
            "now": now,
            "latency_ms": latency_ms,
            "call": call.pk,
            **append_params(**event),
        }
        (done, _) = statements.run_statement(COMPLETE_SQL, params) or (0, None)
        if done:
            return
        ensure_chain_head()  # the only way the statement writes nothing
    with transaction.atomic():
        ToolCall.objects.filter(pk=call.pk).update(
            status=ToolCall.Status.SUCCEEDED, result=result, finished_at=now, latency_ms=latency_ms
        )
        record_event(**event, object_id=call.pk)


START_SQL = compact(f"""
INSERT INTO {table(ToolCall)} (run_id, agent, tool, arguments, result, status, error,
    idempotency_key, definition_hash, decision, attempts, started_at)
VALUES (%(run)s, %(agent)s, %(tool)s, %(arguments)s, NULL, 'started', '', %(key)s,
    %(definition_hash)s, %(decision)s, 1, %(now)s)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id, {COMMIT_MODE}
""")  # noqa: S608


def insert_started_call(
    *,
    run_id: int | None,
    agent: str,
    tool: str,
    arguments: dict[str, Any],
    key: str,
    definition_hash: str,
    decision: str,
    durable: bool = True,
) -> ToolCall | None:
    """The call's record, committed before the tool runs, in one statement; None if a call
    under the same key was recorded meanwhile (or statements are off here). Only a call that
    must not be repeated blindly (``durable``) waits for its commit to reach the disk: losing
    the record of an idempotent call costs at most running it again."""
    if not statements.enabled():
        return None
    now = timezone.now()
    row = statements.run_statement(
        START_SQL,
        {
            "run": run_id,
            "agent": agent,
            "tool": tool,
            "arguments": Jsonb(arguments),
            "key": key,
            "definition_hash": definition_hash,
            "decision": decision,
            "now": now,
            "durable": durable,
        },
    )
    if row is None:
        return None
    call = ToolCall(
        run_id=run_id,
        agent=agent,
        tool=tool,
        arguments=arguments,
        idempotency_key=key,
        definition_hash=definition_hash,
        decision=decision,
        started_at=now,
    )
    statements.mark_saved(call, row[0])
    return call


# A call that started or succeeded under the same key keeps its record: only a refused or
# failed one is written over.
DENY_SQL = compact(f"""
WITH denied AS (
    INSERT INTO {table(ToolCall)} (run_id, agent, tool, arguments, result, status, error,
        idempotency_key, definition_hash, decision, attempts, started_at, finished_at)
    VALUES (%(run)s, %(agent)s, %(tool)s, %(arguments)s, NULL, 'denied', %(reason)s, %(key)s,
        '', 'deny', 1, %(now)s, %(now)s)
    ON CONFLICT (idempotency_key) DO UPDATE
    SET status = 'denied', decision = 'deny', error = EXCLUDED.error,
        finished_at = EXCLUDED.finished_at, arguments = EXCLUDED.arguments
    WHERE {table(ToolCall)}.status IN ('denied', 'failed')
    RETURNING id
)
INSERT INTO {table(PolicyViolation)} (created_at, run_id, agent, tool, failed_check, reason,
    arguments, idempotency_key)
VALUES (%(now)s, %(run)s, %(agent)s, %(tool)s, %(check)s, %(reason)s, %(arguments)s, %(key)s)
RETURNING id, {ASYNC_COMMIT}
""")  # noqa: S608


def record_denial(
    *,
    run_id: int | None,
    agent: str,
    tool: str,
    arguments: dict[str, Any],
    key: str,
    check: str,
    reason: str,
) -> None:
    """The refused call and its policy violation, written together. On PostgreSQL this
    commits asynchronously: if a crash of the database server loses it, nothing was done,
    and the step's retry is refused again from the same state and recorded then."""
    now = timezone.now()
    if statements.enabled():
        statements.run_statement(
            DENY_SQL,
            {
                "run": run_id,
                "agent": agent,
                "tool": tool,
                "arguments": Jsonb(arguments),
                "key": key,
                "check": check,
                "reason": reason,
                "now": now,
            },
        )
        return
    fields = {
        "run_id": run_id,
        "agent": agent,
        "tool": tool,
        "arguments": arguments,
        "status": ToolCall.Status.DENIED,
        "decision": "deny",
        "error": reason,
        "finished_at": now,
    }
    with transaction.atomic():
        _, created = ToolCall.objects.get_or_create(idempotency_key=key, defaults=fields)
        if not created:  # a call that started or succeeded under this key keeps its record
            ToolCall.objects.filter(
                idempotency_key=key, status__in=[ToolCall.Status.DENIED, ToolCall.Status.FAILED]
            ).update(**fields)
        record_violation(
            run_id=run_id,
            agent=agent,
            tool=tool,
            arguments=arguments,
            key=key,
            check=check,
            reason=reason,
        )


def record_violation(
    *,
    run_id: int | None,
    agent: str,
    tool: str,
    arguments: dict[str, Any],
    key: str,
    check: str,
    reason: str,
) -> None:
    """A policy violation for the admins' log (a refusal's statement writes its own)."""
    PolicyViolation.objects.create(
        run_id=run_id,
        agent=agent,
        tool=tool,
        failed_check=check,
        reason=reason,
        arguments=arguments,
        idempotency_key=key,
    )
