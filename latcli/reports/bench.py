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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from latcli.core.shards import ShardBlock, ShardError, ShardSet
from latcli.core.sla import MetricKind, SlaSyntaxError, Verdict, parse_threshold
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
    spectra_from_json,
    spectra_json,
)
from latcli.reports.files import ReportError, write_text

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
        """The report of a ``latcli.bench/v1`` document; ReportError naming ``source`` and the
        field if it is not one that can be merged (histograms missing or malformed)."""
        try:
            return _report_of(_Doc(doc, ""))
        except (_Malformed, SlaSyntaxError, ShardError) as exc:
            raise ReportError(f"{source}: not a mergeable {SCHEMA} report ({exc})") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a check missed
            raise ReportError(f"{source}: not a mergeable {SCHEMA} report ({_why(exc)})") from None


def _opt_json(value: Spectrum | BoundedHistogram | ShardBlock | ShardSet | None) -> Any:
    return None if value is None else value.as_json()


def json_text(report: BenchReport) -> str:
    """The document as JSON text (stdout and ``-o`` write the same)."""
    return json.dumps(report.to_json(), indent=2)


def write_json(path: str | Path, report: BenchReport) -> None:
    """Write the ``latcli.bench/v1`` document; ReportError (exit 2) if the file cannot be."""
    write_text(path, json_text(report) + "\n")


# --- reading a document ----------------------------------------------------------------------

T = TypeVar("T")


class _Malformed(ValueError):
    """A field missing or of the wrong type; the message names it by its path."""


class _Doc:
    """A JSON object being read, with its path for messages (``agents.weather-1.requests``).

    ``opt_*`` read a nullable field; ``required`` says whether the key itself must be there
    (the contract's fields) or may be absent (fields added since, read as null)."""

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise _Malformed(f"{path or 'the document'}: not an object")
        self.d: Mapping[str, Any] = value
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.d.get(key) is not None

    def raw(self, key: str) -> Any:
        if key not in self.d:
            raise _Malformed(f"missing field {self.at(key)!r}")
        return self.d[key]

    def _null(self, key: str, required: bool) -> bool:
        return self.raw(key) is None if required else self.d.get(key) is None

    def obj(self, key: str) -> _Doc:
        return _Doc(self.raw(key), self.at(key))

    def opt_obj(self, key: str) -> _Doc | None:
        return _Doc(self.d[key], self.at(key)) if self.has(key) else None

    def num(self, key: str) -> float:
        return _number(self.raw(key), self.at(key))

    def opt_num(self, key: str, required: bool = False) -> float | None:
        return None if self._null(key, required) else self.num(key)

    def integer(self, key: str, default: int | None = None) -> int:
        if default is not None and self.d.get(key) is None:
            return default
        return _integer(self.raw(key), self.at(key))

    def opt_int(self, key: str, required: bool = False) -> int | None:
        return None if self._null(key, required) else self.integer(key)

    def text(self, key: str, default: str | None = None) -> str:
        if default is not None and key not in self.d:
            return default
        value = self.raw(key)
        if not isinstance(value, str):
            raise _Malformed(f"{self.at(key)}: not a string: {value!r}")
        return value

    def opt_str(self, key: str, required: bool = False) -> str | None:
        return None if self._null(key, required) else self.text(key)

    def flag(self, key: str, default: bool | None = None) -> bool:
        if default is not None and key not in self.d:
            return default
        value = self.raw(key)
        if not isinstance(value, bool):
            raise _Malformed(f"{self.at(key)}: not true or false: {value!r}")
        return value

    def counts(self, key: str, required: bool = False) -> dict[str, int]:
        """An object of counts (``errors``, ``status_codes``); absent or null: empty."""
        if self._null(key, required):
            return {}
        counts = self.obj(key)
        return {str(k): counts.integer(k) for k in counts.d}

    def items(self, key: str) -> list[Any]:
        """A list field; absent or null: empty."""
        value = self.d.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise _Malformed(f"{self.at(key)}: not a list")
        return value

    def parsed(self, key: str, parse: Callable[[Any, str], T]) -> T:
        """``parse(value, path)``; its errors (a histogram's, a block's) name the field."""
        return _parsed(self.raw(key), self.at(key), parse)


def _parsed(value: Any, path: str, parse: Callable[[Any, str], T]) -> T:
    try:
        return parse(value, path)
    except _Malformed:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, ShardError) as exc:
        raise _Malformed(f"{path}: {_why(exc)}") from None


def _why(exc: Exception) -> str:
    return f"missing field {exc}" if isinstance(exc, KeyError) else str(exc) or type(exc).__name__


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Malformed(f"{path}: not a number: {value!r}")
    return value


