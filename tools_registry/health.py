"""Tool health as a person reads it: which circuit breakers are not closed, and until when."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings

from tools_registry.models import ToolBreaker


@dataclass(frozen=True)
class BreakerStatus:
    tool: str
    state: str
    recent_failures: int
    opened_at: datetime | None
    # When the next call may go through as the probe (open breakers only).
    probe_from: datetime | None


def troubled_tools() -> list[BreakerStatus]:
    """Every tool whose breaker is open or half-open, by name."""
    cooldown = timedelta(seconds=settings.TOOL_BREAKER_COOLDOWN_SECONDS)
    statuses = []
    for row in ToolBreaker.objects.exclude(state="closed").order_by("tool"):
        opened = datetime.fromtimestamp(row.opened_at, tz=UTC) if row.opened_at else None
        statuses.append(
            BreakerStatus(
                tool=row.tool,
                state=row.state,
                recent_failures=len(row.failures),
                opened_at=opened,
                probe_from=opened + cooldown if opened and row.state == "open" else None,
            )
        )
    return statuses
