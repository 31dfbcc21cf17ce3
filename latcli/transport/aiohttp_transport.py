"""The fast engine: aiohttp, one small session per key, one TLS context per process.

Measured on the target machine: aiohttp sustains ~10k req/s on one core where
httpx manages a few thousand, so ``bench`` and ``watch`` over many agents use
this engine. It keeps the httpx engine's contract: the same bulkhead per key,
the same whole-attempt timeout, the same capped body and the same error kinds.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import functools
import math
import socket
import ssl
import time
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import http_exceptions
from multidict import CIMultiDictProxy
from yarl import URL

from latcli import __version__
from latcli.errors import ErrorKind
from latcli.transport.base import (
    AsyncClosing,
    Outcome,
    RequestSpec,
    Timings,
    read_capped,
    userinfo_as_basic_auth,
)
from latcli.transport.exc import chain as _chain
from latcli.transport.exc import first as _first
from latcli.transport.exc import text as _text

# The same trust store as the httpx engine, built once per process (STYLE: one TLS context).
from latcli.transport.tls import shared_ssl_context

_SAFE_HEADERS = {
    "user-agent": f"latcli/{__version__}",
    # As in the httpx engine: bodies are capped while streaming, so no inflating.
    "accept-encoding": "identity",
}

# httpx sends raw bytes without a content-type; aiohttp would add
# application/octet-stream. A spec header still wins.
_SKIP_AUTO_HEADERS = ("content-type",)

# The httpx engine's keep-alive expiry, so both engines reuse connections alike.
_KEEPALIVE_SECONDS = 5.0

_RESET_ERRNOS = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})

# The attempt whose connection is being opened in this task; lets the protocol
# factory mark the instant TCP is up and TLS begins (aiohttp has no trace event for it).
_current_trace: contextvars.ContextVar[_Trace | None] = contextvars.ContextVar(
    "latcli_aiohttp_trace", default=None
)


class AiohttpTransport(AsyncClosing):
    """A :class:`~latcli.transport.base.Transport` over aiohttp.

    Each ``key`` gets its own ``ClientSession`` and connector with at most
    ``max_connections_per_key`` connections, created on first use inside the
    running loop, so one slow agent cannot exhaust another's connections.
    ``send`` never raises (whatever goes wrong is an Outcome's error kind; a closed
    transport is a RuntimeError); the caller's cancellation propagates.
    """

    def __init__(
        self, *, max_connections_per_key: int = 8, verify: bool | str = True, phases: bool = True
    ) -> None:
        if max_connections_per_key < 1:
            raise ValueError("max_connections_per_key must be >= 1")
        self._max_connections = max_connections_per_key
        # Built here: a bad CA path fails now, and the ~25 ms load stays out of attempts.
        self._ssl_context = shared_ssl_context(verify)
        # ``phases=False``: no aiohttp tracing (it sends ~8 signals per request: ~50 µs of a
        # ~300 µs check), so timings carry only ``total``; for callers that use nothing else
        # (watch). A handshake timeout is still told from a connect one (``_mark_tcp_up``).
        self._trace_configs = [_trace_config()] if phases else []
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        # A FIFO gate per key in front of the connector: aiohttp hands a freed
        # pooled connection to whichever request asks next, not to the longest
        # waiter (measured: 50 closed-loop workers on 8 connections, one worker
        # got 1 request in 2 s while another got 548; p99.9 = the whole run).
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._closed = False

    async def send(self, key: str, spec: RequestSpec) -> Outcome:
        """Send ``spec`` on ``key``'s session; the whole attempt ends within ``spec.timeout``."""
        session, gate = self._lane(key)
        trace = _Trace(_is_secure(spec.url))
        token = _current_trace.set(trace)  # TCP up (even untraced): a TLS timeout is "tls"
        try:
            spec = userinfo_as_basic_auth(spec)
            deadline = time.perf_counter() + spec.timeout
            if gate.locked():  # queue in FIFO order, within the attempt's bound
                await asyncio.wait_for(gate.acquire(), spec.timeout)
            else:
                await gate.acquire()
            try:
                return await _exchange(session, spec, trace, deadline - time.perf_counter())
            finally:
                gate.release()
        except Exception as exc:  # the network's, the peer's, or a surprise: an Outcome all
            kind, message = classify(exc, in_tls=trace.in_tls)
            return Outcome(None, b"", trace.timings(), kind, message)
        finally:
            _current_trace.reset(token)

    async def aclose(self) -> None:
        """Close every per-key session and wait for its connections to close."""
        self._closed = True
        sessions, self._sessions, self._gates = list(self._sessions.values()), {}, {}
        # aiohttp >= 3.12 awaits each connection's close inside connector.close()
        # (TLS ones are aborted, ssl_shutdown_timeout=0), so the docs' old
        # "sleep 250 ms after close" is not needed; one tick lets transports finish.
        await asyncio.gather(*(session.close() for session in sessions))
        await asyncio.sleep(0)

    def _lane(self, key: str) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        """``key``'s session and gate, created on first use (inside the running loop)."""
        session = self._sessions.get(key)
        if session is None:
            if self._closed:
                raise RuntimeError("AiohttpTransport is closed")
            session = self._sessions[key] = self._new_session()
            self._gates[key] = asyncio.Semaphore(self._max_connections)
        return session, self._gates[key]

    def _new_session(self) -> aiohttp.ClientSession:
        connector = _TimedConnector(
            limit=self._max_connections,
            ssl=self._ssl_context,
            use_dns_cache=True,
            keepalive_timeout=_KEEPALIVE_SECONDS,
            force_close=False,
            enable_cleanup_closed=False,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            headers=_SAFE_HEADERS,
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            auto_decompress=False,
            trust_env=False,  # no proxy variables, no netrc
            trace_configs=self._trace_configs,
        )
        # aiohttp silently resends an idempotent request once after a reset or
        # disconnect; one attempt must be one request (httpx does not retry,
        # and the router counts attempts), so switch that off.
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        return session


