"""Per-key connection pools (a bulkhead with FIFO waiters) and the one deadline timer of a
transport."""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from latcli.transport.raw.connection import _Connection
from latcli.transport.raw.errors import _Deadline, _PoolTimeout

# Under uvicorn's 5 s keep-alive timeout: a connection idle longer may be closing at the
# server as we write to it, which would show as a reset the agent did not cause.
_KEEPALIVE_SECONDS = 4.0


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(_Deadline("attempt timed out"))


class _Expiring(Protocol):
    def done(self) -> bool: ...


_E = TypeVar("_E", bound=_Expiring)


class _Deadlines(Generic[_E]):
    """The whole-attempt deadlines of one transport's exchanges, on one timer: ``expire(item)``
    runs at an item's deadline unless the item is ``done()`` by then.

    A timer per request costs a handle, a heap push made of Python comparisons and, once
    cancelled, a heap pop: several times the rest of a keep-alive exchange's Python work.
    Exchanges of one timeout mostly begin in deadline order, so a deque per timeout is sorted;
    the one timer fires at the earliest deadline still pending. Exchanges that arrive out of
    order (after a wait for a connection, redirect hops) get a timer of their own.
    """

    __slots__ = ("_at", "_expire", "_loop", "_queues", "_timer")

    def __init__(self, expire: Callable[[_E], None]) -> None:
        self._expire = expire
        self._queues: dict[float, collections.deque[tuple[float, _E]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(
        self, loop: asyncio.AbstractEventLoop, timeout: float, deadline: float, item: _E
    ) -> asyncio.TimerHandle | None:
        """Expire ``item`` at ``deadline`` (loop time); a handle to cancel, or None."""
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = collections.deque()
        while queue and queue[0][1].done():  # finished exchanges leave from the front
            queue.popleft()
        if self._loop is None:
            self._loop = loop
        if loop is not self._loop or (queue and deadline < queue[-1][0]):
            return loop.call_at(deadline, self._expire, item)
        queue.append((deadline, item))
        if deadline < self._at:
            if self._timer is not None:
                self._timer.cancel()
            self._at = deadline
            self._timer = loop.call_at(deadline, self._fire)
        return None

    def _fire(self) -> None:
        assert self._loop is not None
        self._timer, self._at = None, math.inf
        now = self._loop.time()
        earliest = math.inf
        for timeout, queue in list(self._queues.items()):
            while queue:
                deadline, item = queue[0]
                if item.done():
                    queue.popleft()
                elif deadline <= now:
                    queue.popleft()
                    self._expire(item)
                else:
                    earliest = min(earliest, deadline)
                    break
            if not queue:
                del self._queues[timeout]
        if earliest < math.inf:
            self._at = earliest
            self._timer = self._loop.call_at(earliest, self._fire)

    def clear(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._at, self._queues = None, math.inf, {}


_Waiter = asyncio.Future[None]


def _expire_wait(waiter: asyncio.Future[_Connection | None]) -> None:
    if not waiter.done():
        waiter.set_exception(_PoolTimeout("no free connection"))


class _Pool:
    """At most ``limit`` connections of one key; waiters served first come, first served.

    A waiter's future resolves with an idle connection handed over, or None: "a slot is
    yours, open a connection". Either way the slot is counted in ``opened`` before the hand-over.
    """

    __slots__ = ("conns", "idle", "limit", "opened", "waiters")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.opened = 0  # slots taken: open connections and connections being opened
        self.idle: list[_Connection] = []  # LIFO: the warmest connection first
        self.conns: set[_Connection] = set()
        self.waiters: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()

    def take(self, origin: tuple[str, str, int], now: float) -> _Connection | None:
        """An idle live connection to ``origin``; stale ones met on the way are closed."""
        idle = self.idle
        # The stack's bottom is the least recently used: after a burst opened many connections,
        # the unneeded ones age there and close here instead of being held for the whole run.
        while idle and now - idle[0].idle_since >= _KEEPALIVE_SECONDS:
            self.drop(idle.pop(0))
        for i in range(len(idle) - 1, -1, -1):
            conn = idle[i]
            if conn.closed or now - conn.idle_since >= _KEEPALIVE_SECONDS:
                del idle[i]
                self.drop(conn)
            elif conn.origin == origin:
                del idle[i]
                return conn
        return None

    def reserve(self) -> bool:
        """Take a slot for a new connection, unless the key is full or others queue first.

        At the limit, an idle connection to another origin gives its slot up.
        """
        if self.waiters:
            return False
        if self.opened < self.limit:
            self.opened += 1
            return True
        if self.idle:
            self.drop(self.idle.pop(0), wake=False)
            self.opened += 1
            return True
        return False

    def release(self, conn: _Connection, now: float) -> None:
        """Give a connection back after an exchange: to the first waiter, to idle, or away."""
        if not conn.reusable:
            self.drop(conn)
            return
        conn.idle_since = now
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.idle.append(conn)

    def drop(self, conn: _Connection, wake: bool = True) -> None:
        """Close ``conn`` and free its slot (once, however often it is dropped)."""
        conn.abort()
        if conn in self.conns:
            self.conns.remove(conn)
            self.free_slot(wake)

    def free_slot(self, wake: bool = True) -> None:
        """One slot less taken; with ``wake``, it goes straight to the first waiter."""
        self.opened -= 1
        while wake and self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                self.opened += 1
                waiter.set_result(None)
                return


async def _wait_turn(
    pool: _Pool, origin: tuple[str, str, int], deadline: float
) -> _Connection | None:
    """Queue until a connection (or a slot: None) is handed over, within ``deadline``."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[_Connection | None] = loop.create_future()
    pool.waiters.append(waiter)
    timer = loop.call_at(deadline, _expire_wait, waiter)
    try:
        conn = await waiter
    except asyncio.CancelledError:
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            handed = waiter.result()  # handed over as we were cancelled: pass it on
            if handed is None:
                pool.free_slot()
            else:
                pool.release(handed, loop.time())
        raise
    finally:
        timer.cancel()
    if conn is not None and conn.origin != origin:
        pool.drop(conn, wake=False)  # another origin's connection: its slot becomes ours
        pool.opened += 1
        return None
    return conn
