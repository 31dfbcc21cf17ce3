"""``POST /route/{type}`` with ``Accept: text/event-stream``: the routed answer relayed as SSE.

Refusals before routing (400, 404, 413, 503 ``overloaded``) stay JSON with their status. An
accepted request is answered ``200 text/event-stream`` at once, then these events, each one
``event:`` line and one ``data:`` line of JSON that latcli wrote (an agent's bytes are parsed
and re-serialised, never copied: nothing an agent sends can break the framing):

* ``route`` ``{"agent", "type", "url"}``: the replica whose answer follows (a password in its
  URL masked), just before its first event. A replica that fails before that is failed over
  silently (its attempt is listed at the end); after it, the answer is committed.
* ``status-update`` | ``artifact-update`` | ``task`` | ``message``: each A2A event of a
  streamed answer, named by its kind (0.3 spelling); ``data`` the event object as parsed.
* ``chunk`` ``{"text"}``: answer text as it arrives. An agent that does not stream (plain
  http, an A2A card without ``capabilities.streaming``) gives one chunk with its whole reply.
* ``done`` ``{"agent", "state", "reply", "latency_ms", "stream", "attempts"}``: the end of an
  answer. ``state`` is the A2A task state (0.3 spelling; null for plain http), ``stream`` its
  phases in ms (``first_event_ms``, ``working_ms``, ``first_artifact_ms``, ``gap_ms_max``,
  ``events``, ``total_ms``; null for a unary answer), ``attempts`` as in the JSON answer.
* ``error`` ``{"error": {"kind", "message"}, "state", "latency_ms", "stream", "attempts"}``:
  the end without an answer. ``kind`` is the last attempt's error kind (``task_failed`` for a
  failed task), ``unavailable`` when the drain ran out, ``internal`` for a gateway bug.

One of ``done`` and ``error`` ends every stream the client stays for. A client that hangs up
cancels the routed call: the agent's stream is closed and its A2A task cancelled
(``CancelTask``), as is a task whose stream broke off. Each agent event is parsed inside the
transport's read callback, which must not block, so its frames are queued in order to one
writer task that coalesces a burst into one write. A client slow to read does not slow the
agent's stream: its frames wait, up to ``--max-stream-queue`` bytes a stream; past that the
client is cut (``latcli_gateway_cut_total{reason="slow_client"}``) and the call ends as if
it had hung up.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.types import Scope, Send

from latcli.core.redact import redact_url
from latcli.routing.results import RouteResult
from latcli.transport.a2a.stream import StreamReader

if TYPE_CHECKING:
    from latcli.engines.serve.gateway import Gateway

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx in front: do not buffer the stream
]
_encode = msgspec.json.encode
_KINDS = {
    k: b"event: " + k.encode() + b"\ndata: "
    for k in ("status-update", "artifact-update", "task", "message")
}
_CHUNK = b'event: chunk\ndata: {"text":'
_END = b"\n\n"


def wants_stream(scope: Scope) -> bool:
    """The request accepts ``text/event-stream``."""
    for name, value in scope["headers"]:
        if name == b"accept" and b"text/event-stream" in value.lower():
            return True
    return False


def frame(event: str, doc: Any) -> bytes:
    """One SSE event: ``event: NAME`` and ``doc`` as one line of JSON."""
    return b"event: " + event.encode() + b"\ndata: " + _encode(doc) + _END


def _json(doc: Any) -> bytes:
    """``doc`` as one line of JSON; json's encoder for what msgspec refuses (integers past 64
    bits, which latcli's reader accepts from an agent)."""
    try:
        return _encode(doc)
    except (OverflowError, TypeError, ValueError):
        return json.dumps(doc, ensure_ascii=False, default=str).encode()


def chunk_frame(text: str) -> bytes:
    return _CHUNK + _encode(text) + b"}" + _END


class SSEOut:
    """The response of one streamed route: its head, then whole frames, then the end.
    ``cut`` drops the client's connection (None where the server gives no way to)."""

    __slots__ = ("_send", "cut", "limit", "overflowed", "started")

    def __init__(
        self, send: Send, cut: Callable[[], None] | None = None, limit: int = 1 << 20
    ) -> None:
        self._send, self.cut, self.limit = send, cut, limit
        self.started = False
        self.overflowed = False  # the client fell more than ``limit`` bytes behind

    async def start(self) -> None:
        message = {"type": "http.response.start", "status": 200, "headers": HEADERS}
        await self._send(message)
        self.started = True

    def write(self, data: bytes) -> Awaitable[None]:
        """Send ``data`` (whole frames); flow control waits here for a client slow to read."""
        return self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self, last: bytes) -> None:
        """Send ``last`` and end the response."""
        await self._send({"type": "http.response.body", "body": last, "more_body": False})


