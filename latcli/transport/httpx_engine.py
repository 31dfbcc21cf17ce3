"""The default engine: httpx, one small client per key, one TLS context per process.

Measured on the target machine: a single ``AsyncClient`` with many connections
collapses (httpcore's pool bookkeeping grows with the square of its open
connections) and a fresh client costs ~25 ms loading CA certificates. Hence a
bulkhead of small per-key clients that share one lazily built ``SSLContext``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

# httpx imports httpcore, anyio's backend and sniffio lazily, on the first request: ~130-200 ms
# that would land inside the first attempt's measured latency. Importing them with this module
# keeps every measured attempt free of import time.
import anyio
import anyio._backends._asyncio
import anyio.streams.memory
import anyio.to_thread
import h11
import httpcore  # noqa: F401
import httpx
import sniffio  # noqa: F401

from latcli.core.errors import ErrorKind
from latcli.core.version import __version__
from latcli.transport.base import (
    AsyncClosing,
    Outcome,
    RequestSpec,
    StreamingOutcome,
    Timings,
    read_capped,
    userinfo_as_basic_auth,
)
from latcli.transport.exc import chain as _chain
from latcli.transport.exc import first as _first
from latcli.transport.exc import text as _text
from latcli.transport.tls import shared_ssl_context

_SAFE_HEADERS = {
    "user-agent": f"latcli/{__version__}",
    # Replies are capped at max_body while streaming; a compressed reply could
    # inflate far past the cap inside one chunk, and latency should measure the
    # agent rather than our inflater. A spec header overrides this.
    "accept-encoding": "identity",
}


class HttpxTransport(AsyncClosing):
    """A :class:`~latcli.transport.base.Transport` over httpx.

    Each ``key`` gets its own client with at most ``max_connections_per_key``
    connections, created on first use, so one slow agent cannot exhaust the
    connections of another. ``send`` never raises (whatever goes wrong is an
    Outcome's error kind; a closed transport is a RuntimeError); the caller's
    cancellation propagates.
    """

    def __init__(self, *, max_connections_per_key: int = 8, verify: bool | str = True) -> None:
        if max_connections_per_key < 1:
            raise ValueError("max_connections_per_key must be >= 1")
        self._max_connections = max_connections_per_key
        # Built here rather than in send(): a bad CA path fails now, loudly, and
        # the one-time ~25 ms certificate load stays out of the first attempt.
        self._ssl_context = shared_ssl_context(verify)
        self._clients: dict[str, httpx.AsyncClient] = {}
        # A FIFO gate per key in front of httpcore's pool: with more waiters than
        # connections the pool hands a freed connection to no one in particular,
        # and each loser retries (measured: ~12 pool passes per request, p99 of
        # ~1 s at 50 waiters on 8 connections). The gate keeps the pool's queue empty.
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._closed = False

    async def send(self, key: str, spec: RequestSpec) -> Outcome:
        """Send ``spec`` on ``key``'s client; the whole attempt ends within ``spec.timeout``."""
        client, gate = self._lane(key)
        trace = _Trace()
        try:
            spec = userinfo_as_basic_auth(spec)
            with anyio.fail_after(spec.timeout):
                async with gate:
                    return await _exchange(client, spec, trace)
        except Exception as exc:  # the network's, the peer's, or a surprise: an Outcome all
            kind, message = classify(exc)
            return Outcome(None, b"", trace.timings(), kind, message)

    @contextlib.asynccontextmanager
    async def stream(self, key: str, spec: RequestSpec) -> AsyncIterator[StreamingOutcome]:
        """The streaming seam (:class:`~latcli.transport.base.StreamingTransport`): the body
        as it arrives, within ``spec.timeout`` for head and body together."""
        client, gate = self._lane(key)
        trace = _Trace()
        async with contextlib.AsyncExitStack() as stack:
            yield await _open_stream(stack, client, gate, spec, trace)

    async def aclose(self) -> None:
        """Close every per-key client. The transport cannot send afterwards."""
        self._closed = True
        clients, self._clients, self._gates = list(self._clients.values()), {}, {}
        for client in clients:
            await client.aclose()

    def _lane(self, key: str) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """``key``'s client and gate, created on first use."""
        if self._closed:
            raise RuntimeError("HttpxTransport is closed")
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._new_client()
            self._gates[key] = asyncio.Semaphore(self._max_connections)
        return client, self._gates[key]

    def _new_client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(
            max_connections=self._max_connections,
            max_keepalive_connections=self._max_connections,
        )
        return httpx.AsyncClient(
            verify=self._ssl_context,
            limits=limits,
            headers=_SAFE_HEADERS,
            # trust_env=False: no proxy variables, no netrc read per request.
            trust_env=False,
        )


def _request(
    client: httpx.AsyncClient, spec: RequestSpec, trace: _Trace
) -> contextlib.AbstractAsyncContextManager[httpx.Response]:
    """``spec`` as httpx sends it, the body left to read: its timeouts, redirects and trace."""
    connect = min(spec.connect_timeout, spec.timeout)
    return client.stream(
        spec.method,
        spec.url,
        headers=dict(spec.headers),
        content=spec.body,
        timeout=httpx.Timeout(spec.timeout, connect=connect),
        follow_redirects=spec.follow_redirects,
        extensions={"trace": trace},
    )


async def _exchange(client: httpx.AsyncClient, spec: RequestSpec, trace: _Trace) -> Outcome:
    """One request/response; reads at most ``spec.max_body`` bytes plus one chunk."""
    async with _request(client, spec, trace) as response:
        headers = dict(response.headers.items())
        body, message = await _read_capped(response, spec.max_body)
        await _never_reuse_after_leftovers(response)
        kind = None if message is None else ErrorKind.TOO_LARGE
        return Outcome(response.status_code, body, trace.timings(), kind, message, headers)


async def _open_stream(
    stack: contextlib.AsyncExitStack,
    client: httpx.AsyncClient,
    gate: asyncio.Semaphore,
    spec: RequestSpec,
    trace: _Trace,
) -> StreamingOutcome:
    """Send ``spec`` and read the head; the body is left to :func:`_arrivals`."""
    try:
        spec = userinfo_as_basic_auth(spec)
        with anyio.fail_after(spec.timeout):
            await stack.enter_async_context(gate)
            response = await stack.enter_async_context(_request(client, spec, trace))
    except Exception as exc:  # as in send(): nothing leaves the engine but an outcome
        kind, message = classify(exc)
        failed = StreamingOutcome(trace.start, None, trace.timings(), error=kind, message=message)
        failed.ended = time.perf_counter()
        return failed
    headers = dict(response.headers.items())
    sent = trace.marks.get("send_request_headers.started")  # httpcore's, once it has a connection
    outcome = StreamingOutcome(
        trace.start, response.status_code, trace.timings(), headers, sent=sent
    )
    body = _arrivals(response, outcome, trace.start + spec.timeout, spec.max_body)
    stack.push_async_callback(body.aclose)  # closed before the response, even if abandoned
    outcome.body = body
    return outcome


async def _arrivals(
    response: httpx.Response, outcome: StreamingOutcome, deadline: float, cap: int
) -> AsyncGenerator[tuple[float, bytes], None]:
    """``(arrival, bytes)`` per network read until the end, the deadline or ``cap`` bytes;
    a failure is recorded on ``outcome`` and ends the iteration (nothing is raised)."""
    reads = response.aiter_raw()
    size = 0
    while True:
        try:
            with anyio.fail_after(max(deadline - time.perf_counter(), 0.0)):
                chunk = await reads.__anext__()
        except StopAsyncIteration:
            outcome.ended = time.perf_counter()
            return
        except Exception as exc:
            outcome.fail(*classify(exc), time.perf_counter())
            return
        at = time.perf_counter()
        size += len(chunk)
        if size > cap:
            outcome.fail(ErrorKind.TOO_LARGE, f"stream exceeds max_body {cap} bytes", at)
            return
        yield at, chunk


async def _never_reuse_after_leftovers(response: httpx.Response) -> None:
    """Bytes past a response (a HEAD or 204 body, a pipelined extra) mean the peer is out of
    step: close the connection instead of reading them as the next request's answer.

    httpcore pools a connection whose h11 state machine finished both sides, whatever h11 still
    holds in its buffer (h11's ``trailing_data``). The connection is reached through httpcore
    internals; tests/transport/test_framing.py fails if they move.
    """
    stream = getattr(getattr(response.stream, "_stream", None), "_httpcore_stream", None)
    connection = getattr(getattr(stream, "_stream", None), "_connection", None)
    state = getattr(connection, "_h11_state", None)
    if isinstance(state, h11.Connection) and state.trailing_data[0]:
        await connection.aclose()  # type: ignore[union-attr]


async def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes, str | None]:
    # Leaving the stream early makes httpcore drop the connection instead of draining it.
    declared = response.headers.get("content-length", "")
    length = int(declared) if declared.isdigit() else None
    return await read_capped(length, response.aiter_bytes(), cap)


