"""The lean engine: HTTP/1.1 on asyncio Protocols, no client library in the hot path.

A request is bytes encoded once per spec; a response is framed by llhttp in the sans-I/O
:mod:`~latcli.transport.raw.reader`, which ``data_received`` only feeds. A keep-alive exchange
costs one write, one future, one timer and one llhttp pass (docs/benchmarks.md, "Strict
framing"). The contract is httpx's engine's: a per-key bulkhead with FIFO waiters, a
whole-attempt timeout, a capped body, phase timings and the same error kinds, decided in one
:func:`classify`. What llhttp rejects is ``bad_response`` and the connection is closed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import functools
import math
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from typing import Any, Generic, Literal, Protocol, TypeVar, cast
from urllib.parse import urljoin, urlsplit

from latcli.core.errors import ErrorKind
from latcli.core.version import __version__
from latcli.transport.base import (
    AsyncClosing,
    Consumer,
    Outcome,
    RequestSpec,
    StreamingOutcome,
    Timings,
    userinfo_as_basic_auth,
)
from latcli.transport.exc import text as _text
from latcli.transport.raw.reader import ResponseReader, State
from latcli.transport.tls import shared_ssl_context

# Under uvicorn's 5 s keep-alive timeout: a connection idle longer may be closing at the
# server as we write to it, which would show as a reset the agent did not cause.
_KEEPALIVE_SECONDS = 4.0
# asyncio reads with recv(256 KiB): a buffer glibc maps and unmaps for every read (~9 µs each,
# page faults included), where one under its 128 KiB mmap threshold comes from the heap (~1 µs).
_READ_SIZE = 64 * 1024
_RESUMES_PER_PASS = 8  # streams' readers woken per loop pass at their end (_Feeder.run)
_MAX_REDIRECTS = 20  # as httpx
_SPEC_CACHE = 64  # encoded specs kept; bench sends one spec millions of times
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_BODY_HEADERS = frozenset({"content-length", "content-type", "transfer-encoding"})
_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE_HEADERS = (
    ("user-agent", f"latcli/{__version__}"),
    # As in the other engines: bodies are capped while read, so no inflating.
    ("accept-encoding", "identity"),
)

WirePhase = Literal["pool", "connect", "tls", "exchange"]


# ---- our own faults, translated by classify() ------------------------------------------------


class _Fault(Exception):
    """A failure this engine detects itself (as opposed to the OS or the ssl module)."""


class _BadResponse(_Fault):
    """The peer's bytes are not an HTTP/1.x response."""


class _Disconnected(_Fault):
    """The peer closed the connection before the response was complete."""


class _Deadline(_Fault):
    """The whole-attempt bound passed."""


class _PoolTimeout(_Fault):
    """The attempt's bound passed while waiting for a connection of the key."""


class _BadURL(_Fault):
    """A URL this engine cannot request (scheme, host)."""


class _PhaseError(_Fault):
    """An error of a later phase than the one the attempt was in (TLS inside ``_open``)."""

    def __init__(self, phase: WirePhase, error: BaseException) -> None:
        super().__init__(str(error))
        self.phase = phase
        self.error = error


# Errors of the TLS handshake step, reported as the "tls" phase's.
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (_Fault, OSError, asyncio.TimeoutError)


