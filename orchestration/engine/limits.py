"""Bounds on a run, and the backoff between retries of a step.

A limit that trips pauses the run for a person (who may resume it with more budget or cancel
it); it never crashes the run and never lets it burn money without end."""

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

# Sanity ceilings on configured limits: a week for any time, a billion for any count.
MAX_SECONDS = 7 * 24 * 3600
MAX_COUNT = 1_000_000_000


@dataclass(frozen=True)
class Limits:
    max_steps: int = 20
    max_visits_per_node: int = 3
    max_tokens: int = 50_000
    # Transient failures (timeouts, 429, 5xx) are retried up to this many attempts in all.
    max_attempts: int = 4
    # An output that fails its schema is sent back to the agent this many times at most.
    max_reasks: int = 2
    retry_base_seconds: float = 1.0
    retry_cap_seconds: float = 60.0
    # A step still running past its soft limit is interrupted and retried as transient; past
    # its hard limit its lease has expired and the step is handed to another worker.
    step_soft_seconds: float = 60.0
    step_hard_seconds: float = 120.0

    def __post_init__(self) -> None:
        if self.step_soft_seconds > self.step_hard_seconds:
            raise ValueError(
                f"limits.step_soft_seconds ({self.step_soft_seconds}) must not exceed "
                f"limits.step_hard_seconds ({self.step_hard_seconds})"
            )

    @classmethod
    def from_config(cls, config: Mapping[str, Any], base: "Limits | None" = None) -> "Limits":
        """Limits from a workflow config's ``limits`` object, over ``base`` (the deployment's
        defaults) for what it leaves out; unknown keys or values that are not positive numbers
        are refused with their name."""
        given = dict(config.get("limits", {}))
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValueError(f"unknown limits: {', '.join(unknown)}")
        for name, value in given.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"limits.{name} must be a positive number, not {value!r}")
            ceiling = MAX_SECONDS if name.endswith("_seconds") else MAX_COUNT
            if value > ceiling:
                raise ValueError(f"limits.{name} must be at most {ceiling}, not {value!r}")
        return replace(base or cls(), **given)

    def raised(self, *, steps: int = 0, visits: int = 0, tokens: int = 0) -> "Limits":
        return replace(
            self,
            max_steps=self.max_steps + steps,
            max_visits_per_node=self.max_visits_per_node + visits,
            max_tokens=self.max_tokens + tokens,
        )


@dataclass(frozen=True)
class Usage:
    steps: int
    visits: Mapping[str, int]
    tokens: int


def limit_reached(limits: Limits, usage: Usage, next_node: str) -> str | None:
    """Why running ``next_node`` now would break a limit, or None if it may run."""
    if usage.steps >= limits.max_steps:
        return f"the run has taken {usage.steps} steps, its limit"
    visits = usage.visits.get(next_node, 0)
    if visits >= limits.max_visits_per_node:
        return (
            f"{next_node} would run a {visits + 1}th time (limit {limits.max_visits_per_node}): "
            "the workflow may be looping"
        )
    if usage.tokens >= limits.max_tokens:
        return f"the run has used {usage.tokens} tokens of its budget of {limits.max_tokens}"
    return None


def retry_delay(attempt: int, *, base: float, cap: float, jitter: float) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential backoff with full jitter.

    ``jitter`` is a number in [0, 1) from the caller's random source, so that many steps
    failing together do not all retry at the same instant."""
    if not 0 <= jitter < 1:
        raise ValueError("jitter must be in [0, 1)")
    ceiling: float = min(cap, base * 2.0 ** max(attempt - 1, 0))
    return ceiling * jitter
