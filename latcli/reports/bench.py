"""Bench reports: the ``latcli.bench/v1`` document (DESIGN §6) and its JSON.

A report is a plain dict, the JSON contract itself, so that what ``latcli bench -o`` writes
and what ``latcli report`` reads back are one value. Beside the contract's fields it carries
what a merge needs (``histograms``: each HDR histogram encoded, with its exact sum, min and
max, because an encoding keeps bucket counts only), and ``started_at``, ``interrupted``,
``dropped_in_flight``, ``policy``, ``note``, ``runs``, ``target_kind``, ``workers`` (processes
that generated the load), and for sharded runs ``shard`` (a shard's own report: which shard of
which run) or ``shards`` (a merge of shards: which came, which are missing), both described in
:mod:`latcli.core.shards`. ``timeline`` is described in :mod:`latcli.reports.bench_timeline`.

``--endpoint stream`` adds ``phases_ms`` (first_event, first_artifact, gap, total: each the
summary ``latency_ms`` has) overall, per agent and on every timeline point (``compare`` reads
``timeline[i].phases_ms[PHASE]["pNN"]``), their histograms in ``histograms.phases``,
``histograms.agent_phases`` and ``histograms.timeline_phases``; the ``.hlog`` has one tagged line
per phase and interval (:mod:`latcli.reports.hlog`). Other endpoints have ``phases_ms: null``.

Merging (:mod:`latcli.reports.bench_merge`), loading (:mod:`latcli.reports.bench_load`) and
judging (:mod:`latcli.reports.bench_sla`) build on :class:`ReportContent`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latcli.core.shards import ShardSet, shard_block
from latcli.core.sla import MetricKind, SlaSyntaxError, Verdict, parse_threshold
from latcli.reports.bench_model import IN_FLIGHT_POLICY, BenchPlan, BenchResult
from latcli.reports.bench_timeline import TimelinePoint, coarsened, per_s, point, round_or_none
from latcli.reports.bounded_histogram import (
    BoundedHistogram,
    Phases,
    phases_from_json,
    phases_json,
    phases_of,
    phases_summary,
)
from latcli.reports.files import ReportError, write_text

SCHEMA = "latcli.bench/v1"


@dataclass
class AgentReport:
    """One agent's part of a report: every request counted, the answered ones timed."""

    requests: int
    latency: BoundedHistogram
    phases: Phases | None = None


@dataclass(frozen=True)
class ReportContent:
    """One report's content, whatever it came from (a run, a JSON file, an hlog, a merge)."""

    target: str
    target_kind: str | None
    endpoint: str | None
    model: str | None
    concurrency: int | None
    rate: float | None
    duration_s: float
    started_at: float
    ok: int
    errors: dict[str, int]
    latency: BoundedHistogram
    service_time: BoundedHistogram | None
    schedule_lag: BoundedHistogram | None
    agents: dict[str, AgentReport]
    throughput_rps: float
    target_rate: float | None
    achieved_rate: float
    schedule_lag_p99_ms: float | None
    valid: bool
    verdicts: list[Verdict]
    invalid_reason: str | None = None
    interrupted: bool = False
    dropped_in_flight: int = 0
    policy: str = IN_FLIGHT_POLICY
    note: str | None = None
    runs: int = 1
    timeline: list[TimelinePoint] = field(default_factory=list)
    status_codes: dict[str, int] = field(default_factory=dict)  # "200" -> count
    phases: Phases | None = None  # --endpoint stream
    workers: int | None = None  # processes that generated the load (None: not recorded)
    shard: dict[str, Any] | None = None  # a shard's block (latcli.core.shards)
    shards: ShardSet | None = None  # a merge of shards: which came, which are missing

    @property
    def requests(self) -> int:
        return self.ok + sum(self.errors.values())

    @property
    def goodput_rps(self) -> float:
        """Answered requests per second: what an ``rps`` threshold judges."""
        return per_s(self.ok, self.duration_s)


