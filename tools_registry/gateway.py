"""The gate: every tool call of every agent passes through ``call_tool``, which checks it in
one fixed order and refuses it at the first check it fails:

1. the tool exists, is enabled and is still offered by its source;
2. the agent holds an active, unexpired grant for the tool's current definition;
3. the arguments fit the tool's input schema;
4. the arguments keep within the grant's constraints;
5. the tool's rate limit;
6. the tool's circuit breaker;
7. the grant's approval rule: a call that needs a person waits for one approval of exactly
   this call (its idempotency key, arguments and definition), used once, re-checked here;
then the call is recorded, executed once under its idempotency key within the tool's
timeout, its output checked against the tool's output schema, and the call completed with
an audit event. Every refusal is recorded as a policy violation with its reason.

A call whose key already succeeded returns its recorded result without any check: what was
done is not done again, whatever changed since."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from orchestration.engine.states import FINAL_RUN_STATUSES
from tools_registry import breakers, executors
from tools_registry.gate_state import (
    GateState,
    insert_started_call,
    read_state,
    record_denial,
    record_success,
    record_violation,
)
from tools_registry.models import PolicyViolation, Tool, ToolApproval, ToolCall
from tools_registry.policy import (
    broken_constraints,
    canonical_hash,
    needs_approval,
    parse_constraints,
)
from tools_registry.schemas import schema_problems

Check = PolicyViolation.Check


class ToolDenied(Exception):
    """The call was refused before anything was executed; ``check`` names the check."""

    kind = "policy_denied"

    def __init__(self, message: str, check: str = "") -> None:
        super().__init__(message)
        self.check = check


class RateLimited(ToolDenied):
    """The tool's rate limit is reached; the step is retried later."""

    kind = "transient"


class CircuitOpen(ToolDenied):
    """The tool has been failing; calls wait until its breaker lets a probe through."""

    kind = "circuit_open"


class ApprovalRequired(Exception):
    """The grant asks a person to approve this exact call; ``approval`` is waiting."""

    kind = "approval_required"

    def __init__(self, approval: ToolApproval) -> None:
        super().__init__(f"{approval.tool_id} needs a person's approval: {approval.reason}")
        self.approval = approval


class RunNotActive(Exception):
    """The call's run is over (a person cancelled it while its step was running)."""

    kind = "permanent"


class ToolOutcomeUnknown(Exception):
    """A call to a tool that is not idempotent started before and never finished: it may or
    may not have acted, so it is not repeated blindly; a person must look."""

    kind = "permanent"


class InvalidToolOutput(Exception):
    """The tool answered with a result that breaks its output schema."""

    kind = "permanent"


_dry_run: ContextVar[bool] = ContextVar("switchboard_tool_dry_run", default=False)


@contextmanager
def dry_run() -> Iterator[None]:
    """Within this block nothing is recorded and nothing acts: a call whose key already
    succeeded returns its recorded result, a read-only tool answers, and any other call
    returns ``{"executed": False}``. Replays run in it."""
    token = _dry_run.set(True)
    try:
        yield
    finally:
        _dry_run.reset(token)


def _dry_run_result(
    name: str, agent: str, arguments: dict[str, Any], idempotency_key: str
) -> dict[str, Any]:
    earlier = ToolCall.objects.filter(
        idempotency_key=idempotency_key, status=ToolCall.Status.SUCCEEDED
    ).first()
    if earlier is not None:
        return {**(earlier.result or {}), "replayed": True}
    state = read_state(tool=name, agent=agent, key=idempotency_key, run_id=None)
    tool, grant = state.tool, state.grant
    readable = (
        tool is not None
        and grant is not None
        and tool.risk == Tool.Risk.READ
        and tool.enabled
        and tool.available
        and grant.definition_hash == tool.definition_hash
        and (grant.expires_at is None or grant.expires_at > timezone.now())
        and not schema_problems(tool.input_schema, arguments)
        and not broken_constraints(parse_constraints(grant.constraints), arguments)
    )
    if readable:
        # Reading changes nothing: within the agent's grant, a replay may read what the
        # original run did not.
        assert tool is not None
        return {**executors.execute(tool, arguments, idempotency_key), "replayed": False}
    return {"replayed": False, "executed": False}


