"""Each tool's circuit breaker, stored per tool under a row lock so every worker shares it
(the state machine itself is engine/breaker.py)."""

import time

from django.conf import settings
from django.db import transaction

from orchestration.engine.breaker import (
    Breaker,
    BreakerPolicy,
    BreakerState,
    admit,
    record_failure,
    record_success,
)
from orchestration.services.audit import record_event
from tools_registry.models import ToolBreaker


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


def admit_call(name: str) -> bool:
    """Ask the tool's breaker, under its row lock, whether a call may go through now."""
    with transaction.atomic():
        row, _ = ToolBreaker.objects.select_for_update().get_or_create(tool=name)
        allowed, after = admit(_load(row), _policy(), time.time())
        if after != _load(row):
            _store(row, after)
            if after.state is BreakerState.HALF_OPEN:
                record_event(action="tool.breaker_probe", object_type="tool", object_id=name)
    return allowed


def record_outcome(name: str, *, succeeded: bool) -> None:
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
