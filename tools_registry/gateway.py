"""The tool gateway: every side effect an agent causes passes through ``call_tool``."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from jsonschema import Draft202012Validator

from orchestration.engine.breaker import (
    Breaker,
    BreakerPolicy,
    BreakerState,
    admit,
    record_failure,
    record_success,
)
from orchestration.engine.states import FINAL_RUN_STATUSES
from orchestration.models import Run
from orchestration.services.audit import record_event
from tools_registry.builtin import BUILTIN_TOOLS, BuiltinTool
from tools_registry.models import ToolBreaker, ToolCall


class ToolDenied(Exception):
    """The call was refused before anything was executed."""

    kind = "policy_denied"


class CircuitOpen(Exception):
    """The tool has been failing; calls wait until its breaker lets a probe through."""

    kind = "circuit_open"


class RunNotActive(Exception):
    """The call's run is over (a person cancelled it while its step was running)."""

    kind = "permanent"


class ToolOutcomeUnknown(Exception):
    """A call to a tool that is not idempotent started before and never finished: it may or
    may not have acted, so it is not repeated blindly; a person must look."""

    kind = "permanent"


_dry_run: ContextVar[bool] = ContextVar("switchboard_tool_dry_run", default=False)


@contextmanager
def dry_run() -> Iterator[None]:
    """Within this block no tool executes and nothing is recorded: a call whose key already
    succeeded returns its recorded result, and any other call returns ``{"executed": False}``.
    Replays run in it."""
    token = _dry_run.set(True)
    try:
        yield
    finally:
        _dry_run.reset(token)


def _dry_run_result(idempotency_key: str) -> dict[str, Any]:
    earlier = ToolCall.objects.filter(
        idempotency_key=idempotency_key, status=ToolCall.Status.SUCCEEDED
    ).first()
    if earlier is not None:
        return {**(earlier.result or {}), "replayed": True}
    return {"replayed": False, "executed": False}


def call_tool(
    *,
    name: str,
    agent: str,
    arguments: dict[str, Any],
    idempotency_key: str,
    run_id: int | None = None,
) -> dict[str, Any]:
    """Check the call, record it, execute it once, record its result.

    The record is committed before the tool runs and completed after, under a unique
    idempotency key. A repeated call with a key whose call succeeded returns the recorded
    result without executing anything; one whose call was cut short is executed again only if
    the tool is idempotent. Returns the tool's result plus ``replayed`` (True when reused).
    In a dry run (see ``dry_run``) nothing is executed or written."""
    if _dry_run.get():
        return _dry_run_result(idempotency_key)
    tool = BUILTIN_TOOLS.get(name)
    denial = None
    if tool is None:
        denial = f"agent {agent!r} called unknown tool {name!r}"
    else:
        errors = sorted(
            Draft202012Validator(tool.input_schema).iter_errors(arguments), key=lambda e: e.path
        )
        if errors:
            details = "; ".join(
                f"{'.'.join(str(p) for p in e.path) or '(arguments)'}: {e.message}" for e in errors
            )
            denial = f"arguments for {name!r} do not fit its schema: {details}"
    if denial:
        ToolCall.objects.get_or_create(
            idempotency_key=idempotency_key,
            defaults={
                "run_id": run_id,
                "agent": agent,
                "tool": name,
                "arguments": arguments,
                "status": ToolCall.Status.DENIED,
                "error": denial,
                "finished_at": timezone.now(),
            },
        )
        raise ToolDenied(denial)
    assert tool is not None
    earlier = ToolCall.objects.filter(idempotency_key=idempotency_key).first()
    if earlier is not None and (recorded := _earlier_result(earlier, tool)) is not None:
        return recorded
    if run_id is not None and Run.objects.filter(pk=run_id, status__in=FINAL_RUN_STATUSES).exists():
        # A worker that went on with a run a person cancelled meanwhile acts no further.
        raise RunNotActive(f"run {run_id} has finished or was cancelled; {name} was not called")
    if not _admit(name):
        raise CircuitOpen(f"{name} has been failing; its circuit breaker is open")
    if earlier is None:
        try:
            with transaction.atomic():
                call = ToolCall.objects.create(
                    idempotency_key=idempotency_key,
                    run_id=run_id,
                    agent=agent,
                    tool=name,
                    arguments=arguments,
                )
        except IntegrityError:  # another worker recorded the same call a moment ago
            earlier = ToolCall.objects.get(idempotency_key=idempotency_key)
            if (recorded := _earlier_result(earlier, tool)) is not None:
                return recorded
    if earlier is not None:
        call = earlier
        ToolCall.objects.filter(pk=call.pk).update(
            attempts=F("attempts") + 1, status=ToolCall.Status.STARTED
        )
    started = time.perf_counter()
    try:
        result = tool.handler(arguments, idempotency_key)
    except Exception as exc:
        _record_outcome(name, succeeded=False)
        ToolCall.objects.filter(pk=call.pk).update(
            status=ToolCall.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
            latency_ms=(time.perf_counter() - started) * 1000,
        )
        raise
    _record_outcome(name, succeeded=True)
    ToolCall.objects.filter(pk=call.pk).update(
        status=ToolCall.Status.SUCCEEDED,
        result=result,
        finished_at=timezone.now(),
        latency_ms=(time.perf_counter() - started) * 1000,
    )
    return {**result, "replayed": False}


