"""``--workers W``: W processes, each with its own event loop, transport and histograms.

Each worker runs its share of the plan (``schedule.open_share`` interleaves the global open-model
schedule; the closed model splits C and N evenly) from one common start instant, and sends back
its histograms HDR-encoded with their exact ``sum_us`` (DESIGN §5: never raw samples). The
parent merges them, prints the progress line from the workers' per-second ticks, and turns its
own Ctrl-C into a stop request that every worker honours within 0.1 s.

Processes are spawned, not forked: a forked child would inherit the parent's threads and locks.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from typing import Any

from latcli.core.errors import LatcliError
from latcli.core.schedule import validity
from latcli.engines.bench.run import run_loop, run_share
from latcli.engines.bench.targets import Target
from latcli.reports.bench_model import (
    AgentTally,
    BenchPlan,
    BenchResult,
    IntervalSample,
    PhaseTally,
    Progress,
    ProgressSink,
)
from latcli.reports.histogram import LatencyHistogram

START_SLACK_S = 0.2  # from "all ready" to the common start: every worker is asleep by then
READY_TIMEOUT_S = 60.0  # a worker that does not start within this is an error

# HDR encoding, exact sum_us and exact (min, max): an encoding holds bucket counts only, and a
# bucket's lowest equivalent is up to 0.1 % under the value (200.010 ms reads 199.936).
Encoded = tuple[bytes, int, tuple[int, int] | None]


def _enc(h: LatencyHistogram) -> Encoded:
    return h.encode(), h.sum_us, (h.min_us, h.max_us) if h.count else None


def _dec(e: Encoded) -> LatencyHistogram:
    return LatencyHistogram.decode(e[0], e[1], e[2])


def _enc_phases(t: PhaseTally | None) -> dict[str, Encoded] | None:
    return None if t is None else {p: _enc(h) for p, h in t.hists.items()}


def _dec_phases(e: dict[str, Encoded] | None) -> PhaseTally | None:
    return None if e is None else PhaseTally({p: _dec(h) for p, h in e.items()})


def pack(result: BenchResult) -> dict[str, Any]:
    """A worker's result as picklable plain values, histograms encoded."""
    return {
        "ok": result.ok,
        "errors": dict(result.errors),
        "status_codes": dict(result.status_codes),
        "latency": _enc(result.latency),
        "service_time": _enc(result.service_time) if result.service_time else None,
        "schedule_lag": _enc(result.schedule_lag) if result.schedule_lag else None,
        "agents": {
            k: (t.requests, _enc(t.latency), _enc_phases(t.phases))
            for k, t in result.agents.items()
        },
        "intervals": [
            (iv.start_s, iv.length_s, _enc(iv.histogram), iv.errors, _enc_phases(iv.phase_tally()))
            for iv in result.intervals
        ],
        "phases": _enc_phases(result.phases),
        "elapsed_s": result.elapsed_s,
        "started_at": result.started_at,
        "dropped_in_flight": result.dropped_in_flight,
        "interrupted": result.interrupted,
        "achieved_rate": result.achieved_rate,
        "warmup_requests": result.warmup_requests,
        "start_late_s": result.start_late_s,
    }


def merge(parts: list[dict[str, Any]], plan: BenchPlan) -> BenchResult:
    """One result from the workers' packed results; the open model is judged on the whole."""
    out = BenchResult()
    if plan.model == "open":
        out.service_time, out.schedule_lag = LatencyHistogram(), LatencyHistogram()
    for part in parts:
        _merge_one(out, part)
    if parts:
        out.started_at = min(p["started_at"] for p in parts)
        out.elapsed_s = max(p["elapsed_s"] for p in parts)
    if plan.share_rate is not None:
        out.achieved_rate = sum(p["achieved_rate"] or 0.0 for p in parts)
        lag = out.schedule_lag.percentile_ms(99.0) if out.schedule_lag else None
        out.valid, out.invalid_reason = validity(plan.share_rate, out.achieved_rate, lag)
        if out.interrupted:
            out.valid, out.invalid_reason = True, None
    return out