def classify(exc: BaseException, phase: WirePhase = "exchange") -> tuple[ErrorKind, str]:
    """Map an exception raised in ``phase`` of an attempt to an error kind and a one-line message.

    The one translation boundary of this engine (STYLE habit 4). ``phase``: waiting for a
    connection of the key, TCP connect (DNS included), TLS handshake, or the exchange on an
    open connection.
    """
    if isinstance(exc, socket.gaierror):
        return ErrorKind.DNS, f"name resolution failed: {_text(exc)}"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return ErrorKind.TLS, f"tls: {_text(exc)}"
    timed_out = isinstance(exc, TimeoutError | asyncio.TimeoutError)
    if phase == "connect":
        if timed_out:
            return ErrorKind.CONNECT, "connect timed out"
        return ErrorKind.CONNECT, f"connect failed: {_text(exc)}"
    if phase == "tls":
        return ErrorKind.TLS, "tls: handshake timed out" if timed_out else f"tls: {_text(exc)}"
    if isinstance(exc, _PoolTimeout):
        return ErrorKind.TIMEOUT, "timed out waiting for a free connection"
    if isinstance(exc, _Deadline) or timed_out:
        return ErrorKind.TIMEOUT, "attempt timed out"
    if isinstance(exc, _Disconnected | ConnectionResetError | BrokenPipeError):
        return ErrorKind.RESET, f"connection reset: {_text(exc)}"
    if isinstance(exc, ConnectionAbortedError) or getattr(exc, "errno", None) in _RESET_ERRNOS:
        return ErrorKind.RESET, f"connection reset: {_text(exc)}"
    if isinstance(exc, _BadResponse):
        return ErrorKind.BAD_RESPONSE, f"not a valid HTTP response: {_text(exc)}"
    if isinstance(exc, _BadURL):
        return ErrorKind.BAD_RESPONSE, f"cannot request: {_text(exc)}"
    return ErrorKind.BAD_RESPONSE, f"{type(exc).__name__}: {_text(exc)}"


# ---- requests ---------------------------------------------------------------------------------


class _Prepared:
    """A spec's URL split and its request encoded, once per spec object."""

    __slots__ = ("data", "head_only", "host", "origin", "port", "secure", "spec")

    def __init__(self, spec: RequestSpec, url: str) -> None:
        self.spec = spec  # keeps id(spec) from being reused while cached
        self.origin, netloc, target = _split(url)
        scheme, self.host, self.port = self.origin
        self.secure = scheme == "https"
        self.head_only = spec.method.upper() == "HEAD"
        self.data = _encode(userinfo_as_basic_auth(spec), target, netloc)

    @staticmethod
    def origin_of(url: str) -> tuple[str, str, int]:
        """``(scheme, host, port)`` of an http(s) URL; anything else is a ``_BadURL``."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise _BadURL(f"unsupported URL scheme {parts.scheme!r} in {url[:100]!r}")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            raise _BadURL(f"invalid port in {url[:100]!r}") from None
        if not parts.hostname:
            raise _BadURL(f"no host in {url[:100]!r}")
        return scheme, parts.hostname, port


@functools.lru_cache(maxsize=4096)
def _split(url: str) -> tuple[tuple[str, str, int], str, str]:
    """``(origin, Host header, request target)`` of a URL, parsed once per URL: a routed
    message is a new spec each time (its body differs) to one of a few URLs."""
    parts = urlsplit(url)
    scheme, host, port = origin = _Prepared.origin_of(url)
    netloc = f"[{host}]" if ":" in host else host
    if port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return origin, netloc, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _encode(spec: RequestSpec, target: str, netloc: str) -> bytes:
    """The request head (and body): spec headers win over ours, names as the caller spelled them."""
    body = spec.body
    length = None if body is None else len(body)
    head = _head(spec.method, target, netloc, tuple(spec.headers.items()), length)
    return head + body if body else head


@functools.lru_cache(maxsize=_SPEC_CACHE)  # a new spec per message, one head for them all
def _head(
    method: str,
    target: str,
    netloc: str,
    headers: tuple[tuple[str, str], ...],
    length: int | None,
) -> bytes:
    """The request line and headers, up to and with the blank line; ``length``: the body's."""
    given = {name.lower() for name, _ in headers}
    lines = [f"{method} {target} HTTP/1.1"]
    if "host" not in given:
        lines.append(f"host: {netloc}")
    lines.extend(f"{name}: {value}" for name, value in _SAFE_HEADERS if name not in given)
    if "content-length" not in given and "transfer-encoding" not in given:
        if length is not None:
            lines.append(f"content-length: {length}")
        elif method.upper() in ("POST", "PUT", "PATCH"):
            lines.append("content-length: 0")
    lines.extend(f"{name}: {value}" for name, value in headers)
    if any("\r" in line or "\n" in line for line in lines):
        raise ValueError("newline or carriage return in the request line or a header")
    head = "\r\n".join(lines)
    try:
        data = head.encode("latin-1")
    except UnicodeEncodeError:
        data = head.encode("utf-8")
    return data + b"\r\n\r\n"


