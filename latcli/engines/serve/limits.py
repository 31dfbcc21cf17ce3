"""What a client can make ``latcli serve`` hold, and the uvicorn protocol that bounds it.

Which limit comes from where (uvicorn 0.54 with httptools, the gateway's server):

* **request head size** (``max_head``): uvicorn's httptools protocol has none (its
  ``h11_max_incomplete_event_size`` is for h11 only) and httptools buffers a header value
  whole before its callback: :class:`LimitedHttpToolsProtocol` feeds the parser at most the
  bytes left in the budget while a head is being read, then answers 431 (414 when the URL is
  the bulk of it) and closes. Pipelined requests that share one read can exceed it by less
  than one budget (the parser does not say where in a read a new request began).
* **slow heads and bodies** (``read_timeout``): uvicorn has no read deadline; the protocol
  notes a request's first byte and forgets it when the request is complete (head and body:
  nginx's ``client_header_timeout`` and ``client_body_timeout`` in one); one sweeper per
  server answers 408 past the deadline (at most a tenth of it late).
* **idle connections** (``idle_timeout``): uvicorn's ``timeout_keep_alive`` between
  requests; the protocol arms it on connect too (uvicorn only after a first response).
* **open connections** (``max_connections``): uvicorn's ``limit_concurrency`` still
  accepts and keeps every connection (it only answers 503 to their requests), so the
  protocol closes a connection over the cap at once, after a 503.
* **a client that hangs up**: uvicorn only tells an app that is reading (``http.disconnect``
  from ``receive()``); a routed call awaits the agent instead. The app puts its task in the
  scope (``TASK``) and the protocol cancels it when the connection is lost before the
  response is complete, marking the scope (``CLIENT_GONE``). A waiting ``receive()`` task
  beside each call would do the same in pure ASGI for ~15 µs a request.
* **a client slow to read a stream** (``max_stream_queue``): a relayed stream's frames wait in
  the app for the client (the agent's stream is read at its own pace); past this many bytes
  the app drops the connection (``CUT``, set in the scope with the head), which ends the call
  as a hang-up does.
* **requests in flight** (``max_in_flight``), the body size, the type name's length and the
  JSON depth are the app's (:mod:`latcli.engines.serve.app`,
  :mod:`latcli.engines.serve.request`): they need the route, not the socket.
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MAX_HEAD = 16 * 1024  # nginx's large_client_header_buffers (4 x 8k) and Node's 16 KiB
READ_TIMEOUT = 10.0  # seconds; nginx waits 60 s, a gateway for machine clients need not
IDLE_TIMEOUT = 5.0  # seconds between keep-alive requests: uvicorn's default
# Envoy's default max_requests per cluster: a queue past this only adds latency.
MAX_IN_FLIGHT = 1024
MAX_STREAM_QUEUE = 1 << 20  # bytes: ~10,000 chunk events of an LLM answer waiting for one client
RETRY_AFTER = 1  # seconds a shed client is asked to wait
MAX_TYPE_BYTES = 256
MAX_URL = 65535  # httptools' parse_url refuses longer URLs
SWEEPS = 10  # read deadlines are checked this often per read timeout (10 % late at most)

TASK = "latcli.task"  # scope key: the task answering the request, to cancel on hang-up
CLIENT_GONE = "latcli.client_gone"  # scope key set when that cancel was the client's doing
CUT = "latcli.cut"  # scope key: drops the client's connection (a stream it falls behind on)


@dataclass(frozen=True)
class LimitHit:
    """One refusal by the protocol, for the metrics and the access log."""

    limit: str  # max_head, read_timeout, bad_request, max_connections
    status: int  # what the client was answered
    client: tuple[str, int] | None


LimitHook = Callable[[LimitHit], None]


@dataclass(frozen=True)
class Limits:
    """What one client, and all of them, can make the gateway hold."""

    max_head: int = MAX_HEAD
    read_timeout: float = READ_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    max_connections: int | None = None  # None: half the process's descriptor limit
    max_in_flight: int = MAX_IN_FLIGHT
    # A streamed answer's frames waiting for a client slow to read; past it the client is cut.
    max_stream_queue: int = MAX_STREAM_QUEUE

    def connections(self) -> int:
        """The connection cap; by default half the descriptors, the rest for the agents."""
        if self.max_connections is not None:
            return self.max_connections
        try:
            import resource
        except ImportError:  # Windows: no descriptor limit to read
            return 512
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return max(16, min(soft, 65536) // 2)


_SIZE = re.compile(r"^\s*(\d+)\s*(b|k|kb|kib|m|mb|mib)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1 << 20,
    "mb": 1 << 20,
    "mib": 1 << 20,
}


def parse_size(text: str) -> int:
    """``16KiB``, ``16k``, ``1MiB``, ``4096`` in bytes (binary multiples); ValueError else."""
    found = _SIZE.match(text)
    if found is None:
        raise ValueError(f"not a size: {text!r} (e.g. 16KiB, 64k, 1MiB, 8192)")
    unit = (found.group(2) or "").lower()
    return int(found.group(1)) * _UNITS[unit]


def error_body(kind: str, message: str, **extra: Any) -> bytes:
    """The gateway's one error shape: ``{"error": {"kind", "message"}, ...}``."""
    return msgspec.json.encode({"error": {"kind": kind, "message": message}, **extra})