def _merge_one(out: BenchResult, part: dict[str, Any]) -> None:
    out.ok += part["ok"]
    for kind, n in part["errors"].items():
        out.errors[kind] = out.errors.get(kind, 0) + n
    for status, n in part["status_codes"].items():
        out.status_codes[status] = out.status_codes.get(status, 0) + n
    out.latency.merge(_dec(part["latency"]))
    if out.service_time is not None and part["service_time"]:
        out.service_time.merge(_dec(part["service_time"]))
    if out.schedule_lag is not None and part["schedule_lag"]:
        out.schedule_lag.merge(_dec(part["schedule_lag"]))
    phases = _dec_phases(part["phases"])
    if phases is not None:
        if out.phases is None:
            out.phases = PhaseTally()
        out.phases.merge(phases)
    for agent, (requests, enc, enc_phases) in part["agents"].items():
        tally = out.agents.setdefault(agent, AgentTally())
        tally.requests += requests
        tally.latency.merge(_dec(enc))
        agent_phases = _dec_phases(enc_phases)
        if agent_phases is not None:
            if tally.phases is None:
                tally.phases = PhaseTally()
            tally.phases.merge(agent_phases)
    # Workers cut their intervals on the same clock from the same start: merged by position.
    for i, (start, length, enc, errors, enc_phases) in enumerate(part["intervals"]):
        if i < len(out.intervals):
            iv = out.intervals[i]
            iv.absorb(_dec(enc), errors, _dec_phases(enc_phases))
            iv.length_s = max(iv.length_s, length)
        else:
            out.intervals.append(
                IntervalSample(start, length, _dec(enc), errors, _dec_phases(enc_phases))
            )
    out.dropped_in_flight += part["dropped_in_flight"]
    out.interrupted = out.interrupted or part["interrupted"]
    out.warmup_requests += part["warmup_requests"]
    out.start_late_s = max(out.start_late_s, part["start_late_s"])


# ---- the worker process ---------------------------------------------------------------------


def _worker_main(
    plan: BenchPlan,
    target: Target,
    worker: int,
    messages: Any,
    stop: Event,
    go: Event,
    start_wall: Any,
) -> None:
    """Entry point of worker ``worker``: ready -> wait for go -> run -> send the packed result."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; we poll ``stop``
    try:
        messages.put(("ready", worker, None))
        go.wait()
        start_at = time.monotonic() + (start_wall.value - time.time())

        def tick(tally: Any, so_far: BenchResult) -> None:
            counts = (dict(so_far.status_codes), dict(so_far.errors))  # small, once a second
            messages.put(("tick", worker, (tally.requests, tally.errors, _enc(tally.hist), counts)))

        result = run_loop(
            plan,
            run_share(
                plan,
                target,
                worker=worker,
                start_at=start_at,
                on_tick=tick,
                should_stop=stop.is_set,
                handle_sigint=False,
            ),
        )
        messages.put(("done", worker, pack(result)))
    except BaseException as exc:  # reported to the parent, which fails the run with it
        messages.put(("error", worker, f"{type(exc).__name__}: {exc}"))


# ---- the parent -----------------------------------------------------------------------------


@dataclass
class _ParentView:
    """The parent's running view for the progress line."""

    hist: LatencyHistogram = field(default_factory=LatencyHistogram)
    requests: int = 0
    errors: int = 0
    window: int = 0
    began: float = 0.0  # the measured start (monotonic)
    start: float = 0.0  # the schedule's start: nothing to show before it (--start-at wait)
    last: float = 0.0
    # Each worker's latest (status counts, error counts by kind), summed for the view.
    counts: dict[int, tuple[dict[int, int], dict[str, int]]] = field(default_factory=dict)

    def summed(self, which: int) -> dict[Any, int]:
        out: dict[Any, int] = {}
        for pair in self.counts.values():
            for key, n in pair[which].items():
                out[key] = out.get(key, 0) + n
        return out


