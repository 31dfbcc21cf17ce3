"""Load-balancing policies: given replicas' measurements, pick one.

Policy apart from mechanism (tower ``balance/p2c``): a strategy only compares
the numbers in a :class:`Candidate`; what "load" or "cost" means is decided by
:mod:`latcli.core.stats`. Sans-I/O: randomness comes in as ``rng``.

Every ``choose`` / ``pick`` takes a non-empty sequence of candidates that the
caller already filtered (e.g. breakers that refuse), raises ``ValueError`` when it
is empty, and returns one element of it. ``choose`` is pure (the router peeks with
it); ``pick`` is ``choose`` for a caller that lets the strategy remember its turn.
The sequence may build its candidates lazily (the router's view over 1,000
replicas): P2C reads two of them, the others read all.
"""

from __future__ import annotations

import abc
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

__all__ = [
    "P2C",
    "STRATEGIES",
    "Candidate",
    "Fastest",
    "LeastLoaded",
    "Measured",
    "RoundRobin",
    "Strategy",
    "Weighted",
    "make_strategy",
]


class Measured(Protocol):
    """What a strategy may read of one replica at one instant.

    A :class:`Candidate` holds the numbers; the router's view computes each when read, so
    P2C pays for two loads out of 1,000 replicas and nothing else (tower's ``Load``).
    """

    @property
    def id(self) -> str: ...

    @property
    def load(self) -> float: ...

    @property
    def cost(self) -> float: ...

    @property
    def in_flight(self) -> int: ...

    @property
    def weight(self) -> float: ...

    @property
    def success_rate(self) -> float | None: ...

    @property
    def has_history(self) -> bool: ...


