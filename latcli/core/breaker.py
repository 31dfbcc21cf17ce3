"""Per-replica circuit breaker (DESIGN §4), a sans-I/O state machine.

Shape from resilience4j ``CircuitBreakerStateMachine`` (closed / open /
half-open, count + rate trips, limited trial calls); the legal moves are one
table, :data:`TRANSITIONS`, as in h11's ``_state.py``. Time and randomness are
injected: ``now`` (monotonic seconds) and ``rng``.

Usage per call::

    permit = breaker.allow(now)          # None: refused, do not send
    ...                                  # send the request
    breaker.record(now, permit, ok)      # verdict, or
    breaker.release(permit)              # the caller cancelled: no verdict

Every permit must be settled exactly once, by ``record`` or ``release``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from latcli.core.stats import SuccessWindow

if TYPE_CHECKING:  # only the fields are read: the core need not load the YAML machinery
    from latcli.config.inventory import BreakerConfig

__all__ = [
    "TRANSITIONS",
    "Breaker",
    "BreakerEvent",
    "BreakerState",
    "IllegalTransition",
    "Permit",
    "Trigger",
]

JITTER = 0.5  # open periods last base × (1 + U[0, 0.5]): desynchronises clients' probes


class BreakerState(str, Enum):
    """The breaker's state; the value is the JSON / display spelling."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    def __str__(self) -> str:
        return self.value


class Trigger(str, Enum):
    """Why a transition happens; becomes :attr:`BreakerEvent.reason`."""

    CONSECUTIVE_FAILURES = "consecutive_failures"
    FAILURE_RATE = "failure_rate"
    OPEN_ELAPSED = "open_elapsed"
    TRIAL_SUCCESS = "trial_success"
    TRIAL_FAILURE = "trial_failure"

    def __str__(self) -> str:
        return self.value


_S, _T = BreakerState, Trigger

TRANSITIONS: Mapping[tuple[BreakerState, Trigger], BreakerState] = {
    (_S.CLOSED, _T.CONSECUTIVE_FAILURES): _S.OPEN,
    (_S.CLOSED, _T.FAILURE_RATE): _S.OPEN,
    (_S.OPEN, _T.OPEN_ELAPSED): _S.HALF_OPEN,
    (_S.HALF_OPEN, _T.TRIAL_SUCCESS): _S.CLOSED,
    (_S.HALF_OPEN, _T.TRIAL_FAILURE): _S.OPEN,
}
"""Every legal move, ``(from, trigger) -> to``; anything else raises."""


class IllegalTransition(RuntimeError):
    """A trigger fired in a state where :data:`TRANSITIONS` has no move for it."""


