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

from latcli.core.breaker import Breaker, BreakerState
from latcli.core.stats import ReplicaStats
from latcli.core.strategies import Strategy

__all__ = ["Choice", "Member", "MemberView", "Pool", "Seen", "choose"]


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

    @property
    def cool_until(self) -> float:
        """Set aside until then (rate-limited, :mod:`latcli.core.ratelimit`); in the past: not."""
        ...


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
    ``wait`` > 0: every admissible replica is cooling (rate-limited) and this one's cooldown
    ends first; the send waits that many seconds, then chooses again.
    """

    member: M
    trial: bool = False
    again: bool = False
    panic: bool = False
    wait: float = 0.0


class Seen(Generic[M]):
    """One member as a strategy reads it at ``now`` (:class:`Measured`), each number computed
    on access: P2C reads two loads of 1,000 replicas and nothing else (tower's ``Load``)."""

    __slots__ = ("member", "now")

    def __init__(self, member: M, now: float) -> None:
        self.member, self.now = member, now

    @property
    def id(self) -> str:
        return self.member.id

    @property
    def load(self) -> float:
        return self.member.stats.load(self.now)

    @property
    def cost(self) -> float:
        return self.member.stats.cost(self.now)

    @property
    def in_flight(self) -> int:
        return self.member.stats.in_flight

    @property
    def weight(self) -> float:
        return self.member.weight

    @property
    def success_rate(self) -> float | None:
        return self.member.stats.success.rate(self.now)

    @property
    def has_history(self) -> bool:
        return self.member.stats.has_history


class MemberView(Sequence[Seen[M]]):
    """``members`` minus the positions in ``skip`` (sorted), without copying the members.

    Index ``k`` maps to a position in O(len(skip)): ``skip`` holds the few tried or refusing
    replicas, so a pick over 1,000 replicas stays O(1) (pick p99 <= 25 µs, docs/benchmarks.md).
    """

    __slots__ = ("_members", "_now", "_skip")

    def __init__(self, members: Sequence[M], skip: Sequence[int], now: float) -> None:
        self._members, self._skip, self._now = members, skip, now

    def __len__(self) -> int:
        return len(self._members) - len(self._skip)

    @overload
    def __getitem__(self, k: int) -> Seen[M]: ...

    @overload
    def __getitem__(self, k: slice) -> Sequence[Seen[M]]: ...

    def __getitem__(self, k: int | slice) -> Seen[M] | Sequence[Seen[M]]:
        if not self._skip and type(k) is int:  # the common case: P2C's reads, nothing skipped
            return Seen(self._members[k], self._now)
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        n = len(self)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError(k)
        for skipped in self._skip:  # each skipped position at or before k shifts it by one
            if skipped > k:
                break
            k += 1
        return Seen(self._members[k], self._now)


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
    cooling: Collection[str] = (),
) -> Choice[M] | None:
    """The replica ``send`` tries next at ``now``; None when every replica was tried and none
    may be tried again.

    ``turn``: the id the strategy picked last for this type (round_robin's rotation).
    ``tried``: ids this send already tried. ``unsettled``: ids whose breaker is not closed (the
    router tracks the few there are; a closed breaker always admits). ``again``: a tried
    replica may be chosen once no other one is admissible (retries yes, hedging no).
    ``cooling``: ids that may be set aside (the router's few rate-limited ones); those whose
    ``cool_until`` is past ``now`` are skipped like refusing ones.
    In order: a due half-open trial; the strategy over the admissible untried replicas; a
    tried one again; a wait for the cooling replica free first; panic. Only ``rng`` changes.
    """
    if not tried and not unsettled and not cooling:  # the common case, O(1), allocation-light
        return Choice(strategy.choose(MemberView(pool.members, (), now), rng, turn).member)
    resting = {pool.position[i] for i in cooling if pool.members[pool.position[i]].cool_until > now}
    refusing: list[int] = []
    for position in sorted(pool.position[i] for i in unsettled if i not in tried):
        member = pool.members[position]
        if not member.breaker.admits(now):
            refusing.append(position)
        elif position in resting:
            continue
        elif member.breaker.state(now) is BreakerState.HALF_OPEN:
            # first, or p2c would weigh it by the failure penalty in its EWMA and send
            # the trial only once that decayed (several τ late)
            return Choice(member, trial=True)
    skip = sorted({*refusing, *resting, *(pool.position[i] for i in tried)})
    if len(skip) < len(pool.members):
        return Choice(strategy.choose(MemberView(pool.members, skip, now), rng, turn).member)
    if again:
        once = [pool.members[p] for p in sorted(pool.position[i] for i in tried)]
        admissible = [m for m in once if m.breaker.admits(now) and m.cool_until <= now]
        if admissible:
            chosen = strategy.choose(MemberView(admissible, (), now), rng, turn)
            return Choice(chosen.member, again=True)
    waiting = [
        m
        for m in (pool.members[p] for p in sorted(resting))
        if (again or m.id not in tried) and m.breaker.admits(now)
    ]
    if waiting:  # every admissible replica is rate-limited: wait for the first one free
        soonest = min(waiting, key=lambda m: m.cool_until)
        return Choice(soonest, wait=soonest.cool_until - now)
    left = [m for m in pool.members if m.id not in tried]
    if not left:
        return None
    # Panic (DESIGN §4): rather than failing without trying, the replica closest to its
    # next probe; no permit, so the verdict cannot close it early.
    return Choice(min(left, key=lambda m: m.breaker.open_until or now), panic=True)