C = TypeVar("C", bound=Measured)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One replica as a strategy sees it at one instant (the numbers of :class:`Measured`)."""

    id: str
    load: float  # peak_ewma × (in_flight + 1); 0 idle-untried, +inf busy-untried
    cost: float  # decayed peak EWMA in ms; 0.0 without history
    in_flight: int
    weight: float  # static weight from the inventory
    success_rate: float | None  # None: no calls in the window
    has_history: bool


class Strategy(Protocol):
    """A load-balancing policy."""

    name: str

    def choose(self, candidates: Sequence[C], rng: random.Random, turn: str | None) -> C:
        """One of ``candidates``, changing nothing but ``rng``; ``ValueError`` when empty.

        ``turn`` is the id picked last (round_robin goes on after it; None: from the
        lowest id); the other strategies ignore it.
        """
        ...

    def pick(self, candidates: Sequence[C], rng: random.Random) -> C:
        """``choose`` with the turn this strategy object remembers, then remember it."""
        ...


class _Memoryless(abc.ABC):
    """``pick`` of a strategy that has no turn to remember."""

    @abc.abstractmethod
    def choose(self, candidates: Sequence[C], rng: random.Random, turn: str | None) -> C:
        """See :meth:`Strategy.choose`."""

    def pick(self, candidates: Sequence[C], rng: random.Random) -> C:
        return self.choose(candidates, rng, None)


def _require(candidates: Sequence[Measured]) -> None:
    if not candidates:
        raise ValueError("no candidates to pick from")


def _fastest_key(c: Measured) -> tuple[int, float, int, str]:
    # untried-and-idle first so they get measured; untried-and-busy last
    # (one request at a time until the first answer, DESIGN §4)
    if not c.has_history:
        return (0 if c.in_flight == 0 else 2, 0.0, c.in_flight, c.id)
    return (1, c.cost, c.in_flight, c.id)


class Fastest(_Memoryless):
    """Lowest decayed EWMA; an idle untried replica wins so it gets measured."""

    name = "fastest"

    def choose(self, candidates: Sequence[C], rng: random.Random, turn: str | None) -> C:
        _require(candidates)
        return min(candidates, key=_fastest_key)


class RoundRobin:
    """Each replica in turn, by id order.

    The turn is the last id picked rather than a position, so adding or removing
    a replica (a breaker opening) does not shift or skip the others' turns. The
    router keeps one turn per type (persisted between runs); ``pick`` keeps its own.
    """

    name = "round_robin"

    def __init__(self) -> None:
        self._last: str | None = None

    def choose(self, candidates: Sequence[C], rng: random.Random, turn: str | None) -> C:
        _require(candidates)
        later = [c for c in candidates if turn is None or c.id > turn]
        return min(later or candidates, key=lambda c: c.id)

    def pick(self, candidates: Sequence[C], rng: random.Random) -> C:
        chosen = self.choose(candidates, rng, self._last)
        self._last = chosen.id
        return chosen


class LeastLoaded(_Memoryless):
    """Fewest requests in flight; ties broken by lower cost, then id."""

    name = "least_loaded"

    def choose(self, candidates: Sequence[C], rng: random.Random, turn: str | None) -> C:
        _require(candidates)
        return min(candidates, key=lambda c: (c.in_flight, c.cost, c.id))


def _share(c: Measured) -> float:
    """weight × health, never negative nor NaN; unknown health counts as 1.0."""
    health = 1.0 if c.success_rate is None else c.success_rate
    share = c.weight * health
    return share if math.isfinite(share) and share > 0 else 0.0


class Weighted(_Memoryless):
    """Random pick with probability ∝ weight × success rate (nginx/Envoy weighted random).

    When every share is zero (all weights 0 or every replica failing) the pick
    is uniform: a weighted router must still route, and never divides by zero.
    """

    name = "weighted"

    def choose(self, candidates: Sequence[C], rng: random.Random, turn: str | None) -> C:
        _require(candidates)
        shares = [_share(c) for c in candidates]
        top = max(shares)
        if top == 0:
            return candidates[rng.randrange(len(candidates))]
        # relative to the largest share, so the total stays finite even for 1e308 weights
        shares = [s / top for s in shares]
        point = rng.random() * sum(shares)
        last = 0
        for i, share in enumerate(shares):
            if share > 0:
                last, point = i, point - share
                if point < 0:
                    return candidates[i]
        # float round-off can leave point >= 0 after the scan: the last positive share
        return candidates[last]


class P2C(_Memoryless):
    """Power of two choices on ``load`` (Mitzenmacher; tower ``balance/p2c``, Finagle).

    Two distinct replicas are drawn uniformly and the lower load wins (the
    first drawn on a tie): near least-loaded quality at O(1) cost, and no herd
    on the single "best" replica when many clients see the same numbers.
    """

    name = "p2c"

    def choose(self, candidates: Sequence[C], rng: random.Random, turn: str | None) -> C:
        _require(candidates)
        i = self.pick_index(len(candidates), lambda k: candidates[k].load, rng)
        return candidates[i]

    @staticmethod
    def sample_two(n: int, rng: random.Random) -> tuple[int, int]:
        """Two distinct indices in ``range(n)``, uniformly (``n >= 2``)."""
        a = rng.randrange(n)
        b = rng.randrange(n - 1)
        return a, b + 1 if b >= a else b

    @staticmethod
    def pick_index(n: int, load_of: Callable[[int], float], rng: random.Random) -> int:
        """Index in ``range(n)`` of the pick, calling ``load_of`` on at most two indices.

        For large fleets: the router keeps its replicas in a list and computes
        only the two sampled loads instead of building ``n`` candidates.
        """
        if n < 1:
            raise ValueError("no candidates to pick from")
        if n == 1:
            return 0
        a, b = P2C.sample_two(n, rng)
        return a if load_of(a) <= load_of(b) else b


STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "p2c": P2C,
    "fastest": Fastest,
    "round_robin": RoundRobin,
    "least_loaded": LeastLoaded,
    "weighted": Weighted,
}


def make_strategy(name: str) -> Strategy:
    """A fresh strategy by its inventory / ``--strategy`` name; ``ValueError`` if unknown."""
    try:
        factory = STRATEGIES[name]
    except KeyError:
        names = ", ".join(STRATEGIES)
        raise ValueError(f"unknown strategy {name!r}; choose one of: {names}") from None
    return factory()