# ---- responses --------------------------------------------------------------------------------


class _Headers(Mapping[str, str]):
    """Response headers decoded from the reader's raw pairs on first read (bench reads none).

    Names lowercased; repeated headers joined with ", " as httpx's ``items()`` does.
    """

    __slots__ = ("_parsed", "_raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw
        self._parsed: dict[str, str] | None = None

    def as_dict(self) -> dict[str, str]:
        """The headers as a plain dict (names lowercased)."""
        return self._dict()

    def _dict(self) -> dict[str, str]:
        parsed = self._parsed
        if parsed is None:
            parsed = self._parsed = {}
            for raw_name, raw_value in self._raw:
                name = raw_name.decode("latin-1").lower()
                value = raw_value.decode("latin-1").strip()
                parsed[name] = f"{parsed[name]}, {value}" if name in parsed else value
        return parsed

    def __getitem__(self, name: str) -> str:
        return self._dict()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __repr__(self) -> str:
        return f"_Headers({self._dict()!r})"


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

    __slots__ = ("loop", "queue", "resumes", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
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
        self.loop.call_at(self.loop.time(), self.run)

    def run(self) -> None:
        self.scheduled = False
        queue = self.queue
        while queue:
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
        if resumes and not self.scheduled:
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
    ) -> None:
        super().__init__(started, status, timings, headers)
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


# ---- the per-key bulkhead ---------------------------------------------------------------------


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


class RawTransport(AsyncClosing):
    """A :class:`~latcli.transport.base.Transport` speaking HTTP/1.1 itself.

    Each ``key`` gets at most ``max_connections_per_key`` keep-alive connections, opened on
    first use inside the running loop, so one slow agent cannot exhaust another's; callers
    beyond the limit queue in FIFO order within their attempt's bound. ``send`` never raises
    (whatever goes wrong is an Outcome's error kind; a closed transport is a RuntimeError);
    the caller's cancellation propagates. No HTTP/2, no proxies,
    no decompression (``accept-encoding: identity`` unless a spec header says otherwise).
    """

    def __init__(self, *, max_connections_per_key: int = 8, verify: bool | str = True) -> None:
        if max_connections_per_key < 1:
            raise ValueError("max_connections_per_key must be >= 1")
        self._max_connections = max_connections_per_key
        # Built here: a bad CA path fails now, and the ~25 ms load stays out of attempts.
        self._ssl_context = shared_ssl_context(verify)
        self._pools: dict[str, _Pool] = {}
        self._prepared: dict[int, _Prepared] = {}
        self._deadlines: _Deadlines[_Waiter] = _Deadlines(_expire)
        self._stream_deadlines: _Deadlines[_StreamCall] = _Deadlines(_StreamCall.expire)
        self._stream_feeder: _Feeder | None = None  # of the loop the streams run in
        self._closed = False

    def send(self, key: str, spec: RequestSpec) -> Coroutine[Any, Any, Outcome]:
        """Send ``spec`` on ``key``'s connections; the whole attempt ends within its timeout.

        A coroutine function in all but spelling: the returned coroutine is the attempt
        itself, one frame less per request (bench sends millions).
        """
        if spec.follow_redirects:
            return self._send_following(key, spec)
        return self._attempt(key, spec, 0.0, 0.0)

    def stream(
        self, key: str, spec: RequestSpec
    ) -> contextlib.AbstractAsyncContextManager[StreamingOutcome]:
        """The streaming seam (:class:`~latcli.transport.base.StreamingTransport`): the body
        as it arrives, within ``spec.timeout`` for head and body together, at most
        ``spec.max_body`` bytes in all. Redirects are not followed. A connection is reused
        only when its response was read whole; leaving early closes it."""
        return _StreamCall(self, key, spec)

    def _feeder(self, loop: asyncio.AbstractEventLoop) -> _Feeder:
        feeder = self._stream_feeder
        if feeder is None or feeder.loop is not loop:
            feeder = self._stream_feeder = _Feeder(loop)
        return feeder

    async def _open_stream(
        self, call: _StreamCall, start: float, deadline: float
    ) -> StreamingOutcome:
        """Send the call's spec and wait for the head; a failure before it is the outcome's
        error (and ``call.conn`` stays None).

        The pool and connect steps repeat :meth:`_attempt`'s on purpose: that hot path keeps
        them inline (one coroutine frame less per request, and bench sends millions)."""
        loop = asyncio.get_running_loop()
        key, spec = call.key, call.spec
        pool = self._pools.get(key) or self._new_pool(key)
        connect_ms: float | None = None
        tls_ms: float | None = None
        phase: WirePhase = "exchange"
        conn: _Connection | None = None
        try:
            prepared = self._prepared.get(id(spec))
            if prepared is None or prepared.spec is not spec:
                prepared = self._prepare(spec)
            phase = "pool"
            conn = pool.take(prepared.origin, loop.time())
            if conn is None:
                if not pool.reserve():
                    conn = await _wait_turn(pool, prepared.origin, deadline)
                if conn is None:
                    phase = "connect"
                    conn, connect_ms, tls_ms = await self._open(pool, prepared, spec, deadline)
            phase = "exchange"
            if call.expired:  # the deadline passed while a connection was found
                raise _Deadline("attempt timed out")
            call.conn = conn
            await conn.start_stream(prepared.data, spec.max_body, call.sink)
        except asyncio.CancelledError:
            call.conn = None
            if conn is not None:
                conn.end_stream()
                pool.drop(conn)
            raise
        except Exception as exc:
            call.conn = None
            ttfb = conn.headers_at if conn is not None and conn.headers_at else None
            if conn is not None:
                conn.end_stream()
                pool.drop(conn)
            failed = _failed(exc, phase, start, connect_ms, tls_ms, ttfb)
            outcome = StreamingOutcome(
                start, None, failed.timings, error=failed.error, message=failed.message
            )
            outcome.ended = time.perf_counter()
            return outcome
        call.pool = pool
        reader = conn.reader
        ttfb_ms = (conn.headers_at - start) * 1000.0
        timings = Timings(connect_ms, tls_ms, ttfb_ms, ttfb_ms)
        return _StreamingOutcome(
            start, reader.status, timings, _Headers(reader.headers).as_dict(), call.sink
        )

    async def _send_following(self, key: str, spec: RequestSpec) -> Outcome:
        """Like the one attempt, then the redirect hops, all within the first hop's bound."""
        start = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + spec.timeout
        outcome = await self._attempt(key, spec, start, deadline)
        for _ in range(_MAX_REDIRECTS):
            location = outcome.headers.get("location")
            if outcome.status not in _REDIRECTS or not outcome.ok or location is None:
                return outcome
            try:
                spec = _redirected(spec, outcome.status or 0, location)
            except Exception as exc:  # a Location no client could follow (_BadURL, ValueError)
                return _failed(exc, "exchange", start, None, None, None)
            outcome = await self._attempt(key, spec, start, deadline)
        if outcome.status in _REDIRECTS and outcome.ok and "location" in outcome.headers:
            too_many = _BadResponse(f"more than {_MAX_REDIRECTS} redirects")
            return _failed(too_many, "exchange", start, None, None, None)
        return outcome

    async def aclose(self) -> None:
        """Close every connection of every key. The transport cannot send afterwards."""
        self._closed = True
        pools, self._pools, self._prepared = list(self._pools.values()), {}, {}
        self._deadlines.clear()
        self._stream_deadlines.clear()
        for pool in pools:
            for conn in list(pool.conns):
                conn.abort()
            pool.idle.clear()
            pool.conns.clear()
        await asyncio.sleep(0)  # one tick: the transports' connection_lost runs

    def _prepare(self, spec: RequestSpec) -> _Prepared:
        """Encode ``spec``, cached by identity (bench sends one spec object millions of times)."""
        cache = self._prepared
        prepared = _Prepared(spec, spec.url)
        if len(cache) >= _SPEC_CACHE:
            cache.clear()
        cache[id(spec)] = prepared
        return prepared

    async def _attempt(self, key: str, spec: RequestSpec, start: float, deadline: float) -> Outcome:
        """One request/response on a pooled or new connection of ``key``.

        Ends by ``deadline`` (loop time; 0: ``spec.timeout`` from now); times count from
        ``start`` (perf_counter; 0: now).
        """
        loop = asyncio.get_running_loop()
        if not start:
            start = time.perf_counter()
            deadline = loop.time() + spec.timeout
        pool = self._pools.get(key)
        if pool is None:
            pool = self._new_pool(key)
        prepared = self._prepared.get(id(spec))
        if prepared is None or prepared.spec is not spec:
            try:
                prepared = self._prepare(spec)
            except Exception as exc:  # a URL or header no request can carry
                return _failed(exc, "exchange", start, None, None, None)
        connect_ms: float | None = None
        tls_ms: float | None = None
        phase: WirePhase = "pool"
        conn = pool.take(prepared.origin, loop.time())
        try:
            if conn is None:
                if not pool.reserve():
                    conn = await _wait_turn(pool, prepared.origin, deadline)
                if conn is None:
                    phase = "connect"
                    conn, connect_ms, tls_ms = await self._open(pool, prepared, spec, deadline)
            phase = "exchange"
            waiter = conn.start(prepared.data, spec.max_body, prepared.head_only)
            timer = self._deadlines.watch(loop, spec.timeout, deadline, waiter)
            try:
                await waiter
            finally:
                if timer is not None:
                    timer.cancel()
        except asyncio.CancelledError:
            if conn is not None:  # _open and _wait_turn give back what they hold
                pool.drop(conn)
            raise
        except Exception as exc:  # the network's, the peer's, or a surprise: an Outcome all
            ttfb = conn.headers_at if conn is not None and conn.headers_at else None
            if conn is not None:
                pool.drop(conn)
            return _failed(exc, phase, start, connect_ms, tls_ms, ttfb)
        end = time.perf_counter()
        timings = Timings(
            connect_ms, tls_ms, (conn.headers_at - start) * 1000.0, (end - start) * 1000.0
        )
        reader = conn.reader
        status, body, headers = reader.status, reader.take_body(), _Headers(reader.headers)
        pool.release(conn, loop.time())
        if reader.too_large is not None:
            return Outcome(status, b"", timings, ErrorKind.TOO_LARGE, reader.too_large, headers)
        return Outcome(status, body, timings, None, None, headers)

    def _new_pool(self, key: str) -> _Pool:
        if self._closed:
            raise RuntimeError("RawTransport is closed")
        pool = self._pools[key] = _Pool(self._max_connections)
        return pool

    async def _open(
        self, pool: _Pool, prepared: _Prepared, spec: RequestSpec, deadline: float
    ) -> tuple[_Connection, float, float | None]:
        """A new connection in the slot already taken: ``(conn, connect_ms, tls_ms)``.

        TCP (with DNS) and TLS are separate steps, so each has its own timing and error kind;
        together they are bounded by ``connect_timeout`` (and the attempt's ``timeout``).
        A TLS failure is raised as a ``_PhaseError``. On any failure the slot is freed.
        """
        loop = asyncio.get_running_loop()
        bound = min(loop.time() + spec.connect_timeout, deadline)
        began = time.perf_counter()
        conn = _Connection(prepared.origin)
        pool.conns.add(conn)
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: conn, prepared.host, prepared.port),
                max(0.0, bound - loop.time()),
            )
            tcp_up = time.perf_counter()
            connect_ms = (tcp_up - began) * 1000.0
            if not prepared.secure:
                return conn, connect_ms, None
            tls_ms = await self._start_tls(conn, prepared, bound)
        except BaseException:
            pool.drop(conn)
            raise
        return conn, connect_ms, tls_ms

    async def _start_tls(self, conn: _Connection, prepared: _Prepared, bound: float) -> float:
        """Upgrade ``conn`` to TLS within ``bound`` (loop time); the handshake's ms."""
        loop = asyncio.get_running_loop()
        began = time.perf_counter()
        assert conn.transport is not None
        try:
            upgraded = await asyncio.wait_for(
                loop.start_tls(
                    conn.transport, conn, self._ssl_context, server_hostname=prepared.host
                ),
                max(0.0, bound - loop.time()),
            )
        except _NETWORK_ERRORS as exc:
            raise _PhaseError("tls", exc) from exc
        if upgraded is None:
            raise _PhaseError("tls", _Disconnected("connection closed during the TLS handshake"))
        conn.transport = upgraded
        return (time.perf_counter() - began) * 1000.0


