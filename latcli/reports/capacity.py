"""What ``latcli capacity`` found (typed), and its JSON contract ``latcli.capacity/v1``.

:func:`capacity_report` turns the core's estimate (:class:`~latcli.core.capacity.Capacity`) into
a :class:`CapacityReport`, rounding once, here; :meth:`CapacityReport.to_json` writes the
document and :meth:`CapacityReport.from_json` reads one back (a :class:`ReportError` naming the
key on anything else), so that ``to_json(from_json(doc)) == doc``. The views and the HTML page
take the report, never the document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from latcli.core.capacity import (
    FIRST_TOKEN,
    Capacity,
    CapacityPlan,
    LatencySummary,
    LimitedBy,
    Step,
    StepKind,
    StepMeasure,
)
from latcli.core.sla import Verdict
from latcli.reports.files import ReportError
from latcli.reports.json_fields import Fields

SCHEMA = "latcli.capacity/v1"
STREAMS_METHOD = "littles_law_mean_total"  # arrival rate × mean total time (from the send)
_STEP_KINDS: tuple[StepKind, ...] = ("step", "refine", "retry")
_LIMITS: tuple[LimitedBy, ...] = ("target", "generator", "max_rate", "interrupted", "steps")
_LATENCY_KEYS = ("min", "p50", "p90", "p95", "p99", "max", "mean")


@dataclass(frozen=True)
class Latency:
    """A latency summary in ms, as written (rounded to µs)."""

    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, s: LatencySummary) -> Latency:
        return cls(*(round(getattr(s, k), 3) for k in _LATENCY_KEYS))

    def to_json(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in _LATENCY_KEYS}


@dataclass(frozen=True)
class SlaResult:
    """One threshold's verdict on a step (the bench ``sla`` item)."""

    name: str
    expr: str
    observed: float | None
    passed: bool

    @classmethod
    def of(cls, v: Verdict) -> SlaResult:
        return cls(v.name, v.expr, v.observed, v.passed)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "expr": self.expr,
            "observed": self.observed,
            "pass": self.passed,
        }


@dataclass(frozen=True)
class StepReport:
    """One step as measured and judged; ``reason`` says why it failed (None: it passed)."""

    rate: float  # asked, req/s
    achieved_rps: float
    throughput_rps: float
    latency: Latency
    error_rate: float
    in_flight: float  # Little's law: arrival rate × mean latency
    passed: bool
    reason: str | None
    phase: StepKind
    requests: int
    errors: int
    replicas: int
    valid: bool
    generator_note: str | None
    utilisation: float | None  # rate / the sustainable rate
    interval_p50_ms: tuple[float, ...]
    interval_first_artifact_p50_ms: tuple[float, ...]
    sla: tuple[SlaResult, ...]
    interrupted: bool
    errors_by_kind: Mapping[str, int]
    phases: Mapping[str, Latency] | None  # --endpoint stream
    concurrent_streams: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "achieved_rps": self.achieved_rps,
            "throughput_rps": self.throughput_rps,
            "latency_ms": self.latency.to_json(),
            "error_rate": self.error_rate,
            "in_flight": self.in_flight,
            "pass": self.passed,
            "reason": self.reason,
            "phase": self.phase,
            "requests": self.requests,
            "errors": self.errors,
            "replicas": self.replicas,
            "valid": self.valid,
            "generator_note": self.generator_note,
            "utilisation": self.utilisation,
            "interval_p50_ms": list(self.interval_p50_ms),
            "interval_first_artifact_p50_ms": list(self.interval_first_artifact_p50_ms),
            "sla": [v.to_json() for v in self.sla],
            "interrupted": self.interrupted,
            "errors_by_kind": dict(self.errors_by_kind),
            "phases_ms": None
            if self.phases is None
            else {p: s.to_json() for p, s in self.phases.items()},
            "concurrent_streams": self.concurrent_streams,
        }


