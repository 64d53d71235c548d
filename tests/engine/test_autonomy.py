"""Earned autonomy's pure rules: the bound, earning and losing, sampling, the config's checks."""

import pytest

from orchestration.engine.autonomy import (
    AutonomyPolicy,
    AutonomyStatus,
    Evidence,
    InvalidAutonomyConfig,
    judge,
    review_share,
    sampled,
    wilson_interval,
)

POLICY = AutonomyPolicy()


def test_the_wilson_interval_matches_known_values():
    low, high = wilson_interval(80, 80)
    assert round(low, 4) == 0.9542 and round(high, 9) == 1.0
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and round(high, 4) == 0.2775
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("recommendations", "right", "status"),
    [
        (0, 0, AutonomyStatus.SHADOW),
        (20, 20, AutonomyStatus.SHADOW),  # too little evidence, however good
        (72, 72, AutonomyStatus.SHADOW),  # lower bound 94.9%
        (73, 73, AutonomyStatus.EARNED),  # lower bound 95.0%
        (200, 195, AutonomyStatus.SHADOW),  # 97.5% right, lower bound 94.3%
        (400, 395, AutonomyStatus.EARNED),
    ],
)
def test_a_shadow_category_earns_autonomy_only_when_the_bound_reaches_the_target(
    recommendations, right, status
):
    verdict = judge(AutonomyStatus.SHADOW, Evidence(recommendations, right), POLICY)
    assert verdict.status == status
    assert f"{right} of {recommendations}" in verdict.why


def test_an_earned_category_loses_autonomy_when_the_wrong_rate_may_pass_the_tolerance():
    kept = judge(AutonomyStatus.EARNED, Evidence(80, 80), POLICY)
    assert kept.status == AutonomyStatus.EARNED
    lost = judge(AutonomyStatus.EARNED, Evidence(81, 80), POLICY)
    assert lost.status == AutonomyStatus.LOST
    assert "past the tolerance of 5.0%" in lost.why


def test_a_lost_category_earns_again_only_on_enough_new_evidence():
    assert judge(AutonomyStatus.LOST, Evidence(10, 10), POLICY).status == AutonomyStatus.LOST
    assert judge(AutonomyStatus.LOST, Evidence(73, 73), POLICY).status == AutonomyStatus.EARNED


def test_new_autonomy_is_reviewed_more_closely():
    assert review_share(POLICY, 0) == POLICY.recent_sample_share
    assert review_share(POLICY, POLICY.recent_window) == POLICY.sample_share


def test_sampling_is_stable_per_reply_and_takes_about_the_share():
    keys = [f"run:{i}" for i in range(4000)]
    chosen = [k for k in keys if sampled(k, 0.1)]
    assert 0.08 < len(chosen) / len(keys) < 0.12
    assert chosen == [k for k in keys if sampled(k, 0.1)]
    assert not any(sampled(k, 0.0) for k in keys[:100])
    # Keyed: without the secret no one can tell which replies are reviewed.
    assert chosen != [k for k in keys if sampled(k, 0.1, secret="another")]
    assert all(sampled(k, 1.0) for k in keys[:100])


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ({"target_precision": "high"}, "autonomy.target_precision"),
        ({"target_precision": 1.0}, "autonomy.target_precision"),
        ({"target_precision": 0.3}, "autonomy.target_precision"),
        ({"sample_share": 1.5}, "autonomy.sample_share"),
        ({"sample_share": -0.1}, "autonomy.sample_share"),
        ({"sample_share": True}, "autonomy.sample_share"),
        ({"sample_share": 0.5, "recent_sample_share": 0.2}, "autonomy.recent_sample_share"),
        ({"wrong_tolerance": float("nan")}, "autonomy.wrong_tolerance"),
        ({"min_evidence": 0}, "autonomy.min_evidence"),
        ({"min_evidence": 2.5}, "autonomy.min_evidence"),
        ({"sample_rate": 0.1}, "autonomy.sample_rate"),
        # A tolerance below 1 - target would take autonomy away on a right review.
        ({"target_precision": 0.9, "wrong_tolerance": 0.05}, "autonomy.wrong_tolerance"),
    ],
)
def test_a_malformed_autonomy_config_is_refused_with_the_field_named(block, field):
    with pytest.raises(InvalidAutonomyConfig) as refused:
        AutonomyPolicy.from_config({"autonomy": block})
    assert refused.value.field == field
    assert str(refused.value).startswith(field)


def test_the_defaults_are_the_documented_ones():
    assert AutonomyPolicy.from_config({}) == AutonomyPolicy(
        target_precision=0.95,
        wrong_tolerance=0.05,
        min_evidence=30,
        send_threshold=0.7,
        sample_share=0.1,
        recent_sample_share=0.5,
        recent_window=20,
    )
