"""The shared L3 bucket's lease rule: whole tokens, never more than burst + rate * t in total."""

from __future__ import annotations

import math

from appliance.domain.pipeline.rate_lease import SharedState, chunk_for, lease


def test_a_missing_bucket_is_full_and_grants_up_to_want() -> None:
    grant = lease(None, rate=10, burst=20, now=100.0, need=1, want=5)
    assert grant.granted == 5
    assert grant.state == SharedState(15.0, 100.0)
    assert grant.wait_s == 0.0


def test_grants_what_is_left_between_need_and_want() -> None:
    grant = lease(SharedState(3.0, 100.0), rate=10, burst=20, now=100.0, need=1, want=5)
    assert grant.granted == 3
    assert grant.state.tokens == 0.0


def test_refuses_below_need_and_says_how_long_to_wait() -> None:
    state = SharedState(0.5, 100.0)
    grant = lease(state, rate=2, burst=4, now=100.0, need=1, want=1)
    assert grant.granted == 0
    assert grant.state == state
    assert math.isclose(grant.wait_s, 0.25)


def test_a_need_above_the_burst_is_never_granted() -> None:
    grant = lease(None, rate=2, burst=4, now=0.0, need=5, want=5)
    assert grant.granted == 0
    assert grant.wait_s == math.inf


def test_refill_is_capped_by_the_burst_and_a_clock_going_back_refills_nothing() -> None:
    assert lease(SharedState(0.0, 100.0), rate=1, burst=3, now=200.0, need=1, want=10).granted == 3
    assert lease(SharedState(0.0, 100.0), rate=1, burst=3, now=50.0, need=1, want=10).granted == 0


def test_many_leases_never_exceed_burst_plus_rate_times_t() -> None:
    state: SharedState | None = None
    granted = 0
    for step in range(1000):  # 10 s at 100 leases a second, each asking for up to 3
        grant = lease(state, rate=5, burst=10, now=step / 100, need=1, want=3)
        state = grant.state
        granted += grant.granted
    assert granted <= 10 + 5 * 10
    assert granted >= 10 + 5 * 10 - 3


def test_chunk_is_a_twentieth_of_a_second_of_rate_within_one_and_the_burst() -> None:
    assert chunk_for(1, 5) == 1
    assert chunk_for(1000, 5000) == 50
    assert chunk_for(1000, 20) == 20
