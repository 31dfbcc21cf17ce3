"""What ``latcli probe`` found (typed), and its JSON contract ``latcli.probe/v1`` (DESIGN §6)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from typing import Any

from latcli.config.model import Agent
from latcli.core.errors import ErrorKind
from latcli.core.redact import redact_text, redact_url
from latcli.transport.a2a.stream import StreamPhases
from latcli.transport.base import Timings
from latcli.transport.replies import Card, Reply


@dataclass(frozen=True)
class MessageCheck:
    """``probe --message``: one real message's answer, streamed where the agent can (a
    semantic health check: the card GET says an agent is up, not that its model answers)."""

    ok: bool
    latency_ms: float
    state: str | None = None
    stream: StreamPhases | None = None
    reply: str | None = None
    error: ErrorKind | None = None
    message: str | None = None

    @classmethod
    def of(cls, reply: Reply) -> MessageCheck:
        return cls(
            reply.ok,
            reply.latency_ms,
            reply.state,
            reply.stream,
            reply.text,
            reply.error,
            reply.message,
        )


@dataclass(frozen=True)
class ProbeResult:
    """One agent's probe. Latencies are ms; ``samples`` holds every check's total time."""

    agent: Agent
    healthy: bool
    status: int | None
    timings: Timings
    samples: tuple[float, ...]
    checks: int
    failures: int
    discovery_ms: float | None = None
    card: Card | None = None
    error: ErrorKind | None = None
    message: str | None = None
    answer: MessageCheck | None = None  # with --message, when the health checks passed

    @property
    def latency_ms(self) -> float | None:
        """The median check time; None when no check got an answer."""
        return statistics.median(self.samples) if self.samples else None

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile of the check times (exact for the small counts probe takes)."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        rank = max(1, -(-len(ordered) * p // 100))
        return ordered[int(rank) - 1]


@dataclass(frozen=True)
class ProbeReport:
    results: tuple[ProbeResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.healthy for r in self.results)


SCHEMA = "latcli.probe/v1"


def _r(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 3)


def agent_json(result: ProbeResult) -> dict[str, Any]:
    a, t = result.agent, result.timings
    error = None
    if result.error is not None:
        message = None if result.message is None else redact_text(result.message)
        error = {"kind": result.error.value, "message": message}
    return {
        "id": a.id,
        "type": a.type,
        "url": redact_url(a.url),
        "protocol": a.protocol,
        "healthy": result.healthy,
        "status": result.status,
        "latency_ms": _r(result.latency_ms),
        "timings_ms": {
            "connect": _r(t.connect),
            "tls": _r(t.tls),
            "ttfb": _r(t.ttfb),
            "total": _r(t.total),
        },
        "discovery_ms": _r(result.discovery_ms),
        "card": _card(result),
        "error": error,
        "checks": result.checks,
        "failures": result.failures,
        "p50_ms": _r(result.percentile(50)),
        "p99_ms": _r(result.percentile(99)),
        "min_ms": _r(min(result.samples)) if result.samples else None,
        "max_ms": _r(max(result.samples)) if result.samples else None,
        "answer": _answer(result),
    }


def _answer(result: ProbeResult) -> dict[str, Any] | None:
    """``probe --message``: the answer's verdict, state and phases (null without it)."""
    answer = result.answer
    if answer is None:
        return None
    error = None
    if answer.error is not None:
        message = None if answer.message is None else redact_text(answer.message)
        error = {"kind": answer.error.value, "message": message}
    phases = None if answer.stream is None else answer.stream.to_json()
    return {
        "ok": answer.ok,
        "state": answer.state,
        "latency_ms": _r(answer.latency_ms),
        "first_artifact_ms": _r(answer.stream.first_artifact_ms) if answer.stream else None,
        "stream": None if phases is None else {k: _r(v) for k, v in phases.items()},
        "reply": answer.reply,
        "error": error,
    }


def _card(result: ProbeResult) -> dict[str, Any] | None:
    if result.card is None:
        return None
    summary = result.card.summary()
    return {**summary, "url": redact_url(str(summary["url"]))}


def probe_json(report: ProbeReport) -> str:
    doc = {"schema": SCHEMA, "ok": report.ok, "agents": [agent_json(r) for r in report.results]}
    return json.dumps(doc, indent=2)
