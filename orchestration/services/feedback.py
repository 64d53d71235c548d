"""What a person says about the agents' work besides approving it: the size of an edit,
reason codes and corrected labels, checked before a decision is recorded."""

import difflib
from collections.abc import Sequence

from django.conf import settings

from orchestration.models import HumanTask
from orchestration.models.taxonomy import Category, Urgency


class FeedbackError(ValueError):
    """Feedback that cannot be recorded; ``field`` names the form field at fault."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def edit_size(before: str, after: str) -> tuple[int, float]:
    """How much a person changed ``before`` into ``after``: characters deleted plus inserted,
    and the similarity of the two (1.0 when equal)."""
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    changed = sum(
        (i2 - i1) + (j2 - j1) for op, i1, i2, j1, j2 in matcher.get_opcodes() if op != "equal"
    )
    return changed, round(matcher.ratio(), 4)


class Feedback:
    """What a person says about the agents' work besides the outcome."""

    def __init__(self, codes: list[str], category: str, urgency: str) -> None:
        self.codes, self.category, self.urgency = codes, category, urgency

    def corrections(self, task: HumanTask) -> tuple[str, str]:
        """The corrected labels; blank where the person left the agents' label."""
        category = self.category if self.category and self.category != task.category else ""
        urgency = self.urgency if self.urgency and self.urgency != task.urgency else ""
        return category, urgency


def checked_codes(codes: Sequence[str]) -> list[str]:
    known = settings.FEEDBACK_REASON_CODES
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise FeedbackError(f"Unknown reason code {unknown[0]!r}.", field="reason_codes")
    return [c for c in known if c in codes]  # the configured order, each once


def check_labels(category: str, urgency: str) -> None:
    if category and category not in Category.values:
        raise FeedbackError(f"Unknown category {category!r}.", field="corrected_category")
    if urgency and urgency not in Urgency.values:
        raise FeedbackError(f"Unknown urgency {urgency!r}.", field="corrected_urgency")
