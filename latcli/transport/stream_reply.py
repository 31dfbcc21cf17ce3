"""Reading a streamed A2A answer: SSE events to the task's phases and text as they arrive."""

from __future__ import annotations

from collections.abc import Callable

from latcli.core.errors import ErrorKind
from latcli.transport.a2a.sse import SSEDecoder
from latcli.transport.a2a.stream import StreamError, StreamReader, split_event
from latcli.transport.base import (
    Outcome,
    StreamingOutcome,
    Timings,
)
from latcli.transport.replies import Card, Reply, loads, read_a2a_reply, task_reply

OnChunk = Callable[[str], None]

# Called after each event of a stream with its reader (task id so far, ``answered``): what a
# hedged streamed send watches (latcli.core.hedge). It runs inside the transport's read callback:
# it must not block (a relay queues its write, see latcli.engines.serve.stream).
OnEvent = Callable[[StreamReader], None]


async def read_stream(
    outcome: StreamingOutcome,
    card: Card,
    on_chunk: OnChunk | None = None,
    on_event: OnEvent | None = None,
) -> Reply:
    """Read an SSE answer event by event until its terminal (or interrupted) state.

    A non-SSE answer (a JSON-RPC error with HTTP 200, an agent that does not stream after all)
    is read whole as a unary reply. ``on_chunk`` gets each piece of answer text as it arrives.
    """
    if outcome.error is not None or outcome.status is None:
        return Reply(outcome.status, outcome.timings(), outcome.error, outcome.message)
    content_type = outcome.headers.get("content-type", "").lower()
    if not 200 <= outcome.status < 300 or not content_type.startswith("text/event-stream"):
        return await _read_whole(outcome, card)
    reader = StreamReader(outcome.sent)
    feed = _EventFeed(reader, card.binding == "jsonrpc", on_chunk, on_event)
    await outcome.read_with(feed)
    failure = feed.failure
    if failure is None and not reader.done:
        failure = _broke_off(outcome) or (
            ErrorKind.BAD_RESPONSE,
            f"stream ended before the task finished (last state: {reader.state or 'none'})",
        )
    phases = reader.phases()
    head = outcome.head_timings
    if failure is not None:  # the task's id kept: a caller may cancel what it gave up on
        return Reply(
            outcome.status, outcome.timings(), *failure, state=reader.state, stream=phases,
            task_id=reader.task_id,
        )  # fmt: skip
    # The reply's timings run from the attempt's start as ttfb does (a wait for a connection
    # and the connect included); the phases from the send.
    if phases.total_ms is not None:
        total = phases.total_ms + (outcome.sent - outcome.started) * 1000.0
    else:
        total = outcome.timings().total
    timings = Timings(head.connect, head.tls, head.ttfb, total)
    return task_reply(outcome.status, timings, reader.view(), phases)


def _broke_off(outcome: StreamingOutcome) -> tuple[ErrorKind, str] | None:
    """The transport's reason the body ended early (reset, deadline, too large), if any."""
    if outcome.error is None:
        return None
    return outcome.error, outcome.message or str(outcome.error)


class _EventFeed:
    """The consumer of a stream's pieces (``StreamingOutcome.read_with``): SSE events to
    ``reader`` until it is done; ``failure`` is what stopped it early, if anything did."""

    __slots__ = ("decoder", "failure", "jsonrpc", "on_chunk", "on_event", "reader")

    def __init__(
        self,
        reader: StreamReader,
        jsonrpc: bool,
        on_chunk: OnChunk | None,
        on_event: OnEvent | None,
    ) -> None:
        self.decoder = SSEDecoder()
        self.reader, self.jsonrpc = reader, jsonrpc
        self.on_chunk, self.on_event = on_chunk, on_event
        self.failure: tuple[ErrorKind, str] | None = None

    def __call__(self, at: float, chunk: bytes) -> bool:
        reader, decoder = self.reader, self.decoder
        try:
            data = decoder.whole_data(chunk)  # one event a read, mostly: no list, no SSEEvent
            datas = (data,) if data is not None else [e.data for e in decoder.feed(chunk)]
            for data in datas:
                kind, payload = split_event(loads(data), self.jsonrpc)
                text = reader.event(at, kind, payload)
                if self.on_event is not None:  # first: a hedged send commits before relaying
                    self.on_event(reader)
                if text and self.on_chunk is not None:
                    self.on_chunk(text)
                if reader.done:
                    return True
        except StreamError as exc:
            kind_ = ErrorKind.RPC_ERROR if exc.rpc_error else ErrorKind.BAD_RESPONSE
            self.failure = kind_, str(exc)
            return True
        except (ValueError, UnicodeDecodeError) as exc:  # SSEError, JSONTooDeep, not JSON
            self.failure = ErrorKind.BAD_RESPONSE, f"bad stream event: {exc}"
            return True
        return False


async def _read_whole(outcome: StreamingOutcome, card: Card) -> Reply:
    parts: list[bytes] = []
    async for _, chunk in outcome:
        parts.append(chunk)
    whole = Outcome(
        outcome.status,
        b"".join(parts),
        outcome.timings(),
        outcome.error,
        outcome.message,
        outcome.headers,
    )
    return read_a2a_reply(whole, card.binding)