class _TimedConnector(aiohttp.TCPConnector):
    """A connector whose protocol factory marks "TCP up, TLS starting" on the current attempt.

    asyncio's ``create_connection(sock=..., ssl=...)`` calls the protocol factory
    on the already connected socket, before the TLS handshake starts; the
    handshake ends with aiohttp's ``connection_create_end``. aiohttp does not
    expose the factory publicly, so when it moves the engine reports no TLS
    phase (folded into ``connect``) rather than a guessed one.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        factory = getattr(self, "_factory", None)
        if callable(factory):
            self._factory = functools.partial(_mark_tcp_up, factory)


def _mark_tcp_up(factory: Any) -> Any:
    trace = _current_trace.get()
    if trace is not None:
        trace.tcp_up = time.perf_counter()
    return factory()


async def _exchange(
    session: aiohttp.ClientSession, spec: RequestSpec, trace: _Trace, remaining: float
) -> Outcome:
    """One request/response within ``remaining`` s; reads at most ``spec.max_body`` plus a chunk."""
    if remaining <= 0:  # aiohttp reads total=0 as "no timeout"
        raise asyncio.TimeoutError
    response = await session.request(
        spec.method,
        spec.url,
        headers=spec.headers,
        data=spec.body,
        timeout=_timeout(remaining, spec.connect_timeout),
        allow_redirects=spec.follow_redirects,
        trace_request_ctx=trace,
    )
    complete = False
    try:
        headers = _headers(response.headers)
        body, message = await _read_capped(response, spec.max_body)
        complete = message is None
        kind = None if complete else ErrorKind.TOO_LARGE
        return Outcome(response.status, body, trace.timings(), kind, message, headers)
    finally:
        if complete:
            response.release()
        else:
            response.close()  # drop the connection rather than drain an unwanted body


def _timeout(total: float, connect: float) -> aiohttp.ClientTimeout:
    """The whole-attempt bound; ``connect`` bounds TCP+TLS setup.

    ``ceil_threshold=inf``: aiohttp otherwise rounds timeouts of 5 s and more up
    to the next whole second of loop time, overshooting the bound by up to 1 s.
    """
    return aiohttp.ClientTimeout(
        total=total, sock_connect=min(connect, total), ceil_threshold=math.inf
    )


def _headers(raw: CIMultiDictProxy[str]) -> dict[str, str]:
    """Lowercased names; repeated headers joined with ", " as httpx's ``items()`` does."""
    headers: dict[str, str] = {}
    for name, value in raw.items():
        lower = name.lower()
        headers[lower] = f"{headers[lower]}, {value}" if lower in headers else value
    return headers


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> tuple[bytes, str | None]:
    # aiohttp pauses the socket when its buffer is full: the unread rest never reaches memory.
    return await read_capped(response.content_length, response.content.iter_any(), cap)


class _Trace:
    """Phase instants (perf_counter) of one attempt, filled by aiohttp trace callbacks."""

    __slots__ = ("conn_end", "conn_start", "headers_at", "secure", "start", "tcp_up")

    def __init__(self, secure: bool) -> None:
        self.start = time.perf_counter()
        self.conn_start: float | None = None
        self.tcp_up: float | None = None
        self.conn_end: float | None = None
        self.secure = secure  # the current hop's scheme is https
        self.headers_at: float | None = None

    @property
    def in_tls(self) -> bool:
        """TCP is up on a new TLS connection and its handshake has not finished."""
        return self.secure and self.tcp_up is not None and self.conn_end is None

    def timings(self) -> Timings:
        """Timings so far; ``total`` is the wall time since the attempt started."""
        now = time.perf_counter()
        return Timings(
            connect=self._connect(),
            tls=self._tls(),
            ttfb=None if self.headers_at is None else (self.headers_at - self.start) * 1000.0,
            total=(now - self.start) * 1000.0,
        )

    def _connect(self) -> float | None:
        if self.conn_start is None:
            return None
        # DNS (if any) and TCP; without the factory mark, TCP+TLS as one phase.
        up = self.tcp_up if self.tcp_up is not None else self.conn_end
        return None if up is None else (up - self.conn_start) * 1000.0

    def _tls(self) -> float | None:
        if not self.secure or self.tcp_up is None or self.conn_end is None:
            return None
        return (self.conn_end - self.tcp_up) * 1000.0


