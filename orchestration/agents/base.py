"""What an agent receives and returns."""

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone


@dataclass(frozen=True)
class TicketView:
    id: int
    subject: str
    body: str
    customer_name: str

    @property
    def text(self) -> str:
        return f"{self.subject}\n{self.body}"

    @classmethod
    def of(cls, ticket: Any) -> "TicketView":
        """What the agents see of a stored ticket."""
        return cls(
            id=ticket.pk,
            subject=ticket.subject,
            body=ticket.body,
            customer_name=ticket.customer_name,
        )


@dataclass(frozen=True)
class AgentContext:
    run_id: int
    step_sequence: int
    ticket: TicketView
    # Earlier nodes' outputs, by node name.
    state: Mapping[str, Any]
    # The workflow version's config (thresholds and rules).
    config: Mapping[str, Any]
    # Why the agent's previous answer was refused, when it is asked again.
    feedback: tuple[str, ...] = ()
    # The workflow's name (its categories' autonomy is the workflow's own).
    workflow: str = "support_desk"


@dataclass
class ChildSpan:
    kind: str
    name: str
    started_at: datetime
    duration_ms: float
    attributes: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"


@dataclass
class AgentResult:
    output: dict[str, Any]
    # What the agent read, for the run page (the ticket is shown once, not per step).
    input: dict[str, Any] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    spans: list[ChildSpan] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)


@contextmanager
def timed_span(spans: list[ChildSpan], kind: str, name: str) -> Iterator[dict[str, Any]]:
    """Record a child span around a block; the block fills in the attributes it yields."""
    attributes: dict[str, Any] = {}
    started_at = timezone.now()
    t0 = time.perf_counter()
    status = "ok"
    try:
        yield attributes
    except Exception:
        status = "error"
        raise
    finally:
        spans.append(
            ChildSpan(
                kind=kind,
                name=name,
                started_at=started_at,
                duration_ms=(time.perf_counter() - t0) * 1000,
                attributes=attributes,
                status=status,
            )
        )


Agent = Callable[[AgentContext], AgentResult]
