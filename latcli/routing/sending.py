"""One ``Router.send`` under way: what each attempt sends, what they gave back, the result."""

from __future__ import annotations

from dataclasses import dataclass, field

from latcli.config.model import Agent
from latcli.core.errors import ErrorKind
from latcli.routing.relay import Relay
from latcli.routing.results import Attempt, RouteResult
from latcli.transport.protocols import ProtocolClient
from latcli.transport.replies import Reply
from latcli.transport.stream_reply import OnChunk, OnEvent

__all__ = ["Sending"]


@dataclass
class Sending:
    """One ``send`` of ``text`` to ``type``: a retry reuses ``message_id``; ``last`` is the
    latest reply, whose state a failed result keeps. ``started`` and every ``now`` are the
    router's clock (monotonic seconds)."""

    type: str
    text: str
    message_id: str
    stream: bool
    relay: Relay | None
    started: float
    strategy: str
    attempts: list[Attempt] = field(default_factory=list)
    last: Reply | None = None

    async def ask(
        self,
        client: ProtocolClient,
        agent: Agent,
        on_event: OnEvent | None = None,
        on_chunk: OnChunk | None = None,
    ) -> Reply:
        """One attempt's message to ``agent``; ``on_event``/``on_chunk``: a hedged stream's."""
        if not self.stream:
            return await client.send_message(agent, self.text, self.message_id)
        if on_event is None and self.relay is not None:
            on_chunk, on_event = self.relay.write, self.relay.events_of(agent.id)
        return await client.stream_message(agent, self.text, self.message_id, on_chunk, on_event)

    def note(self, agent_id: str, reply: Reply, *, hedge: bool, panic: bool) -> None:
        """An attempt's reply, in the order the replies came."""
        outcome = "ok" if reply.ok else (reply.error or ErrorKind.BAD_RESPONSE).value
        message = None if reply.ok else reply.message
        self.attempts.append(
            Attempt(agent_id, outcome, reply.status, reply.latency_ms, hedge, panic, message)
        )
        self.last = reply

    @property
    def committed(self) -> bool:
        """Some of the answer went out to the caller: a failure now is not retried."""
        return self.relay is not None and self.relay.wrote

    def won(self, now: float, winner: str, reply: Reply) -> RouteResult:
        return RouteResult(
            self.type,
            True,
            winner,
            reply.text,
            self._elapsed_ms(now),
            tuple(self.attempts),
            self.strategy,
            state=reply.state,
            stream=reply.stream,
        )

    def lost(self, now: float, reason: str) -> RouteResult:
        last = self.last
        return RouteResult(
            self.type,
            False,
            None,
            None,
            self._elapsed_ms(now),
            tuple(self.attempts),
            self.strategy,
            reason,
            None if last is None else last.state,
            None if last is None else last.stream,
        )

    def _elapsed_ms(self, now: float) -> float:
        return (now - self.started) * 1000.0
