"""Per-replica measurements: peak EWMA, sliding success window, recent latencies.

Sans-I/O: every method that depends on time takes ``now`` (seconds on a
monotonic clock); nothing here reads a clock or sleeps.

Persistence contract (shared by every ``to_state`` / ``from_state`` pair in the
routing core): ``to_state()`` returns a JSON-serialisable dict whose timestamps
are on the clock of the process that wrote it. ``from_state(d, now_then, now)``
loads it into an already constructed object (so the *current* configuration,
e.g. ``tau``, applies); ``now_then`` is the present instant expressed on the
writer's clock and ``now`` the present instant on ours. A persistence layer
that saved ``mono_saved = time.monotonic()`` and ``wall_saved = time.time()``
next to the dict passes ``now_then = mono_saved + (time.time() - wall_saved)``
and ``now = time.monotonic()``. Malformed state raises ``ValueError``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from latcli.core.strategies import Candidate

__all__ = [
    "LatencyWindow",
    "PeakEwma",
    "ReplicaStats",
    "StatsSnapshot",
    "SuccessWindow",
]


def _as_num(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"state field {what}: expected a number, got {value!r}")
    return float(value)


def _num(d: Mapping[str, object], key: str) -> float:
    return _as_num(d.get(key), repr(key))


def _list(d: Mapping[str, object], key: str) -> list[object]:
    value = d.get(key)
    if not isinstance(value, list):
        raise ValueError(f"state field {key!r}: expected a list, got {value!r}")
    return value


def _rebase(t: float, now_then: float, now: float) -> float:
    """Map writer-clock time ``t`` onto our clock; ages are never negative."""
    return now - max(0.0, now_then - t)


class PeakEwma:
    """Peak-sensitive, time-decayed moving average of latency (Finagle ``PeakEwma``).

    A sample above the estimate replaces it at once (react to slowness now); a
    sample below pulls it down with weight ``1 - e^(-Δt/τ)``, Δt being the time
    since the previous sample (forget slowness gradually, over about τ seconds).
    """

    def __init__(self, tau: float) -> None:
        if not tau > 0:
            raise ValueError(f"tau must be > 0 seconds, got {tau!r}")
        self.tau = tau
        self._cost = 0.0
        self._at = 0.0
        self._has_history = False

    @property
    def has_history(self) -> bool:
        """True once at least one sample was observed."""
        return self._has_history

    def observe(self, now: float, latency_ms: float) -> None:
        """Fold one latency sample (ms) taken at ``now`` into the estimate."""
        if not self._has_history or latency_ms > self._cost:
            self._cost = latency_ms
        else:
            w = math.exp(-max(0.0, now - self._at) / self.tau)
            # cost·w + sample·(1−w), written so rounding never leaves [sample, cost]
            self._cost = min(self._cost, latency_ms + (self._cost - latency_ms) * w)
        self._at = now
        self._has_history = True

    def restart(self, now: float, latency_ms: float) -> None:
        """Forget the history: the estimate becomes this one sample.

        The router calls it when a breaker closes after a successful trial, so the failure
        penalties that opened it do not keep a recovered replica out for many τ.
        """
        self._cost, self._at, self._has_history = latency_ms, now, True

    def cost(self, now: float) -> float:
        """The estimate in ms, decayed toward 0 by ``e^(-idle/τ)``; no side effects.

        Decaying toward 0 while idle is what tower and Finagle do: a replica
        that was once slow and then left alone becomes cheap again and gets
        re-measured, instead of being shunned forever on stale evidence. The
        next real sample after a long idle period dominates anyway (w ≈ 0).
        Returns 0.0 without history.
        """
        if not self._has_history:
            return 0.0
        return self._cost * math.exp(-max(0.0, now - self._at) / self.tau)

    def to_state(self) -> dict[str, object]:
        """JSON-serialisable state (see the module docstring)."""
        return {"cost": self._cost, "at": self._at, "has_history": self._has_history}

    def from_state(self, d: Mapping[str, object], now_then: float, now: float) -> None:
        """Load ``to_state()`` output written on another clock (module docstring)."""
        cost, at = _num(d, "cost"), _num(d, "at")
        self._has_history = bool(d.get("has_history", False))
        self._cost, self._at = cost, _rebase(at, now_then, now)


class SuccessWindow:
    """Counts of ok / failed calls over the last ``window_s`` seconds.

    Time is cut into ``buckets`` equal slots (resilience4j's time-based sliding
    window); memory is bounded by ``buckets`` and a whole slot expires at once,
    so the window covers between ``(buckets-1)/buckets`` and 1 × ``window_s``.
    """

    def __init__(self, window_s: float, buckets: int = 20) -> None:
        if not window_s > 0 or buckets < 1:
            raise ValueError("window_s must be > 0 and buckets >= 1")
        self.window_s = window_s
        self._n = buckets
        self._width = window_s / buckets
        self._slots: deque[list[int]] = deque()  # [slot index, ok, failed], oldest first

    def _index(self, now: float) -> int:
        return math.floor(now / self._width)

    def _expire(self, now: float) -> None:
        oldest = self._index(now) - self._n + 1
        while self._slots and self._slots[0][0] < oldest:
            self._slots.popleft()

    def record(self, now: float, ok: bool) -> None:
        """Count one call finished at ``now``."""
        self._expire(now)
        idx = self._index(now)
        if not self._slots or self._slots[-1][0] < idx:
            self._slots.append([idx, 0, 0])
        # a sample older than the newest slot (clock rebased) joins the newest slot
        self._slots[-1][1 if ok else 2] += 1

    def _sums(self, now: float) -> tuple[int, int]:
        oldest = self._index(now) - self._n + 1
        live = [s for s in self._slots if s[0] >= oldest]
        return sum(s[1] for s in live), sum(s[2] for s in live)

    def calls(self, now: float) -> int:
        """Calls recorded within the window ending at ``now``."""
        ok, failed = self._sums(now)
        return ok + failed

    def failures(self, now: float) -> int:
        """Failed calls recorded within the window ending at ``now``."""
        return self._sums(now)[1]

    def rate(self, now: float) -> float | None:
        """Success rate in [0, 1] within the window, or None with no calls."""
        ok, failed = self._sums(now)
        return None if ok + failed == 0 else ok / (ok + failed)

    def clear(self) -> None:
        """Forget every call."""
        self._slots.clear()

    def to_state(self) -> dict[str, object]:
        """JSON-serialisable state: one ``[slot start time, ok, failed]`` per slot."""
        return {"slots": [[s[0] * self._width, s[1], s[2]] for s in self._slots]}

    def from_state(self, d: Mapping[str, object], now_then: float, now: float) -> None:
        """Load ``to_state()`` output written on another clock (module docstring)."""
        slots: deque[list[int]] = deque()
        for raw in _list(d, "slots"):
            if not isinstance(raw, list) or len(raw) != 3:
                raise ValueError(f"bad slot {raw!r}")
            start, ok, failed = (_as_num(v, "'slots'") for v in raw)
            idx = self._index(_rebase(start, now_then, now) + self._width / 2)
            if slots and slots[-1][0] >= idx:
                slots[-1][1] += int(ok)
                slots[-1][2] += int(failed)
            else:
                slots.append([idx, int(ok), int(failed)])
        self._slots = slots
        self._expire(now)


class LatencyWindow:
    """The last ``size`` latencies (ms), for percentiles and sparklines."""

    def __init__(self, size: int = 256) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self._ring: deque[float] = deque(maxlen=size)

    def add(self, ms: float) -> None:
        """Append one latency, dropping the oldest when full."""
        self._ring.append(ms)

    def values(self) -> list[float]:
        """Latencies oldest first."""
        return list(self._ring)

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile, ``p`` in [0, 100]; None when empty."""
        if not 0 <= p <= 100:
            raise ValueError(f"percentile must be within [0, 100], got {p!r}")
        if not self._ring:
            return None
        ordered = sorted(self._ring)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1]

    def to_state(self) -> dict[str, object]:
        """JSON-serialisable state."""
        return {"values": list(self._ring)}

    def from_state(self, d: Mapping[str, object], now_then: float, now: float) -> None:
        """Load ``to_state()`` output; the clocks are unused (no timestamps)."""
        values = [_as_num(v, "'values'") for v in _list(d, "values")]
        self._ring.clear()
        self._ring.extend(values)