class _Trace:
    """httpcore ``trace`` extension callback recording phase instants (perf_counter)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.marks: dict[str, float] = {}

    async def __call__(self, event: str, info: dict[str, Any]) -> None:
        # Strip the "connection."/"http11."/"http2." prefix; the last hop of a
        # redirect chain overwrites earlier ones, which is what ttfb should show.
        self.marks[event.split(".", 1)[1]] = time.perf_counter()

    def timings(self) -> Timings:
        """Timings so far; ``total`` is the wall time since the attempt started."""
        now = time.perf_counter()
        return Timings(
            connect=self._span("connect_tcp"),
            tls=self._span("start_tls"),
            ttfb=self._since_start("receive_response_headers.complete"),
            total=(now - self.start) * 1000.0,
        )

    def _span(self, phase: str) -> float | None:
        started = self.marks.get(f"{phase}.started")
        complete = self.marks.get(f"{phase}.complete")
        if started is None or complete is None:
            return None
        return (complete - started) * 1000.0

    def _since_start(self, event: str) -> float | None:
        at = self.marks.get(event)
        return None if at is None else (at - self.start) * 1000.0


def classify(exc: BaseException) -> tuple[ErrorKind, str]:
    """Map any httpx/httpcore/OS exception to an error kind and a one-line message.

    The one translation boundary of this engine (STYLE habit 4). Decided on the
    whole ``__cause__``/``__context__`` chain, most specific cause first.
    """
    chain = list(_chain(exc))
    gai = _first(chain, socket.gaierror)
    if gai is not None:
        return ErrorKind.DNS, f"name resolution failed: {_text(gai)}"
    tls = _first(chain, ssl.SSLError, ssl.CertificateError)
    if tls is not None:
        return ErrorKind.TLS, f"tls: {_text(tls)}"
    if isinstance(exc, httpx.ConnectTimeout):
        return ErrorKind.CONNECT, "connect timed out"
    if isinstance(exc, httpx.TimeoutException | TimeoutError | asyncio.TimeoutError):
        return ErrorKind.TIMEOUT, _timeout_message(exc)
    if isinstance(exc, httpx.ConnectError):
        return ErrorKind.CONNECT, f"connect failed: {_text(chain[-1])}"
    if _is_reset(exc, chain):
        return ErrorKind.RESET, f"connection reset: {_text(chain[-1])}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return ErrorKind.BAD_RESPONSE, f"not a valid HTTP response: {_text(exc)}"
    return ErrorKind.BAD_RESPONSE, f"{type(exc).__name__}: {_text(exc)}"


def _is_reset(exc: BaseException, chain: list[BaseException]) -> bool:
    # h11 reports a peer that closed before answering as RemoteProtocolError
    # "Server disconnected without sending a response"; read/write errors are
    # the socket failing under us. All mean the peer dropped the connection.
    if _first(chain, ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
        return True
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return True
    return isinstance(exc, httpx.RemoteProtocolError) and "disconnected" in str(exc).lower()


def _timeout_message(exc: BaseException) -> str:
    if isinstance(exc, httpx.ReadTimeout):
        return "read timed out"
    if isinstance(exc, httpx.WriteTimeout):
        return "write timed out"
    if isinstance(exc, httpx.PoolTimeout):
        return "timed out waiting for a free connection"
    return "attempt timed out"