@dataclass(frozen=True)
class BreakerEvent:
    """One state change, emitted to ``on_event`` as it happens."""

    at: float
    from_state: BreakerState
    to_state: BreakerState
    reason: Trigger
    open_until: float | None = None  # set when to_state is OPEN


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to send one call; hand it back to ``record`` or ``release``."""

    serial: int
    epoch: int  # the breaker's transition count when issued
    trial: bool  # a half-open trial call


def _as_int(d: Mapping[str, object], key: str) -> int:
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"state field {key!r}: expected an integer, got {value!r}")
    return value


def _as_time(d: Mapping[str, object], key: str) -> float | None:
    value = d.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"state field {key!r}: expected a number or null, got {value!r}")
    return float(value)


class Breaker:
    """Closed → open → half-open → closed, per DESIGN §4.

    * closed: every call is allowed. Trips to open after ``cfg.failures``
      consecutive failures (0 disables) or when the window of ``cfg.window``
      seconds holds ≥ ``cfg.min_calls`` calls with failure rate ≥
      ``cfg.failure_rate``.
    * open: refuses until ``open_until``; the first ``allow`` at or after it
      moves to half-open (lazily, no timer). The period is
      ``min(open_for × 2^k, open_max) × (1 + U[0, 0.5])``.
    * half-open: at most ``cfg.half_open_probes`` (min 1) trial calls outstanding; the
      first trial success closes, the first trial failure reopens with k+1.

    k (the backoff exponent) resets to 0 only when the breaker trips after at
    least ``open_max`` seconds of closed operation; a replica that flaps
    (closes, then trips again soon) keeps doubling its open period. Like
    Envoy's outlier-detection ejection multiplier, which also outlives one
    ejection; ``open_max`` is the natural "long enough" since it bounds any
    single open period.

    Verdicts of permits issued before the latest transition are ignored: a
    slow call admitted while closed must not close or reopen a later state.
    """

    def __init__(
        self,
        cfg: BreakerConfig,
        rng: random.Random,
        on_event: Callable[[BreakerEvent], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self._rng = rng
        self._on_event = on_event
        self._state = BreakerState.CLOSED
        self._k = 0
        self._open_until: float | None = None
        self._closed_at: float | None = None  # None: never tripped, k is moot
        self._consecutive = 0
        self._window = SuccessWindow(cfg.window)
        self._epoch = 0
        self._serial = 0
        self._trials: set[int] = set()  # serials of outstanding trial permits

    # -- queries (no side effects) ------------------------------------------

    def state(self, now: float) -> BreakerState:
        """The state ``allow(now)`` would act in (open reads as half-open once due)."""
        if self._state is BreakerState.OPEN and self._due(now):
            return BreakerState.HALF_OPEN
        return self._state

    @property
    def open_until(self) -> float | None:
        """When the current open period ends; None unless open.

        In panic (every replica open) the router picks the replica with the
        smallest ``open_until`` and sends without a permit (DESIGN §4).
        """
        return self._open_until if self._state is BreakerState.OPEN else None

    @property
    def k(self) -> int:
        """The backoff exponent of the latest open period."""
        return self._k

    def admits(self, now: float) -> bool:
        """Whether ``allow(now)`` would give a permit; no side effects (a router's peek)."""
        if self._state is BreakerState.OPEN:
            return self._due(now)  # allow() moves to half-open, whose trial slots are all free
        if self._state is BreakerState.CLOSED:
            return True
        return len(self._trials) < max(1, self.cfg.half_open_probes)

    def retry_in(self, now: float) -> float | None:
        """Seconds until the next trial may be admitted (0.0 if due); None unless open."""
        until = self.open_until
        return None if until is None else max(0.0, until - now)

    # -- calls -------------------------------------------------------------

    def allow(self, now: float) -> Permit | None:
        """A permit to send one call at ``now``, or None if refused."""
        if self._state is BreakerState.OPEN:
            if not self._due(now):
                return None
            self.fire(now, Trigger.OPEN_ELAPSED)
        if self._state is BreakerState.CLOSED:
            return self._issue(trial=False)
        if len(self._trials) >= max(1, self.cfg.half_open_probes):
            return None
        permit = self._issue(trial=True)
        self._trials.add(permit.serial)
        return permit

    def record(self, now: float, permit: Permit, ok: bool) -> None:
        """The verdict of the call ``permit`` admitted, finished at ``now``."""
        if permit.epoch != self._epoch:
            return
        if permit.trial:
            if permit.serial in self._trials:
                self._trials.discard(permit.serial)
                self.fire(now, Trigger.TRIAL_SUCCESS if ok else Trigger.TRIAL_FAILURE)
            return
        self._count(now, ok)

    def release(self, permit: Permit) -> None:
        """The caller cancelled: free the trial slot, if any; no verdict."""
        if permit.trial and permit.epoch == self._epoch:
            self._trials.discard(permit.serial)

    # -- the state machine ---------------------------------------------------

    def fire(self, now: float, trigger: Trigger) -> BreakerState:
        """Apply ``trigger`` via :data:`TRANSITIONS`; raise ``IllegalTransition`` if absent.

        Low level: the guards (counts, times) live in ``allow`` / ``record``;
        this only enforces the table, runs the entry action and emits the event.
        """
        before = self._state
        after = TRANSITIONS.get((before, trigger))
        if after is None:
            raise IllegalTransition(f"no transition from {before} on {trigger}")
        self._state, self._epoch = after, self._epoch + 1
        self._trials.clear()
        if after is BreakerState.OPEN:
            self._enter_open(now, trigger)
        elif after is BreakerState.CLOSED:
            self._enter_closed(now)
        if self._on_event is not None:
            self._on_event(BreakerEvent(now, before, after, trigger, self.open_until))
        return after

    def _enter_open(self, now: float, trigger: Trigger) -> None:
        healthy = self._closed_at is None or now - self._closed_at >= self.cfg.open_max
        self._k = 0 if trigger is not Trigger.TRIAL_FAILURE and healthy else self._k + 1
        self._open_until = now + self.open_period(self._k, self._rng.uniform(0.0, JITTER))

    def _enter_closed(self, now: float) -> None:
        # a fresh window after recovery, as resilience4j resets its metrics
        self._closed_at, self._open_until = now, None
        self._consecutive = 0
        self._window.clear()

    def open_period(self, k: int, jitter: float) -> float:
        """``min(open_for × 2^k, open_max) × (1 + jitter)``, in seconds."""
        base = min(self.cfg.open_for * 2.0 ** min(k, 64), self.cfg.open_max)
        return base * (1.0 + jitter)

    def _due(self, now: float) -> bool:
        return self._open_until is None or now >= self._open_until

    def _issue(self, trial: bool) -> Permit:
        self._serial += 1
        return Permit(self._serial, self._epoch, trial)

    def _count(self, now: float, ok: bool) -> None:
        # only a closed breaker issues non-trial permits, and the epoch check
        # in record() drops those issued before the latest transition
        self._window.record(now, ok)
        self._consecutive = 0 if ok else self._consecutive + 1
        if 0 < self.cfg.failures <= self._consecutive:
            self.fire(now, Trigger.CONSECUTIVE_FAILURES)
        elif self._rate_tripped(now):
            self.fire(now, Trigger.FAILURE_RATE)

    def _rate_tripped(self, now: float) -> bool:
        calls = self._window.calls(now)
        if calls == 0 or calls < self.cfg.min_calls:
            return False
        return self._window.failures(now) / calls >= self.cfg.failure_rate

    # -- persistence -----------------------------------------------------------

    def to_state(self) -> dict[str, object]:
        """JSON-serialisable state (contract in :mod:`latcli.core.stats`); trials are not kept."""
        return {
            "state": self._state.value,
            "k": self._k,
            "open_until": self._open_until,
            "closed_at": self._closed_at,
            "consecutive": self._consecutive,
            "window": self._window.to_state(),
        }

    def from_state(self, d: Mapping[str, object], now_then: float, now: float) -> None:
        """Load ``to_state()`` output written on another clock; emits no event."""
        try:
            state = BreakerState(d.get("state"))
        except ValueError:
            raise ValueError(f"state field 'state': bad value {d.get('state')!r}") from None
        window = d.get("window")
        if not isinstance(window, Mapping):
            raise ValueError("state field 'window': expected an object")
        open_until, closed_at = _as_time(d, "open_until"), _as_time(d, "closed_at")
        if state is BreakerState.OPEN and open_until is None:
            raise ValueError("an open breaker needs 'open_until'")
        k, consecutive = _as_int(d, "k"), _as_int(d, "consecutive")
        self._window.from_state(window, now_then, now)
        self._state, self._k, self._consecutive = state, k, consecutive
        shift = now - now_then  # deadlines keep their remaining time
        self._open_until = None if open_until is None else open_until + shift
        self._closed_at = None if closed_at is None else min(now, closed_at + shift)
        self._epoch, self._trials = self._epoch + 1, set()
