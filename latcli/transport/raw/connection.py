"""One HTTP/1.1 connection as an asyncio Protocol: it feeds the sans-I/O reader and stamps
arrivals."""

from __future__ import annotations

import asyncio
import time
from typing import cast

from latcli.core.errors import ErrorKind
from latcli.transport.raw.errors import _BadResponse, _Disconnected, classify
from latcli.transport.raw.reader import ResponseReader, State
from latcli.transport.raw.stream import _Sink

# asyncio reads with recv(256 KiB): a buffer glibc maps and unmaps for every read (~9 µs each,
# page faults included), where one under its 128 KiB mmap threshold comes from the heap (~1 µs).
_READ_SIZE = 64 * 1024

_BODY, _DONE, _TOO_LARGE, _FAILED = State.BODY, State.DONE, State.TOO_LARGE, State.FAILED


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: I/O glue around a :class:`ResponseReader`.

    ``waiter`` resolves (result None) when the reader has a whole response or one known to
    be too large, or fails with the connection's fault; ``reader`` then describes the
    response and ``reusable`` says whether another request may follow on this connection.
    """

    __slots__ = (
        "closed",
        "headers_at",
        "idle_since",
        "origin",
        "reader",
        "sink",
        "transport",
        "waiter",
    )

    def __init__(self, origin: tuple[str, str, int]) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.waiter: asyncio.Future[None] | None = None
        self.headers_at = 0.0
        self.reader = ResponseReader()
        self.sink: _Sink | None = None  # a streamed response's body: see start_stream()

    @property
    def reusable(self) -> bool:
        return not self.closed and self.reader.reusable

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport: asyncio's, or uvloop's (which does not subclass asyncio.Transport).
        self.transport = cast(asyncio.Transport, transport)
        if getattr(transport, "max_size", 0) > _READ_SIZE:  # asyncio's plain TCP transport
            transport.max_size = _READ_SIZE  # type: ignore[attr-defined]
        # uvloop holds a small write until the end of the loop's pass: in a burst (a closed
        # model's first round) a request stamped as sent left milliseconds later. With no
        # buffer allowance it is written at once, as asyncio's transports do (docs/benchmarks.md).
        self.transport.set_write_buffer_limits(high=0)

    def data_received(self, data: bytes) -> None:
        if self.sink is not None:
            self._stream_received(self.sink, data)
            return
        reader = self.reader
        state = reader.feed(data)
        if not self.headers_at and reader.status:
            self.headers_at = time.perf_counter()
        if state is _DONE:
            self._resolve()
        elif state is _TOO_LARGE:
            self._resolve()
            self.abort()  # drop the connection rather than drain an unwanted body
        elif state is _FAILED:
            self._fail(_BadResponse(reader.error or "invalid response"))

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        # Transport and protocol point at each other: a cycle only the cyclic GC would free,
        # which a long bench run keeps out of the way (gctune). Cut it so refcounting does.
        self.transport = None
        waiter = self.waiter
        sink = self.sink
        if sink is not None and waiter is not None and waiter.done():  # the head is in
            if exc is None and self.reader.feed_eof() is _DONE:
                sink.finish()
            elif not sink.closed:
                why = exc or _Disconnected(self.reader.error or "connection closed")
                sink.fail(*classify(why))
            return
        if waiter is None or waiter.done():
            return
        if exc is None and self.reader.feed_eof() is _DONE:  # a body delimited by the close
            waiter.set_result(None)
            if sink is not None:
                sink.finish()
            return
        waiter.set_exception(exc or _Disconnected(self.reader.error or "connection closed"))

    # -- used by the transport

    def start(self, data: bytes, cap: int, head_only: bool) -> asyncio.Future[None]:
        """Write one request; the returned future resolves when its response is read."""
        assert self.transport is not None
        waiter = self.waiter = asyncio.get_running_loop().create_future()
        self.headers_at = 0.0
        self.reader.expect(cap, head_only)
        self.transport.write(data)
        return waiter

    def end_stream(self) -> None:
        """The streamed response is over for its reader: later bodies are kept again."""
        self.sink = None
        self.reader.sink_to(None)

    def start_stream(self, data: bytes, cap: int, sink: _Sink) -> asyncio.Future[None]:
        """Write one request whose body goes to ``sink`` as it arrives; the returned future
        resolves when the head is in (or fails with the connection's fault before it)."""
        assert self.transport is not None
        waiter = self.waiter = asyncio.get_running_loop().create_future()
        self.headers_at = 0.0
        self.sink = sink
        self.reader.sink_to(sink.push)
        self.reader.expect(cap, False)
        self.transport.write(data)
        return waiter

    def _stream_received(self, sink: _Sink, data: bytes) -> None:
        """A read of a streamed response: stamped first, framed, queued; its parsing and the
        consumer's work come later (:class:`_Feeder`), after the other reads of this pass."""
        at = sink.arrived = time.perf_counter()  # what reader.feed hands to sink.push
        reader = self.reader
        state = reader.feed(data)
        if state is _BODY and self.headers_at:  # the common read: more of a body under way
            return
        if not self.headers_at and reader.status:
            self.headers_at = at
        self._streamed(sink, state)

    def _streamed(self, sink: _Sink, state: State) -> None:
        """A streamed response moved on: the head resolves ``waiter``, the end the sink."""
        if state is _FAILED or state is _TOO_LARGE:
            if state is _TOO_LARGE:
                kind, message = ErrorKind.TOO_LARGE, self.reader.too_large or "too large"
            else:
                kind, message = classify(_BadResponse(self.reader.error or "invalid response"))
            if not self.reader.status:  # no head: the attempt fails as a whole
                waiter = self.waiter
                if waiter is not None and not waiter.done():
                    waiter.set_exception(_BadResponse(message))
            else:  # the head is in: the body breaks off
                self._resolve()
            sink.fail(kind, message)
            self.abort()
            return
        if state is not State.HEAD:
            self._resolve()
        if state is _DONE:
            sink.finish(sink.arrived)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _resolve(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()
