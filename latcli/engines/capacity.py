"""The engine behind ``latcli capacity``: one open-model bench run per step.

:mod:`latcli.core.capacity` decides the rates and judges the steps; this module runs each step
through :func:`~latcli.engines.bench.workers.run_bench` (a warm-up, then the measured duration;
latency from each due time, so a queue at the target shows) and turns its result into a
:class:`~latcli.core.capacity.StepMeasure`. Ctrl-C during a step ends that step (the bench engine
catches SIGINT) and the search; between steps it ends the search too. Either way every step
measured so far is returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from latcli.core.capacity import (
    FIRST_TOKEN,
    CapacityPlan,
    LatencySummary,
    Step,
    StepMeasure,
    baseline,
    next_step,
)
from latcli.core.capacity_judge import judge_step
from latcli.core.sla import Threshold, evaluate
from latcli.core.units import format_ms, format_number, format_percent, format_rate
from latcli.engines.bench.answer import NO_AGENT
from latcli.engines.bench.targets import Target
from latcli.engines.bench.workers import run_bench
from latcli.reports.bench_model import BenchPlan, BenchResult
from latcli.reports.bench_sla import observation

# After a failing step the target may still hold a queue of work its clients gave up on;
# waiting about as long as the slowest request took lets it drain before the next step.
MAX_COOL_DOWN_S = 5.0
MIN_INTERVAL_S = 0.5  # shorter intervals (the drain's tail) hold too few requests for a p50

StepSink = Callable[[int, Step], None]


@dataclass(frozen=True)
class CapacityRun:
    """The steps in the order they ran, and whether Ctrl-C ended the search."""

    steps: tuple[Step, ...]
    interrupted: bool


def run_capacity(
    plan: CapacityPlan,
    template: BenchPlan,
    target: Target,
    thresholds: Sequence[Threshold],
    on_step: StepSink | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CapacityRun:
    """Step the load on ``target`` as ``plan`` says; ``template`` gives the endpoint, message
    and engine of every step (its rate, duration and warm-up are replaced)."""
    steps: list[Step] = []
    try:
        while (nxt := next_step(plan, steps)) is not None:
            rate, phase = nxt
            bench = replace(
                template, rate=rate, duration_s=plan.step_duration_s, requests=None,
                concurrency=None, warmup_s=plan.warmup_s,
            )  # fmt: skip
            result = run_bench(bench, target)
            measure = replace(measure_step(rate, result, thresholds), window_s=plan.step_duration_s)
            step = judge_step(measure, phase, baseline(steps))
            steps.append(step)
            if on_step is not None:
                on_step(len(steps) - 1, step)
            if step.interrupted:
                return CapacityRun(tuple(steps), True)
            if not step.passed:
                sleep(min(MAX_COOL_DOWN_S, measure.latency.max / 1000.0))
    except KeyboardInterrupt:
        return CapacityRun(tuple(steps), True)
    return CapacityRun(tuple(steps), False)


def measure_step(rate: float, result: BenchResult, thresholds: Sequence[Threshold]) -> StepMeasure:
    """One bench result as plain values, with its SLA verdicts."""
    took = [a for a, tally in result.agents.items() if tally.requests and a != NO_AGENT]
    return StepMeasure(
        rate=rate,
        achieved_rps=result.achieved_rate
        if result.achieved_rate is not None
        else result.throughput_rps,
        throughput_rps=result.throughput_rps,
        latency=LatencySummary.of(result.latency.summary()),
        requests=result.requests,
        errors=sum(result.errors.values()),
        valid=result.valid,
        invalid_reason=result.invalid_reason,
        sla=tuple(evaluate(thresholds, observation(result))),
        interval_p50_ms=_interval_p50s(result),
        interval_first_token_p50_ms=_interval_first_token_p50s(result),
        replicas=max(1, len(took)),
        interrupted=result.interrupted,
        phases=None
        if result.phases is None
        else {p: LatencySummary.of(h.summary()) for p, h in result.phases.hists.items()},
        error_kinds={str(k): n for k, n in result.errors.items() if n},
    )


def _interval_p50s(result: BenchResult) -> tuple[float, ...]:
    out = []
    for iv in result.intervals:
        if iv.count and iv.length_s >= MIN_INTERVAL_S:
            p50 = iv.histogram.percentile_ms(50.0)
            if p50 is not None:
                out.append(p50)
    return tuple(out)


def _interval_first_token_p50s(result: BenchResult) -> tuple[float, ...]:
    """--endpoint stream: each interval's first_artifact p50, as :func:`_interval_p50s`."""
    out = []
    for iv in result.intervals:
        first = iv.phases.get(FIRST_TOKEN) if iv.phases is not None else None
        if first is not None and first.count and iv.length_s >= MIN_INTERVAL_S:
            p50 = first.histogram.percentile_ms(50.0)
            if p50 is not None:
                out.append(p50)
    return tuple(out)


def format_step(index: int, step: Step) -> str:
    """``step 4  refine  256 req/s  achieved 255.9  p50 20.4 ms  p99 22.0 ms  errors 0%  pass``."""
    m = step.measure
    verdict = "pass" if step.passed else f"FAIL: {step.reason}"
    return (
        f"step {index + 1:>2}  {step.phase:<6}  {format_number(m.rate):>9} req/s  "
        f"achieved {format_rate(m.achieved_rps, '')}  p50 {format_ms(m.latency.p50)}  "
        f"p99 {format_ms(m.latency.p99)}  errors {format_percent(m.error_rate)}  {verdict}"
    )
