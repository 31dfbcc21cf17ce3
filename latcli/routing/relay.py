"""Handing a streamed send's chunks and events on to its caller, whose failures stay its own."""

from __future__ import annotations

from collections.abc import Callable

from latcli.transport.a2a.stream import StreamReader
from latcli.transport.stream_reply import OnChunk, OnEvent

__all__ = ["Relay", "RelayEvent", "SinkFailed"]

# A streamed send's relay of A2A events: the answering replica's id, the stream's reader. It
# runs inside the transport's read callback, so it must not block (queue a write instead).
RelayEvent = Callable[[str, StreamReader], None]


class SinkFailed(Exception):
    """The caller's ``on_chunk`` raised (its ``__cause__``): the attempt ends with no verdict
    and ``send`` raises the caller's exception. Not a ValueError: the stream reader must not
    take it for a bad event."""


class Relay:
    """Hands a streamed answer's chunks and events on and remembers that some went out (the
    answer is then committed to its replica). What a sink raises is the caller's, not the
    agent's."""

    __slots__ = ("_on_event", "_sink", "wrote")

    def __init__(self, sink: OnChunk | None, on_event: RelayEvent | None = None) -> None:
        self._sink, self._on_event, self.wrote = sink, on_event, False

    def write(self, text: str) -> None:
        self.wrote = True
        if self._sink is None:
            return
        try:
            self._sink(text)
        except Exception as exc:
            raise SinkFailed() from exc

    def events_of(self, agent_id: str) -> OnEvent | None:
        """The reader callback of one attempt on ``agent_id`` (None: no event sink)."""
        sink = self._on_event
        if sink is None:
            return None

        def event(reader: StreamReader) -> None:
            self.wrote = True
            try:
                sink(agent_id, reader)
            except Exception as exc:
                raise SinkFailed() from exc

        return event
