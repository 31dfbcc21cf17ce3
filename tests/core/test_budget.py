"""Retry budget: the ratio caps retries, the reserve lets a quiet client retry."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from latcli.core.budget import RetryBudget


def test_retries_are_capped_at_the_ratio() -> None:
    b = RetryBudget(0.2, window_s=10.0, min_per_s=0.0)
    allowed = 0
    for i in range(1000):  # 100 requests per second, every one fails and wants a retry
        now = i * 0.01
        b.record_request(now)
        allowed += b.try_retry(now)
    assert allowed == 200


def test_a_steady_failure_storm_retries_at_the_ratio() -> None:
    b = RetryBudget(0.2, window_s=10.0, min_per_s=0.0)
    allowed = 0
    for i in range(6000):  # 60 s, windows expire and refill
        now = i * 0.01
        b.record_request(now)
        allowed += b.try_retry(now)
    assert 0.19 * 6000 <= allowed <= 0.2 * 6000


def test_the_reserve_allows_min_per_s_without_traffic() -> None:
    b = RetryBudget(0.0, window_s=10.0, min_per_s=2.0)
    assert sum(b.try_retry(0.0) for _ in range(50)) == 20
    assert not b.try_retry(9.9)
    assert sum(b.try_retry(10.0) for _ in range(50)) == 20  # withdrawals expired


def test_nothing_allowed_without_ratio_or_reserve() -> None:
    b = RetryBudget(0.0, min_per_s=0.0)
    b.record_request(0.0)
    assert not b.try_retry(0.0)


def test_deposits_expire_with_the_window() -> None:
    b = RetryBudget(0.5, window_s=10.0, min_per_s=0.0)
    for _ in range(10):
        b.record_request(0.0)
    assert b.try_retry(1.0)
    assert not any(b.try_retry(10.5) for _ in range(5))


def test_a_refused_retry_withdraws_nothing() -> None:
    b = RetryBudget(0.5, window_s=10.0, min_per_s=0.0)
    b.record_request(0.0)
    assert not b.try_retry(0.0)
    b.record_request(0.0)
    assert b.try_retry(0.0)


@pytest.mark.parametrize(("ratio", "window", "floor"), [(-0.1, 10, 0), (0.2, 0, 0), (0.2, 10, -1)])
def test_bad_arguments(ratio: float, window: float, floor: float) -> None:
    with pytest.raises(ValueError):
        RetryBudget(ratio, window, floor)


@given(
    ratio=st.floats(0.0, 1.0),
    floor=st.floats(0.0, 5.0),
    steps=st.lists(st.tuples(st.floats(0, 0.5), st.booleans()), max_size=200),
)
def test_retries_within_a_window_never_exceed_ratio_plus_reserve(
    ratio: float, floor: float, steps: list[tuple[float, bool]]
) -> None:
    b, now, requests, retries = RetryBudget(ratio, 1000.0, floor), 0.0, 0, 0
    for dt, is_request in steps:  # all within one window (≤ 100 s of 1000 s)
        now += dt
        if is_request:
            b.record_request(now)
            requests += 1
        else:
            retries += b.try_retry(now)
        assert retries <= ratio * requests + floor * 1000.0 + 1e-9
