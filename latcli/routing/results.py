"""What ``Router.send`` and ``Router.fan_out`` return: the attempts and the winning answer."""

from __future__ import annotations

from dataclasses import dataclass

from latcli.transport.a2a.stream import StreamPhases

__all__ = ["Attempt", "FanOut", "RouteResult"]


@dataclass(frozen=True)
class Attempt:
    """One try on one replica. ``outcome`` is ``"ok"`` or an error kind's value."""

    agent: str
    outcome: str
    status: int | None
    latency_ms: float
    hedge: bool = False
    panic: bool = False
    message: str | None = None  # the reply's error text ("model overloaded"); agent text


@dataclass(frozen=True)
class RouteResult:
    """The answer for one type: the winning agent and reply, or every failed attempt.

    ``state`` (A2A task state, 0.3 spelling) and ``stream`` (phases of a streamed answer) are
    the winning reply's, or the last attempt's when none won.
    """

    type: str
    ok: bool
    agent: str | None
    reply: str | None
    latency_ms: float
    attempts: tuple[Attempt, ...]
    strategy: str
    error: str | None = None
    state: str | None = None
    stream: StreamPhases | None = None

    @property
    def failovers(self) -> int:
        return sum(1 for a in self.attempts if not a.hedge) - 1 if self.attempts else 0


@dataclass(frozen=True)
class FanOut:
    """Several types asked at once: the coordination latency is the slowest answer's."""

    results: tuple[RouteResult, ...]
    latency_ms: float
    strategy: str

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)
