"""The ``latcli.bench/v1`` report (DESIGN §6) as a typed value, and its JSON.

:class:`BenchReport` is what every producer returns (a run: :mod:`latcli.reports.bench_build`,
a merge: :mod:`latcli.reports.bench_merge`, a file: :mod:`latcli.reports.bench_load`) and what
every consumer takes (the renderers, :mod:`latcli.reports.bench_sla`, ``compare``); JSON is made
only at the edge (``-o``, ``--json``). ``BenchReport.from_json(d).to_json() == d`` for every
document latcli writes: values are kept as the document states them (rounded, an int stays an
int), and the derived fields (``requests``, ``pass``) are derived as the writer derived them.

Beside the contract's fields a report carries what a merge needs (``histograms``: each HDR
histogram encoded, with its exact sum, min and max, because an encoding keeps bucket counts
only), and ``started_at``, ``interrupted``, ``dropped_in_flight``, ``policy``, ``note``,
``runs``, ``target_kind``, ``workers`` (processes that generated the load), and for sharded runs
``shard`` (a shard's own report: which shard of which run) or ``shards`` (a merge of shards:
which came, which are missing), both described in :mod:`latcli.core.shards`. ``timeline`` is
described in :mod:`latcli.reports.bench_timeline`.

``--endpoint stream`` adds ``phases_ms`` (first_event, first_artifact, gap, total: each the
summary ``latency_ms`` has) overall, per agent and on every timeline point (``compare`` reads
``timeline[i].phases_ms[PHASE]["pNN"]``), their histograms in ``histograms.phases``,
``histograms.agent_phases`` and ``histograms.timeline_phases``; the ``.hlog`` has one tagged line
per phase and interval (:mod:`latcli.reports.hlog`). Other endpoints have ``phases_ms: null``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latcli.core.shards import ShardBlock, ShardSet
from latcli.core.sla import MetricKind, Verdict, parse_threshold
from latcli.reports.bench_model import IN_FLIGHT_POLICY
from latcli.reports.bench_timeline import TimelinePoint
from latcli.reports.bounded_histogram import (
    BoundedHistogram,
    Phases,
    PhaseSpectra,
    Spectrum,
    phases_from_json,
    phases_json,
    phases_summary,
    spectra_from_fields,
    spectra_json,
)
from latcli.reports.files import write_text
from latcli.reports.json_fields import Fields

SCHEMA = "latcli.bench/v1"


@dataclass(frozen=True)
class AgentRow:
    """One agent's part of a report: every request counted, the answered ones timed."""

    requests: int
    answered: int
    share: float  # of the report's requests, rounded to 6 digits
    latency_ms: Spectrum
    phases_ms: PhaseSpectra | None  # --endpoint stream
    latency: BoundedHistogram  # histograms.agents[ID]
    phases: Phases | None = None  # histograms.agent_phases[ID]

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "answered": self.answered,
            "share": self.share,
            "latency_ms": self.latency_ms.as_json(),
            "phases_ms": spectra_json(self.phases_ms),
        }


