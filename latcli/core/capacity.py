"""Capacity planning by open-model step load: the plan, the verdicts, the sums (sans-I/O).

The engine (:mod:`latcli.engines.capacity`) asks :func:`next_step` for a rate, runs one
open-model bench step at it, and hands the measurement to
:func:`latcli.core.capacity_judge.judge_step` (the pass rules); once :func:`next_step` says
stop, :func:`summarize` turns the steps into the estimate. Nothing here
touches a clock, a socket or a terminal, so every rule below is tested exactly.

* **Steps**: geometric from ``start_rate`` (× ``factor``) until a step fails, then bisection
  (geometric mean) between the last passing and the first failing rate until they are within
  ``resolution`` of each other: ×1.5 steps alone leave the answer up to 50 % off, three
  bisections bring that to 5 % (1.5^(1/8) = 1.052).
* **Retries**: a step that failed on the generator alone (a scheduling hiccup of a busy load
  machine, not the target) is run again, at most :data:`GENERATOR_RETRIES` times; the latest
  run at a rate is the one that counts.
* **The knee** is the highest passing step; the sustainable rate is its rate, per replica
  divided by the replicas that took traffic in it. Little's law (L = λ·W) gives the requests in
  flight there; replicas needed for a target = ceil(target / (per replica × (1 - headroom))),
  so that each replica runs at most at ``1 - headroom`` utilisation.
* **Streams** (``--endpoint stream``): a step also carries each phase's latency (from the
  send), which the step judge watches (:mod:`latcli.core.capacity_judge`); the concurrent
  streams at the knee are Little's law on the *mean* total time: L = λ·W holds for the mean
  time in the system whatever its distribution, while a p50 would undercount the right-skewed
  answers of an LLM.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from latcli.core.sla import Verdict
from latcli.core.units import (
    format_ms,
    format_number,
    format_percent,
    format_sig,
    plural,
)

DEFAULT_START_RATE = 10.0  # req/s: low enough for any agent worth measuring
DEFAULT_FACTOR = 1.5  # 10 → 1,000 req/s in 12 steps
DEFAULT_RESOLUTION = 1.06  # stop refining when first fail / last pass <= this (±3 % around)
DEFAULT_HEADROOM = 0.3  # run replicas at <= 70 % of what they sustain
MAX_STEPS = 60  # a guard: 10 req/s × 1.5^45 is past any generator
GENERATOR_RETRIES = 2  # reruns of a step that failed on the generator alone
FIRST_TOKEN = "first_artifact"  # the stream phase users wait for (DESIGN §2)
EPS = 1e-9  # float slack when comparing rates

StepKind = Literal["step", "refine", "retry"]


@dataclass(frozen=True)
class CapacityPlan:
    """What to search and how. Rates in req/s, times in seconds, headroom a fraction."""

    start_rate: float = DEFAULT_START_RATE
    max_rate: float | None = None
    factor: float = DEFAULT_FACTOR
    resolution: float = DEFAULT_RESOLUTION
    step_duration_s: float = 5.0
    warmup_s: float = 1.0
    target_rps: float | None = None
    headroom: float = DEFAULT_HEADROOM

    def __post_init__(self) -> None:
        if not self.start_rate > 0:
            raise ValueError("start rate must be more than zero")
        if self.max_rate is not None and self.max_rate < self.start_rate:
            raise ValueError("max rate must be at least the start rate")
        if not self.factor >= 1.1:
            raise ValueError("step factor must be at least 1.1")
        if not 1.0 < self.resolution < self.factor:
            raise ValueError("resolution must be between 1 and the step factor")
        if not self.step_duration_s > 0 or self.warmup_s < 0:
            raise ValueError("step duration must be more than zero, warm-up not negative")
        if self.target_rps is not None and not self.target_rps > 0:
            raise ValueError("target rate must be more than zero")
        if not 0.0 <= self.headroom < 1.0:
            raise ValueError("headroom must be at least 0% and under 100%")


@dataclass(frozen=True)
class LatencySummary:
    """One step's latency in ms, measured from each request's due time (no coordinated
    omission)."""

    min: float = 0.0
    p50: float = 0.0
    p90: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    max: float = 0.0
    mean: float = 0.0

    @classmethod
    def of(cls, summary: Mapping[str, float]) -> LatencySummary:
        """From a histogram summary (``LatencyHistogram.summary()``); extra keys ignored."""
        return cls(*(float(summary.get(k, 0.0)) for k in _LATENCY_KEYS))


_LATENCY_KEYS = ("min", "p50", "p90", "p95", "p99", "max", "mean")


@dataclass(frozen=True)
class StepMeasure:
    """What one step measured, in plain values (the engine converts a bench result)."""

    rate: float  # asked, req/s
    achieved_rps: float  # the generator's own account of what it sent
    throughput_rps: float  # completed (ok and failed) per measured second
    latency: LatencySummary
    requests: int
    errors: int = 0
    valid: bool = True  # the bench's generator verdict: reported, not judged (see _generator)
    invalid_reason: str | None = None
    sla: tuple[Verdict, ...] = ()
    interval_p50_ms: tuple[float, ...] = ()  # p50 of each ~1 s interval, in order
    interval_first_token_p50_ms: tuple[float, ...] = ()  # streams: first_artifact's, likewise
    replicas: int = 1  # replicas that took traffic
    interrupted: bool = False
    # --endpoint stream: PHASES -> answered streams' latency from the send (None: not streams)
    phases: Mapping[str, LatencySummary] | None = None
    error_kinds: Mapping[str, int] = field(default_factory=dict)  # kind -> count
    window_s: float = 0.0  # the measured window the rate was asked over (0: unknown)

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def arrival_rps(self) -> float:
        """λ of Little's law: the rate requests were sent at. Not the throughput, whose measured
        time includes the drain after the last send (18.7/s at a held 19.9/s in 3 s steps)."""
        return self.achieved_rps

    @property
    def in_flight(self) -> float:
        """Little's law, L = λ·W: arrival rate × mean latency (seconds)."""
        return self.arrival_rps * self.latency.mean / 1000.0

    @property
    def concurrent_streams(self) -> float | None:
        """Streams open at the agents, Little's law on the mean total time (from the send):
        arrival rate × mean ``total``; None when this was not a stream step."""
        total = self.phases.get("total") if self.phases is not None else None
        if total is None:
            return None
        return self.arrival_rps * total.mean / 1000.0