class _StreamCall(contextlib.AbstractAsyncContextManager[StreamingOutcome]):
    """One :meth:`RawTransport.stream` exchange: the head on entry; on exit the connection
    goes back to its pool (its response was read whole) or is closed. A class rather than an
    ``asynccontextmanager`` generator: it runs once per streamed message."""

    __slots__ = ("conn", "expired", "finished", "key", "pool", "sink", "spec", "timer", "transport")

    def __init__(self, transport: RawTransport, key: str, spec: RequestSpec) -> None:
        self.transport, self.key, self.spec = transport, key, spec
        self.conn: _Connection | None = None  # from the request's write on
        self.pool: _Pool | None = None  # once the head is in
        self.expired = False
        self.finished = False
        self.timer: asyncio.TimerHandle | None = None  # a deadline out of order (_Deadlines)
        self.sink: _Sink

    def done(self) -> bool:
        """Over: its deadline no longer matters (:class:`_Deadlines`)."""
        return self.finished

    async def __aenter__(self) -> StreamingOutcome:
        transport = self.transport
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        timeout = self.spec.timeout
        deadline = loop.time() + timeout
        self.sink = _Sink(transport._feeder(loop))
        self.timer = transport._stream_deadlines.watch(loop, timeout, deadline, self)
        try:
            return await transport._open_stream(self, start, deadline)
        except BaseException:
            self._finish()
            raise

    def _finish(self) -> None:
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()

    async def __aexit__(self, *exc_info: object) -> None:
        self._finish()
        conn, pool = self.conn, self.pool
        if conn is None or pool is None:
            return
        conn.end_stream()
        if self.sink.closed and self.sink.error is None and conn.reusable:
            pool.release(conn, asyncio.get_running_loop().time())
        else:
            pool.drop(conn)

    def expire(self) -> None:
        """The whole-attempt deadline: a head still awaited fails; an unread body is cut off."""
        if self.finished:
            return
        self.expired = True
        self.sink.fail(ErrorKind.TIMEOUT, "attempt timed out")
        conn = self.conn
        if conn is None:  # no request written yet: the pool or connect step has its own bound
            return
        waiter = conn.waiter
        if self.pool is None and waiter is not None and not waiter.done():
            waiter.set_exception(_Deadline("attempt timed out"))
        else:
            conn.abort()


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


