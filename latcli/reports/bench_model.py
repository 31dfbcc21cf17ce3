"""What a bench run is asked to do and what it measured: the values shared by the load engine,
the workers, the reports and ``latcli report``.

Latencies live in :class:`~latcli.reports.histogram.LatencyHistogram` (HDR, µs); workers merge them
through ``encode()`` / ``decode()``, never raw samples (DESIGN §5).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from latcli.core.schedule import split_evenly
from latcli.reports.histogram import LatencyHistogram

Model = Literal["closed", "open"]

# What happens to requests outstanding when a run ends (stated in --help and the bench JSON).
IN_FLIGHT_POLICY = (
    "requests already sent when the run ends are awaited (each within its own timeout) and "
    "counted; requests not yet sent are not sent; on Ctrl-C every outstanding request is "
    "cancelled, not counted, and reported as dropped_in_flight"
)
Endpoint = Literal["health", "discovery", "message", "stream"]
ENDPOINTS: tuple[Endpoint, ...] = get_args(Endpoint)
# The phases of a streamed message that ``--endpoint stream`` keeps as HDR histograms (DESIGN §6
# ``phases_ms``). ``gap`` is each message's *longest* inter-chunk gap, one value per message:
# the worst stall a reader saw, weighted per answer (every gap would let long answers dominate);
# an answer of one chunk has no gap, so the gap histogram may count fewer than the others.
PHASES = ("first_event", "first_artifact", "gap", "total")
PhaseValues = tuple[float | None, float | None, float | None, float | None]  # ms, PHASES order
TargetKind = Literal["url", "agent", "type", "mix"]  # mix: a --targets file


@dataclass(frozen=True)
class BenchPlan:
    """The run as asked. Exactly one of ``concurrency`` (closed) and ``rate`` (open) is set;
    exactly one of ``duration_s`` and ``requests``."""

    target: str  # as the user typed it
    target_kind: TargetKind
    endpoint: Endpoint = "health"
    concurrency: int | None = None
    rate: float | None = None  # requests/s, global (split across workers)
    duration_s: float | None = None
    requests: int | None = None
    warmup_s: float = 0.0  # excluded from every result
    max_in_flight: int | None = None  # open model: cap on outstanding requests
    workers: int = 1
    message: str = "ping"
    engine: str = "raw"
    verify: bool | str = True  # TLS: the default trust store, a CA file's path, or off
    shard: int = 0  # --shard I/N: this process runs shard ``shard`` of ``shards``
    shards: int = 1
    start_at: float | None = None  # --start-at: the schedule's start, wall clock (epoch s)

    @property
    def model(self) -> Model:
        return "open" if self.rate is not None else "closed"

    @property
    def lanes(self) -> int:
        """The whole run's parts: every shard's every worker (``schedule`` splits by lane)."""
        return self.workers * self.shards

    def lane(self, worker: int) -> int:
        """Worker ``worker``'s lane: shard ``i`` of N with W workers is lanes i, N + i, ...,
        (W - 1)N + i of WN, so shard i sends global request kN + i as the issue asks, and a
        shard's workers interleave inside its share as the shards do with each other."""
        return worker * self.shards + self.shard

    @property
    def share_rate(self) -> float | None:
        """This process's shard's rate (open model): the whole run's split evenly."""
        return None if self.rate is None else self.rate / self.shards

    @property
    def share_concurrency(self) -> int | None:
        """This shard's connections (closed model); the shards' shares sum to ``concurrency``."""
        if self.concurrency is None:
            return None
        return split_evenly(self.concurrency, self.shards)[self.shard]


class PhaseTally:
    """One HDR histogram per stream phase (:data:`PHASES`), answered streams only."""

    __slots__ = ("hists",)

    def __init__(self, hists: dict[str, LatencyHistogram] | None = None) -> None:
        self.hists = hists if hists is not None else {p: LatencyHistogram() for p in PHASES}

    def record(self, values: PhaseValues) -> None:
        for phase, ms in zip(PHASES, values, strict=True):
            if ms is not None:
                self.hists[phase].record_us(max(0, int(ms * 1000.0)))

    def merge(self, other: PhaseTally) -> None:
        for phase, hist in other.hists.items():
            self.hists[phase].merge(hist)

    def reset(self) -> None:
        for hist in self.hists.values():
            hist.reset()

    def copy(self) -> PhaseTally:
        return PhaseTally({p: h.copy() for p, h in self.hists.items()})

    @property
    def count(self) -> int:
        return self.hists["total"].count


@dataclass
class AgentTally:
    """One agent's part of a run (a type target is routed: several agents): every request
    counted, the answered ones timed."""

    requests: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    phases: PhaseTally | None = None  # --endpoint stream


