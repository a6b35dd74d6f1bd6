"""L3: token buckets and the per-tenant limiter, driven by a hand-held clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.domain.pipeline import NEVER, RateLimiter, TokenBucket, share
from appliance.errors import InvalidInput


def test_a_bucket_grants_its_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2, burst=5, now=0.0)
    assert [bucket.take(0.0) for _ in range(5)] == [0.0] * 5
    assert bucket.take(0.0) == pytest.approx(0.5)  # one token comes every 1/2 s
    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.5) == pytest.approx(0.5)
    assert bucket.level(100.0) == 5  # refills no further than the burst


def test_a_refused_take_takes_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=3, now=0.0)
    assert bucket.take(0.0, 3) == 0.0
    for _ in range(10):
        assert bucket.take(0.0, 2) == pytest.approx(2.0)
    assert bucket.tokens == 0.0
    assert bucket.take(2.0, 2) == 0.0


def test_the_wait_covers_n_tokens() -> None:
    bucket = TokenBucket(rate=4, burst=10, now=0.0)
    assert bucket.take(0.0, 10) == 0.0
    assert bucket.take(0.0, 6) == pytest.approx(1.5)
    assert bucket.take(1.0, 6) == pytest.approx(0.5)


def test_more_than_the_burst_is_never_granted() -> None:
    bucket = TokenBucket(rate=100, burst=10, now=0.0)
    assert bucket.take(0.0, 11) == NEVER
    assert math.isinf(bucket.take(1e6, 11))
    assert bucket.take(0.0, 10) == 0.0  # and it took nothing


def test_rate_zero_is_unlimited() -> None:
    bucket = TokenBucket(rate=0, burst=0, now=0.0)
    assert all(bucket.take(0.0, 1_000_000) == 0.0 for _ in range(100))


def test_a_clock_going_backwards_refills_nothing() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=10.0)
    assert bucket.take(10.0) == 0.0
    assert bucket.take(5.0) == pytest.approx(1.0)
    assert bucket.take(11.0) == 0.0


@pytest.mark.parametrize(("rate", "burst"), [(-1, 5), (1, -1), (1, 0), (math.nan, 1), (math.inf, 1)])
def test_bad_limits_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(InvalidInput):
        TokenBucket(rate=rate, burst=burst, now=0.0)


def test_the_limiter_answers_429_with_a_whole_second_retry_after() -> None:
    limiter = RateLimiter()
    assert all(limiter.check("tn_a", 10, 3, 0.0) is None for _ in range(3))
    refused = limiter.check("tn_a", 10, 3, 0.0)
    assert refused is not None
    assert (refused.status, refused.code, refused.layer) == (429, "rate_limited", "L3")
    assert refused.retry_after_s == 1.0  # 0.1 s rounds up to at least 1
    assert refused.headers() == {"Retry-After": "1"}
    assert refused.details["retry_after_s"] == 1
    assert limiter.check("tn_b", 10, 3, 0.0) is None  # tenants do not share a bucket


def test_retry_after_rounds_up() -> None:
    limiter = RateLimiter()
    assert limiter.check("tn_a", 0.4, 1, 0.0) is None
    refused = limiter.check("tn_a", 0.4, 1, 0.0)
    assert refused is not None and refused.retry_after_s == 3.0  # 2.5 s
    refused = limiter.check("tn_a", 0.4, 1, 0.5)
    assert refused is not None and refused.retry_after_s == 2.0  # exactly 2.0 s stays 2


def test_a_request_larger_than_the_burst_is_told_so_without_retry_after() -> None:
    refused = RateLimiter().check("tn_a", 100, 50, 0.0, n=51)
    assert refused is not None
    assert (refused.status, refused.code, refused.retry_after_s) == (429, "exceeds_burst", None)
    assert refused.details == {"rate_per_s": 100, "burst": 50, "requested": 51}
    assert refused.headers() == {}


def test_unlimited_tenants_keep_no_bucket() -> None:
    limiter = RateLimiter()
    assert all(limiter.check("tn_a", 0, 0, 0.0, n=10_000) is None for _ in range(10))
    assert len(limiter) == 0


def test_changed_limits_rebuild_the_bucket_keeping_its_level() -> None:
    limiter = RateLimiter()
    for _ in range(5):
        assert limiter.check("tn_a", 1, 5, 0.0) is None
    assert limiter.check("tn_a", 1, 5, 0.0) is not None
    # The operator raises the limit: the tenant does not get a fresh burst, but refills faster.
    assert limiter.check("tn_a", 100, 200, 0.0) is not None
    assert limiter.check("tn_a", 100, 200, 0.01) is None
    # Lowering the burst caps what is left.
    assert all(limiter.check("tn_a", 100, 200, 10.0) is None for _ in range(150))
    assert all(limiter.check("tn_a", 1, 2, 10.0) is None for _ in range(2))
    assert limiter.check("tn_a", 1, 2, 10.0) is not None
    # Going unlimited and back starts full.
    assert limiter.check("tn_a", 0, 0, 10.0) is None
    assert all(limiter.check("tn_a", 1, 2, 10.0) is None for _ in range(2))


def test_idle_full_buckets_are_evicted_a_few_per_check() -> None:
    limiter = RateLimiter(idle_after_s=600, sweep_per_check=2)
    for i in range(5):
        assert limiter.check(f"tn_{i}", 10, 10, 0.0) is None
    assert len(limiter) == 5
    assert limiter.check("tn_new", 10, 10, 601.0) is None
    assert len(limiter) == 4  # two old ones evicted, one new added
    assert limiter.check("tn_new", 10, 10, 602.0) is None
    assert len(limiter) == 2
    assert limiter.evict_idle(1000.0) == 1  # a timer can sweep all that is idle
    assert len(limiter) == 1 and "tn_new" in limiter


def test_a_bucket_still_refilling_is_kept() -> None:
    limiter = RateLimiter(idle_after_s=1)
    assert limiter.check("tn_slow", 0.001, 1, 0.0) is None  # 1000 s to refill one token
    assert limiter.evict_idle(10.0) == 0
    assert limiter.check("tn_slow", 0.001, 1, 10.0) is not None  # eviction would have forgiven it
    assert limiter.evict_idle(1011.0) == 1


def test_recently_used_buckets_are_not_evicted() -> None:
    limiter = RateLimiter(idle_after_s=600)
    assert limiter.check("tn_old", 10, 10, 0.0) is None
    assert limiter.check("tn_busy", 10, 10, 0.0) is None
    assert limiter.check("tn_old", 10, 10, 500.0) is None  # used again: moves to the back
    assert limiter.evict_idle(700.0) == 1
    assert "tn_old" in limiter and "tn_busy" not in limiter


def test_share_splits_a_limit_across_workers() -> None:
    assert share(100, 40, 4) == (25.0, 10.0)
    assert share(100, 2, 4) == (25.0, 1.0)  # every worker can grant one message
    assert share(0, 0, 8) == (0.0, 0.0)  # unlimited stays unlimited
    assert share(10, 10, 1) == (10.0, 10.0)
    with pytest.raises(InvalidInput):
        share(10, 10, 0)


_takes = st.lists(
    st.tuples(st.floats(min_value=0, max_value=5, allow_nan=False), st.integers(min_value=1, max_value=5)),
    max_size=60,
)


@given(
    rate=st.floats(min_value=0.01, max_value=1000, allow_nan=False),
    burst=st.integers(min_value=1, max_value=50),
    takes=_takes,
)
def test_tokens_never_exceed_burst_nor_go_negative(
    rate: float, burst: int, takes: list[tuple[float, int]]
) -> None:
    bucket, now = TokenBucket(rate, burst, now=0.0), 0.0
    for gap, n in takes:
        now += gap
        wait = bucket.take(now, n)
        assert wait >= 0.0
        assert 0.0 <= bucket.tokens <= burst
        assert 0.0 <= bucket.level(now) <= burst


@given(
    rate=st.floats(min_value=0.01, max_value=1000, allow_nan=False),
    burst=st.integers(min_value=1, max_value=50),
    takes=_takes,
)
def test_grants_in_any_window_stay_within_burst_plus_rate_times_window(
    rate: float, burst: int, takes: list[tuple[float, int]]
) -> None:
    bucket, now, granted = TokenBucket(rate, burst, now=0.0), 0.0, list[tuple[float, int]]()
    for gap, n in takes:
        now += gap
        if bucket.take(now, n) == 0.0:
            granted.append((now, n))
    for start, _ in granted:
        for end, _ in granted:
            if end >= start:
                allowed = burst + rate * (end - start)
                assert sum(n for t, n in granted if start <= t <= end) <= allowed * (1 + 1e-9) + 1e-6


@given(
    rate=st.floats(min_value=0.01, max_value=100, allow_nan=False),
    burst=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.floats(min_value=0, max_value=3, allow_nan=False), max_size=40),
)
def test_waiting_the_answered_time_is_enough(rate: float, burst: int, gaps: list[float]) -> None:
    bucket, now = TokenBucket(rate, burst, now=0.0), 0.0
    for gap in gaps:
        now += gap
        wait = bucket.take(now)
        if wait:
            assert bucket.take(now + wait) == 0.0
            now += wait