def _failed(
    exc: BaseException,
    phase: WirePhase,
    start: float,
    connect_ms: float | None,
    tls_ms: float | None,
    headers_at: float | None,
) -> Outcome:
    if isinstance(exc, _PhaseError):
        phase, exc = exc.phase, exc.error
    kind, message = classify(exc, phase)
    now = time.perf_counter()
    ttfb = None if headers_at is None else (headers_at - start) * 1000.0
    return Outcome(
        None, b"", Timings(connect_ms, tls_ms, ttfb, (now - start) * 1000.0), kind, message
    )


def _redirected(spec: RequestSpec, status: int, location: str) -> RequestSpec:
    """The next hop of a redirect, built as httpx builds it.

    303 (and 301/302 after a POST) become a GET without a body; credentials do not follow
    to another origin.
    """
    url = urljoin(spec.url, location)
    method, body = spec.method, spec.body
    upper = method.upper()
    headers = dict(spec.headers)
    if (status == 303 and upper != "HEAD") or (status in (301, 302) and upper == "POST"):
        method, body = "GET", None
        headers = {k: v for k, v in headers.items() if k.lower() not in _BODY_HEADERS}
    if _Prepared.origin_of(url) != _Prepared.origin_of(spec.url):
        headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    return RequestSpec(
        method, url, headers, body, spec.timeout, spec.connect_timeout, spec.max_body, True
    )
