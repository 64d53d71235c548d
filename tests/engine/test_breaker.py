from orchestration.engine.breaker import (
    Breaker,
    BreakerPolicy,
    BreakerState,
    admit,
    record_failure,
    record_success,
)

POLICY = BreakerPolicy(failure_threshold=3, window_seconds=10, cooldown_seconds=5)


def failing(times):
    breaker = Breaker()
    for moment in times:
        breaker = record_failure(breaker, POLICY, moment)
    return breaker


def test_a_closed_breaker_lets_calls_through():
    allowed, after = admit(Breaker(), POLICY, now=0)
    assert allowed and after.state is BreakerState.CLOSED


def test_it_opens_after_enough_failures_inside_the_window():
    breaker = failing([0, 1, 2])
    assert breaker.state is BreakerState.OPEN
    assert admit(breaker, POLICY, now=3) == (False, breaker)


def test_failures_spread_beyond_the_window_do_not_open_it():
    breaker = failing([0, 6, 12])
    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == (6, 12)


def test_after_the_cool_down_one_probe_passes_and_the_rest_wait():
    breaker = failing([0, 1, 2])
    allowed, probing = admit(breaker, POLICY, now=7)
    assert allowed and probing.state is BreakerState.HALF_OPEN
    assert admit(probing, POLICY, now=7.1) == (False, probing)


def test_a_successful_probe_closes_it_and_a_failed_one_opens_it_again():
    _, probing = admit(failing([0, 1, 2]), POLICY, now=7)
    assert record_success(probing) == Breaker()
    reopened = record_failure(probing, POLICY, now=8)
    assert (reopened.state, reopened.opened_at) == (BreakerState.OPEN, 8)
    assert admit(reopened, POLICY, now=12) == (False, reopened)
    assert admit(reopened, POLICY, now=13)[0]
