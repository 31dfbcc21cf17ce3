"""The one choice of a replica: strategy + breaker admission, as a pure function (DESIGN §4).

Policy apart from mechanism (tower ``balance/p2c`` over ``Load``): :func:`choose` reads the
breakers (:meth:`Breaker.admits`, never ``allow``) and the measurements, asks the strategy,
and returns a :class:`Choice`; it changes nothing but the ``rng`` it is given. ``send`` calls it
and then takes the permit; ``Router.pick`` calls it with a copy of the rng, so both name the same
replica. Sans-I/O: ``now`` and ``rng`` are arguments.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, overload

from latcli.breaker import Breaker, BreakerState
from latcli.stats import ReplicaStats
from latcli.strategies import Candidate, Strategy

__all__ = ["CandidateView", "Choice", "Member", "Pool", "choose"]


class Member(Protocol):
    """A replica as the choice reads it (the router's ``Replica``)."""

    @property
    def id(self) -> str: ...

    @property
    def weight(self) -> float: ...

    @property
    def stats(self) -> ReplicaStats: ...

    @property
    def breaker(self) -> Breaker: ...


M = TypeVar("M", bound=Member)


class Pool(Generic[M]):
    """One type's replicas in a fixed order, with each id's position (built once)."""

    def __init__(self, members: Sequence[M]) -> None:
        self.members: tuple[M, ...] = tuple(members)
        self.position = {m.id: i for i, m in enumerate(self.members)}


@dataclass(frozen=True, slots=True)
class Choice(Generic[M]):
    """The replica to try next, and why it is that one.

    At most one flag is set. ``trial``: its open period is over and it takes the call as its
    half-open trial. ``again``: a replica this send already tried, because no other one is
    admissible (Envoy's and Finagle's retry on the same host). ``panic``: every breaker
    refuses, so the one whose open period ends first is tried without a permit.
    """

    member: M
    trial: bool = False
    again: bool = False
    panic: bool = False


class CandidateView(Sequence[Candidate], Generic[M]):
    """``members`` minus the positions in ``skip``, each built as a Candidate on first read.

    The strategy reads only the loads it needs: P2C two of 1,000 replicas (pick p99 <= 25 µs,
    docs/benchmarks.md), the O(n) strategies all of them. Index ``k`` maps to a position in
    O(len(skip)); ``skip`` holds the few tried or refusing replicas.
    """

    __slots__ = ("_built", "_members", "_now", "_skip")

    def __init__(self, members: Sequence[M], skip: Sequence[int], now: float) -> None:
        self._members, self._skip, self._now = members, skip, now
        self._built: dict[str, tuple[int, Candidate]] = {}  # id -> (position, candidate)

    def __len__(self) -> int:
        return len(self._members) - len(self._skip)

    @overload
    def __getitem__(self, k: int) -> Candidate: ...

    @overload
    def __getitem__(self, k: slice) -> Sequence[Candidate]: ...

    def __getitem__(self, k: int | slice) -> Candidate | Sequence[Candidate]:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        n = len(self)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError(k)
        position = k
        for skipped in self._skip:  # sorted: each skipped position at or before shifts by one
            if skipped > position:
                break
            position += 1
        member = self._members[position]
        found = self._built.get(member.id)
        if found is None:
            found = (position, member.stats.candidate(member.id, member.weight, self._now))
            self._built[member.id] = found
        return found[1]

    def member(self, chosen: Candidate) -> M:
        """The member a candidate read from this view stands for."""
        return self._members[self._built[chosen.id][0]]


def choose(
    pool: Pool[M],
    strategy: Strategy,
    now: float,
    rng: random.Random,
    *,
    turn: str | None = None,
    tried: Collection[str] = (),
    unsettled: Collection[str] = (),
    again: bool = True,
) -> Choice[M] | None:
    """The replica ``send`` tries next at ``now``; None when every replica was tried.

    ``turn``: the id the strategy picked last for this type (round_robin's rotation).
    ``tried``: ids this send already tried. ``unsettled``: ids whose breaker is not closed (the
    router tracks the few there are; a closed breaker always admits). ``again``: a tried
    replica may be chosen once no other one is admissible (retries yes, hedging no).
    In order: a due half-open trial; the strategy over the admissible untried replicas; a
    tried one again; panic. Only ``rng`` changes (the strategy's draws).
    """
    refusing: list[int] = []
    for position in sorted(pool.position[i] for i in unsettled if i not in tried):
        member = pool.members[position]
        if not member.breaker.admits(now):
            refusing.append(position)
        elif member.breaker.state(now) is BreakerState.HALF_OPEN:
            # first, or p2c would weigh it by the failure penalty in its EWMA and send
            # the trial only once that decayed (several τ late)
            return Choice(member, trial=True)
    skip = sorted({*refusing, *(pool.position[i] for i in tried)})
    if len(skip) < len(pool.members):
        view = CandidateView(pool.members, skip, now)
        return Choice(view.member(strategy.choose(view, rng, turn)))
    if again:
        once = [pool.members[p] for p in sorted(pool.position[i] for i in tried)]
        admissible = [m for m in once if m.breaker.admits(now)]
        if admissible:
            view = CandidateView(admissible, (), now)
            return Choice(view.member(strategy.choose(view, rng, turn)), again=True)
    left = [m for m in pool.members if m.id not in tried]
    if not left:
        return None
    # Panic (DESIGN §4): rather than failing without trying, the replica closest to its
    # next probe; no permit, so the verdict cannot close it early.
    return Choice(min(left, key=lambda m: m.breaker.open_until or now), panic=True)
