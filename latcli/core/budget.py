"""Retry budget: retries may add at most ``ratio`` extra load (Finagle ``RetryBudget``).

Sans-I/O: ``now`` (monotonic seconds) is passed in.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["RetryBudget"]

_DEPOSIT = 1_000_000  # integer units as Finagle's scale factor: no float drift over a long run
_MIN_RATIO = 1e-6  # smaller ratios count as 0 (one retry per million requests)
_SLOTS = 10  # the window expires in tenths


class RetryBudget:
    """Token bucket over a sliding window, as Finagle's ``TokenRetryBudget``.

    Every request deposits one token; a retry withdraws ``1 / ratio`` tokens.
    Deposits and withdrawals expire after ``window_s`` seconds, so within any
    window retries ≤ ``ratio`` × requests + ``min_per_s`` × ``window_s``. The
    reserve (``min_per_s``) lets a low-traffic client, such as one
    ``latcli send``, still retry (Finagle's default is 10 per second).
    ``ratio`` 0 (or below 1e-6) with ``min_per_s`` 0 forbids every retry.
    """

    def __init__(self, ratio: float, window_s: float = 10.0, min_per_s: float = 10.0) -> None:
        if not (0.0 <= ratio <= 1000.0) or not window_s > 0 or not min_per_s >= 0:
            raise ValueError("need 0 <= ratio <= 1000, window_s > 0, min_per_s >= 0")
        self.ratio, self.window_s, self.min_per_s = ratio, window_s, min_per_s
        usable = ratio >= _MIN_RATIO
        self._deposit = _DEPOSIT if usable else 0
        self._withdrawal = math.ceil(_DEPOSIT / ratio) if usable else 1
        self._reserve = math.floor(min_per_s * window_s) * self._withdrawal
        self._width = window_s / _SLOTS
        self._slots: deque[list[int]] = deque()  # [slot index, net tokens], oldest first

    def _add(self, now: float, amount: int) -> None:
        idx = math.floor(now / self._width)
        self._expire(idx)
        if not self._slots or self._slots[-1][0] < idx:
            self._slots.append([idx, 0])
        self._slots[-1][1] += amount

    def _expire(self, idx: int) -> None:
        while self._slots and self._slots[0][0] <= idx - _SLOTS:
            self._slots.popleft()

    def balance(self, now: float) -> int:
        """Tokens available at ``now``, in Finagle's scaled units (reserve included)."""
        self._expire(math.floor(now / self._width))
        return self._reserve + sum(s[1] for s in self._slots)

    def record_request(self, now: float) -> None:
        """One original request (not a retry) was sent at ``now``."""
        self._add(now, self._deposit)

    def try_retry(self, now: float) -> bool:
        """Withdraw for one retry at ``now``; False (and no withdrawal) if over budget."""
        if self.balance(now) < self._withdrawal:
            return False
        self._add(now, -self._withdrawal)
        return True