@dataclass(frozen=True)
class Step:
    """One judged step: ``reasons`` says why it failed (empty when it passed)."""

    measure: StepMeasure
    phase: StepKind
    reasons: tuple[str, ...] = ()

    @property
    def rate(self) -> float:
        return self.measure.rate

    @property
    def passed(self) -> bool:
        return not self.reasons

    @property
    def reason(self) -> str | None:
        return "; ".join(self.reasons) if self.reasons else None

    @property
    def interrupted(self) -> bool:
        return self.measure.interrupted

    @property
    def generator_only(self) -> bool:
        """Failed, and only because the load generator fell behind."""
        return bool(self.reasons) and all(r.startswith(GENERATOR) for r in self.reasons)


GENERATOR = "generator: "  # the prefix of a generator reason


# ---- the step plan ---------------------------------------------------------------------------


def nice(rate: float) -> float:
    """``rate`` to three significant digits (``256.289`` -> 256.0): rates people can read."""
    return float(f"{rate:.3g}")


def next_step(plan: CapacityPlan, steps: Sequence[Step]) -> tuple[float, StepKind] | None:
    """The next rate to run and its phase, or None when the search is over.

    Over: after an interrupted step, a failing first step, ``max_rate`` passed, the bracket
    narrowed to ``resolution``, or :data:`MAX_STEPS` steps.
    """
    if not steps:
        return nice(plan.start_rate), "step"
    last = steps[-1]
    if last.interrupted or len(steps) >= MAX_STEPS:
        return None
    if last.generator_only and sum(s.rate == last.rate for s in steps) <= GENERATOR_RETRIES:
        return last.rate, "retry"
    lo, hi = bracket(steps)
    if hi is None:
        return _climb(plan, steps[-1].rate)
    if lo is None or hi / lo <= plan.resolution + EPS:
        return None
    mid = nice(math.sqrt(lo * hi))
    return (mid, "refine") if lo < mid < hi else None


def _climb(plan: CapacityPlan, last: float) -> tuple[float, StepKind] | None:
    if plan.max_rate is not None and last >= plan.max_rate - EPS:
        return None
    rate = nice(last * plan.factor)
    if plan.max_rate is not None:
        rate = min(rate, plan.max_rate)
    return rate, "step"