@dataclass(frozen=True)
class Knee:
    """The highest passing step: its rate and its index in ``steps`` (execution order)."""

    rate: float
    index: int


@dataclass(frozen=True)
class LittlesLaw:
    """L = λ·W at the knee."""

    throughput_rps: float
    arrival_rps: float
    mean_latency_ms: float
    in_flight: float


@dataclass(frozen=True)
class StreamsAtKnee:
    """``--endpoint stream``: the concurrent streams at the knee, Little's law on the mean
    total time from the send."""

    concurrent_at_knee: float
    per_replica: float
    method: str
    arrival_rps: float
    total: Latency
    first_artifact: Latency | None

    def to_json(self) -> dict[str, Any]:
        return {
            "concurrent_at_knee": self.concurrent_at_knee,
            "per_replica": self.per_replica,
            "method": self.method,
            "arrival_rps": self.arrival_rps,
            "total_ms": self.total.to_json(),
            "first_artifact_ms": None
            if self.first_artifact is None
            else self.first_artifact.to_json(),
        }


@dataclass(frozen=True)
class CapacityReport:
    """The ``latcli.capacity/v1`` document as values. ``plan`` is the search as asked."""

    target: str
    endpoint: str
    sla: tuple[str, ...]
    replicas: int  # that took traffic at the knee (else the target's replicas)
    plan: CapacityPlan
    steps: tuple[StepReport, ...]
    knee: Knee | None
    sustainable_rps: float | None
    per_replica_rps: float | None
    replicas_needed: int | None
    reasoning: tuple[str, ...]
    passed: bool
    target_met: bool | None
    limited_by: LimitedBy | None
    interrupted: bool
    littles_law: LittlesLaw | None
    per_replica_limit_rps: float | None
    streams: StreamsAtKnee | None

    def to_json(self) -> dict[str, Any]:
        p = self.plan
        law = self.littles_law
        return {
            "schema": SCHEMA,
            "target": self.target,
            "endpoint": self.endpoint,
            "sla": list(self.sla),
            "replicas": self.replicas,
            "step_duration_s": p.step_duration_s,
            "steps": [s.to_json() for s in self.steps],
            "knee": None
            if self.knee is None
            else {"rate": self.knee.rate, "index": self.knee.index},
            "sustainable_rps": self.sustainable_rps,
            "per_replica_rps": self.per_replica_rps,
            "target_rps": p.target_rps,
            "headroom": p.headroom,
            "replicas_needed": self.replicas_needed,
            "reasoning": list(self.reasoning),
            "pass": self.passed,
            "target_met": self.target_met,
            "limited_by": self.limited_by,
            "interrupted": self.interrupted,
            "littles_law": None
            if law is None
            else {
                "throughput_rps": law.throughput_rps,
                "arrival_rps": law.arrival_rps,
                "mean_latency_ms": law.mean_latency_ms,
                "in_flight": law.in_flight,
            },
            "per_replica_limit_rps": self.per_replica_limit_rps,
            "streams": None if self.streams is None else self.streams.to_json(),
            "warmup_s": p.warmup_s,
            "start_rate": p.start_rate,
            "max_rate": p.max_rate,
            "factor": p.factor,
            "resolution": p.resolution,
        }

    @classmethod
    def from_json(cls, obj: object, source: str | None = None) -> CapacityReport:
        """A report from a parsed ``latcli.capacity/v1`` document; ReportError (one line naming
        ``source`` when given and the key path, exit 2) on a document that is not one."""
        doc = Fields(obj, SCHEMA, source=source)
        schema = doc.get("schema")
        if schema != SCHEMA:
            named = f"{source}: " if source else ""
            raise ReportError(f"{named}not a {SCHEMA} report (schema {schema!r})")
        return _report_of(doc)


# ---- from the core's estimate ---------------------------------------------------------------