class IntervalSample:
    """One progress interval (~1 s): its histogram, for .hlog and the over-time chart.

    Kept encoded (~100 bytes) rather than live: a live HDR histogram over 1 µs … 1 h holds
    ~186 KiB, so a long run's 128 intervals grew RSS by ~23 MiB. Count, sum, min and max are
    kept exactly beside the encoding.
    """

    __slots__ = (
        "_count",
        "_encoded",
        "_extremes_us",
        "_sum_us",
        "errors",
        "length_s",
        "phases",
        "start_s",
    )

    def __init__(
        self,
        start_s: float,
        length_s: float,
        histogram: LatencyHistogram,
        errors: int = 0,
        phases: PhaseTally | None = None,
    ) -> None:
        self.start_s = start_s  # since the run's start (after warm-up)
        self.length_s = length_s
        self.errors = errors
        self._pack(histogram)
        # --endpoint stream: each phase's histogram of the interval, packed the same way
        self.phases: dict[str, IntervalSample] | None = None
        if phases is not None:
            self.phases = {p: IntervalSample(start_s, length_s, h) for p, h in phases.hists.items()}

    def _pack(self, histogram: LatencyHistogram) -> None:
        self._encoded = histogram.encode()
        self._count, self._sum_us = histogram.count, histogram.sum_us
        low = round((histogram.min_ms or 0.0) * 1000)
        self._extremes_us = (low, histogram.max_us)

    @property
    def histogram(self) -> LatencyHistogram:
        """A fresh decoded copy: changing it does not change the interval (use absorb)."""
        return LatencyHistogram.decode(self._encoded, self._sum_us, self._extremes_us)

    @property
    def count(self) -> int:
        return self._count

    def absorb(
        self, other: LatencyHistogram, errors: int = 0, phases: PhaseTally | None = None
    ) -> None:
        """Merge ``other``'s values (and ``errors``, and ``phases``) into this interval."""
        merged = self.histogram
        merged.merge(other)
        self._pack(merged)
        self.errors += errors
        if phases is not None:
            if self.phases is None:
                self.phases = {p: IntervalSample(0, 0, LatencyHistogram()) for p in PHASES}
            for phase, hist in phases.hists.items():
                self.phases[phase].absorb(hist)

    def phase_tally(self) -> PhaseTally | None:
        """The interval's phase histograms, decoded (None: not a stream run)."""
        if self.phases is None:
            return None
        return PhaseTally({p: iv.histogram for p, iv in self.phases.items()})


@dataclass
class BenchResult:
    """Everything measured (mutable while the run goes on; merged across workers).

    ``latency`` is measured from each request's *due* time in the open model (wrk2: no
    coordinated omission) and from the send in the closed model; ``service_time`` is always from
    the actual send, and is kept separately only in the open model. Both hold answered requests
    only; failed ones are counted by kind in ``errors`` and by HTTP status in ``status_codes``.
    """

    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    service_time: LatencyHistogram | None = None
    schedule_lag: LatencyHistogram | None = None  # open model: actual send - due time
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # error kind -> count
    status_codes: dict[int, int] = field(default_factory=dict)  # HTTP status -> count
    agents: dict[str, AgentTally] = field(default_factory=dict)
    intervals: list[IntervalSample] = field(default_factory=list)
    elapsed_s: float = 0.0  # measured part of the run (warm-up excluded)
    started_at: float = 0.0  # wall clock, seconds since the epoch
    dropped_in_flight: int = 0  # requests still outstanding at the end (see the policy)
    interrupted: bool = False
    # The generator's own account (open model): measured requests sent per second over the
    # measured window, and whether it held the asked rate (latcli.core.schedule.validity).
    achieved_rate: float | None = None
    valid: bool = True
    invalid_reason: str | None = None
    warmup_requests: int = 0  # completed during the warm-up, excluded from everything above
    start_late_s: float = 0.0  # --start-at: how long after the asked time the schedule began
    phases: PhaseTally | None = None  # --endpoint stream: answered streams' phases

    @property
    def throughput_rps(self) -> float:
        """Completed measured requests (ok and failed) per second of the measured run."""
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def goodput_rps(self) -> float:
        """Answered requests per second of the measured run (what an ``rps`` SLA judges)."""
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def requests(self) -> int:
        return self.ok + sum(self.errors.values())


@dataclass(frozen=True)
class Progress:
    """One progress line's worth: since the measured start (negative during the warm-up)."""

    elapsed_s: float
    requests: int  # measured, completed
    rps: float  # over the last progress period
    p99_ms: float | None  # so far, answered requests
    errors: int
    in_flight: int
    warmup: bool
    p50_ms: float | None = None
    status_codes: Mapping[int, int] = field(default_factory=dict)  # so far
    errors_by_kind: Mapping[str, int] = field(default_factory=dict)  # so far


ProgressSink = Callable[[Progress], None]


def format_progress(p: Progress) -> str:
    """``12.0s  2,001 req/s  p99 21.4 ms  errors 0  in flight 12`` (one stderr line)."""
    p99 = "-" if p.p99_ms is None else f"{p.p99_ms:.1f} ms"
    phase = "warm-up " if p.warmup else ""
    return (
        f"{phase}{p.elapsed_s:5.1f}s  {p.rps:8,.0f} req/s  p99 {p99}  errors {p.errors:,}  "
        f"in flight {p.in_flight}  requests {p.requests:,}"
    )