def decisive(steps: Sequence[Step]) -> list[Step]:
    """The latest judged step at each rate (a retry replaces the run it repeats); an
    interrupted step judges nothing."""
    latest = {s.rate: s for s in steps if not s.interrupted}
    return list(latest.values())


def bracket(steps: Sequence[Step]) -> tuple[float | None, float | None]:
    """(highest passing rate, lowest failing rate), from the decisive steps."""
    judged = decisive(steps)
    passes = [s.rate for s in judged if s.passed]
    fails = [s.rate for s in judged if not s.passed]
    return (max(passes) if passes else None), (min(fails) if fails else None)


def baseline(steps: Sequence[Step]) -> StepMeasure | None:
    """The lowest step that passed (the first one, or its retry): what later steps compare to."""
    return next((s.measure for s in steps if s.passed), None)


# ---- the estimate ----------------------------------------------------------------------------


def replicas_needed(target_rps: float, per_replica_rps: float, headroom: float) -> int:
    """ceil(target / (per replica × (1 - headroom))), at least 1.

    The epsilon keeps an exact multiple exact: 140 req/s at 70 req/s each is 2, not 3 because
    140 / (100 × 0.7) is 2.0000000000000004 in floating point.
    """
    if not per_replica_rps > 0 or not 0.0 <= headroom < 1.0 or not target_rps > 0:
        raise ValueError("need a positive target and per-replica rate, headroom in [0, 1)")
    return max(1, math.ceil(target_rps / (per_replica_rps * (1.0 - headroom)) - 1e-9))


LimitedBy = Literal["target", "generator", "max_rate", "interrupted", "steps"]


@dataclass(frozen=True)
class Capacity:
    """The search's outcome. ``knee`` indexes ``steps`` (execution order)."""

    plan: CapacityPlan
    steps: tuple[Step, ...]
    knee: int | None
    replicas: int  # that took traffic at the knee (else the target's replicas)
    sustainable_rps: float | None
    per_replica_rps: float | None
    replicas_needed: int | None
    limited_by: LimitedBy | None  # what ended the climb
    interrupted: bool
    reasoning: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        """A sustainable rate was found (the target rate does not change this: see target_met)."""
        return self.knee is not None

    @property
    def target_met(self) -> bool | None:
        """Whether the replicas measured already carry ``target_rps`` with the headroom."""
        if self.replicas_needed is None:
            return None
        return self.replicas_needed <= self.replicas


def summarize(
    plan: CapacityPlan, steps: Sequence[Step], replicas: int = 1, interrupted: bool = False
) -> Capacity:
    """The estimate from the judged ``steps``; ``replicas`` is the target's replica count, used
    when no step passed."""
    steps = tuple(steps)
    knee = _knee_index(steps)
    if knee is None:
        capacity = Capacity(plan, steps, None, replicas, None, None, None, None, interrupted)
        return _with_reasoning(capacity)
    at = steps[knee].measure
    took = max(1, at.replicas)
    per = at.rate / took
    needed = (
        None if plan.target_rps is None else replicas_needed(plan.target_rps, per, plan.headroom)
    )
    capacity = Capacity(
        plan, steps, knee, took, at.rate, per, needed, _limited_by(plan, steps), interrupted
    )
    return _with_reasoning(capacity)


def _knee_index(steps: Sequence[Step]) -> int | None:
    lo, _ = bracket(steps)
    if lo is None:
        return None
    return max(i for i, s in enumerate(steps) if s.rate == lo and s.passed)


def _first_failure(steps: Sequence[Step]) -> Step | None:
    """The lowest failing decisive step: the upper edge of the bracket."""
    fails = [s for s in decisive(steps) if not s.passed]
    return min(fails, key=lambda s: s.rate) if fails else None


def _limited_by(plan: CapacityPlan, steps: Sequence[Step]) -> LimitedBy | None:
    fail = _first_failure(steps)
    if fail is not None:
        return "generator" if fail.generator_only else "target"
    if steps and steps[-1].interrupted:
        return "interrupted"
    if plan.max_rate is not None and steps and max(s.rate for s in steps) >= plan.max_rate:
        return "max_rate"
    return "steps" if steps else None


def _with_reasoning(c: Capacity) -> Capacity:
    return replace(c, reasoning=tuple(reasoning(c)))