def _earlier_result(call: ToolCall, tool: BuiltinTool) -> dict[str, Any] | None:
    """What an earlier call under the same key decides: its recorded result if it succeeded,
    its refusal again if it was denied, a refusal to guess if a non-idempotent tool may have
    acted; None when the call may simply be executed again."""
    if call.status == ToolCall.Status.SUCCEEDED:
        return {**(call.result or {}), "replayed": True}
    if call.status == ToolCall.Status.DENIED:
        raise ToolDenied(call.error)
    if not tool.idempotent:
        raise ToolOutcomeUnknown(
            f"{tool.name} started before ({call.idempotency_key}) and its outcome is unknown"
        )
    return None


def _policy() -> BreakerPolicy:
    return BreakerPolicy(
        failure_threshold=settings.TOOL_BREAKER_FAILURES,
        window_seconds=settings.TOOL_BREAKER_WINDOW_SECONDS,
        cooldown_seconds=settings.TOOL_BREAKER_COOLDOWN_SECONDS,
    )


def _load(row: ToolBreaker) -> Breaker:
    return Breaker(BreakerState(row.state), tuple(row.failures), row.opened_at)


def _store(row: ToolBreaker, breaker: Breaker) -> None:
    ToolBreaker.objects.filter(pk=row.pk).update(
        state=breaker.state, failures=list(breaker.failures), opened_at=breaker.opened_at
    )


def _admit(name: str) -> bool:
    """Ask the tool's breaker, under its row lock, whether a call may go through now."""
    with transaction.atomic():
        row, _ = ToolBreaker.objects.select_for_update().get_or_create(tool=name)
        allowed, after = admit(_load(row), _policy(), time.time())
        if after != _load(row):
            _store(row, after)
            if after.state is BreakerState.HALF_OPEN:
                record_event(action="tool.breaker_probe", object_type="tool", object_id=name)
    return allowed


def _record_outcome(name: str, *, succeeded: bool) -> None:
    with transaction.atomic():
        row, _ = ToolBreaker.objects.select_for_update().get_or_create(tool=name)
        before = _load(row)
        if succeeded and before == Breaker():
            return  # the common case writes nothing
        after = (
            record_success(before) if succeeded else record_failure(before, _policy(), time.time())
        )
        _store(row, after)
        if after.state != before.state:
            record_event(
                action=f"tool.breaker_{after.state}",
                object_type="tool",
                object_id=name,
                before={"state": before.state},
                after={"state": after.state, "recent_failures": len(after.failures)},
            )