def _integer(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed(f"{path}: not an integer: {value!r}")
    return value


def _hist(value: Any, path: str) -> BoundedHistogram:
    if not isinstance(value, Mapping):
        raise _Malformed(f"{path}: not an encoded histogram")
    return BoundedHistogram.from_json(value)


def _opt_hist(doc: _Doc, key: str) -> BoundedHistogram | None:
    return doc.parsed(key, _hist) if doc.d.get(key) else None


def _phases(value: Any, path: str) -> Phases | None:
    return phases_from_json(value)


def _report_of(doc: _Doc) -> BenchReport:
    hists = doc.obj("histograms")
    latency = hists.parsed("latency", _hist)
    service = _opt_hist(hists, "service_time")
    phases = hists.parsed("phases", _phases) if "phases" in hists.d else None
    return BenchReport(
        target=doc.text("target"),
        endpoint=doc.opt_str("endpoint", required=True),
        model=doc.opt_str("model", required=True),
        concurrency=doc.opt_int("concurrency", required=True),
        rate=doc.opt_num("rate", required=True),
        duration_s=doc.num("duration_s"),
        ok=doc.integer("ok"),
        errors=doc.counts("errors", required=True),
        status_codes=doc.counts("status_codes"),
        throughput_rps=doc.num("throughput_rps"),
        goodput_rps=_goodput(doc),
        latency_ms=_spectrum(doc, "latency_ms", latency),
        phases_ms=_spectra(doc, phases),
        service_time_ms=None if service is None else _spectrum(doc, "service_time_ms", service),
        agents=_agents(doc, hists),
        generator=_generator(doc.obj("generator")),
        sla=tuple(_verdict(_Doc(item, f"sla[{i}]")) for i, item in enumerate(doc.items("sla"))),
        histograms=RunHistograms(latency, service, _opt_hist(hists, "schedule_lag"), phases),
        target_kind=doc.opt_str("target_kind"),
        started_at=doc.opt_num("started_at") or 0.0,
        interrupted=doc.flag("interrupted", False),
        dropped_in_flight=doc.integer("dropped_in_flight", 0),
        policy=doc.text("policy", IN_FLIGHT_POLICY),
        note=doc.opt_str("note"),
        runs=doc.integer("runs", 1),
        workers=doc.opt_int("workers"),
        shard=doc.parsed("shard", _shard_block) if doc.has("shard") else None,
        shards=doc.parsed("shards", _shard_set) if doc.has("shards") else None,
        timeline=_timeline(doc, hists),
    )


def _shard_block(value: Any, path: str) -> ShardBlock:
    return ShardBlock.from_json(value)


def _shard_set(value: Any, path: str) -> ShardSet:
    return ShardSet.from_json(value)


def _goodput(doc: _Doc) -> float:
    """Answered requests per second (a report from before goodput_rps: from its counts)."""
    if "goodput_rps" in doc.d:
        return doc.num("goodput_rps")
    duration = doc.num("duration_s")
    return round(doc.integer("ok") / duration, 3) if duration > 0 else 0.0


def _spectrum(doc: _Doc, key: str, hist: BoundedHistogram) -> Spectrum:
    """A summary as the document states it (one without it: from the histogram)."""
    if doc.d.get(key) is None:
        return Spectrum.of(hist)
    return Spectrum.from_json(doc.d[key], doc.at(key))


def _spectra(doc: _Doc, phases: Phases | None) -> PhaseSpectra | None:
    """``phases_ms`` as the document states it (one without it: from the histograms)."""
    if doc.d.get("phases_ms") is None:
        return phases_summary(phases)
    return spectra_from_json(doc.d["phases_ms"], doc.at("phases_ms"))


def _agents(doc: _Doc, hists: _Doc) -> dict[str, AgentRow]:
    rows = doc.obj("agents")
    agent_hists = hists.obj("agents")
    agent_phases = hists.opt_obj("agent_phases")
    total = doc.integer("ok") + sum(doc.counts("errors", required=True).values())
    out = {}
    for agent_id in rows.d:
        row = rows.obj(agent_id)
        latency = agent_hists.parsed(agent_id, _hist)
        phases = None
        if agent_phases is not None and agent_phases.d.get(agent_id):
            phases = agent_phases.parsed(agent_id, _phases)
        requests = row.integer("requests")
        out[str(agent_id)] = AgentRow(
            requests=requests,
            answered=row.integer("answered", latency.hist.count),
            share=row.num("share") if "share" in row.d else round(requests / (total or 1), 6),
            latency_ms=_spectrum(row, "latency_ms", latency),
            phases_ms=_spectra(row, phases),
            latency=latency,
            phases=phases,
        )
    return out


def _generator(gen: _Doc) -> Generator:
    return Generator(
        target_rate=gen.opt_num("target_rate", required=True),
        achieved_rate=gen.num("achieved_rate"),
        schedule_lag_ms_p99=gen.opt_num("schedule_lag_ms_p99", required=True),
        valid=gen.flag("valid"),
        reason=gen.opt_str("reason"),
    )


def _verdict(item: _Doc) -> Verdict:
    name, expr = item.text("name"), item.text("expr")
    # A report from elsewhere may lack the kind: its expression says what it measures.
    if "kind" in item.d:
        kind = item.parsed("kind", lambda v, _: MetricKind(v))
    else:
        kind = parse_threshold(expr, name).kind
    return Verdict(name, expr, item.opt_num("observed"), item.flag("pass"), kind)


def _timeline(doc: _Doc, hists: _Doc) -> tuple[TimelinePoint, ...]:
    points = doc.items("timeline")
    latencies = hists.items("timeline") or [None] * len(points)
    phases = hists.items("timeline_phases") or [None] * len(points)
    if not len(points) == len(latencies) == len(phases):
        raise _Malformed("histograms.timeline: not one histogram per timeline point")
    out = []
    for i, (raw, latency, phased) in enumerate(zip(points, latencies, phases, strict=True)):
        p = _Doc(raw, f"timeline[{i}]")
        where = f"histograms.timeline[{i}]"
        out.append(
            TimelinePoint(
                p.num("t_s"),
                p.num("length_s"),
                p.integer("requests"),
                p.integer("errors"),
                p.num("rps"),
                _parsed(latency, where, _hist) if latency else None,
                p.opt_num("p50_ms"),
                p.opt_num("p99_ms"),
                _parsed(phased, f"histograms.timeline_phases[{i}]", _phases),
                p.parsed("phases_ms", spectra_from_json) if "phases_ms" in p.d else None,
            )
        )
    return tuple(out)
