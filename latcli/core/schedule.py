"""Schedule arithmetic of a bench run (sans-I/O: no clock, no asyncio).

Open model (wrk2): global request ``g`` is due at ``t0 + g / R``. With ``W`` workers, worker ``w``
sends the global requests ``g = j * W + w`` (``j = 0, 1, ...``): the rate is global and split,
and the workers' schedules interleave instead of bunching at the same instants. The first
``ceil(warmup * R)`` global requests are the warm-up and are never recorded.

Validity: a run that could not hold the asked rate is invalid (DESIGN §5, exit 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from latcli.core.units import format_ms, format_number, format_percent, format_rate

# An open-model run is valid when it sent at least this fraction of the asked rate ...
MIN_RATE_FRACTION = 0.99
# ... and its schedule lag (send - due) p99 stayed under this bound. 10 ms: ten times the event
# loop's timer granularity (epoll waits in whole ms), far below any latency worth measuring.
MAX_LAG_P99_MS = 10.0
# Floating point slack so that 0.3 s * 10/s is 3 requests, not 4.
_EPS = 1e-9


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` integers differing by at most one, larger ones first."""
    if parts < 1:
        raise ValueError("parts must be >= 1")
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def warmup_requests(rate: float, warmup_s: float) -> int:
    """Global requests due during the warm-up (``g / R < warmup``), all excluded from results."""
    if warmup_s <= 0:
        return 0
    return math.ceil(warmup_s * rate - _EPS)


def open_total(rate: float, warmup_s: float, duration_s: float | None, requests: int | None) -> int:
    """Global requests on the whole schedule: the warm-up's plus the measured ones.

    With ``duration_s`` the measured ones are those due in ``[warmup, warmup + duration)``;
    with ``requests`` exactly that many follow the warm-up.
    """
    if rate <= 0:
        raise ValueError("rate must be > 0")
    first = warmup_requests(rate, warmup_s)
    if requests is not None:
        return first + requests
    if duration_s is None:
        raise ValueError("give duration_s or requests")
    return math.ceil((warmup_s + duration_s) * rate - _EPS)


@dataclass(frozen=True)
class Share:
    """One worker's part of an open-model schedule.

    ``due_s(j)`` is the offset from ``t0`` of this worker's ``j``-th request, ``count`` how many
    it sends, ``measured(j)`` whether that request is past the warm-up.
    """

    rate: float  # global requests/s
    worker: int
    workers: int
    total: int  # global requests on the schedule
    warmup: int  # global warm-up requests

    def global_index(self, j: int) -> int:
        return j * self.workers + self.worker

    def due_s(self, j: int) -> float:
        return self.global_index(j) / self.rate

    @property
    def count(self) -> int:
        """How many of the ``total`` global indices fall to this worker."""
        if self.total <= self.worker:
            return 0
        return (self.total - self.worker + self.workers - 1) // self.workers

    def measured(self, j: int) -> bool:
        return self.global_index(j) >= self.warmup

    @property
    def worker_rate(self) -> float:
        return self.rate / self.workers


def open_share(
    rate: float,
    worker: int,
    workers: int,
    warmup_s: float,
    duration_s: float | None,
    requests: int | None,
) -> Share:
    """Worker ``worker`` of ``workers``' part of the global schedule at ``rate``."""
    if not 0 <= worker < workers:
        raise ValueError(f"worker {worker} out of range for {workers} workers")
    total = open_total(rate, warmup_s, duration_s, requests)
    return Share(rate, worker, workers, total, warmup_requests(rate, warmup_s))


def achieved_rate(sent: int, window_s: float, last_send_s: float | None, rate: float) -> float:
    """Measured requests sent per second over the measured window.

    ``window_s`` is the planned measured window, ``last_send_s`` the offset of the last measured
    send from the window's start: a generator that fell behind sends its last request late, which
    stretches the window (a perfect one sends the n-th at ``(n - 1) / R``, so it reads ``R``).
    """
    if sent <= 0:
        return 0.0
    stretched = (last_send_s or 0.0) + 1.0 / rate
    return sent / max(window_s, stretched)


def validity(
    target_rate: float, achieved: float, lag_p99_ms: float | None
) -> tuple[bool, str | None]:
    """``(valid, reason)`` of an open-model run against the bounds above."""
    if achieved < MIN_RATE_FRACTION * target_rate:
        share = format_percent(achieved / target_rate if target_rate else 0.0)
        return False, (
            f"achieved {format_rate(achieved)} of the {format_number(target_rate)} asked ({share}"
            f" < {format_percent(MIN_RATE_FRACTION)}): the generator could not hold the rate"
        )
    if lag_p99_ms is not None and lag_p99_ms > MAX_LAG_P99_MS:
        return False, (
            f"schedule lag p99 {format_ms(lag_p99_ms)} > {format_ms(MAX_LAG_P99_MS)}: "
            "requests left late, the generator could not hold the rate"
        )
    return True, None