def document(run: ReportContent) -> dict[str, Any]:
    """The ``latcli.bench/v1`` document of ``run`` (DESIGN §6), histograms included."""
    total = run.requests
    return {
        "schema": SCHEMA,
        "target": run.target,
        "endpoint": run.endpoint,
        "model": run.model,
        "concurrency": run.concurrency,
        "rate": run.rate,
        "duration_s": round(run.duration_s, 3),
        "requests": total,
        "ok": run.ok,
        "errors": dict(sorted(run.errors.items())),
        "status_codes": dict(sorted(run.status_codes.items())),
        "throughput_rps": round(run.throughput_rps, 3),
        "goodput_rps": round(run.goodput_rps, 3),
        "latency_ms": run.latency.summary(),
        "phases_ms": phases_summary(run.phases),
        "service_time_ms": run.service_time.summary() if run.service_time else None,
        "agents": {
            agent_id: {
                "requests": a.requests,
                "answered": a.latency.hist.count,
                "share": round(per_s(a.requests, total), 6),
                "latency_ms": a.latency.summary(),
                "phases_ms": phases_summary(a.phases),
            }
            for agent_id, a in run.agents.items()
        },
        "generator": {
            "target_rate": round_or_none(run.target_rate),
            "achieved_rate": round(run.achieved_rate, 3),
            "schedule_lag_ms_p99": round_or_none(run.schedule_lag_p99_ms),
            "valid": run.valid,
            "reason": run.invalid_reason,
        },
        "sla": [{**v.as_json(), "kind": v.kind.value} for v in run.verdicts],
        "pass": run.valid and run.ok > 0 and all(v.passed for v in run.verdicts),
        "target_kind": run.target_kind,
        "started_at": run.started_at,
        "interrupted": run.interrupted,
        "dropped_in_flight": run.dropped_in_flight,
        "policy": run.policy,
        "note": run.note,
        "runs": run.runs,
        "workers": run.workers,
        "shard": run.shard,
        "shards": run.shards.as_json() if run.shards is not None else None,
        "timeline": [p.as_json() for p in run.timeline],
        "histograms": {
            "latency": run.latency.as_json(),
            "service_time": run.service_time.as_json() if run.service_time else None,
            "schedule_lag": run.schedule_lag.as_json() if run.schedule_lag else None,
            "agents": {agent_id: a.latency.as_json() for agent_id, a in run.agents.items()},
            "timeline": [p.latency.as_json() if p.latency else None for p in run.timeline],
            "phases": phases_json(run.phases),
            "agent_phases": {
                agent_id: phases_json(a.phases) for agent_id, a in run.agents.items() if a.phases
            },
            "timeline_phases": [phases_json(p.phases) for p in run.timeline]
            if run.phases is not None
            else None,
        },
    }


def build_report(
    plan: BenchPlan,
    result: BenchResult,
    verdicts: Sequence[Verdict],
    *,
    valid: bool,
    target_rate: float | None,
    achieved_rate: float,
    schedule_lag_p99_ms: float | None,
    policy: str = IN_FLIGHT_POLICY,
) -> dict[str, Any]:
    """The ``latcli.bench/v1`` document of one run; ``verdicts`` as evaluated by the caller
    (see :func:`~latcli.reports.bench_sla.observation`). ``duration_s`` is the measured time,
    warm-up excluded."""
    run = ReportContent(
        target=plan.target,
        target_kind=plan.target_kind,
        endpoint=plan.endpoint,
        model=plan.model,
        concurrency=plan.share_concurrency,
        rate=plan.share_rate,
        duration_s=result.elapsed_s,
        started_at=result.started_at,
        ok=result.ok,
        errors=dict(result.errors),
        latency=BoundedHistogram.of(result.latency),
        service_time=BoundedHistogram.of(result.service_time) if result.service_time else None,
        schedule_lag=BoundedHistogram.of(result.schedule_lag) if result.schedule_lag else None,
        agents={
            k: AgentReport(t.requests, BoundedHistogram.of(t.latency), phases_of(t.phases))
            for k, t in result.agents.items()
        },
        throughput_rps=result.throughput_rps,
        target_rate=target_rate,
        achieved_rate=achieved_rate,
        schedule_lag_p99_ms=schedule_lag_p99_ms,
        valid=valid,
        verdicts=list(verdicts),
        invalid_reason=result.invalid_reason,
        interrupted=result.interrupted,
        dropped_in_flight=result.dropped_in_flight,
        policy=policy,
        timeline=coarsened(
            [
                point(
                    iv.start_s,
                    iv.length_s,
                    iv.count + iv.errors,
                    iv.errors,
                    BoundedHistogram.of(iv.histogram),
                    phases_of(iv.phase_tally()),
                )
                for iv in result.intervals
            ]
        ),
        status_codes={str(k): v for k, v in result.status_codes.items()},
        phases=phases_of(result.phases),
        workers=plan.workers,
        shard=_shard_of(plan),
    )
    return document(run)


