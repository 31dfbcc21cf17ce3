"""Judging one capacity step: did it hold the rate, the SLA, the error rate, settled latency?

* **A step passes** when the generator held the rate (achieved >= 99 % of asked), every SLA
  threshold held, the error rate did not rise above the lowest step's, and latency
  settled: it did not climb during the step (a growing queue) and its p50 stayed under twice
  the lowest step's (the knee: where latency starts rising sharply).
* **Streams**: the knee and settling rules watch the time to first token beside the whole
  answer: what a user feels rises first when a model server queues.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from latcli.core.capacity import (
    EPS,
    FIRST_TOKEN,
    GENERATOR,
    Step,
    StepKind,
    StepMeasure,
    rate_text,
)
from latcli.core.units import format_ms, format_percent, format_rate

MIN_ACHIEVED = 0.99  # of the asked rate (latcli.core.schedule.MIN_RATE_FRACTION)
KNEE_FACTOR = 2.0  # p50 over twice the lowest step's: latency is rising sharply
SETTLE_FACTOR = 1.5  # late-step p50 over 1.5 × early-step p50: a queue is growing
LATENCY_FLOOR_MS = 5.0  # rises smaller than this are noise, whatever the ratio
ERROR_RISE = 0.01  # error rate allowed above the lowest step's (or 3 standard errors)


def judge_step(measure: StepMeasure, phase: StepKind, base: StepMeasure | None) -> Step:
    """Judge ``measure`` against the rules of the module docstring.

    ``base`` is the lowest passing step (:func:`latcli.core.capacity.baseline`); None before
    any step passed, and then the step is judged on the generator, the SLA and settling only.
    """
    if measure.interrupted:
        return Step(measure, phase, ("interrupted",))
    if measure.requests == 0:
        return Step(measure, phase, ("no request completed",))
    reasons = [*_generator(measure), *_sla(measure), *_settling(measure)]
    if base is not None and base.requests:
        reasons += [*_errors_rose(measure, base), *_knee(measure, base)]
    return Step(measure, phase, tuple(reasons))


def _generator(m: StepMeasure) -> list[str]:
    """Whether the load was offered at all: achieved >= 99 % of the asked rate, or short of
    it by less than one request over the window (streams step at a few per second).

    The bench's schedule-lag bound (p99 <= 10 ms) does not fail a step: a late send makes the
    load burstier, never lighter, and its lateness is already inside the latency judged below
    (measured from the due time). On a busy 2-core machine that bound failed steps at 15 req/s.
    """
    short = (m.rate - m.achieved_rps) * m.window_s  # requests the schedule did not send
    # A window holds whole requests: 1.5 s at 20.9/s is 31 of 31.35 due (98.9 %), not a lag.
    if m.achieved_rps < MIN_ACHIEVED * m.rate - EPS and (short >= 1.0 or not m.window_s):
        pct = m.achieved_rps / m.rate
        sent = f"sent {format_rate(m.achieved_rps, '')} of {rate_text(m.rate)}"
        return [GENERATOR + f"{sent} ({format_percent(pct)})"]
    return []


def _sla(m: StepMeasure) -> list[str]:
    return [f"SLA {v.expr} (observed {v.format_observed()})" for v in m.sla if not v.passed]


def _settling(m: StepMeasure) -> list[str]:
    """Latency climbing from the first to the last part of the step: a queue that grows
    (streams: the time to first token too, where a queue shows first)."""
    first_token = _climbing(f"{FIRST_TOKEN} p50", "", m.interval_first_token_p50_ms)
    return _climbing("latency", "p50 ", m.interval_p50_ms) + first_token


def _climbing(name: str, label: str, p50s: Sequence[float]) -> list[str]:
    half = len(p50s) // 2
    if half == 0:
        return []
    early, late = _median(p50s[:half]), _median(p50s[-half:])
    if late > early * SETTLE_FACTOR and late - early > LATENCY_FLOOR_MS:
        return [
            f"{name} kept rising during the step ({label}{format_ms(early)} → {format_ms(late)})"
        ]
    return []


def _errors_rose(m: StepMeasure, base: StepMeasure) -> list[str]:
    b = base.error_rate
    # Three standard errors of the baseline's rate at this step's count: a flaky agent's 20 %
    # wobbles by a few points from step to step without anything having changed.
    noise = 3.0 * math.sqrt(b * (1.0 - b) / m.requests)
    if m.error_rate > b + max(ERROR_RISE, noise) + EPS:
        was = format_percent(b)
        kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(m.error_kinds.items()))
        return [
            f"errors rose to {format_percent(m.error_rate)} ({was} at the lowest step)"
            + (f": {kinds}" if kinds else "")
        ]
    return []


def _knee(m: StepMeasure, base: StepMeasure) -> list[str]:
    reasons = _rose("p50", m.latency.p50, base.latency.p50)
    if m.phases is not None and base.phases is not None:
        now, was = m.phases.get(FIRST_TOKEN), base.phases.get(FIRST_TOKEN)
        if now is not None and was is not None and was.p50 > 0:
            reasons += _rose(f"{FIRST_TOKEN} p50", now.p50, was.p50)
    return reasons


def _rose(name: str, p50: float, was: float) -> list[str]:
    if p50 > KNEE_FACTOR * was and p50 - was > LATENCY_FLOOR_MS:
        over = f"is over {KNEE_FACTOR:g}× the {format_ms(was)} at the lowest step"
        return [f"{name} {format_ms(p50)} {over}"]
    return []


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0