@dataclass(frozen=True)
class Generator:
    """The generator's own account: the rate asked and held, and whether the run is valid."""

    target_rate: float | None  # open model only
    achieved_rate: float
    schedule_lag_ms_p99: float | None
    valid: bool
    reason: str | None = None  # why the run is invalid

    def as_json(self) -> dict[str, Any]:
        return {
            "target_rate": self.target_rate,
            "achieved_rate": self.achieved_rate,
            "schedule_lag_ms_p99": self.schedule_lag_ms_p99,
            "valid": self.valid,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RunHistograms:
    """The whole run's histograms (the agents' and the timeline's sit on their rows)."""

    latency: BoundedHistogram
    service_time: BoundedHistogram | None = None  # open model
    schedule_lag: BoundedHistogram | None = None  # open model
    phases: Phases | None = None  # --endpoint stream


@dataclass(frozen=True)
class BenchReport:
    """One ``latcli.bench/v1`` report: a run's, a file's or a merge's. Field by field the
    document's, in its order; ``histograms`` are the run's encoded HDR histograms."""

    target: str
    endpoint: str | None
    model: str | None  # "closed" | "open"; None from an .hlog
    concurrency: int | None
    rate: float | None
    duration_s: float
    ok: int
    errors: Mapping[str, int]  # error kind -> count
    status_codes: Mapping[str, int]  # "200" -> count
    throughput_rps: float
    goodput_rps: float
    latency_ms: Spectrum
    phases_ms: PhaseSpectra | None
    service_time_ms: Spectrum | None
    agents: Mapping[str, AgentRow]
    generator: Generator
    sla: tuple[Verdict, ...]
    histograms: RunHistograms
    target_kind: str | None = None
    started_at: float = 0.0
    interrupted: bool = False
    dropped_in_flight: int = 0
    policy: str = IN_FLIGHT_POLICY
    note: str | None = None
    runs: int = 1
    workers: int | None = None
    shard: ShardBlock | None = None
    shards: ShardSet | None = None
    timeline: tuple[TimelinePoint, ...] = ()

    @property
    def requests(self) -> int:
        """Every measured request, answered or failed."""
        return self.ok + sum(self.errors.values())

    @property
    def passed(self) -> bool:
        """The document's ``pass``: a valid run, something answered, every threshold met."""
        return self.generator.valid and self.ok > 0 and all(v.passed for v in self.sla)

    def to_json(self) -> dict[str, Any]:
        """The document (DESIGN §6), histograms included."""
        return {
            "schema": SCHEMA,
            "target": self.target,
            "endpoint": self.endpoint,
            "model": self.model,
            "concurrency": self.concurrency,
            "rate": self.rate,
            "duration_s": self.duration_s,
            "requests": self.requests,
            "ok": self.ok,
            "errors": dict(self.errors),
            "status_codes": dict(self.status_codes),
            "throughput_rps": self.throughput_rps,
            "goodput_rps": self.goodput_rps,
            "latency_ms": self.latency_ms.as_json(),
            "phases_ms": spectra_json(self.phases_ms),
            "service_time_ms": _opt_json(self.service_time_ms),
            "agents": {k: a.as_json() for k, a in self.agents.items()},
            "generator": self.generator.as_json(),
            "sla": [{**v.as_json(), "kind": v.kind.value} for v in self.sla],
            "pass": self.passed,
            "target_kind": self.target_kind,
            "started_at": self.started_at,
            "interrupted": self.interrupted,
            "dropped_in_flight": self.dropped_in_flight,
            "policy": self.policy,
            "note": self.note,
            "runs": self.runs,
            "workers": self.workers,
            "shard": _opt_json(self.shard),
            "shards": _opt_json(self.shards),
            "timeline": [p.as_json() for p in self.timeline],
            "histograms": self._histograms_json(),
        }

    def _histograms_json(self) -> dict[str, Any]:
        """``histograms``: every histogram encoded, what a merge adds up."""
        agents = self.agents.items()
        streams = self.histograms.phases is not None
        return {
            "latency": self.histograms.latency.as_json(),
            "service_time": _opt_json(self.histograms.service_time),
            "schedule_lag": _opt_json(self.histograms.schedule_lag),
            "agents": {k: a.latency.as_json() for k, a in agents},
            "timeline": [_opt_json(p.latency) for p in self.timeline],
            "phases": phases_json(self.histograms.phases),
            "agent_phases": {k: phases_json(a.phases) for k, a in agents if a.phases},
            "timeline_phases": [phases_json(p.phases) for p in self.timeline] if streams else None,
        }

    @classmethod
    def from_json(cls, doc: Any, source: str = "report") -> BenchReport:
        """The report of a ``latcli.bench/v1`` document; ReportError (one line naming ``source``
        and the key path, exit 2) if it is not one that can be merged (histograms missing or
        malformed)."""
        return _report_of(Fields(doc, SCHEMA, source=source))


def _opt_json(value: Spectrum | BoundedHistogram | ShardBlock | ShardSet | None) -> Any:
    return None if value is None else value.as_json()


def json_text(report: BenchReport) -> str:
    """The document as JSON text (stdout and ``-o`` write the same)."""
    return json.dumps(report.to_json(), indent=2)


def write_json(path: str | Path, report: BenchReport) -> None:
    """Write the ``latcli.bench/v1`` document; ReportError (exit 2) if the file cannot be."""
    write_text(path, json_text(report) + "\n")


# --- reading a document ----------------------------------------------------------------------
# The contract's fields (DESIGN §6) must be there; fields added since may be absent.


def _hist(value: Any) -> BoundedHistogram:
    if not isinstance(value, Mapping):
        raise ValueError("not an encoded histogram")
    return BoundedHistogram.from_json(value)


def _maybe_hist(value: Any) -> BoundedHistogram | None:
    """A histogram; None for an empty entry (null: a point written without one)."""
    return _hist(value) if value else None


def _opt_hist(hists: Fields, key: str) -> BoundedHistogram | None:
    return hists.default(key, lambda k: hists.parsed(k, _maybe_hist), None)


def _report_of(doc: Fields) -> BenchReport:
    hists = doc.child("histograms")
    latency = hists.parsed("latency", _hist, "an encoded histogram")
    service = _opt_hist(hists, "service_time")
    phases = hists.default("phases", lambda k: hists.parsed(k, phases_from_json), None)
    ok, errors = doc.integer("ok"), doc.optional("errors", doc.counts) or {}
    return BenchReport(
        target=doc.text("target"),
        endpoint=doc.optional("endpoint", doc.text),
        model=doc.optional("model", doc.text),
        concurrency=doc.optional("concurrency", doc.integer),
        rate=doc.optional("rate", doc.number),
        duration_s=doc.number("duration_s"),
        ok=ok,
        errors=errors,
        status_codes=doc.default("status_codes", doc.counts, {}, null=True),
        throughput_rps=doc.number("throughput_rps"),
        goodput_rps=_goodput(doc),
        latency_ms=_spectrum(doc, "latency_ms", latency),
        phases_ms=_spectra(doc, phases),
        service_time_ms=None if service is None else _spectrum(doc, "service_time_ms", service),
        agents=_agents(doc, hists, ok + sum(errors.values())),
        generator=_generator(doc.child("generator")),
        sla=tuple(_verdict(item) for item in doc.default("sla", doc.items, [], null=True)),
        histograms=RunHistograms(latency, service, _opt_hist(hists, "schedule_lag"), phases),
        target_kind=doc.optional("target_kind", doc.text, missing_ok=True),
        started_at=doc.default("started_at", doc.number, 0.0, null=True),
        interrupted=doc.default("interrupted", doc.flag, False),
        dropped_in_flight=doc.default("dropped_in_flight", doc.integer, 0, null=True),
        policy=doc.default("policy", doc.text, IN_FLIGHT_POLICY),
        note=doc.optional("note", doc.text, missing_ok=True),
        runs=doc.default("runs", doc.integer, 1, null=True),
        workers=doc.optional("workers", doc.integer, missing_ok=True),
        shard=doc.optional("shard", lambda k: doc.parsed(k, ShardBlock.from_json), missing_ok=True),
        shards=doc.optional("shards", lambda k: doc.parsed(k, ShardSet.from_json), missing_ok=True),
        timeline=_timeline(doc, hists),
    )


def _goodput(doc: Fields) -> float:
    """Answered requests per second (a report from before goodput_rps: from its counts)."""
    if "goodput_rps" in doc:
        return doc.number("goodput_rps")
    duration = doc.number("duration_s")
    return round(doc.integer("ok") / duration, 3) if duration > 0 else 0.0


def _spectrum(doc: Fields, key: str, hist: BoundedHistogram) -> Spectrum:
    """A summary as the document states it (one without it: from the histogram)."""
    stated = doc.optional(key, doc.child, missing_ok=True)
    return Spectrum.of(hist) if stated is None else Spectrum.from_fields(stated)


def _spectra(doc: Fields, phases: Phases | None) -> PhaseSpectra | None:
    """``phases_ms`` as the document states it (one without it: from the histograms)."""
    stated = doc.optional("phases_ms", doc.child, missing_ok=True)
    return phases_summary(phases) if stated is None else spectra_from_fields(stated)


def _agents(doc: Fields, hists: Fields, total: int) -> dict[str, AgentRow]:
    rows = doc.child("agents")
    agent_hists = hists.child("agents")
    agent_phases = hists.optional("agent_phases", hists.child, missing_ok=True)
    out = {}
    for agent_id in rows.obj:
        row = rows.child(agent_id)
        latency = agent_hists.parsed(agent_id, _hist, "an encoded histogram")
        phases = None
        if agent_phases is not None and agent_phases.get(agent_id):
            phases = agent_phases.parsed(agent_id, phases_from_json)
        requests = row.integer("requests")
        out[agent_id] = AgentRow(
            requests=requests,
            answered=row.default("answered", row.integer, latency.hist.count, null=True),
            share=row.default("share", row.number, round(requests / (total or 1), 6)),
            latency_ms=_spectrum(row, "latency_ms", latency),
            phases_ms=_spectra(row, phases),
            latency=latency,
            phases=phases,
        )
    return out


def _generator(gen: Fields) -> Generator:
    return Generator(
        target_rate=gen.optional("target_rate", gen.number),
        achieved_rate=gen.number("achieved_rate"),
        schedule_lag_ms_p99=gen.optional("schedule_lag_ms_p99", gen.number),
        valid=gen.flag("valid"),
        reason=gen.optional("reason", gen.text, missing_ok=True),
    )


def _verdict(item: Fields) -> Verdict:
    name, expr = item.text("name"), item.text("expr")
    # A report from elsewhere may lack the kind: its expression says what it measures.
    kind = item.default("kind", lambda k: item.choice(k, tuple(MetricKind)), None)
    if kind is None:
        kind = item.parsed("expr", lambda e: parse_threshold(e, name).kind)
    observed = item.optional("observed", item.number, missing_ok=True)
    return Verdict(name, expr, observed, item.flag("pass"), kind)


def _timeline(doc: Fields, hists: Fields) -> tuple[TimelinePoint, ...]:
    points = doc.default("timeline", doc.items, [], null=True)
    none: list[None] = [None] * len(points)  # a report written without the points' histograms
    latencies = hists.default("timeline", lambda k: hists.each(k, _maybe_hist), [], null=True)
    phases = hists.default(
        "timeline_phases", lambda k: hists.each(k, phases_from_json), [], null=True
    )
    if not len(points) == len(latencies or none) == len(phases or none):
        raise hists.error("not one histogram per timeline point", "timeline")
    return tuple(
        _point(p, latency, phased)
        for p, latency, phased in zip(points, latencies or none, phases or none, strict=True)
    )


def _point(p: Fields, latency: BoundedHistogram | None, phases: Phases | None) -> TimelinePoint:
    return TimelinePoint(
        p.number("t_s"),
        p.number("length_s"),
        p.integer("requests"),
        p.integer("errors"),
        p.number("rps"),
        latency,
        p.optional("p50_ms", p.number, missing_ok=True),
        p.optional("p99_ms", p.number, missing_ok=True),
        phases,
        p.optional("phases_ms", lambda k: spectra_from_fields(p.child(k)), missing_ok=True),
    )
