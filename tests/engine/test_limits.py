import pytest

from orchestration.engine.limits import Limits, Usage, limit_reached, retry_delay


def usage(steps=0, visits=None, tokens=0):
    return Usage(steps=steps, visits=visits or {}, tokens=tokens)


def test_limits_come_from_the_workflow_config():
    limits = Limits.from_config({"limits": {"max_steps": 8, "max_tokens": 1000}})
    assert (limits.max_steps, limits.max_tokens, limits.max_visits_per_node) == (8, 1000, 3)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"max_stepz": 3}, "unknown limits: max_stepz"),
        ({"max_steps": 0}, "limits.max_steps must be a positive number"),
        ({"max_steps": "ten"}, "limits.max_steps must be a positive number"),
        ({"max_tokens": True}, "limits.max_tokens must be a positive number"),
    ],
)
def test_bad_limits_are_refused_by_name(given, message):
    with pytest.raises(ValueError, match=message):
        Limits.from_config({"limits": given})


@pytest.mark.parametrize(
    ("spent", "expected"),
    [
        (usage(steps=5), None),
        (usage(steps=20), "taken 20 steps, its limit"),
        (usage(visits={"draft": 3}), "draft would run a 4th time (limit 3)"),
        (usage(visits={"triage": 3}), None),
        (usage(tokens=50_000), "used 50000 tokens of its budget of 50000"),
    ],
)
def test_what_trips_a_limit(spent, expected):
    reason = limit_reached(Limits(), spent, "draft")
    assert reason is None if expected is None else expected in reason


def test_more_budget_lets_the_run_go_on():
    limits = Limits(max_steps=5)
    assert limit_reached(limits, usage(steps=5), "draft")
    assert limit_reached(limits.raised(steps=5), usage(steps=5), "draft") is None


@pytest.mark.parametrize(
    ("attempt", "jitter", "expected"),
    [(1, 0.5, 0.5), (2, 0.5, 1.0), (3, 0.5, 2.0), (10, 0.5, 30.0), (3, 0.0, 0.0)],
)
def test_backoff_doubles_up_to_its_cap_with_jitter(attempt, jitter, expected):
    assert retry_delay(attempt, base=1.0, cap=60.0, jitter=jitter) == expected


def test_jitter_outside_its_range_is_refused():
    with pytest.raises(ValueError):
        retry_delay(1, base=1.0, cap=60.0, jitter=1.0)
