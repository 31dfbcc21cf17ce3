"""The awaiting half of a hedged streamed send: runs :class:`latcli.core.hedge.StreamRace`.

The router's streamed path supplies how to run a leg (an attempt on a replica, with its
breaker permit and ``Call``), how to start the hedge (choose a second replica, take a retry
budget token and a permit; None when it may not), and how to cancel a loser's task. See
:func:`hedged_stream`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from latcli.core.hedge import Move, StreamRace
from latcli.transport.a2a.stream import StreamReader
from latcli.transport.replies import Reply
from latcli.transport.stream_reply import OnChunk, OnEvent

__all__ = ["CANCEL_WAIT_S", "Hedged", "LegRun", "hedged_stream"]

# Runs one leg: ``client.stream_message(agent, text, message_id, on_chunk, on_event)`` inside
# the router's attempt (its Call and permit), passing on the two callbacks it is given.
LegRun = Callable[[OnEvent, OnChunk], Awaitable[Reply]]
# A loser's CancelTask usually ends while the winner streams; one still pending this long after
# the answer is given up (the send returns; that agent's task then runs to its end).
CANCEL_WAIT_S = 1.0


class Hedged:
    """The outcome: the leg whose reply is the answer (0 first choice, 1 hedge), that reply,
    and for each cancelled loser its ``CancelTask`` reply (None: it had no task id)."""

    def __init__(self, leg: int, reply: Reply, cancelled: dict[int, Reply | None]) -> None:
        self.leg, self.reply, self.cancelled = leg, reply, cancelled


async def hedged_stream(
    first: LegRun,
    hedge: Callable[[], LegRun | None],
    hedge_at: float | None,
    cancel: Callable[[int, str], Awaitable[Reply]],
    clock: Callable[[], float] = time.monotonic,
    on_chunk: OnChunk | None = None,
) -> Hedged:
    """Stream ``first``; if no answer text came by ``hedge_at`` (monotonic), start ``hedge()``
    too. The first leg to deliver answer text (or a whole answer) wins; the other is closed and
    its task cancelled through ``cancel(leg, task_id)`` as soon as its id is known.
    ``on_chunk`` gets the winner's text only, as it arrives (a loser's never)."""
    race = StreamRace(hedge_at)
    changed = asyncio.Event()
    legs: list[asyncio.Task[Reply]] = []
    cancels: dict[int, asyncio.Task[Reply]] = {}
    closed: set[int] = set()

    def launch(run: LegRun) -> None:
        leg = len(legs)

        def on_event(reader: StreamReader) -> None:
            race.event(leg, clock(), reader.task_id, reader.answered)
            changed.set()

        def relay(text: str) -> None:
            if on_chunk is not None and race.winner == leg:
                on_chunk(text)

        task = asyncio.ensure_future(run(on_event, relay))
        task.add_done_callback(lambda _: changed.set())
        legs.append(task)

    async def settle() -> int:
        """Drive the race until the answer's leg is known (its stream finished)."""
        while True:
            changed.clear()
            for i, task in enumerate(legs):
                if task.done() and not race.legs[i].ended:
                    ok = not task.cancelled() and task.exception() is None and task.result().ok
                    race.ended(i, ok)
            for i, move in race.losers():
                if move is Move.CANCEL:
                    legs[i].cancel()  # closes its stream (and settles its permit, no verdict)
                    task_id = race.legs[i].task_id
                    assert task_id is not None
                    cancels[i] = asyncio.ensure_future(cancel(i, task_id))
            if race.winner is not None and legs[race.winner].done():
                closed.update(race.close_unnamed())
                return race.winner
            if race.winner is None and all(x.ended for x in race.legs):
                return len(legs) - 1
            timeout = None
            if race.hedge_pending():
                assert race.hedge_at is not None
                now = clock()
                if race.hedge_due(now):
                    run = hedge()
                    if run is None:
                        race.hedge_at = None  # no replica or no budget: no hedge this send
                    else:
                        race.start_hedge()
                        launch(run)
                    continue
                timeout = race.hedge_at - now
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)

    launch(first)
    try:
        leg = await settle()
    finally:
        for task in legs:
            task.cancel()
        for task in legs:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if cancels:
            await asyncio.wait(cancels.values(), timeout=CANCEL_WAIT_S)
            for task in cancels.values():
                task.cancel()  # no-op on the finished ones
    cancelled: dict[int, Reply | None] = dict.fromkeys(closed)
    for i, task in cancels.items():
        done = task.done() and not task.cancelled() and task.exception() is None
        cancelled[i] = task.result() if done else None
    return Hedged(leg, legs[leg].result(), cancelled)
