"""latcli.core.stats_compare against scipy (the U statistic and its p-value, both methods), the
bootstrap interval's coverage in repeated synthetic trials, and the verdict table."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import mannwhitneyu

from latcli.core.stats_compare import (
    EXACT_MAX_N,
    Change,
    UTest,
    bootstrap_ratio_ci,
    can_reject,
    decide,
    mann_whitney_u,
    median,
    min_samples_per_side,
)

_distinct = st.lists(
    st.floats(min_value=0.001, max_value=1e4, allow_nan=False), min_size=1, max_size=70
)
_tied = st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=40)


def _scipy(x: list[float], y: list[float], method: str) -> tuple[float, float]:
    res = mannwhitneyu(x, y, alternative="two-sided", method=method)
    return float(res.statistic), float(res.pvalue)


def _agrees(x: list[float], y: list[float]) -> UTest:
    ours = mann_whitney_u(x, y)
    u, p = _scipy(x, y, ours.method)
    assert ours.u == pytest.approx(u, abs=1e-9)
    assert ours.p_value == pytest.approx(p, rel=1e-9, abs=1e-12)
    return ours


@settings(max_examples=300, deadline=None)
@given(_distinct, _distinct)
def test_u_and_p_agree_with_scipy_on_random_samples(x: list[float], y: list[float]) -> None:
    ours = _agrees(x, y)
    ties = len(set(x + y)) < len(x) + len(y)
    exact = not ties and max(len(x), len(y)) <= EXACT_MAX_N
    assert ours.method == ("exact" if exact else "asymptotic")


@settings(max_examples=300, deadline=None)
@given(_tied, _tied)
def test_u_and_p_agree_with_scipy_on_tied_samples(x: list[int], y: list[int]) -> None:
    xs, ys = [float(v) for v in x], [float(v) for v in y]
    if len(set(xs + ys)) == 1:  # scipy divides 0 by 0 here; ours: nothing to tell apart
        assert mann_whitney_u(xs, ys).p_value == 1.0
        return
    ours = _agrees(xs, ys)
    assert ours.method == "asymptotic" or len(set(xs + ys)) == len(xs) + len(ys)


@pytest.mark.parametrize(("n1", "n2"), [(1, 1), (3, 3), (4, 4), (8, 30), (50, 50), (50, 7)])
def test_exact_p_values_match_scipy_at_the_size_limits(n1: int, n2: int) -> None:
    rng = random.Random(n1 * 100 + n2)
    for shift in (0.0, 0.3, 1.0):
        x = [rng.gauss(0.0, 1.0) for _ in range(n1)]
        y = [rng.gauss(shift, 1.0) for _ in range(n2)]
        assert _agrees(x, y).method == "exact"


def test_disjoint_samples_reach_the_smallest_exact_p_value() -> None:
    ours = mann_whitney_u([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0])
    assert ours.u == 0.0 and ours.p_value == pytest.approx(2 / math.comb(8, 4))


def test_empty_side_is_an_error() -> None:
    with pytest.raises(ValueError):
        mann_whitney_u([], [1.0])


@pytest.mark.parametrize(
    ("n1", "n2", "alpha", "possible"),
    [
        (3, 3, 0.05, False),  # 2/20 = 0.1
        (4, 4, 0.05, True),  # 2/70 = 0.029
        (3, 5, 0.05, True),  # 2/56 = 0.036
        (3, 4, 0.05, False),  # 2/35 = 0.057
        (2, 8, 0.05, True),  # 2/45 = 0.044
        (1, 39, 0.05, True),  # 2/40 = 0.05
        (1, 38, 0.05, False),
        (4, 4, 0.01, False),
        (0, 10, 0.05, False),
    ],
)
def test_can_reject(n1: int, n2: int, alpha: float, possible: bool) -> None:
    assert can_reject(n1, n2, alpha) is possible


def test_min_samples_per_side_is_the_smallest_that_can_reject() -> None:
    for alpha in (0.1, 0.05, 0.01, 0.001):
        n = min_samples_per_side(alpha)
        assert can_reject(n, n, alpha) and not can_reject(n - 1, n - 1, alpha)
        # the exact test on n disjoint values a side does reach p <= alpha
        p = mann_whitney_u(list(range(n)), list(range(n, 2 * n))).p_value
        assert p <= alpha
    assert min_samples_per_side(0.05) == 4


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=50))
def test_median_splits_the_sample(values: list[float]) -> None:
    m = median(values)
    assert sum(v < m for v in values) <= len(values) / 2
    assert sum(v > m for v in values) <= len(values) / 2


@pytest.mark.parametrize("confidence", [0.95, 0.8])
def test_bootstrap_interval_covers_the_true_ratio_at_about_the_asked_rate(
    confidence: float,
) -> None:
    """Lognormal latencies (right-skewed like real ones), candidate 1.1x slower: the true
    ratio of medians is 1.1; the interval must contain it in about ``confidence`` of trials."""
    rng = random.Random(2026)
    trials, true_ratio, covered = 300, 1.1, 0
    for _ in range(trials):
        base = [20.0 * math.exp(rng.gauss(0.0, 0.3)) for _ in range(30)]
        cand = [true_ratio * 20.0 * math.exp(rng.gauss(0.0, 0.3)) for _ in range(30)]
        ci = bootstrap_ratio_ci(base, cand, confidence, rng, resamples=500)
        assert ci is not None and ci[0] <= ci[1]
        covered += ci[0] <= true_ratio <= ci[1]
    # three binomial sds (3.8 % at 0.95, 6.9 % at 0.8) plus 1 % for the bootstrap's own error
    band = 3.0 * math.sqrt(confidence * (1.0 - confidence) / trials) + 0.01
    assert abs(covered / trials - confidence) <= band


def test_bootstrap_is_reproducible_with_a_seed_and_undefined_on_a_zero_median() -> None:
    base, cand = [1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 3.0, 4.0, 5.0, 6.0]
    one = bootstrap_ratio_ci(base, cand, 0.95, random.Random(7))
    assert one == bootstrap_ratio_ci(base, cand, 0.95, random.Random(7))
    assert bootstrap_ratio_ci([0.0] * 5, cand, 0.95, random.Random(7)) is None


def _test(p: float, u: float = 0.0) -> UTest:
    return UTest(u, p, "asymptotic", True)


@pytest.mark.parametrize(
    ("p", "ratio", "higher_is_worse", "u", "verdict"),
    [
        (0.2, 1.5, True, 0.0, Change.SAME),  # not significant, however large
        (0.05, 1.5, True, 0.0, Change.SLOWER),  # p == alpha rejects
        (0.001, 1.03, True, 0.0, Change.SAME),  # significant, under the threshold
        (0.001, 0.97, True, 0.0, Change.SAME),
        (0.001, 1.05, True, 0.0, Change.SLOWER),  # at the threshold counts
        (0.001, 0.9, True, 0.0, Change.FASTER),
        (0.001, 0.9, False, 0.0, Change.SLOWER),  # fewer req/s
        (0.001, 1.2, False, 0.0, Change.FASTER),
        (0.001, None, True, 10.0, Change.SLOWER),  # baseline median 0: U gives direction
        (0.001, None, True, 90.0, Change.FASTER),
    ],
)
def test_decide(
    p: float, ratio: float | None, higher_is_worse: bool, u: float, verdict: Change
) -> None:
    assert decide(_test(p, u), 10, 10, ratio, 0.05, 0.05, higher_is_worse) is verdict


@given(st.integers(min_value=1, max_value=25), st.integers(min_value=1, max_value=25))
def test_u_distribution_counts_every_ordering_once_and_is_symmetric(n1: int, n2: int) -> None:
    from latcli.core.stats_compare import _u_counts

    counts = _u_counts(n1, n2)
    assert sum(counts) == math.comb(n1 + n2, n1)
    assert counts == counts[::-1] and min(counts) >= 1
    assert counts == _u_counts(n2, n1)