@dataclass
class Relayed:
    """What went out so far: the committed replica and its stream's reader (the task to cancel
    if the client leaves first)."""

    gateway: Gateway
    type: str
    out: SSEOut
    agent: str | None = None
    reader: StreamReader | None = None
    started: float = field(default_factory=time.perf_counter)
    pending: list[bytes] = field(default_factory=list)  # frames not handed to the writer yet
    queued: int = 0  # their bytes
    writer: asyncio.Future[None] | None = None

    def on_event(self, agent_id: str, reader: StreamReader) -> None:
        """The router's relay callback (in the transport's read callback: it must not block):
        the event and its text (after the route, the first time), queued for the writer."""
        data = _KINDS[reader.kind] + _json(reader.payload) + _END
        if reader.text:
            data += chunk_frame(reader.text)
        if self.agent is None:
            self.agent, self.reader = agent_id, reader
            data = self.route(agent_id) + data
        out = self.out
        if out.overflowed:
            return  # the client is being cut: the call ends with its connection
        self.pending.append(data)
        self.queued += len(data)
        if self.queued > out.limit:
            self._overflow()
            return
        if self.writer is None or self.writer.done():
            self.writer = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        """Send what is queued, in order; a burst that arrived meanwhile goes out as one write."""
        while self.pending:
            data = b"".join(self.pending)
            self.pending.clear()
            self.queued = 0
            await self.out.write(data)

    def _overflow(self) -> None:
        """The client is ``limit`` bytes behind: drop what waits and cut its connection (the
        protocol then cancels the call, and the agent's task, as on a hang-up)."""
        self.out.overflowed = True
        self.pending.clear()
        self.queued = 0
        if self.out.cut is not None:
            self.out.cut()

    async def flush(self) -> None:
        """Wait until every queued event was sent (what a write raised is raised here). Called
        once the stream ended: nothing is queued after it, and the writer drains the queue."""
        if self.writer is not None:
            await self.writer

    def stop(self) -> None:
        """Drop what is still queued (the client is gone or the call failed)."""
        self.pending.clear()
        writer, self.writer = self.writer, None
        if writer is not None and not writer.cancel() and not writer.cancelled():
            writer.exception()  # retrieved: a failed write is not logged as never awaited

    def route(self, agent_id: str) -> bytes:
        """The ``route`` event naming ``agent_id``."""
        agent = self.gateway.router.replica(agent_id).agent
        return frame("route", {"agent": agent_id, "type": self.type, "url": redact_url(agent.url)})

    def abandon(self) -> None:
        """The stream is left before its end: cancel the agent's task, if it has one."""
        reader = self.reader
        if self.agent is not None and reader is not None and not reader.done and reader.task_id:
            self.gateway.cancel_task(self.agent, reader.task_id)
            self.reader = None


async def relay(gateway: Gateway, type_: str, text: str, out: SSEOut) -> tuple[int, str | None]:
    """Route ``text`` as a stream, relaying it through ``out`` to its final event.

    Returns the status the JSON route would have answered (200 or 503) and the agent.
    """
    await out.start()
    relayed = Relayed(gateway, type_, out)
    try:
        result = await gateway.router.send(type_, text, stream=True, on_event=relayed.on_event)
        await relayed.flush()
    except BaseException:
        relayed.stop()
        relayed.abandon()
        raise
    last = frame("done", done_doc(result)) if result.ok else error_frame(result)
    if relayed.agent is None and result.ok and result.agent is not None:
        # a unary answer: the route, its whole reply as one chunk, the end, in one write
        whole = b"" if result.reply is None else chunk_frame(result.reply)
        last = relayed.route(result.agent) + whole + last
    relayed.abandon()  # a stream that broke off mid-way leaves a task running
    gateway.metrics.streamed(type_, result, time.perf_counter() - relayed.started)
    await out.end(last)
    return (200 if result.ok else 503), result.agent


def _attempts(result: RouteResult) -> list[dict[str, Any]]:
    return [
        {
            "agent": a.agent,
            "outcome": a.outcome,
            "status": a.status,
            "latency_ms": round(a.latency_ms, 3),
            "message": a.message,
        }
        for a in result.attempts
    ]


def done_doc(result: RouteResult) -> dict[str, Any]:
    return {
        "agent": result.agent,
        "state": result.state,
        "reply": result.reply,
        "latency_ms": round(result.latency_ms, 3),
        "stream": None if result.stream is None else result.stream.to_json(),
        "attempts": _attempts(result),
    }


def error_frame(result: RouteResult) -> bytes:
    last = result.attempts[-1] if result.attempts else None
    kind = last.outcome if last is not None else "breaker_open"
    message = (last.message if last is not None else None) or result.error or "no answer"
    doc = {
        "error": {"kind": kind, "message": message},
        "state": result.state,
        "latency_ms": round(result.latency_ms, 3),
        "stream": None if result.stream is None else result.stream.to_json(),
        "attempts": _attempts(result),
    }
    return frame("error", doc)


def failure_frame(kind: str, message: str) -> bytes:
    """The ``error`` event of a stream the gateway itself ends (drain, internal error)."""
    return frame("error", {"error": {"kind": kind, "message": message}, "attempts": []})


__all__ = [
    "SSEOut",
    "chunk_frame",
    "failure_frame",
    "frame",
    "relay",
    "wants_stream",
]