def _trace_config() -> aiohttp.TraceConfig:
    """Callbacks writing into the ``_Trace`` passed as ``trace_request_ctx``.

    A later hop of a redirect chain overwrites an earlier one, as in the httpx
    engine; a hop on a reused connection keeps the previous hop's connect phase.
    """
    config = aiohttp.TraceConfig()
    config.on_connection_create_start.append(_on_connection_create_start)
    config.on_connection_create_end.append(_on_connection_create_end)
    config.on_request_redirect.append(_on_request_redirect)
    config.on_request_end.append(_on_request_end)
    return config


def _trace_of(context: SimpleNamespace) -> _Trace:
    trace: _Trace = context.trace_request_ctx
    return trace


async def _on_connection_create_start(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: Any
) -> None:
    trace = _trace_of(context)
    trace.conn_start, trace.tcp_up, trace.conn_end = time.perf_counter(), None, None


async def _on_connection_create_end(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: Any
) -> None:
    _trace_of(context).conn_end = time.perf_counter()


async def _on_request_redirect(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestRedirectParams,
) -> None:
    trace = _trace_of(context)
    trace.headers_at = time.perf_counter()
    # The next hop may change scheme; aiohttp resolves Location against the response URL.
    location = params.response.headers.get("location")
    if location is not None:
        trace.secure = _is_secure(str(params.response.url.join(URL(location))))


async def _on_request_end(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: Any
) -> None:
    _trace_of(context).headers_at = time.perf_counter()


def _is_secure(url: str) -> bool:
    return url[:6].lower() == "https:" or url[:4].lower() == "wss:"


def classify(exc: BaseException, *, in_tls: bool = False) -> tuple[ErrorKind, str]:
    """Map any aiohttp/OS exception to an error kind and a one-line message.

    The one translation boundary of this engine (STYLE habit 4). Decided on the
    whole ``__cause__``/``__context__`` chain, most specific cause first.
    ``in_tls``: TCP was up and the TLS handshake had not finished when ``exc``
    was raised; aiohttp reports a handshake that times out as a plain connect
    timeout, which the httpx engine (and the truth) calls ``tls``.
    """
    chain = list(_chain(exc))
    gai = _first(chain, socket.gaierror)
    if gai is not None or isinstance(exc, aiohttp.ClientConnectorDNSError):
        return ErrorKind.DNS, f"name resolution failed: {_text(gai or _os_error(exc))}"
    tls = _last(chain, ssl.SSLError, ssl.CertificateError, aiohttp.ClientSSLError)
    if tls is not None:
        return ErrorKind.TLS, f"tls: {_text(tls)}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        if in_tls:
            return ErrorKind.TLS, "tls: handshake timed out"
        return ErrorKind.CONNECT, "connect timed out"
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return ErrorKind.TIMEOUT, "read timed out"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return ErrorKind.TIMEOUT, "attempt timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ErrorKind.CONNECT, f"connect failed: {_text(_os_error(exc))}"
    if _is_reset(exc, chain):
        return ErrorKind.RESET, f"connection reset: {_text(chain[-1])}"
    parse = _last(chain, http_exceptions.HttpProcessingError)
    if parse is not None:
        return ErrorKind.BAD_RESPONSE, f"not a valid HTTP response: {_text(parse)}"
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        return ErrorKind.BAD_RESPONSE, f"not a valid HTTP response: {_text(exc)}"
    return ErrorKind.BAD_RESPONSE, f"{type(exc).__name__}: {_text(exc)}"


def _last(chain: list[BaseException], *types: type[BaseException]) -> BaseException | None:
    """The innermost match: aiohttp wraps the informative error in a generic one."""
    return next((e for e in reversed(chain) if isinstance(e, types)), None)


def _os_error(exc: BaseException) -> BaseException:
    """The OS error inside a ``ClientConnectorError`` (its text names host and port)."""
    inner = getattr(exc, "os_error", None)
    return inner if isinstance(inner, BaseException) else exc


def _is_reset(exc: BaseException, chain: list[BaseException]) -> bool:
    # ServerDisconnectedError: the peer closed before answering. ClientOSError
    # carries the errno of a failed read or write on the socket.
    if _first(chain, ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
        return True
    if _first(chain, aiohttp.ServerDisconnectedError):
        return True
    return any(isinstance(e, OSError) and e.errno in _RESET_ERRNOS for e in chain)
