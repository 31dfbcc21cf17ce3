"""Saving what a router learned into its state store: the unsaved part is taken on the loop
(quick, no I/O), merged into the store off it, and given back when the merge fails."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from latcli.routing.replica import Replica
from latcli.routing.state import CallRecord, FlushEntry, NullStore, Store

__all__ = ["Saver", "Unsaved"]


@dataclass
class Unsaved:
    """What one save takes: replicas' journals, the types whose turn moved, new cooldowns."""

    journals: list[tuple[Replica, list[CallRecord]]]
    turns: dict[str, str]
    cooled: dict[str, float] = field(default_factory=dict)  # state key -> epoch end

    def __bool__(self) -> bool:
        return bool(self.journals or self.turns or self.cooled)


class Saver:
    """The router's unsaved observations (the replicas' journals, moved turns, new cooldowns)
    and their saving: one flush at a time, from any thread. ``turns`` (type -> the id the
    strategy picked last) is the round_robin rotation, saved when it moves."""

    def __init__(
        self,
        store: Store,
        replicas: Sequence[Replica],
        clock: Callable[[], float],
        wall: Callable[[], float],
    ) -> None:
        self.store = store
        self.turns: dict[str, str] = {}
        self._moved: set[str] = set()  # types whose turn moved since the last save
        self._cooled: dict[str, float] = {}  # state key -> epoch end: cooldowns to save
        self._order = list(replicas)
        self._save_from = 0  # where the next partial save (start's limit) starts
        self._clock, self._wall = clock, wall
        self._lock = threading.Lock()  # one flush (or close) of the store at a time
        self._saving: asyncio.Task[float] | None = None

    def move_turn(self, type_: str, agent_id: str) -> None:
        self.turns[type_] = agent_id
        self._moved.add(type_)

    def note_cooled(self, key: str, until: float) -> None:
        """A cooldown to save: the state key and the epoch second it ends."""
        self._cooled[key] = until

    async def close(self) -> None:
        """Save what is left (after the save under way) and close the store."""
        await self.wait()
        self.save()
        with self._lock:
            self.store.close()

    def save(self) -> None:
        """Merge the unsaved observations into the store, in the caller's thread (never raises)."""
        taken = self._take()
        if taken and not self._flush(taken, self._clock(), self._wall()):
            self._give_back(taken)

    def start(self, limit: int | None = None) -> asyncio.Task[float] | None:
        """Save in a worker thread; the task's result is the seconds the flush took.

        Taking the journals is quick and happens now, on the loop (calls recorded after
        it go to the next save); the slow merge runs off the loop. One save at a time:
        None while the previous one runs, when there is nothing to save, or without a
        store (``--no-state``: the journals are just dropped, at once). ``limit`` caps the
        replicas saved at once, taken in turn: a short flush holds the GIL only briefly.
        """
        if self._saving is not None and not self._saving.done():
            return None
        if isinstance(self.store, NullStore):  # nothing to wait for: no thread
            self.save()
            return None
        taken = self._take(limit)
        if not taken:
            return None
        self._saving = asyncio.create_task(self._save_off_loop(taken))
        return self._saving

    async def wait(self) -> None:
        """Wait for the save :meth:`start` started, if one runs."""
        if self._saving is not None:
            await asyncio.wait({self._saving})  # never raises, never cancels the save
            if not self._saving.cancelled():
                self._saving.exception()  # retrieved (a flush does not raise)
            self._saving = None

    async def _save_off_loop(self, taken: Unsaved) -> float:
        now, wall = self._clock(), self._wall()

        def timed() -> tuple[bool, float]:  # the flush's own time, not the loop's delays
            started = time.perf_counter()
            ok = self._flush(taken, now, wall)
            return ok, time.perf_counter() - started

        flushing = asyncio.get_running_loop().run_in_executor(None, timed)

        def settle(done: asyncio.Future[tuple[bool, float]]) -> None:
            if done.cancelled() or done.exception() is not None or not done.result()[0]:
                self._give_back(taken)

        try:
            ok, took = await asyncio.shield(flushing)
        except asyncio.CancelledError:
            flushing.add_done_callback(settle)  # the thread goes on; settle when it ends
            raise
        if not ok:
            self._give_back(taken)
        return took

    def _take(self, limit: int | None = None) -> Unsaved:
        """The moved turns, and non-empty journals each replaced by a fresh list (no I/O).

        All journals, or at most ``limit``, going round from where the previous call stopped.
        """
        turns = {t: self.turns[t] for t in self._moved}
        self._moved.clear()
        cooled, self._cooled = self._cooled, {}
        return Unsaved(self._take_journals(limit), turns, cooled)

    def _give_back(self, taken: Unsaved) -> None:
        """Unsaved observations go back in front of those recorded since; turns are retaken."""
        for replica, journal in taken.journals:
            replica.journal[:0] = journal
        self._moved.update(taken.turns)  # the current turn, which may have moved on, is saved
        for key, until in taken.cooled.items():
            self._cooled[key] = max(until, self._cooled.get(key, until))

    def _take_journals(self, limit: int | None) -> list[tuple[Replica, list[CallRecord]]]:
        order = self._order
        taken = []
        for step in range(len(order)):
            i = (self._save_from + step) % len(order)
            r = order[i]
            if r.journal:
                taken.append((r, r.journal))
                r.journal = []
                if limit is not None and len(taken) >= limit:
                    self._save_from = i + 1
                    break
        return taken

    def _flush(self, taken: Unsaved, now: float, wall: float) -> bool:
        """Merge ``taken`` into the store, from any thread, one flush at a time.

        False: other runs held the lock too long; the caller gives the journals back.
        """
        entries = [
            FlushEntry(r.key, r.agent.ewma.decay, r.agent.breaker.window, r.agent.breaker, j)
            for r, j in taken.journals
        ]
        with self._lock:
            return self.store.flush(entries, now, wall, taken.turns, taken.cooled)
