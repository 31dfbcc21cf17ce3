"""Is the candidate different from the baseline, or is it noise? (benchstat's question.)

Sans-I/O and stdlib only: samples come in as sequences of floats, randomness as a
``random.Random``; nothing reads a file or a clock.

* :func:`mann_whitney_u`: the two-sided Mann–Whitney U test, benchstat's default test
  (golang.org/x/perf ``benchmath``). Exact distribution of U when there are no ties and
  both samples have at most :data:`EXACT_MAX_N` values; otherwise the normal approximation
  with tie correction and continuity correction. The two methods and their choice follow
  ``scipy.stats.mannwhitneyu`` (validated against it in tests/core/test_stats_compare.py):
  per-interval percentiles read from HDR histograms are quantised, so ties are the rule and
  the exact (tie-free) distribution would not apply to them.
* :func:`bootstrap_ratio_ci`: percentile-bootstrap confidence interval of
  median(candidate) / median(baseline), each side resampled on its own.
* :func:`min_samples_per_side`: the fewest values per side with which the U test can reject
  at all: with n₁ and n₂ values the smallest two-sided p-value is 2 / C(n₁+n₂, n₁).
* :func:`decide`: slower / faster / same from the p-value, the ratio and a noise threshold.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "EXACT_MAX_N",
    "Change",
    "UTest",
    "bootstrap_ratio_ci",
    "can_reject",
    "decide",
    "mann_whitney_u",
    "median",
    "min_samples_per_side",
]

# Exact p-values cost O(n₁·n₂·min(n₁, n₂)) big-integer steps (~50 ms at 50 × 50); beyond that
# the normal approximation's error is far below what moves a decision at alpha = 0.05.
EXACT_MAX_N = 50


class Change(str, Enum):
    """The answer; the value is the JSON spelling (DESIGN §6, ``latcli.compare/v1``)."""

    SLOWER = "slower"
    FASTER = "faster"
    SAME = "same"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class UTest:
    """One Mann–Whitney U test: ``u`` is U of the first sample (scipy's ``statistic``)."""

    u: float
    p_value: float  # two-sided
    method: str  # "exact" or "asymptotic"
    ties: bool


def median(values: Sequence[float]) -> float:
    """The sample median (mean of the two middle values for an even count)."""
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """Mid-ranks (1-based, ties share their average rank) and the size of each tie group."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    groups: list[int] = []
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1.0
        groups.append(j - i + 1)
        i = j + 1
    return ranks, groups


def _u_counts(n1: int, n2: int) -> list[int]:
    """How many of the C(n₁+n₂, n₁) orderings give U = 0, 1, ..., n₁·n₂ (no ties).

    The generating function of U is the Gaussian binomial [n₁+n₂ choose n₁]_q, built as the
    product over i = 1..n₁ of (1 − q^(n₂+i)) / (1 − q^i); truncating at degree n₁·n₂ is exact
    because dividing by (1 − q^i) as a power series only looks at lower degrees.
    """
    top = n1 * n2
    poly = [1] + [0] * top
    for i in range(1, n1 + 1):
        k = n2 + i
        for j in range(top, k - 1, -1):
            poly[j] -= poly[j - k]
        for j in range(i, top + 1):
            poly[j] += poly[j - i]
    return poly


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> UTest:
    """Two-sided Mann–Whitney U test of ``x`` against ``y`` (see the module docstring)."""
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("the U test needs at least one value on each side")
    ranks, groups = _ranks([*x, *y])
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2.0
    u = max(u1, n1 * n2 - u1)
    ties = any(g > 1 for g in groups)
    if not ties and max(n1, n2) <= EXACT_MAX_N:
        counts = _u_counts(n1, n2)
        tail = sum(counts[round(u) :])
        p = 2.0 * tail / math.comb(n1 + n2, n1)
        return UTest(u1, min(1.0, p), "exact", ties)
    n = n1 + n2
    tie_term = sum(g**3 - g for g in groups)
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0.0:  # every value equal: nothing tells the sides apart
        return UTest(u1, 1.0, "asymptotic", ties)
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(variance)
    return UTest(u1, min(1.0, 2.0 * _normal_sf(z)), "asymptotic", ties)


def can_reject(n1: int, n2: int, alpha: float) -> bool:
    """True when some outcome of the U test on n₁ and n₂ values has p <= ``alpha``."""
    if n1 < 1 or n2 < 1:
        return False
    return 2.0 / math.comb(n1 + n2, n1) <= alpha


def min_samples_per_side(alpha: float) -> int:
    """The fewest values per side (equal sides) with which the U test can reject at
    ``alpha``: 4 at 0.05 (2/C(8,4) = 0.029; 2/C(6,3) = 0.1), 5 at 0.01."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be within (0, 1), got {alpha!r}")
    n = 1
    while not can_reject(n, n, alpha):
        n += 1
    return n


def bootstrap_ratio_ci(
    baseline: Sequence[float],
    candidate: Sequence[float],
    confidence: float,
    rng: random.Random,
    resamples: int = 2000,
) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of median(candidate) / median(baseline).

    None when a resampled baseline median is 0 (the ratio is undefined, e.g. an error rate
    of zero). ``resamples`` = 2,000 puts the 2.5 % and 97.5 % points within ~0.5 % of their
    limit for the sizes compare sees (Efron & Tibshirani ch. 13 ask ≥ 1,000 for intervals).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be within (0, 1), got {confidence!r}")
    ratios = []
    nb, nc = len(baseline), len(candidate)
    for _ in range(resamples):
        base = median(rng.choices(baseline, k=nb))
        if base == 0.0:
            return None
        ratios.append(median(rng.choices(candidate, k=nc)) / base)
    ratios.sort()
    tail = (1.0 - confidence) / 2.0
    lo = ratios[max(0, math.floor(tail * resamples))]
    hi = ratios[min(resamples - 1, math.ceil((1.0 - tail) * resamples) - 1)]
    return lo, hi


def decide(
    test: UTest,
    n_baseline: int,
    n_candidate: int,
    ratio: float | None,
    alpha: float,
    threshold: float,
    higher_is_worse: bool = True,
) -> Change:
    """Slower or faster when the U test (baseline first) rejects at ``alpha`` and the ratio
    of medians is at least ``threshold`` away from 1; else same: a significant change under
    the noise threshold is "same". The direction is the ratio's; with no ratio (baseline
    median 0, e.g. an error rate) it is the U statistic's and the threshold does not apply.
    ``higher_is_worse`` is False for throughput: more requests per second is faster."""
    if test.p_value > alpha:
        return Change.SAME
    if ratio is not None and abs(ratio - 1.0) < threshold:
        return Change.SAME
    # without a ratio: U of the baseline below its mean means the candidate's values rank higher
    higher = ratio > 1.0 if ratio is not None else test.u < n_baseline * n_candidate / 2.0
    return Change.SLOWER if higher == higher_is_worse else Change.FASTER
