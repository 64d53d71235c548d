"""The decider's recalibrated thresholds: the lowest confidence at which the lower Wilson
bound of "sent unchanged" reaches the target, checked against SciPy's Wilson interval."""

import pytest
from scipy.stats import binomtest

from orchestration.learning.thresholds import Outcome, calibrate, wilson_lower_bound


def outcomes(category, confidence, unchanged, changed):
    return [Outcome(category, confidence, True)] * unchanged + [
        Outcome(category, confidence, False)
    ] * changed


@pytest.mark.parametrize("k,n", [(0, 1), (19, 20), (95, 100), (140, 150), (300, 300)])
def test_the_bound_is_wilsons(k, n):
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson").low
    assert wilson_lower_bound(k, n) == pytest.approx(expected, abs=1e-9)


def test_the_threshold_is_the_lowest_confidence_the_bound_allows():
    # Above 0.9: 120 of 120 unchanged (bound 96.9%). Down to 0.8: 150 of 152 (bound 95.3%).
    # Down to 0.7: 180 of 192 (bound 89.2%), below the 95% target.
    mix = (
        outcomes("billing", 0.95, 120, 0)
        + outcomes("billing", 0.8, 30, 2)
        + outcomes("billing", 0.7, 30, 10)
    )
    for step, (k, n) in {0.95: (120, 120), 0.8: (150, 152), 0.7: (180, 192)}.items():
        low = binomtest(k, n).proportion_ci(method="wilson").low
        assert (low >= 0.95) == (step >= 0.8), (step, low)
    billing = calibrate(mix, target=0.95, min_evidence=30)["billing"]
    assert billing.threshold == 0.8
    assert (billing.reviewed, billing.unchanged) == (152, 150)
    assert billing.lower_bound == pytest.approx(
        binomtest(150, 152).proportion_ci(method="wilson").low, abs=1e-4
    )


def test_a_stricter_target_raises_the_threshold_and_too_strict_leaves_none():
    mix = outcomes("bug", 0.95, 120, 0) + outcomes("bug", 0.8, 30, 2)
    assert calibrate(mix, target=0.96, min_evidence=30)["bug"].threshold == 0.95
    none = calibrate(mix, target=0.99, min_evidence=30)["bug"]
    assert none.threshold is None and "no confidence keeps" in none.why


def test_a_category_without_enough_evidence_keeps_asking_a_person():
    mix = outcomes("how_to", 0.99, 25, 0) + outcomes("billing", 0.99, 60, 0)
    table = calibrate(mix, target=0.9, min_evidence=30)
    assert table["how_to"].threshold is None
    assert "only 25 reviewed drafts; 30 needed" in table["how_to"].why
    assert table["billing"].threshold == 0.99


def test_drafts_at_one_confidence_stand_or_fall_together():
    # 40 unchanged at 0.9 pass alone, but a threshold of 0.9 takes all 60 drafts at 0.9.
    mix = outcomes("billing", 0.9, 40, 0) + outcomes("billing", 0.9, 0, 20)
    assert calibrate(mix, target=0.9, min_evidence=10)["billing"].threshold is None