@dataclass(frozen=True)
class StatsSnapshot:
    """One replica's measurements at one instant (what ``watch`` shows)."""

    ewma_ms: float | None  # None until the first answer
    p50_ms: float | None
    p99_ms: float | None
    success_rate: float | None  # None with no calls in the window
    calls: int  # within the success window
    in_flight: int
    has_history: bool
    last_latencies: tuple[float, ...]  # oldest first


class ReplicaStats:
    """Everything the router measures about one replica.

    Every ``start()`` must be matched by exactly one ``finish()`` or ``cancel()``.
    """

    def __init__(self, tau: float, success_window_s: float, latency_window: int = 256) -> None:
        self.ewma = PeakEwma(tau)
        self.success = SuccessWindow(success_window_s)
        self.latencies = LatencyWindow(latency_window)
        self.in_flight = 0

    @property
    def has_history(self) -> bool:
        """True once the replica answered (or failed) at least once."""
        return self.ewma.has_history

    def start(self) -> None:
        """A request was sent to this replica."""
        self.in_flight += 1

    def finish(self, now: float, latency_ms: float, ok: bool, cost_ms: float | None = None) -> None:
        """The request ended with a verdict; failures' latencies count too.

        A failure's latency still feeds the EWMA: a replica that times out
        after 5 s *is* slow, and Finagle measures every response the same way.
        ``cost_ms`` replaces the sample fed to the EWMA (not the latency window): the
        router passes a failure penalty so a replica that fails *fast* does not look fast.
        """
        self.in_flight = max(0, self.in_flight - 1)
        self.ewma.observe(now, latency_ms if cost_ms is None else cost_ms)
        self.latencies.add(latency_ms)
        self.success.record(now, ok)

    def cancel(self) -> None:
        """The caller gave up: no verdict, nothing recorded."""
        self.in_flight = max(0, self.in_flight - 1)

    def cost(self, now: float) -> float:
        """Decayed peak EWMA in ms (0.0 without history)."""
        return self.ewma.cost(now)

    def load(self, now: float) -> float:
        """``cost × (in_flight + 1)``; without history 0.0 when idle, +inf when busy.

        Finagle's rule for a replica with no measurement: zero cost so it is
        tried at once, and a prohibitive penalty while that first request is
        outstanding, so it takes exactly one request until its first answer.
        """
        if not self.ewma.has_history:
            return 0.0 if self.in_flight == 0 else math.inf
        return self.ewma.cost(now) * (self.in_flight + 1)

    def candidate(self, id: str, weight: float, now: float) -> Candidate:
        """This replica as a strategy sees it at ``now``."""
        return Candidate(
            id=id,
            load=self.load(now),
            cost=self.cost(now),
            in_flight=self.in_flight,
            weight=weight,
            success_rate=self.success.rate(now),
            has_history=self.ewma.has_history,
        )

    def snapshot(self, now: float) -> StatsSnapshot:
        """Frozen view of the measurements at ``now``."""
        return StatsSnapshot(
            ewma_ms=self.ewma.cost(now) if self.ewma.has_history else None,
            p50_ms=self.latencies.percentile(50),
            p99_ms=self.latencies.percentile(99),
            success_rate=self.success.rate(now),
            calls=self.success.calls(now),
            in_flight=self.in_flight,
            has_history=self.ewma.has_history,
            last_latencies=tuple(self.latencies.values()),
        )

    def to_state(self) -> dict[str, object]:
        """JSON-serialisable state; ``in_flight`` is not persisted (it dies with the run)."""
        return {
            "ewma": self.ewma.to_state(),
            "success": self.success.to_state(),
            "latencies": self.latencies.to_state(),
        }

    def from_state(self, d: Mapping[str, object], now_then: float, now: float) -> None:
        """Load ``to_state()`` output written on another clock (module docstring)."""
        parts = (("ewma", self.ewma), ("success", self.success), ("latencies", self.latencies))
        for key, part in parts:
            sub = d.get(key)
            if not isinstance(sub, Mapping):
                raise ValueError(f"state field {key!r}: expected an object")
            part.from_state(sub, now_then, now)