def _shard_of(plan: BenchPlan) -> dict[str, Any] | None:
    """A shard's block (``--shard I/N`` with N > 1; 0/1 is the whole run)."""
    if plan.shards <= 1:
        return None
    whole = {
        "target": plan.target,
        "endpoint": plan.endpoint,
        "model": plan.model,
        "rate": plan.rate,
        "concurrency": plan.concurrency,
        "duration_s": plan.duration_s,
        "requests": plan.requests,
        "warmup_s": plan.warmup_s,
    }
    return shard_block(plan.shard, plan.shards, plan.start_at, whole)


def content_of(doc: Mapping[str, Any], source: str = "report") -> ReportContent:
    """The content of a ``latcli.bench/v1`` document; ReportError naming ``source`` if it is
    not one that can be merged (histograms missing or malformed)."""
    try:
        hists = doc["histograms"]
        service, lag = hists.get("service_time"), hists.get("schedule_lag")
        gen = doc["generator"]
        agent_phases = hists.get("agent_phases") or {}
        agents = {
            str(k): AgentReport(
                int(v["requests"]),
                BoundedHistogram.from_json(hists["agents"][k]),
                phases_from_json(agent_phases.get(k)),
            )
            for k, v in doc["agents"].items()
        }
        return ReportContent(
            target=str(doc["target"]),
            target_kind=doc.get("target_kind"),
            endpoint=doc["endpoint"],
            model=doc["model"],
            concurrency=doc["concurrency"],
            rate=doc["rate"],
            duration_s=float(doc["duration_s"]),
            started_at=float(doc.get("started_at") or 0.0),
            ok=int(doc["ok"]),
            errors={str(k): int(v) for k, v in doc["errors"].items()},
            latency=BoundedHistogram.from_json(hists["latency"]),
            service_time=BoundedHistogram.from_json(service) if service else None,
            schedule_lag=BoundedHistogram.from_json(lag) if lag else None,
            agents=agents,
            throughput_rps=float(doc["throughput_rps"]),
            target_rate=gen["target_rate"],
            achieved_rate=float(gen["achieved_rate"]),
            schedule_lag_p99_ms=gen["schedule_lag_ms_p99"],
            valid=bool(gen["valid"]),
            verdicts=verdicts_of(doc),
            invalid_reason=gen.get("reason"),
            interrupted=bool(doc.get("interrupted", False)),
            dropped_in_flight=int(doc.get("dropped_in_flight", 0)),
            policy=str(doc.get("policy", IN_FLIGHT_POLICY)),
            note=doc.get("note"),
            runs=int(doc.get("runs", 1)),
            timeline=_timeline_of(doc),
            status_codes={str(k): int(v) for k, v in (doc.get("status_codes") or {}).items()},
            phases=phases_from_json(hists.get("phases")),
            workers=None if doc.get("workers") is None else int(doc["workers"]),
            shard=doc.get("shard"),
            shards=ShardSet.from_json(doc["shards"]) if doc.get("shards") else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError, SlaSyntaxError) as exc:
        why = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ReportError(f"{source}: not a mergeable {SCHEMA} report ({why})") from None


def _timeline_of(doc: Mapping[str, Any]) -> list[TimelinePoint]:
    points = doc.get("timeline") or []
    hists = doc["histograms"].get("timeline") or [None] * len(points)
    phases = doc["histograms"].get("timeline_phases") or [None] * len(points)
    return [
        TimelinePoint(
            float(p["t_s"]),
            float(p["length_s"]),
            int(p["requests"]),
            int(p["errors"]),
            float(p["rps"]),
            BoundedHistogram.from_json(h) if h else None,
            p.get("p50_ms"),
            p.get("p99_ms"),
            phases_from_json(ph),
            p.get("phases_ms"),
        )
        for p, h, ph in zip(points, hists, phases, strict=True)
    ]


def verdicts_of(report: Mapping[str, Any]) -> list[Verdict]:
    """The report's ``sla`` items as verdicts (to render them with their units)."""
    return [_verdict(item) for item in report.get("sla", [])]


def _verdict(item: Mapping[str, Any]) -> Verdict:
    name, expr = str(item["name"]), str(item["expr"])
    observed = item.get("observed")
    # A report from elsewhere may lack the kind: its expression says what it measures.
    kind = MetricKind(item["kind"]) if "kind" in item else parse_threshold(expr, name).kind
    value = None if observed is None else float(observed)
    return Verdict(name, expr, value, bool(item["pass"]), kind)


def to_json(report: Mapping[str, Any]) -> str:
    """The document as JSON text (stdout and ``-o`` write the same)."""
    return json.dumps(report, indent=2)


def write_json(path: str | Path, report: Mapping[str, Any]) -> None:
    """Write the ``latcli.bench/v1`` document; ReportError (exit 2) if the file cannot be."""
    write_text(path, to_json(report) + "\n")
