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
(``CancelTask``), as is a task whose stream broke off. The router's callbacks are synchronous
and ASGI's ``send`` is not: the callbacks queue frames, one writer task sends them (one loop
pass later, whatever is queued by then in one write). A client that reads slower than the
agent writes is cut once :data:`MAX_PENDING` bytes wait for it.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.types import Scope, Send

from latcli.redact import redact_url
from latcli.router import RouteResult
from latcli.transport.a2a.stream import StreamReader

if TYPE_CHECKING:
    from latcli.serve import Gateway

MAX_PENDING = 1 << 20  # bytes queued for a client that does not read: an agent's whole reply
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


class SlowClient(Exception):
    """The client left more than :data:`MAX_PENDING` bytes unread: the stream is cut."""


class SSEOut:
    """The response of one streamed route: frames queued by sync callbacks, sent by a writer."""

    __slots__ = ("_closing", "_frames", "_pending", "_send", "_wake", "_writer", "started")

    def __init__(self, send: Send) -> None:
        self._send = send
        self._frames: list[bytes] = []
        self._pending = 0
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self.started = False

    async def start(self) -> None:
        message = {"type": "http.response.start", "status": 200, "headers": HEADERS}
        await self._send(message)
        self.started = True
        self._writer = asyncio.ensure_future(self._write())

    def put(self, data: bytes) -> None:
        """Queue ``data`` (whole frames) for the writer; SlowClient past MAX_PENDING."""
        self._frames.append(data)
        self._pending += len(data)
        if self._pending > MAX_PENDING:
            raise SlowClient(f"over {MAX_PENDING} bytes unread by the client")
        self._wake.set()

    async def _write(self) -> None:
        frames, wake, send = self._frames, self._wake, self._send
        while True:
            await wake.wait()
            wake.clear()
            if self._closing:
                return
            data = frames[0] if len(frames) == 1 else b"".join(frames)
            frames.clear()
            self._pending = 0
            await send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self, last: bytes) -> None:
        """Send what is queued and ``last``, and end the response."""
        writer = self._writer
        if writer is not None:
            self._closing = True
            self._wake.set()
            await writer
            self._writer = None
        self._frames.append(last)
        data = b"".join(self._frames)
        self._frames.clear()
        await self._send({"type": "http.response.body", "body": data, "more_body": False})

    def discard(self) -> None:
        """Stop the writer (the request ended another way: the client left, or a cut)."""
        if self._writer is not None:
            self._writer.cancel()
            self._writer = None


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

    def on_event(self, agent_id: str, reader: StreamReader) -> None:
        """The router's relay callback: the route first, then the event and its text."""
        if self.agent is None:
            self.agent, self.reader = agent_id, reader
            self.out.put(self.route(agent_id))
        data = _KINDS[reader.kind] + _json(reader.payload) + _END
        if reader.text:
            data += chunk_frame(reader.text)
        self.out.put(data)

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
    except BaseException:
        relayed.abandon()
        raise
    if relayed.agent is None and result.ok and result.agent is not None:
        out.put(relayed.route(result.agent))  # a unary answer: its whole reply, one chunk
        if result.reply is not None:
            out.put(chunk_frame(result.reply))
    relayed.abandon()  # a stream that broke off mid-way leaves a task running
    gateway.metrics.streamed(type_, result, time.perf_counter() - relayed.started)
    await out.end(frame("done", done_doc(result)) if result.ok else error_frame(result))
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
    "MAX_PENDING",
    "SSEOut",
    "SlowClient",
    "chunk_frame",
    "failure_frame",
    "frame",
    "relay",
    "wants_stream",
]