def call_tool(
    *,
    name: str,
    agent: str,
    arguments: dict[str, Any],
    idempotency_key: str,
    run_id: int | None = None,
) -> dict[str, Any]:
    """Check the call, record it, execute it once, record its result; returns the tool's
    result plus ``replayed`` (True when an earlier call's result is reused). Raises
    ToolDenied (or RateLimited, CircuitOpen) for a refusal, ApprovalRequired when a person
    must approve first. In a dry run (see ``dry_run``) nothing is executed or written."""
    if _dry_run.get():
        return _dry_run_result(name, agent, arguments, idempotency_key)
    state = read_state(tool=name, agent=agent, key=idempotency_key, run_id=run_id)
    earlier = state.earlier
    if earlier is not None and earlier.status == ToolCall.Status.SUCCEEDED:
        return {**(earlier.result or {}), "replayed": True}
    if (
        earlier is not None
        and earlier.status == ToolCall.Status.STARTED
        and state.tool is not None
        and not state.tool.idempotent
    ):
        # It may have acted: neither repeated blindly nor overwritten by a refusal.
        raise ToolOutcomeUnknown(
            f"{name} started before ({idempotency_key}) and its outcome is unknown"
        )
    call = _Call(name, agent, arguments, idempotency_key, run_id, state)
    tool = call.check()
    if state.run_status in FINAL_RUN_STATUSES:
        # A worker that went on with a run a person cancelled meanwhile acts no further.
        raise RunNotActive(f"run {run_id} has finished or was cancelled; {name} was not called")
    record = call.record_start(tool)
    started = time.perf_counter()
    try:
        result = executors.execute(tool, arguments, idempotency_key)
    except Exception as exc:
        breakers.record_outcome(name, succeeded=False)
        # A tool that is not idempotent may have acted before it failed (a timeout after
        # the request went out): its record stays "started", so a retry asks a person.
        call.record_failure(
            record, f"{type(exc).__name__}: {exc}", started, unknown=not tool.idempotent
        )
        raise
    problems = schema_problems(tool.output_schema, result) if tool.output_schema else []
    if problems:
        message = f"{name} answered outside its output schema: " + "; ".join(problems)
        call.record_failure(record, message, started)
        call.violation(Check.INVALID_OUTPUT, message)
        raise InvalidToolOutput(message)
    if state.breaker_state != "closed":
        breakers.record_outcome(name, succeeded=True)
    latency_ms = (time.perf_counter() - started) * 1000
    record_success(call=record, result=result, latency_ms=latency_ms, now=timezone.now())
    return {**result, "replayed": False}