def raw_response(status: int, kind: str, message: str, extra: bytes = b"") -> bytes:
    """A whole JSON error response that closes the connection, for the protocol's refusals."""
    body = error_body(kind, message)
    head = b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n"
    return STATUS_LINE[status] + head % len(body) + extra + b"\r\n" + body


class Reading(enum.Enum):
    """Where the connection is in reading the next request."""

    IDLE = "idle"  # between requests: the next byte starts a head
    HEAD = "head"  # request line and headers
    BODY = "body"  # the head is parsed, the body is still coming


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head budget, a read deadline and a connection cap.

    Build one per server with :func:`protocol_class`; ``limits`` and ``on_limit`` are its
    class attributes because uvicorn instantiates the protocol itself.
    """

    limits: ClassVar[Limits] = Limits()
    cap: ClassVar[int] = 1024
    on_limit: ClassVar[LimitHook | None] = None
    sweeping: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.url = b""
        self._reading = Reading.IDLE
        self._head_bytes = 0
        self._read_since: float | None = None  # loop time of the unfinished request's 1st byte
        self._refused = False
        self._max_head = self.limits.max_head
        self.timeout_keep_alive = self.limits.idle_timeout  # type: ignore[assignment]

    # ---- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.cap:
            self._refused = True
            self.transport = transport
            self._limit_hit("max_connections", 503, transport.get_extra_info("peername"))
            message = f"too many open connections (over {self.cap}); retry later"
            after = b"retry-after: %d\r\n" % RETRY_AFTER
            transport.write(raw_response(503, "overloaded", message, after))
            transport.close()
            return
        super().connection_made(transport)
        cls = type(self)
        if not cls.sweeping:  # the first connection of this server starts its sweeper
            cls.sweeping = True
            self.loop.call_later(
                cls.limits.read_timeout / SWEEPS, cls._sweep, self.loop, self.connections
            )
        # uvicorn arms its keep-alive timer only after a response: a silent client would stay.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._read_since = None
        if self._refused:
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            scope: dict[str, Any] = cycle.scope  # type: ignore[assignment]
            task: asyncio.Task[None] | None = scope.get(TASK)
            if task is not None and not task.done():
                scope[CLIENT_GONE] = True
                task.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._read_since is None:
            self._read_since = self.loop.time()
        if self._reading is not Reading.BODY:
            if self._head_bytes + len(data) >= self._max_head:
                self._feed_head(data)
                return
            self._head_bytes += len(data)  # all of it fits the budget: one feed, as uvicorn
        super().data_received(data)

    def _feed_head(self, data: bytes) -> None:
        """Feed the parser no more than the head budget left; refuse the head past it."""
        while data:
            if self._reading is Reading.BODY:
                super().data_received(data)
                return
            room = self._max_head - self._head_bytes
            if room <= 0:
                self._refuse_head()
                return
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self.transport.is_closing():
                return
        if self._reading is not Reading.BODY and self._head_bytes >= self._max_head:
            self._refuse_head()

    def send_400_response(self, msg: str) -> None:
        """A request llhttp rejects: JSON like every other refusal.

        httptools >= 0.8 refuses a URL over 65,535 bytes instead of cutting it (0.7 cut it and
        the gateway routed what was left): that one is a 414.
        """
        if len(self.url) > MAX_URL:
            self._limit_hit("max_head", 414)
            message = f"URL over {MAX_URL} bytes"
            self.transport.write(raw_response(414, "too_large", message))
        else:
            self._limit_hit("bad_request", 400)
            message = f"malformed HTTP request: {msg}"
            self.transport.write(raw_response(400, "bad_request", message))
        self.transport.close()

    # ---- parser callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading = Reading.HEAD
        if self._read_since is None:
            self._read_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self._reading = Reading.BODY
        super().on_headers_complete()
        self.scope[CUT] = self.transport.abort  # type: ignore[literal-required]

    def on_message_complete(self) -> None:
        self._reading, self._head_bytes, self._read_since = Reading.IDLE, 0, None
        super().on_message_complete()

    # ---- limits --------------------------------------------------------------------------

    def _limit_hit(self, name: str, status: int, client: Any = None) -> None:
        hook = type(self).on_limit
        if hook is not None:
            hook(LimitHit(name, status, self.client if client is None else client))

    def _refuse_head(self) -> None:
        limit = self.limits.max_head
        if len(self.url) * 2 > limit:
            status, message = 414, f"URL over {limit} bytes (the request head limit)"
        else:
            status, message = 431, f"request head over {limit} bytes"
        self._limit_hit("max_head", status)
        self._answer_and_close(status, "too_large", message)

    @classmethod
    def _sweep(cls, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        """Every ``SWEEPS`` of the read timeout: cut the connections past their deadline.

        One timer per server, not one per request: uvloop's call_later + cancel cost ~5 µs a
        request under load, a sixth of what the gateway adds to a routed call.
        """
        deadline = loop.time() - cls.limits.read_timeout
        for conn in list(connections):
            since = getattr(conn, "_read_since", None)
            if since is not None and since <= deadline:
                conn._read_expired()
        loop.call_later(cls.limits.read_timeout / SWEEPS, cls._sweep, loop, connections)

    def _read_expired(self) -> None:
        self._read_since = None
        if self.transport.is_closing():
            return
        answering = self.cycle is not None and not self.cycle.response_complete
        if answering and self._reading is not Reading.BODY:
            self._read_since = self.loop.time()  # a pipelined head waits behind a response
            return
        self._limit_hit("read_timeout", 408)
        seconds = f"{self.limits.read_timeout:g}"
        self._answer_and_close(408, "timeout", f"request not received within {seconds}s")

    def _answer_and_close(self, status: int, kind: str, message: str) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:  # too late for an answer: just close
                self.transport.close()
                return
            # The app, waiting for the body, sees a disconnect and stops without answering.
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.write(raw_response(status, kind, message))
        self.transport.close()


def protocol_class(limits: Limits, on_limit: LimitHook | None = None) -> type[HttpToolsProtocol]:
    """A :class:`LimitedHttpToolsProtocol` bound to ``limits`` for one server."""
    hook = None if on_limit is None else staticmethod(on_limit)
    attrs = {"limits": limits, "cap": limits.connections(), "on_limit": hook}
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), attrs)


__all__ = [
    "CLIENT_GONE",
    "CUT",
    "IDLE_TIMEOUT",
    "MAX_HEAD",
    "MAX_IN_FLIGHT",
    "MAX_STREAM_QUEUE",
    "MAX_TYPE_BYTES",
    "READ_TIMEOUT",
    "RETRY_AFTER",
    "TASK",
    "LimitHit",
    "LimitedHttpToolsProtocol",
    "Limits",
    "error_body",
    "parse_size",
    "protocol_class",
    "raw_response",
]
