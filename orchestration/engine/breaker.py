"""The per-tool circuit breaker: closed → open after N failures within a window → half-open
after a cool-down, when one probe call may pass → closed on its success, open again on its
failure. Pure: the caller supplies the clock and stores the state."""

from dataclasses import dataclass, replace
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 5
    window_seconds: float = 60.0
    cooldown_seconds: float = 30.0


@dataclass(frozen=True)
class Breaker:
    state: BreakerState = BreakerState.CLOSED
    # When recent failures happened (seconds), oldest first, only those inside the window.
    failures: tuple[float, ...] = ()
    opened_at: float | None = None


def admit(breaker: Breaker, policy: BreakerPolicy, now: float) -> tuple[bool, Breaker]:
    """Whether a call may go through now, and the breaker after deciding. An open breaker
    lets exactly one probe through once its cool-down has passed."""
    if breaker.state is BreakerState.CLOSED:
        return True, breaker
    if breaker.state is BreakerState.OPEN:
        assert breaker.opened_at is not None
        if now - breaker.opened_at >= policy.cooldown_seconds:
            return True, replace(breaker, state=BreakerState.HALF_OPEN)
        return False, breaker
    return False, breaker  # half-open: the probe is still out


def record_success(breaker: Breaker) -> Breaker:
    return Breaker()


def record_failure(breaker: Breaker, policy: BreakerPolicy, now: float) -> Breaker:
    if breaker.state is BreakerState.HALF_OPEN:
        return Breaker(state=BreakerState.OPEN, opened_at=now)
    recent = tuple(t for t in breaker.failures if now - t < policy.window_seconds) + (now,)
    if len(recent) >= policy.failure_threshold:
        return Breaker(state=BreakerState.OPEN, failures=recent, opened_at=now)
    return replace(breaker, failures=recent)