def capacity_report(
    c: Capacity, *, target: str, endpoint: str, sla: Sequence[str]
) -> CapacityReport:
    """The report of the search ``c`` (its figures rounded as the document writes them)."""
    p = c.plan
    knee = None if c.knee is None else c.steps[c.knee].measure
    return CapacityReport(
        target=target,
        endpoint=endpoint,
        sla=tuple(sla),
        replicas=c.replicas,
        plan=p,
        steps=tuple(_step_report(s, c.sustainable_rps) for s in c.steps),
        knee=None if c.knee is None else Knee(c.steps[c.knee].rate, c.knee),
        sustainable_rps=c.sustainable_rps,
        per_replica_rps=_round(c.per_replica_rps),
        replicas_needed=c.replicas_needed,
        reasoning=tuple(c.reasoning),
        passed=c.passed,
        target_met=c.target_met,
        limited_by=c.limited_by,
        interrupted=c.interrupted,
        littles_law=None if knee is None else _littles_law(knee),
        per_replica_limit_rps=None
        if c.per_replica_rps is None or p.target_rps is None
        else round(c.per_replica_rps * (1.0 - p.headroom), 3),
        streams=_streams(c, knee),
    )


def _step_report(step: Step, sustainable: float | None) -> StepReport:
    m = step.measure
    return StepReport(
        rate=m.rate,
        achieved_rps=round(m.achieved_rps, 3),
        throughput_rps=round(m.throughput_rps, 3),
        latency=Latency.of(m.latency),
        error_rate=round(m.error_rate, 6),
        in_flight=round(m.in_flight, 3),
        passed=step.passed,
        reason=step.reason,
        phase=step.phase,
        requests=m.requests,
        errors=m.errors,
        replicas=m.replicas,
        valid=m.valid,
        generator_note=m.invalid_reason,
        utilisation=None if not sustainable else round(m.rate / sustainable, 4),
        interval_p50_ms=tuple(round(v, 3) for v in m.interval_p50_ms),
        interval_first_artifact_p50_ms=tuple(round(v, 3) for v in m.interval_first_token_p50_ms),
        sla=tuple(SlaResult.of(v) for v in m.sla),
        interrupted=m.interrupted,
        errors_by_kind=dict(sorted(m.error_kinds.items())),
        phases=None if m.phases is None else {p: Latency.of(s) for p, s in m.phases.items()},
        concurrent_streams=_round(m.concurrent_streams),
    )


def _littles_law(knee: StepMeasure) -> LittlesLaw:
    return LittlesLaw(
        throughput_rps=round(knee.throughput_rps, 3),
        arrival_rps=round(knee.arrival_rps, 3),
        mean_latency_ms=round(knee.latency.mean, 3),
        in_flight=round(knee.in_flight, 3),
    )


