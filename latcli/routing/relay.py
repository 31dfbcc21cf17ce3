"""Handing a streamed send's chunks and events on to its caller, whose failures stay its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from latcli.transport.a2a.stream import StreamReader
from latcli.transport.protocols import OnChunk, OnEvent

__all__ = ["Relay", "RelayEvent", "SinkFailed"]

# A streamed send's relay of A2A events: the answering replica's id, the stream's reader; an
# awaitable it returns (its write) is awaited before the stream's next event is read.
RelayEvent = Callable[[str, StreamReader], Awaitable[None] | None]


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

        def event(reader: StreamReader) -> Awaitable[None] | None:
            self.wrote = True
            try:
                relayed = sink(agent_id, reader)
            except Exception as exc:
                raise SinkFailed() from exc
            return None if relayed is None else _caller_s(relayed)

        return event


async def _caller_s(relayed: Awaitable[None]) -> None:
    """Await what a relay sink returned; what it raises is the caller's (``SinkFailed``)."""
    try:
        await relayed
    except Exception as exc:
        raise SinkFailed() from exc
