"""Measures against answer ground truth: which help articles answer a ticket (``answer_slugs``,
empty when none does and a person must handle it).

Retrieval is scored on the tickets some article answers (recall@1, recall@3 and the mean
reciprocal rank of the first answering article); "no article answers this" is scored as a
detection on all of them. An auto-sent reply is wrong when the category was wrong, when no
article answers the ticket, or when the reply's primary cited article is not one that does."""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from orchestration.learning.thresholds import Z, wilson_lower_bound


@dataclass(frozen=True)
class Ranked:
    """What retrieval returned for one ticket, beside the truth."""

    answer_slugs: tuple[str, ...]
    ranked: tuple[str, ...]  # article slugs, best first
    # Whether retrieval (or the decider) said no article answers this ticket.
    said_unanswered: bool = False


def first_answer_rank(ranked: Sequence[str], answers: Iterable[str]) -> int | None:
    """1-based rank of the first answering article, or None if none is retrieved."""
    wanted = set(answers)
    for i, slug in enumerate(ranked, start=1):
        if slug in wanted:
            return i
    return None


def retrieval_metrics(rows: Sequence[Ranked]) -> dict[str, float | int]:
    answerable = [r for r in rows if r.answer_slugs]
    ranks = [first_answer_rank(r.ranked, r.answer_slugs) for r in answerable]
    n = len(answerable)
    metrics: dict[str, float | int] = {
        "answerable_tickets": n,
        "unanswerable_tickets": len(rows) - n,
    }
    if n:
        metrics["retrieval_recall_at_1"] = round(sum(r == 1 for r in ranks) / n, 4)
        metrics["retrieval_recall_at_3"] = round(
            sum(r is not None and r <= 3 for r in ranks) / n, 4
        )
        metrics["retrieval_mrr"] = round(sum(1 / r for r in ranks if r) / n, 4)
    unanswerable = [r for r in rows if not r.answer_slugs]
    flagged = [r for r in rows if r.said_unanswered]
    if unanswerable:
        metrics["unanswered_recall"] = round(
            sum(r.said_unanswered for r in unanswerable) / len(unanswerable), 4
        )
    if flagged:
        metrics["unanswered_precision"] = round(
            sum(not r.answer_slugs for r in flagged) / len(flagged), 4
        )
    return metrics


def wrong_to_auto_send(
    *, category: str, true_category: str, primary_citation: str, answer_slugs: Iterable[str]
) -> bool:
    """Whether a reply sent without a person would have been wrong, by the ground truth."""
    answers = set(answer_slugs)
    return category != true_category or not answers or primary_citation not in answers


def wilson_interval(successes: int, trials: int, z: float = Z) -> tuple[float, float]:
    """The Wilson score interval of a share (0 to 1 at both ends for no trials)."""
    if trials == 0:
        return 0.0, 1.0
    low = wilson_lower_bound(successes, trials, z)
    high = 1 - wilson_lower_bound(trials - successes, trials, z)
    return max(0.0, low), min(1.0, high)


def rate_with_interval(successes: int, trials: int) -> dict[str, float | int | None]:
    low, high = wilson_interval(successes, trials)
    return {
        "count": successes,
        "of": trials,
        "rate": round(successes / trials, 4) if trials else None,
        "low": round(low, 4),
        "high": round(high, 4) if not math.isnan(high) else None,
    }
