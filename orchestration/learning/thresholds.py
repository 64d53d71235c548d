"""The decider's auto-send thresholds, recalibrated from what people decided.

A category may auto-send above a confidence threshold only if, among the drafts of that
category a person reviewed with at least that confidence, the lower Wilson bound of the
share approved without edits is at or above the target precision. The threshold is the
lowest such confidence; a category without enough evidence gets none and keeps asking a
person."""

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

# Two-sided 95% interval: the lower bound is exceeded by the true share 97.5% of the time.
Z = 1.959963984540054


@dataclass(frozen=True)
class Outcome:
    """One reviewed draft: its category as the agents had it, the classifier's confidence
    and whether a person sent it unchanged."""

    category: str
    confidence: float
    unchanged: bool


@dataclass(frozen=True)
class Calibration:
    threshold: float | None
    # At the threshold (or over all the evidence if none): reviewed drafts, approved
    # unchanged, and the lower bound of that share.
    reviewed: int
    unchanged: int
    lower_bound: float
    why: str


def wilson_lower_bound(successes: int, trials: int, z: float = Z) -> float:
    """The lower end of the Wilson score interval for a share of ``successes`` in ``trials``."""
    if trials == 0:
        return 0.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return (centre - spread) / (1 + z * z / trials)


def calibrate(
    outcomes: Iterable[Outcome], *, target: float, min_evidence: int
) -> dict[str, Calibration]:
    """Per category, the lowest threshold whose reviewed drafts at or above it number at
    least ``min_evidence`` and have a lower bound of "unchanged" at or above ``target``."""
    by_category: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_category[outcome.category].append(outcome)
    return {
        category: _calibrate_one(rows, target, min_evidence)
        for category, rows in sorted(by_category.items())
    }


def _calibrate_one(rows: list[Outcome], target: float, min_evidence: int) -> Calibration:
    rows = sorted(rows, key=lambda o: o.confidence, reverse=True)
    best: Calibration | None = None
    reviewed = unchanged = 0
    # Walk down from the most confident draft; each distinct confidence is a threshold.
    for i, row in enumerate(rows):
        reviewed += 1
        unchanged += row.unchanged
        if i + 1 < len(rows) and rows[i + 1].confidence == row.confidence:
            continue  # a threshold takes every draft at its confidence
        if reviewed < min_evidence:
            continue
        bound = wilson_lower_bound(unchanged, reviewed)
        if bound >= target:
            best = Calibration(
                round(row.confidence, 4),
                reviewed,
                unchanged,
                round(bound, 4),
                f"{unchanged} of {reviewed} reviewed drafts at or above {row.confidence:.1%} "
                f"went out unchanged; lower bound {bound:.1%}",
            )
    if best is not None:
        return best
    total, good = len(rows), sum(r.unchanged for r in rows)
    bound = wilson_lower_bound(good, total)
    why = (
        f"only {total} reviewed drafts; {min_evidence} needed"
        if total < min_evidence
        else f"no confidence keeps the lower bound at {target:.0%} ({good} of {total} unchanged)"
    )
    return Calibration(None, total, good, round(bound, 4), why)
