"""Streamed bodies: arrivals stamped on read, handed to a consumer once a loop pass (the feeder)."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Mapping

from latcli.core.errors import ErrorKind
from latcli.transport.base import (
    Consumer,
    StreamingOutcome,
    Timings,
)

_RESUMES_PER_PASS = 8  # streams' readers woken per loop pass at their end (_Feeder.run)
_RUNS_PER_PASS = 16  # streams' queued reads parsed per loop pass (_Feeder.run)


class _Sink:
    """The body of one streamed response, read by one consumer.

    The connection stamps each read as it arrives (``arrived``, before parsing it) and queues
    ``(arrival, bytes)`` pieces, then an end or a fault. The consumer is either a callback
    (:meth:`attach`, run by the :class:`_Feeder` once per loop pass: no task wake-up per read)
    or a task iterating :func:`_arrivals`, woken through ``wake``.
    """

    __slots__ = (
        "arrived",
        "closed",
        "consumer",
        "done",
        "ended",
        "error",
        "feeder",
        "items",
        "message",
        "queued",
        "wake",
    )

    def __init__(self, feeder: _Feeder) -> None:
        self.feeder = feeder
        self.items: collections.deque[tuple[float, bytes]] = collections.deque()
        self.arrived = 0.0
        self.closed = False
        self.ended = 0.0
        self.error: ErrorKind | None = None
        self.message: str | None = None
        self.wake: asyncio.Future[None] | None = None
        self.consumer: Consumer | None = None
        self.done: asyncio.Future[bool] | None = None  # True: the consumer stopped early
        self.queued = False  # in the feeder's queue

    def push(self, data: bytes) -> None:
        if self.closed:
            return
        self.items.append((self.arrived, data))
        if self.consumer is None:
            self._wake()
        elif not self.queued:  # _wake's first case, inlined: once per read
            self.queued = True
            self.feeder.due(self)

    def finish(self, at: float = 0.0) -> None:
        """The body is whole; ``at``: the stamp of the read that ended it (0: now)."""
        if not self.closed:
            self.closed, self.ended = True, at or time.perf_counter()
            self._wake()

    def fail(self, kind: ErrorKind, message: str) -> None:
        if not self.closed:
            self.closed, self.ended = True, time.perf_counter()
            self.error, self.message = kind, message
            self._wake()

    def _wake(self) -> None:
        if self.consumer is not None:
            if not self.queued:
                self.queued = True
                self.feeder.due(self)
            return
        wake = self.wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def attach(self, consume: Consumer, loop: asyncio.AbstractEventLoop) -> asyncio.Future[bool]:
        """Hand every piece, queued and to come, to ``consume``; the future resolves when it
        stops (True) or the body has ended (False), or fails with what ``consume`` raised."""
        self.consumer = consume
        done = self.done = loop.create_future()
        if (self.items or self.closed) and not self.queued:
            self.queued = True
            self.feeder.due(self)
        return done

    def detach(self) -> None:
        self.consumer = None

    def run(self) -> None:
        """Give the queued pieces to the consumer (called by the feeder)."""
        self.queued = False
        consume, done = self.consumer, self.done
        if consume is None or done is None or done.done():
            return
        items = self.items
        try:
            while items:
                at, data = items.popleft()
                if consume(at, data):
                    self.consumer = None
                    self.feeder.resume(done, True)
                    return
        except Exception as exc:  # raised in the task awaiting read_with, as iteration would
            self.consumer = None
            self.feeder.resume(done, exc)
            return
        if self.closed:
            self.consumer = None
            self.feeder.resume(done, False)


class _Feeder:
    """Runs the streamed bodies' consumers of one event loop, once per pass, after its reads.

    Scheduled as a timer due now rather than with ``call_soon``: asyncio appends due timers
    after the I/O callbacks of the same pass, so every read of a burst (100 streams' first
    artifacts at once) is stamped before any of them is parsed, and the stamp of one does not
    wait for the JSON, phases and histograms of the others.
    """

    __slots__ = ("loop", "queue", "resumes", "scheduled", "soon")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # uvloop runs call_soon callbacks before its next poll, after this one's reads: the
        # same order as a timer due now, without a libuv timer each time (docs/benchmarks.md)
        self.soon = type(loop).__module__.startswith("uvloop")
        self.queue: collections.deque[_Sink] = collections.deque()
        # Readers whose stream is over, woken a few per pass (see run)
        self.resumes: collections.deque[tuple[asyncio.Future[bool], bool | Exception]] = (
            collections.deque()
        )
        self.scheduled = False

    def due(self, sink: _Sink) -> None:
        self.queue.append(sink)
        if not self.scheduled:
            self._schedule()

    def resume(self, done: asyncio.Future[bool], result: bool | Exception) -> None:
        self.resumes.append((done, result))
        if not self.scheduled:
            self._schedule()

    def _schedule(self) -> None:
        self.scheduled = True
        if self.soon:
            self.loop.call_soon(self.run)
        else:
            self.loop.call_at(self.loop.time(), self.run)

    def run(self) -> None:
        self.scheduled = False
        queue = self.queue
        # A burst's parsing (~15 µs a stream) in slices: the loop polls between them, so the
        # reads that arrive meanwhile are stamped on arrival, not after the whole burst.
        for _ in range(min(len(queue), _RUNS_PER_PASS)):
            queue.popleft().run()
        # A reader woken at a stream's end does a request's worth of work before it awaits
        # again (the reply, the next request): a burst of them would hold the next pass's
        # reads unstamped for milliseconds. A few per pass, then the loop polls again.
        resumes = self.resumes
        for _ in range(min(len(resumes), _RESUMES_PER_PASS)):
            done, result = resumes.popleft()
            if done.done():  # its reader was cancelled meanwhile
                continue
            if isinstance(result, Exception):
                done.set_exception(result)
            else:
                done.set_result(result)
        if (resumes or queue) and not self.scheduled:
            self._schedule()


class _StreamingOutcome(StreamingOutcome):
    """The raw engine's streamed response: :meth:`read_with` runs its consumer from the
    feeder; async iteration (:func:`_arrivals`) is kept for whole-body reads and tests."""

    def __init__(
        self,
        started: float,
        status: int | None,
        timings: Timings,
        headers: Mapping[str, str],
        sink: _Sink,
        sent: float,
    ) -> None:
        super().__init__(started, status, timings, headers, sent=sent)
        self._sink = sink

    def __aiter__(self) -> AsyncIterator[tuple[float, bytes]]:
        if self.body is None:
            self.body = _arrivals(self._sink, self)
        return self.body

    async def read_with(self, consume: Consumer) -> None:
        sink = self._sink
        done = sink.attach(consume, asyncio.get_running_loop())
        try:
            stopped = await done
        finally:
            sink.detach()
        if not stopped:
            _record_end(sink, self)


def _record_end(sink: _Sink, outcome: StreamingOutcome) -> None:
    """The body is over: its end, or why it broke off, goes on ``outcome``."""
    if sink.error is not None:
        outcome.fail(sink.error, sink.message or str(sink.error), sink.ended)
    else:
        outcome.ended = sink.ended


async def _arrivals(sink: _Sink, outcome: StreamingOutcome) -> AsyncIterator[tuple[float, bytes]]:
    """The sink's pieces as they come; the end or fault is recorded on ``outcome``."""
    loop = asyncio.get_running_loop()
    while True:
        while sink.items:
            yield sink.items.popleft()
        if sink.closed:
            _record_end(sink, outcome)
            return
        sink.wake = loop.create_future()
        await sink.wake
