"""What ``latcli send`` answered (typed), and its JSON contract ``latcli.send/v1`` (DESIGN §6).

:meth:`SendReport.of` takes the router's :class:`~latcli.routing.results.FanOut`, rounding the
times to µs and redacting what an agent said once, here; :meth:`SendReport.to_json` writes the
document. The human decision lines and the reply text are :mod:`latcli.render.send_view`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from latcli.core.redact import redact_text
from latcli.routing.results import Attempt, FanOut, RouteResult
from latcli.transport.a2a.stream import StreamPhases

SCHEMA = "latcli.send/v1"


@dataclass(frozen=True)
class AttemptReport:
    """One try on one replica; ``outcome`` is ``"ok"`` or an error kind."""

    agent: str
    outcome: str
    status: int | None
    latency_ms: float
    hedge: bool
    panic: bool
    message: str | None  # the agent's words, redacted

    @classmethod
    def of(cls, a: Attempt) -> AttemptReport:
        message = None if a.message is None else redact_text(a.message)
        return cls(a.agent, a.outcome, a.status, round(a.latency_ms, 3), a.hedge, a.panic, message)

    def to_json(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "outcome": self.outcome,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "hedge": self.hedge,
            "panic": self.panic,
            "message": self.message,
        }


@dataclass(frozen=True)
class ResultReport:
    """The answer for one type: the winning agent and reply, or why there was none."""

    type: str
    agent: str | None
    ok: bool
    reply: str | None
    latency_ms: float
    error: str | None
    state: str | None  # A2A task state, 0.3 spelling
    stream: StreamPhases | None
    failovers: int
    attempts: tuple[AttemptReport, ...]

    @classmethod
    def of(cls, r: RouteResult) -> ResultReport:
        return cls(
            type=r.type,
            agent=r.agent,
            ok=r.ok,
            reply=r.reply,
            latency_ms=round(r.latency_ms, 3),
            error=r.error,
            state=r.state,
            stream=None if r.stream is None else r.stream.rounded(),
            failovers=max(0, r.failovers),
            attempts=tuple(AttemptReport.of(a) for a in r.attempts),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "agent": self.agent,
            "ok": self.ok,
            "reply": self.reply,
            "latency_ms": self.latency_ms,
            "error": self.error,
            "state": self.state,
            "stream": None if self.stream is None else self.stream.to_json(),
            "failovers": self.failovers,
            "attempts": [a.to_json() for a in self.attempts],
        }


@dataclass(frozen=True)
class SendReport:
    """One ``latcli send``: every type's answer; the latency is the slowest answer's."""

    ok: bool
    strategy: str
    latency_ms: float
    results: tuple[ResultReport, ...]

    @classmethod
    def of(cls, fan: FanOut) -> SendReport:
        results = tuple(ResultReport.of(r) for r in fan.results)
        return cls(fan.ok, fan.strategy, round(fan.latency_ms, 3), results)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "ok": self.ok,
            "strategy": self.strategy,
            "latency_ms": self.latency_ms,
            "results": [r.to_json() for r in self.results],
        }
