"""The sliding window of one agent's health checks: what its p50/p99, success rate and SLA see.

Sans-I/O: each check comes in with its time (``now``), read by the caller.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

from latcli.core.sla import Measurements

SPARK_POINTS = 24  # latencies kept for the sparkline


@dataclass(frozen=True)
class WindowSummary:
    """The checks of one sliding window: successful latencies sorted, counts of all."""

    ok_ms: list[float]
    requests: int
    errors: int

    def percentile(self, p: float) -> float | None:
        """Nearest rank, as :class:`latcli.core.stats.LatencyWindow`; None without samples."""
        if not self.ok_ms:
            return None
        return self.ok_ms[max(1, math.ceil(p / 100 * len(self.ok_ms))) - 1]

    @property
    def success_rate(self) -> float | None:
        return None if self.requests == 0 else (self.requests - self.errors) / self.requests

    def observation(self) -> Measurements:
        """What the SLA sees: latency from successful checks, rates from all of them."""
        ok = self.ok_ms
        return Measurements(
            samples=len(ok),
            percentile=self.percentile,
            mean_ms=sum(ok) / len(ok) if ok else None,
            min_ms=ok[0] if ok else None,
            max_ms=ok[-1] if ok else None,
            errors=self.errors,
            requests=self.requests,
            rps=None,
        )


class CheckWindow:
    """The checks of the last ``span`` seconds: what p50/p99, success rate and the SLA judge.

    A failed check's latency (a refused connect in 0.2 ms) says nothing about speed, so only
    successful checks count toward percentiles; every check counts toward the rates.
    """

    def __init__(self, span: float) -> None:
        self.span = span
        self._checks: deque[tuple[float, float | None, bool]] = deque()
        self._ok_sorted: list[float] = []  # the successful latencies in the window, sorted
        self._failed = 0  # failed checks in the window
        self.recent: deque[float] = deque(maxlen=SPARK_POINTS)

    def add(self, now: float, latency_ms: float | None, ok: bool) -> None:
        """One check; ``latency_ms`` None counts it toward the rates only (a canary)."""
        self._checks.append((now, latency_ms, ok))
        if not ok:
            self._failed += 1
        elif latency_ms is not None:
            bisect.insort(self._ok_sorted, latency_ms)
        if latency_ms is not None:
            self.recent.append(latency_ms)

    def summary(self, now: float) -> WindowSummary:
        # kept sorted as checks come and go: a tick copies it instead of sorting every window
        checks, ok_sorted = self._checks, self._ok_sorted
        while checks and checks[0][0] <= now - self.span:
            _, ms, ok = checks.popleft()
            if not ok:
                self._failed -= 1
            elif ms is not None:
                del ok_sorted[bisect.bisect_left(ok_sorted, ms)]
        return WindowSummary(ok_sorted[:], len(checks), self._failed)


__all__ = ["SPARK_POINTS", "CheckWindow", "WindowSummary"]