def reasoning(c: Capacity) -> list[str]:
    """The estimate explained in words, one sentence per line (printed and in the JSON)."""
    lines: list[str] = []
    fail = _first_failure(c.steps)
    if c.knee is None:
        if fail is not None:
            lines.append(
                f"even the first step, {rate_text(fail.rate)}, failed: {fail.reason}; "
                "try a lower --start-rate or check the SLA"
            )
        else:
            lines.append("no step was completed: nothing to estimate")
        return lines + _interrupted(c)
    knee = c.steps[c.knee].measure
    lines.append(_knee_line(c))
    lines += _bound_lines(c, fail)
    lines.append(
        f"at the knee mean latency {format_ms(knee.latency.mean)}, so by Little's law "
        f"(L = λ·W = {format_sig(knee.arrival_rps)}/s × {format_ms(knee.latency.mean)}) "
        f"~{knee.in_flight:.1f} requests are in flight"
        + (f" ({knee.in_flight / c.replicas:.1f} per replica)" if c.replicas > 1 else "")
    )
    lines += _stream_lines(c, knee)
    lines += _target_lines(c)
    return lines + _interrupted(c)


def _knee_line(c: Capacity) -> str:
    assert c.sustainable_rps is not None and c.per_replica_rps is not None
    if c.replicas > 1:
        each = f"{c.replicas} replicas → {rate_text(c.per_replica_rps)} each"
    else:
        each = "1 replica"
    return (
        f"knee at {rate_text(c.sustainable_rps)} ({each}): the highest step that held the asked "
        "rate, the SLA and the error rate with latency settled"
    )


def _bound_lines(c: Capacity, fail: Step | None) -> list[str]:
    assert c.sustainable_rps is not None
    if fail is not None:
        gap = fail.rate / c.sustainable_rps - 1.0
        lines = [
            f"{rate_text(fail.rate)} was not sustainable: {fail.reason}; the capacity lies between "
            f"the two (+{gap:.0%})"
        ]
        if c.limited_by == "generator":
            lines.append(
                "the load generator, not the target, failed first: the target sustains at least "
                f"{rate_text(c.sustainable_rps)} (run from a stronger machine or with fewer steps)"
            )
        return lines
    if c.limited_by == "max_rate":
        at_least = rate_text(c.sustainable_rps)
        return [f"every step passed up to --max-rate: the capacity is at least {at_least}"]
    return [f"no step failed: the capacity is at least {rate_text(c.sustainable_rps)}"]


def _stream_lines(c: Capacity, knee: StepMeasure) -> list[str]:
    streams = knee.concurrent_streams
    if streams is None or knee.phases is None:
        return []
    total = knee.phases["total"]
    line = (
        f"streams: mean total {format_ms(total.mean)} from the send"
        f" (p50 {format_ms(total.p50)}), so "
        f"~{streams:.1f} concurrent streams at the knee"
        + (f" ({streams / c.replicas:.1f} per replica)" if c.replicas > 1 else "")
        + " (Little's law on the mean: a p50 would undercount long answers)"
    )
    first = knee.phases.get(FIRST_TOKEN)
    if first is None or not first.p95:
        return [line]
    return [
        line,
        f"time to first token there: p50 {format_ms(first.p50)}, p95 {format_ms(first.p95)}",
    ]


def _target_lines(c: Capacity) -> list[str]:
    target = c.plan.target_rps
    if target is None or c.per_replica_rps is None or c.replicas_needed is None:
        return []
    h = c.plan.headroom
    limit = c.per_replica_rps * (1.0 - h)
    n = c.replicas_needed
    share = target / n
    return [
        f"for {rate_text(target)} with {format_percent(h)} headroom each replica should carry "
        f"≤ {rate_text(limit)} (utilisation ≤ {format_percent(1.0 - h)} of "
        f"{rate_text(c.per_replica_rps)}) → {n} replica{'s' if n != 1 else ''}",
        f"with {n} each carries {rate_text(share)}, utilisation "
        f"{format_percent(round(share / c.per_replica_rps, 3))}"
        + (
            f"; the {c.replicas} measured {'are' if c.replicas > 1 else 'is'} enough"
            if n <= c.replicas
            else f"; {n - c.replicas} more than the {c.replicas} measured"
        ),
    ]


def _interrupted(c: Capacity) -> list[str]:
    if not c.interrupted:
        return []
    steps = plural(len(c.steps), "step")
    return [f"interrupted after {steps}: the figures cover what was measured"]


def rate_text(rps: float) -> str:
    """A rate as reasons and reasoning write it (``12.5 req/s``)."""
    return f"{format_number(rps)} req/s"
