"""Earned autonomy, as pure rules: when a category may send replies without a person, when it
loses that, and how many of its auto-sent replies a person reviews afterwards.

Autonomy is evidence, not configuration. The evidence of a category is the decider's
would-send recommendations there and whether a person sent each unchanged (in shadow mode,
where a person decides every ticket), plus the auto-sent replies reviewed after sending. A
category earns autonomy once the lower Wilson bound of "sent unchanged" over its evidence
reaches the target precision, with at least ``min_evidence`` recommendations behind it. It
loses autonomy at once when the upper bound of its wrong rate passes the tolerance; after a
loss only new evidence counts."""

import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

# Two-sided 95% interval: each bound is passed by the true share 2.5% of the time.
Z = 1.959963984540054


class AutonomyStatus(StrEnum):
    SHADOW = "shadow"  # a person decides every ticket; the decider's advice is recorded
    EARNED = "earned"  # the decider's would-send recommendations go out alone
    LOST = "lost"  # lost on review evidence; back to shadow until it earns again


class InvalidAutonomyConfig(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"autonomy.{field}: {message}")
        self.field = f"autonomy.{field}"


@dataclass(frozen=True)
class AutonomyPolicy:
    # The lower bound of "sent unchanged" a category must reach to send alone.
    target_precision: float = 0.95
    # The upper bound of the wrong rate past which a category loses autonomy.
    wrong_tolerance: float = 0.05
    # Would-send recommendations a category needs before its bound is looked at.
    min_evidence: int = 30
    # The decider recommends sending when its estimate that a person would send the draft
    # unchanged is at least this.
    send_threshold: float = 0.7
    # Share of auto-sent replies a person reviews after sending, and the higher share for
    # a category's first ``recent_window`` auto-sends after it earned autonomy.
    sample_share: float = 0.1
    recent_sample_share: float = 0.5
    recent_window: int = 20

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "AutonomyPolicy":
        """The ``autonomy`` block of a workflow config; every value is checked and a bad one
        is refused with its field named."""
        block = config.get("autonomy", {})
        if not isinstance(block, Mapping):
            raise InvalidAutonomyConfig("(block)", "must be an object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(block) - known)
        if unknown:
            raise InvalidAutonomyConfig(unknown[0], "is not a setting")
        values: dict[str, Any] = {}
        if "target_precision" in block:
            values["target_precision"] = _share(
                "target_precision", block["target_precision"], low=0.5, high=1, high_open=True
            )
        if "send_threshold" in block:
            values["send_threshold"] = _share(
                "send_threshold", block["send_threshold"], low=0, high=1, high_open=True
            )
        for name in ("wrong_tolerance", "sample_share", "recent_sample_share"):
            if name in block:
                values[name] = _share(name, block[name], low=0, high=1, high_open=False)
        for name in ("min_evidence", "recent_window"):
            if name in block:
                values[name] = _count(name, block[name])
        policy = cls(**values)
        if policy.wrong_tolerance + 1e-12 < 1 - policy.target_precision:
            # Else a category that just earned autonomy would lose it on a right review.
            raise InvalidAutonomyConfig(
                "wrong_tolerance",
                f"must be at least 1 - target_precision ({1 - policy.target_precision:.3g})",
            )
        if policy.recent_sample_share < policy.sample_share:
            raise InvalidAutonomyConfig(
                "recent_sample_share",
                "must be at least sample_share (new autonomy is watched more closely, not less)",
            )
        return policy


def _share(name: str, value: Any, *, low: float, high: float, high_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidAutonomyConfig(name, f"must be a number, not {value!r}")
    too_high = value >= high if high_open else value > high
    if value < low or too_high:
        bracket = ")" if high_open else "]"
        raise InvalidAutonomyConfig(name, f"must be in [{low}, {high}{bracket}, not {value!r}")
    return float(value)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidAutonomyConfig(name, f"must be a whole number of at least 1, not {value!r}")
    return value


def wilson_interval(successes: int, trials: int, z: float = Z) -> tuple[float, float]:
    """The Wilson score interval of ``successes`` in ``trials`` (0 to 1 with no trials)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    denominator = 1 + z * z / trials
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


@dataclass(frozen=True)
class Evidence:
    """A category's would-send recommendations since it last lost autonomy, and how many a
    person sent unchanged (or, after sending, reviewed as right)."""

    recommendations: int
    unchanged: int

    @property
    def wrong(self) -> int:
        return self.recommendations - self.unchanged

    @property
    def lower_bound(self) -> float:
        return wilson_interval(self.unchanged, self.recommendations)[0]

    @property
    def wrong_upper_bound(self) -> float:
        return 1 - self.lower_bound


@dataclass(frozen=True)
class Verdict:
    status: AutonomyStatus
    why: str


def judge(status: AutonomyStatus, evidence: Evidence, policy: AutonomyPolicy) -> Verdict:
    """What a category's status should be, given its evidence and the status it has."""
    n, ok = evidence.recommendations, evidence.unchanged
    bound = evidence.lower_bound
    summary = f"{ok} of {n} would-send recommendations were right; lower bound {bound:.1%}"
    if status == AutonomyStatus.EARNED:
        if evidence.wrong_upper_bound > policy.wrong_tolerance:
            return Verdict(
                AutonomyStatus.LOST,
                f"{summary}: the wrong rate may be up to {evidence.wrong_upper_bound:.1%}, past "
                f"the tolerance of {policy.wrong_tolerance:.1%}",
            )
        return Verdict(AutonomyStatus.EARNED, summary)
    if n >= policy.min_evidence and bound >= policy.target_precision:
        return Verdict(
            AutonomyStatus.EARNED, f"{summary}, at or above {policy.target_precision:.0%}"
        )
    if n < policy.min_evidence:
        why = f"{summary}; {policy.min_evidence} recommendations needed"
    else:
        why = f"{summary}, below the target of {policy.target_precision:.0%}"
    return Verdict(status, why)


def review_share(policy: AutonomyPolicy, auto_sent_since_earned: int) -> float:
    """The share of a category's auto-sent replies to review: higher just after it earned."""
    if auto_sent_since_earned < policy.recent_window:
        return policy.recent_sample_share
    return policy.sample_share


def sampled(key: str, share: float, *, secret: str = "") -> bool:
    """Whether the reply with this key is one of the ``share`` a person reviews: a keyed
    hash, so a retried send makes the same choice and no one who lacks the secret can tell
    which replies are reviewed."""
    if share <= 0:
        return False
    mac = hmac.new(secret.encode(), key.encode(), hashlib.sha256).digest()
    return int.from_bytes(mac[:8], "big") / 2**64 < share
