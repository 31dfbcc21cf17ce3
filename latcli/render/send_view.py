"""``latcli send`` for people: the reply text and the decision lines (the ``latcli.send/v1``
document is :mod:`latcli.reports.send`'s)."""

from __future__ import annotations

from latcli.core.redact import redact_text
from latcli.core.units import format_ms, plural
from latcli.routing.results import FanOut, RouteResult


def reply_text(fan: FanOut) -> str:
    """Replies for stdout: bare for one type, ``type: reply`` lines for a fan-out."""
    if len(fan.results) == 1:
        return fan.results[0].reply or "" if fan.results[0].ok else ""
    return "\n".join(f"{r.type}: {r.reply}" for r in fan.results if r.ok)


def _answer_notes(r: RouteResult) -> str:
    """`` · first token 203 ms · 5 chunks`` for a streamed answer, `` · input-required`` for
    one that stops early (a completed task or a plain reply says nothing more)."""
    notes = ""
    if r.stream is not None and r.stream.first_artifact_ms is not None:
        notes += f" · first token {format_ms(r.stream.first_artifact_ms)}"
        notes += f" · {plural(r.stream.chunks, 'chunk')}"
    if r.state not in (None, "completed"):
        notes += f" · {r.state}"
    return notes


def decision_lines(fan: FanOut) -> list[str]:
    """For stderr: ``→ weather-2 · p2c · 41 ms · 1 failover`` per type, failures with attempts
    and the agent's own words (``task_failed in 212 ms: model overloaded``)."""
    lines = []
    for r in fan.results:
        prefix = f"{r.type} " if len(fan.results) > 1 else ""
        if r.ok:
            extra = f" · {plural(r.failovers, 'failover')}"
            hedged = " · hedged" if any(a.hedge for a in r.attempts) else ""
            lines.append(
                f"{prefix}→ {r.agent} · {r.strategy} · {format_ms(r.latency_ms)}"
                f"{_answer_notes(r)}{extra if r.failovers else ''}{hedged}"
            )
        else:
            lines.append(f"{prefix}✗ no answer ({r.error}) after {format_ms(r.latency_ms)}")
            for a in r.attempts:
                # a 2xx carrying a failed task or an RPC error: the status says nothing
                status = f" HTTP {a.status}" if a.status and not 200 <= a.status < 300 else ""
                # the agent's words or the transport's reason; "HTTP 500" would only repeat
                told = a.message and a.message != f"HTTP {a.status}"
                said = f": {redact_text(a.message)}" if a.message and told else ""
                lines.append(
                    f"    {a.agent}: {a.outcome}{status} in {format_ms(a.latency_ms)}{said}"
                )
    if len(fan.results) > 1:
        lines.append(
            f"coordination: {format_ms(fan.latency_ms)} for {plural(len(fan.results), 'type')}"
        )
    return lines