def _streams(c: Capacity, knee: StepMeasure | None) -> StreamsAtKnee | None:
    """None: not a stream run, or no knee."""
    if knee is None or knee.phases is None or knee.concurrent_streams is None:
        return None
    first = knee.phases.get(FIRST_TOKEN)
    return StreamsAtKnee(
        concurrent_at_knee=round(knee.concurrent_streams, 3),
        per_replica=round(knee.concurrent_streams / max(1, c.replicas), 3),
        method=STREAMS_METHOD,
        arrival_rps=round(knee.arrival_rps, 3),
        total=Latency.of(knee.phases["total"]),
        first_artifact=None if first is None else Latency.of(first),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# ---- from a document ------------------------------------------------------------------------


def _latency(f: Fields) -> Latency:
    return Latency(*(f.number(k) for k in _LATENCY_KEYS))


def _step_of(f: Fields) -> StepReport:
    phases = None
    if f.present("phases_ms"):
        block = f.child("phases_ms")
        phases = {p: _latency(block.child(p)) for p in block.obj}
    return StepReport(
        rate=f.number("rate"),
        achieved_rps=f.number("achieved_rps"),
        throughput_rps=f.number("throughput_rps"),
        latency=_latency(f.child("latency_ms")),
        error_rate=f.number("error_rate"),
        in_flight=f.number("in_flight"),
        passed=f.flag("pass"),
        reason=f.optional("reason", f.text),
        phase=f.choice("phase", _STEP_KINDS),
        requests=f.integer("requests"),
        errors=f.integer("errors"),
        replicas=f.integer("replicas"),
        valid=f.flag("valid"),
        generator_note=f.optional("generator_note", f.text),
        utilisation=f.optional("utilisation", f.number),
        interval_p50_ms=f.numbers("interval_p50_ms"),
        interval_first_artifact_p50_ms=f.numbers("interval_first_artifact_p50_ms"),
        sla=tuple(_sla_of(v) for v in f.items("sla")),
        interrupted=f.flag("interrupted"),
        errors_by_kind=f.counts("errors_by_kind"),
        phases=phases,
        concurrent_streams=f.optional("concurrent_streams", f.number),
    )


def _sla_of(f: Fields) -> SlaResult:
    return SlaResult(
        f.text("name"), f.text("expr"), f.optional("observed", f.number), f.flag("pass")
    )


def _plan_of(doc: Fields) -> CapacityPlan:
    try:
        return CapacityPlan(
            start_rate=doc.number("start_rate"),
            max_rate=doc.optional("max_rate", doc.number),
            factor=doc.number("factor"),
            resolution=doc.number("resolution"),
            step_duration_s=doc.number("step_duration_s"),
            warmup_s=doc.number("warmup_s"),
            target_rps=doc.optional("target_rps", doc.number),
            headroom=doc.number("headroom"),
        )
    except ValueError as exc:
        raise doc.error(f"the search plan: {exc}") from None


def _knee_of(doc: Fields, steps: Sequence[StepReport]) -> Knee | None:
    if not doc.present("knee"):
        return None
    f = doc.child("knee")
    knee = Knee(f.number("rate"), f.integer("index"))
    if not 0 <= knee.index < len(steps):
        raise f.error(f"{knee.index} is not a step", "index")
    return knee


def _littles_law_of(f: Fields) -> LittlesLaw:
    return LittlesLaw(
        f.number("throughput_rps"),
        f.number("arrival_rps"),
        f.number("mean_latency_ms"),
        f.number("in_flight"),
    )


def _streams_of(f: Fields) -> StreamsAtKnee:
    first = _latency(f.child("first_artifact_ms")) if f.present("first_artifact_ms") else None
    return StreamsAtKnee(
        concurrent_at_knee=f.number("concurrent_at_knee"),
        per_replica=f.number("per_replica"),
        method=f.text("method"),
        arrival_rps=f.number("arrival_rps"),
        total=_latency(f.child("total_ms")),
        first_artifact=first,
    )


def _report_of(doc: Fields) -> CapacityReport:
    steps = tuple(_step_of(s) for s in doc.items("steps"))
    needed = doc.optional("replicas_needed", doc.integer)
    return CapacityReport(
        target=doc.text("target"),
        endpoint=doc.text("endpoint"),
        sla=doc.texts("sla"),
        replicas=doc.integer("replicas"),
        plan=_plan_of(doc),
        steps=steps,
        knee=_knee_of(doc, steps),
        sustainable_rps=doc.optional("sustainable_rps", doc.number),
        per_replica_rps=doc.optional("per_replica_rps", doc.number),
        replicas_needed=needed,
        reasoning=doc.texts("reasoning"),
        passed=doc.flag("pass"),
        target_met=doc.optional("target_met", doc.flag),
        limited_by=doc.optional("limited_by", lambda k: doc.choice(k, _LIMITS)),
        interrupted=doc.flag("interrupted"),
        littles_law=_littles_law_of(doc.child("littles_law"))
        if doc.present("littles_law")
        else None,
        per_replica_limit_rps=doc.optional("per_replica_limit_rps", doc.number),
        streams=_streams_of(doc.child("streams")) if doc.present("streams") else None,
    )