class _Call:
    """One call on its way through the gate."""

    def __init__(
        self,
        name: str,
        agent: str,
        arguments: dict[str, Any],
        key: str,
        run_id: int | None,
        state: GateState,
    ) -> None:
        self.name, self.agent, self.arguments, self.key = name, agent, arguments, key
        self.run_id, self.state = run_id, state
        self.decision = "allow"

    def check(self) -> Tool:
        """The checks in their order; returns the tool if the call may be executed."""
        tool, grant, now = self.state.tool, self.state.grant, timezone.now()
        if tool is None:
            self.deny(Check.UNKNOWN_TOOL, f"agent {self.agent!r} called unknown tool {self.name!r}")
        assert tool is not None
        if not tool.enabled:
            self.deny(Check.DISABLED, f"{self.name} is switched off")
        if not tool.available:
            self.deny(Check.DISABLED, f"{self.name} is no longer offered by its server")
        if grant is None:
            self.deny(Check.NO_GRANT, f"agent {self.agent!r} holds no grant for {self.name}")
        assert grant is not None
        if grant.expires_at is not None and grant.expires_at <= now:
            self.deny(Check.GRANT_EXPIRED, f"the grant of {self.name} to {self.agent} expired")
        if grant.definition_hash != tool.definition_hash:
            self.deny(
                Check.DEFINITION_CHANGED,
                f"{self.name}'s definition changed since it was granted to {self.agent}; "
                "an admin must review the grant",
            )
        problems = schema_problems(tool.input_schema, self.arguments)
        if problems:
            self.deny(
                Check.INVALID_ARGUMENTS,
                f"arguments for {self.name!r} do not fit its schema: " + "; ".join(problems),
            )
        broken = broken_constraints(parse_constraints(grant.constraints), self.arguments)
        if broken:
            self.deny(
                Check.CONSTRAINT,
                f"{self.name} for {self.agent}: not allowed unless " + "; ".join(broken),
            )
        if tool.rate_limit_per_minute and not _within_rate(tool, now):
            self.deny(
                Check.RATE_LIMIT,
                f"{self.name} is at its limit of {tool.rate_limit_per_minute} calls a minute",
                RateLimited,
            )
        if self.state.breaker_state != "closed" and not breakers.admit_call(self.name):
            self.deny(
                Check.CIRCUIT_OPEN,
                f"{self.name} has been failing; its circuit breaker is open",
                CircuitOpen,
            )
        reason = needs_approval(
            grant.approval, parse_constraints(grant.approval_conditions), self.arguments
        )
        if reason:
            self.use_approval(tool, reason)
        return tool

    def use_approval(self, tool: Tool, reason: str) -> None:
        """Go on only with a person's approval of exactly this call, used here once."""
        approval = self.state.approval
        arguments_hash = canonical_hash(self.arguments)
        if approval is None:
            ttl = timedelta(seconds=settings.TOOL_APPROVAL_TTL_SECONDS)
            try:
                approval = ToolApproval.objects.create(
                    idempotency_key=self.key,
                    run_id=self.run_id,
                    agent=self.agent,
                    tool=tool,
                    arguments=self.arguments,
                    arguments_hash=arguments_hash,
                    definition_hash=tool.definition_hash,
                    reason=reason,
                    expires_at=timezone.now() + ttl,
                )
            except IntegrityError:  # another delivery of the same step asked a moment ago
                approval = ToolApproval.objects.get(idempotency_key=self.key)
            raise ApprovalRequired(approval)
        status = approval.status
        if status == ToolApproval.Status.PENDING and approval.expires_at > timezone.now():
            raise ApprovalRequired(approval)
        if status == ToolApproval.Status.REJECTED:
            self.deny(Check.APPROVAL_REJECTED, f"a person rejected this {self.name} call")
        if status == ToolApproval.Status.EXPIRED or (
            status == ToolApproval.Status.PENDING and approval.expires_at <= timezone.now()
        ):
            self.deny(Check.APPROVAL_EXPIRED, f"the approval of this {self.name} call expired")
        if (approval.arguments_hash, approval.definition_hash) != (
            arguments_hash,
            tool.definition_hash,
        ):
            self.deny(
                Check.APPROVAL_MISMATCH,
                f"this {self.name} call is not the one a person approved",
            )
        if status == ToolApproval.Status.APPROVED:
            used = ToolApproval.objects.filter(
                pk=approval.pk, status=ToolApproval.Status.APPROVED
            ).update(status=ToolApproval.Status.USED, used_at=timezone.now())
            if not used:
                self.deny(Check.APPROVAL_MISMATCH, "this approval was used already")
        elif self.state.earlier is None:  # used, yet this key never ran: not this call
            self.deny(Check.APPROVAL_MISMATCH, "this approval was used already")
        self.decision = "ask"

    def deny(self, check: str, reason: str, error: type[ToolDenied] = ToolDenied) -> None:
        """Record the refusal (the call and a policy violation, together) and raise it."""
        record_denial(
            run_id=self.run_id,
            agent=self.agent,
            tool=self.name,
            arguments=self.arguments,
            key=self.key,
            check=check,
            reason=reason,
        )
        raise error(reason, check)

    def violation(self, check: str, reason: str) -> None:
        record_violation(
            run_id=self.run_id,
            agent=self.agent,
            tool=self.name,
            arguments=self.arguments,
            key=self.key,
            check=check,
            reason=reason,
        )

    def record_start(self, tool: Tool) -> ToolCall:
        """The call's record, committed before the tool runs."""
        earlier = self.state.earlier
        if earlier is None:
            started = insert_started_call(
                run_id=self.run_id,
                agent=self.agent,
                tool=self.name,
                arguments=self.arguments,
                key=self.key,
                definition_hash=tool.definition_hash,
                decision=self.decision,
                durable=not tool.idempotent,
            )
            if started is not None:
                return started
            try:
                with transaction.atomic():
                    return ToolCall.objects.create(
                        idempotency_key=self.key,
                        run_id=self.run_id,
                        agent=self.agent,
                        tool=self.name,
                        arguments=self.arguments,
                        definition_hash=tool.definition_hash,
                        decision=self.decision,
                    )
            except IntegrityError:  # another worker recorded the same call a moment ago
                earlier = ToolCall.objects.get(idempotency_key=self.key)
                if earlier.status == ToolCall.Status.SUCCEEDED or not tool.idempotent:
                    raise ToolOutcomeUnknown(
                        f"{self.name} is being called under {self.key} by another worker"
                    ) from None
        ToolCall.objects.filter(pk=earlier.pk).update(
            attempts=F("attempts") + 1,
            status=ToolCall.Status.STARTED,
            decision=self.decision,
            definition_hash=tool.definition_hash,
            error="",
        )
        return earlier

    def record_failure(
        self, record: ToolCall, message: str, started: float, unknown: bool = False
    ) -> None:
        ToolCall.objects.filter(pk=record.pk).update(
            status=ToolCall.Status.STARTED if unknown else ToolCall.Status.FAILED,
            error=message[:2000],
            finished_at=timezone.now(),
            latency_ms=(time.perf_counter() - started) * 1000,
        )


def _within_rate(tool: Tool, now: Any) -> bool:
    """Count this call in the tool's current minute; False once the limit is passed."""
    from tools_registry.models import ToolRateWindow

    window = now.replace(second=0, microsecond=0)
    with transaction.atomic():
        row, _ = ToolRateWindow.objects.select_for_update().get_or_create(
            tool=tool.name, window_start=window
        )
        if row.calls >= (tool.rate_limit_per_minute or 0):
            return False
        ToolRateWindow.objects.filter(pk=row.pk).update(calls=F("calls") + 1)
    return True
