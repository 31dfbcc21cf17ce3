"""Canary messages (issue 12 item 5): the verdict on one answer and the window SLAs judge.

A health check (an A2A agent's card GET) says the agent is up; a canary sends a real message
and says whether its model answers. Sans-I/O: the watch sends, this module judges; time comes
in as ``now``.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace

from latcli.config.model import Agent, CanaryConfig
from latcli.core.errors import ErrorKind
from latcli.core.sla import PHASES, Measurements
from latcli.transport.replies import Reply

SHOWN_TEXT = 60  # characters of a non-matching answer quoted in the failure message


def canary_agent(agent: Agent, canary: CanaryConfig) -> Agent:
    """``agent`` as the canary addresses it: its ``timeout`` is the canary's (if set)."""
    return agent if canary.timeout is None else replace(agent, timeout=canary.timeout)


def judge(reply: Reply, canary: CanaryConfig) -> Reply:
    """``reply`` as a canary verdict: a failed reply stays failed; an answer that stopped early
    (``input-required``, ``auth-required``) or whose text does not match ``expect`` becomes a
    ``bad_response`` saying why. A passing reply is returned as it is."""
    if not reply.ok:
        return reply
    if reply.state not in (None, "completed"):
        return _failed(reply, f"answer stopped at {reply.state}")
    pattern = canary.expect
    if pattern is not None and pattern.search(reply.text or "") is None:
        text = reply.text or ""
        shown = text if len(text) <= SHOWN_TEXT else text[: SHOWN_TEXT - 1] + "…"
        return _failed(reply, f"answer does not match /{pattern.pattern}/: {shown!r}")
    return reply


def _failed(reply: Reply, why: str) -> Reply:
    return replace(reply, error=ErrorKind.BAD_RESPONSE, message=why)


def phases_of(reply: Reply) -> dict[str, float]:
    """The answer's phases in ms (``total`` always; the stream's others when it streamed)."""
    out = {"total": reply.latency_ms}
    s = reply.stream
    if s is not None:
        seen = {
            "first_event": s.first_event_ms,
            "first_artifact": s.first_artifact_ms,
            "gap": s.gap_ms_max,
            "total": s.total_ms,
        }
        out.update({k: v for k, v in seen.items() if v is not None})
    return out


@dataclass(frozen=True)
class _Sample:
    at: float
    ok: bool
    phases: dict[str, float]


class CanaryWindow:
    """The canaries of the last ``span`` seconds: what ``sla: {canary: {PHASE: ...}}`` judges.

    Phases come from passing canaries only (a timed-out stream's first token says nothing of
    a working model); every canary counts toward the rates.
    """

    def __init__(self, span: float) -> None:
        self.span = span
        self._samples: deque[_Sample] = deque()

    def add(self, now: float, reply: Reply, ok: bool) -> None:
        self._samples.append(_Sample(now, ok, phases_of(reply) if ok else {}))

    def observation(self, now: float) -> Measurements:
        samples = self._samples
        while samples and samples[0].at <= now - self.span:
            samples.popleft()
        passed = [s for s in samples if s.ok]
        phases = {p: _observe(sorted(s.phases[p] for s in passed if p in s.phases)) for p in PHASES}
        whole = phases["total"]
        return Measurements(
            samples=whole.samples,
            percentile=whole.percentile,
            mean_ms=whole.mean_ms,
            min_ms=whole.min_ms,
            max_ms=whole.max_ms,
            errors=len(samples) - len(passed),
            requests=len(samples),
            rps=None,
            phases=phases,
        )


def _observe(ordered: list[float]) -> Measurements:
    """One phase's latencies (sorted) as an SLA observation; nearest-rank percentiles."""

    n = len(ordered)

    def percentile(p: float) -> float | None:
        return ordered[max(1, math.ceil(p / 100 * n)) - 1] if n else None

    return Measurements(
        samples=n,
        percentile=percentile,
        mean_ms=sum(ordered) / n if n else None,
        min_ms=ordered[0] if n else None,
        max_ms=ordered[-1] if n else None,
        errors=0,
        requests=n,
        rps=None,
    )