def run_workers(
    plan: BenchPlan, target: Target, on_progress: ProgressSink | None = None
) -> BenchResult:
    """Run ``plan`` in ``plan.workers`` processes and merge their results."""
    ctx = multiprocessing.get_context("spawn")
    messages = ctx.Queue()
    stop, go = ctx.Event(), ctx.Event()
    start_wall = ctx.Value("d", 0.0)
    procs = [
        ctx.Process(
            target=_worker_main,
            args=(plan, target, w, messages, stop, go, start_wall),
            daemon=True,
            name=f"latcli-bench-{w}",
        )
        for w in range(plan.workers)
    ]
    interrupted = [False]

    def on_sigint(signum: int, frame: object) -> None:
        interrupted[0] = True
        stop.set()

    # Started with SIGINT ignored, which a new interpreter keeps: a terminal's Ctrl-C reaches
    # the whole process group, and a worker still importing would die of KeyboardInterrupt.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for p in procs:
            p.start()
        signal.signal(signal.SIGINT, on_sigint)
        _wait_ready(messages, procs, plan.workers, stop)
        # --start-at: the asked instant, unless the workers were ready too late for it (then
        # each worker records how late it began, and the command warns)
        start_wall.value = max(plan.start_at or 0.0, time.time() + START_SLACK_S)
        go.set()
        parts = _collect(messages, procs, plan, on_progress, start_wall.value)
    finally:
        signal.signal(signal.SIGINT, previous)
        stop.set()
        go.set()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
    result = merge(parts, plan)
    if interrupted[0]:
        result.interrupted = True
        result.valid, result.invalid_reason = True, None
    return result


def _wait_ready(messages: Any, procs: list[Any], workers: int, stop: Event) -> None:
    ready = 0
    deadline = time.monotonic() + READY_TIMEOUT_S
    while ready < workers:
        if stop.is_set():
            return
        try:
            kind, worker, payload = messages.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return  # Ctrl-C while starting: an empty, interrupted run (exit 130)
            if time.monotonic() > deadline or any(p.exitcode not in (None, 0) for p in procs):
                raise LatcliError("bench workers failed to start") from None
            continue
        if kind == "error" and not stop.is_set():
            raise LatcliError(f"bench worker {worker}: {payload}")
        ready += kind == "ready"


def _collect(
    messages: Any,
    procs: list[Any],
    plan: BenchPlan,
    on_progress: ProgressSink | None,
    start_wall: float,
) -> list[dict[str, Any]]:
    """Every worker's packed result; ticks feed the progress line once a second."""
    parts: dict[int, dict[str, Any]] = {}
    start = time.monotonic() + (start_wall - time.time())
    live = _ParentView(began=start + plan.warmup_s, start=start)
    live.last = max(time.monotonic(), start)  # the first line a second into the run
    while len(parts) < len(procs):
        try:
            kind, worker, payload = messages.get(timeout=0.1)
        except queue.Empty:
            if all(not p.is_alive() for p in procs) and messages.empty():
                break  # a worker died without a word: merge what came
            kind = None
        if kind == "done":
            parts[worker] = payload
        elif kind == "error":
            raise LatcliError(f"bench worker {worker}: {payload}")
        elif kind == "tick":
            requests, errors, enc, counts = payload
            live.counts[worker] = counts
            live.requests += requests
            live.window += requests
            live.errors += errors
            live.hist.merge(_dec(enc))
        _maybe_progress(live, on_progress)
    return [parts[w] for w in sorted(parts)]


def _maybe_progress(live: _ParentView, on_progress: ProgressSink | None) -> None:
    now = time.monotonic()
    if on_progress is None or now - live.last < 1.0 or now < live.start:
        return
    with contextlib.suppress(Exception):  # a progress line is never worth failing a run
        on_progress(
            Progress(
                now - live.began,
                live.requests,
                live.window / (now - live.last),
                live.hist.percentile_ms(99.0),
                live.errors,
                0,
                now < live.began,
                live.hist.percentile_ms(50.0),
                live.summed(0),
                live.summed(1),
            )
        )
    live.window = 0
    live.last = now


def run_bench(
    plan: BenchPlan, target: Target, on_progress: ProgressSink | None = None
) -> BenchResult:
    """Run ``plan`` (``plan.workers`` processes when more than one) and return the merged result."""
    if plan.workers > 1:
        return run_workers(plan, target, on_progress)
    start = None
    if plan.start_at is not None:  # the wall clock's time on this process's monotonic clock
        start = time.monotonic() + (plan.start_at - time.time())
    return run_loop(plan, run_share(plan, target, start_at=start, on_progress=on_progress))
