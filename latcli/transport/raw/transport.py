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
import contextlib
import time
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urljoin

from latcli.core.errors import ErrorKind
from latcli.transport.base import (
    AsyncClosing,
    Outcome,
    RequestSpec,
    StreamingOutcome,
    Timings,
)
from latcli.transport.raw.connection import _Connection
from latcli.transport.raw.errors import (
    WirePhase,
    _BadResponse,
    _Deadline,
    _Disconnected,
    _Fault,
    _PhaseError,
    classify,
)
from latcli.transport.raw.pool import _Deadlines, _expire, _Pool, _wait_turn, _Waiter
from latcli.transport.raw.request import _BODY_HEADERS, _SPEC_CACHE, _Headers, _Prepared
from latcli.transport.raw.stream import _Feeder, _Sink, _StreamingOutcome
from latcli.transport.tls import shared_ssl_context

_MAX_REDIRECTS = 20  # as httpx

_REDIRECTS = frozenset({301, 302, 303, 307, 308})

# Errors of the TLS handshake step, reported as the "tls" phase's.
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (_Fault, OSError, asyncio.TimeoutError)


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
            sent = time.perf_counter()  # the phases' zero: start_stream writes at once
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
        headers = _Headers(reader.headers).as_dict()
        return _StreamingOutcome(start, reader.status, timings, headers, call.sink, sent)

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
