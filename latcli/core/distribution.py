"""Demo agents' latency distributions: ``fixed 20ms``, ``normal 20ms 5ms``, ``lognormal 20ms 0.6``.

Sans-I/O: :meth:`Distribution.sample` takes the random source.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Literal

from latcli.core.units import parse_duration

Kind = Literal["fixed", "normal", "lognormal"]


@dataclass(frozen=True)
class Distribution:
    """``median`` in seconds; ``spread`` is a stddev in seconds (normal) or sigma (lognormal)."""

    kind: Kind
    median: float
    spread: float = 0.0

    def sample(self, rng: random.Random) -> float:
        """One latency in seconds, never negative."""
        if self.kind == "normal":
            return max(0.0, rng.gauss(self.median, self.spread))
        if self.kind == "lognormal":
            # median m, shape sigma: the tail grows with sigma (p99 = m * e^(2.33 sigma)).
            return self.median * math.exp(rng.gauss(0.0, self.spread))
        return self.median

    def scaled(self, factor: float) -> Distribution:
        """``factor`` times slower: the median scales, and a normal's stddev with it (a
        lognormal's sigma is a shape, it stays)."""
        spread = self.spread * factor if self.kind == "normal" else self.spread
        return replace(self, median=self.median * factor, spread=spread)

    def __str__(self) -> str:
        if self.kind == "fixed":
            return f"fixed {self.median * 1000:g}ms"
        if self.kind == "normal":
            return f"normal {self.median * 1000:g}ms {self.spread * 1000:g}ms"
        return f"lognormal {self.median * 1000:g}ms {self.spread:g}"


def parse_distribution(text: str) -> Distribution:
    """Parse ``KIND MEDIAN [SPREAD]``; a bare duration means fixed. Raises ValueError."""
    words = text.split()
    if not words:
        raise ValueError("empty latency distribution (try '20ms', 'normal 20ms 5ms')")
    if len(words) == 1:
        return Distribution("fixed", parse_duration(words[0]))
    kind, rest = words[0], words[1:]
    if kind == "fixed" and len(rest) == 1:
        return Distribution("fixed", parse_duration(rest[0]))
    if kind == "normal" and len(rest) == 2:
        return Distribution("normal", parse_duration(rest[0]), parse_duration(rest[1]))
    if kind == "lognormal" and len(rest) == 2:
        sigma = float(rest[1])
        if not 0.0 <= sigma <= 3.0:
            raise ValueError(f"lognormal sigma out of range 0-3: {rest[1]!r}")
        return Distribution("lognormal", parse_duration(rest[0]), sigma)
    hint = "try '20ms', 'normal 20ms 5ms', 'lognormal 20ms 0.6'"
    raise ValueError(f"not a latency distribution ({hint}): {text!r}")
