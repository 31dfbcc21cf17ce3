"""SLA thresholds: the expression grammar and the verdicts (sans-I/O).

Grammar, one threshold per expression (spaces optional, metric case-insensitive)::

    METRIC OP VALUE        p99<100ms  p99.9 <= 1s  mean<50ms  error_rate<0.1%  rps>=100
    OP VALUE               only with a ``name`` that is a metric: availability ">= 99.9%"

* METRIC: ``pNN`` / ``pNN.N`` (percentile in (0, 100]), ``mean``, ``min``, ``max``
  (latency: VALUE needs a duration unit, ``us ms s m h``), ``error_rate`` and
  ``availability`` (VALUE needs ``%``), ``rps`` (a plain number, ``/s`` allowed).
* OP: ``<  <=  >  >=``.

Canonical units everywhere after parsing: milliseconds for latency, a fraction
in [0, 1] for rates, requests per second for ``rps``. A threshold with nothing
to measure (zero samples, zero requests) fails: an SLA is a promise about
traffic, and no traffic proves nothing (DESIGN §5).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from latcli.core.errors import ExitCode, LatcliError
from latcli.core.units import format_ms, format_rate, parse_duration, parse_percent
from latcli.core.units import format_percent as _format_percent


class SlaSyntaxError(LatcliError):
    """An SLA expression that does not parse; one line naming the text (exit 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)


class MetricKind(str, Enum):
    """What a metric measures, which fixes its unit."""

    LATENCY = "latency"  # milliseconds
    RATE = "rate"  # fraction in [0, 1]
    THROUGHPUT = "throughput"  # requests per second


ENDPOINTS = ("health", "discovery", "message", "coordination", "stream")
# Stream phases a latency threshold may name: `first_artifact.p95<500ms` (bench --endpoint stream)
PHASES = ("first_event", "first_artifact", "gap", "total")
_NAMED_METRICS = {
    "mean": MetricKind.LATENCY,
    "min": MetricKind.LATENCY,
    "max": MetricKind.LATENCY,
    "error_rate": MetricKind.RATE,
    "availability": MetricKind.RATE,
    "rps": MetricKind.THROUGHPUT,
}
_METRICS_HELP = "pNN, pNN.N, mean, min, max, error_rate, availability, rps"
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# The operator class is deliberately loose (`=`, `==`, `=<`, `!=`) so that a
# near miss gets a precise "unsupported operator" message instead of a generic one.
_EXPR = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_.]*)?\s*(?P<op>[<>=!]+)?\s*(?P<value>.*?)\s*$"
)
_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")
_RPS = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(?:/s)?$")


@dataclass(frozen=True)
class Threshold:
    """One parsed SLA target; ``limit`` is in the metric's canonical unit."""

    name: str  # the report label: the inventory key, else the metric
    metric: str  # canonical spelling: "p99", "p99.9", "mean", "error_rate", ...
    op: str  # one of < <= > >=
    limit: float  # ms for latency, fraction for rates, req/s for rps
    expr: str  # normalized text, metric always explicit: "availability >= 99.9%"
    percentile: float | None = None  # set for pNN metrics only
    phase: str | None = None  # a stream phase's latency: metric "first_artifact.p95"

    @property
    def kind(self) -> MetricKind:
        """The metric's unit family."""
        if self.percentile is not None or self.phase is not None:
            return MetricKind.LATENCY
        return _NAMED_METRICS[self.metric]

    def check(self, observed: float) -> bool:
        """True when ``observed`` (canonical unit) meets the target."""
        return _OPS[self.op](observed, self.limit)


def _fail(text: str, name: str | None, why: str) -> SlaSyntaxError:
    where = f"sla.{name}: " if name else ""
    return SlaSyntaxError(f"{where}bad SLA threshold {text!r}: {why}")


def _metric(text: str, name: str | None, raw: str | None) -> tuple[str, float | None]:
    """Canonical metric spelling and percentile, from the text or implied by ``name``."""
    if raw is None:
        if name is not None and name.lower() in _NAMED_METRICS:
            return name.lower(), None
        raise _fail(text, name, "expected METRIC OP VALUE, e.g. p99<100ms")
    metric = raw.lower()
    if metric in _NAMED_METRICS:
        return metric, None
    m = _PERCENTILE.match(metric)
    if not m:
        raise _fail(text, name, f"unknown metric {raw!r} (expected {_METRICS_HELP})")
    p = float(m.group(1))
    if not 0.0 < p <= 100.0:
        raise _fail(text, name, f"percentile {raw!r} out of range (expected p1 ... p100)")
    return f"p{p:g}", p


def _limit(text: str, name: str | None, kind: MetricKind, value: str) -> float:
    """The VALUE in canonical units; the unit is mandatory where it is ambiguous."""
    if not value:
        raise _fail(text, name, "missing value after the operator")
    # Rounding returns the float nearest the decimal the user wrote (99.9 / 100
    # is 0.9990000000000001 otherwise), so a boundary observation like 999 of
    # 1000 requests compares equal to ">= 99.9%" instead of failing by one ulp.
    if kind is MetricKind.LATENCY:
        # parse_duration reads a bare number as seconds; "p99<100" is too easily
        # meant as milliseconds, so a latency target must spell its unit.
        if value[-1].isdigit() or value[-1] == ".":
            raise _fail(text, name, f"latency {value!r} needs a unit (try {value}ms)")
        try:
            return round(parse_duration(value) * 1000.0, 6)
        except ValueError:
            raise _fail(text, name, f"{value!r} is not a duration (try 100ms, 1.5s)") from None
    if kind is MetricKind.RATE:
        try:
            return round(parse_percent(value), 12)
        except ValueError:
            raise _fail(text, name, f"{value!r} is not a percentage 0-100% (try 0.1%)") from None
    m = _RPS.match(value)
    if not m:
        raise _fail(text, name, f"{value!r} is not a rate in requests/s (try 100)")
    return float(m.group(1))


def _phase_of(text: str, name: str | None, raw: str | None) -> tuple[str | None, str | None]:
    """``first_artifact.p95`` -> ("first_artifact", "p95"); a metric without a phase as is."""
    if raw is None or "." not in raw or _PERCENTILE.match(raw.lower()):
        return None, raw
    head, _, tail = raw.partition(".")
    if head.lower() not in PHASES:
        why = f"unknown stream phase {head!r} (expected {', '.join(PHASES)})"
        raise _fail(text, name, why)
    if tail.lower() not in ("mean", "min", "max") and not _PERCENTILE.match(tail.lower()):
        raise _fail(text, name, f"a phase takes a latency metric: {head}.p95, {head}.mean")
    return head.lower(), tail


def parse_threshold(text: str, name: str | None = None, phase: str | None = None) -> Threshold:
    """Parse one expression; ``name`` labels it and may imply its metric. ``phase`` (the
    inventory's ``sla.stream`` keys) makes a bare ``p95 < 1s`` a threshold on that phase.

    Raises :class:`SlaSyntaxError` with one line naming the text and what was expected.
    """
    m = _EXPR.match(text)
    if m is None:  # only a newline inside the text defeats the pattern
        raise _fail(text, name, "expected METRIC OP VALUE on one line, e.g. p99<100ms")
    named_phase, raw_metric = _phase_of(text, name, m.group("metric"))
    phase = phase or named_phase
    if phase is not None and raw_metric is None:
        raise _fail(text, name, "expected METRIC OP VALUE, e.g. p95 < 1s")
    metric, percentile = _metric(text, name, raw_metric)
    if phase is not None and percentile is None and metric not in ("mean", "min", "max"):
        raise _fail(text, name, f"a phase takes a latency metric: {phase}.p95, {phase}.mean")
    op = m.group("op")
    if op is None:
        raise _fail(text, name, f"expected an operator < <= > >= after {metric!r}")
    if op not in _OPS:
        raise _fail(text, name, f"unsupported operator {op!r} (expected < <= > >=)")
    kind = MetricKind.LATENCY if percentile is not None else _NAMED_METRICS[metric]
    value = m.group("value")
    limit = _limit(text, name, kind, value)
    if phase is not None:
        metric = f"{phase}.{metric}"
    expr = f"{metric} {op} {value}"
    return Threshold(name or metric, metric, op, limit, expr, percentile, phase)


def thresholds_from_inventory(sla: Mapping[str, str], endpoint: str) -> list[Threshold]:
    """The inventory's targets that apply to a bench of ``endpoint``.

    That is the endpoint's own latency entry (if any) plus every entry keyed by
    a metric name (``availability``, ``error_rate``, ...), in inventory order.
    Entries for other endpoints are skipped. ``stream``: the ``stream.PHASE`` entries (the
    inventory's ``sla: {stream: {first_artifact: "p95 < 1s"}}``), each on its phase. Raises
    SlaSyntaxError on a bad entry or an unknown endpoint.
    """
    if endpoint not in ENDPOINTS:
        raise SlaSyntaxError(f"unknown SLA endpoint {endpoint!r} (expected {', '.join(ENDPOINTS)})")
    out = []
    for key, text in sla.items():
        head, _, phase = key.partition(".")
        if phase and head == endpoint == "stream":
            out.append(parse_threshold(str(text), key, phase))
        elif key == endpoint or key.lower() in _NAMED_METRICS:
            out.append(parse_threshold(str(text), key))
    return out


def thresholds_from_args(
    args: Sequence[str], sla: Mapping[str, str], endpoint: str
) -> list[Threshold]:
    """What ``--sla`` values mean: ``inventory`` (a bare ``--sla``) the inventory's targets for
    ``endpoint``, an endpoint's name that endpoint's, anything else an inline expression."""
    out: list[Threshold] = []
    for text in args:
        word = text.strip().lower()
        if word in ("inventory", ""):
            out.extend(thresholds_from_inventory(sla, endpoint))
        elif word in ENDPOINTS:
            out.extend(thresholds_from_inventory(sla, word))
        else:
            out.append(parse_threshold(text))
    return out


@dataclass(frozen=True)
class Measurements:
    """What was measured, in the shape both bench and watch can fill.

    ``percentile(p)`` maps p in (0, 100] to milliseconds: bench passes
    ``LatencyHistogram.percentile_ms``, watch its sliding window's lookup.
    ``samples`` counts the latency samples behind percentile/mean/min/max;
    ``requests`` counts attempts (ok + failed) behind the rates, ``errors`` the
    failed ones. ``rps`` is achieved throughput, None when not meaningful.
    """

    samples: int
    percentile: Callable[[float], float | None]
    mean_ms: float | None
    min_ms: float | None
    max_ms: float | None
    errors: int
    requests: int
    rps: float | None
    # bench --endpoint stream: each phase's answered streams, observed as above
    phases: Mapping[str, Measurements] | None = None


def observe(threshold: Threshold, obs: Measurements) -> float | None:
    """The observed value for ``threshold``'s metric in canonical units; None = nothing measured."""
    if threshold.phase is not None:
        inner = (obs.phases or {}).get(threshold.phase)
        return None if inner is None or inner.samples <= 0 else _latency(threshold, inner)
    if threshold.kind is MetricKind.LATENCY:
        return _latency(threshold, obs) if obs.samples > 0 else None
    if obs.requests <= 0:
        return None
    if threshold.metric == "rps":
        return obs.rps
    # Each rate is one division of exact integers: the float nearest the true
    # ratio, so boundary comparisons with a parsed limit are exact.
    if threshold.metric == "error_rate":
        return obs.errors / obs.requests
    return (obs.requests - obs.errors) / obs.requests


def _latency(threshold: Threshold, obs: Measurements) -> float | None:
    if threshold.percentile is not None:
        return obs.percentile(threshold.percentile)
    metric = threshold.metric.rpartition(".")[2]  # "first_artifact.mean" -> "mean"
    return {"mean": obs.mean_ms, "min": obs.min_ms, "max": obs.max_ms}[metric]


@dataclass(frozen=True)
class Verdict:
    """One threshold's outcome; ``observed`` in the canonical unit of ``kind``."""

    name: str
    expr: str
    observed: float | None  # None: nothing measured, and then passed is False
    passed: bool
    kind: MetricKind

    def format_observed(self) -> str:
        """The observed value for humans: ``87 ms``, ``0.05%``, ``120.5 req/s``, ``no data``."""
        if self.observed is None:
            return "no data"
        if self.kind is MetricKind.LATENCY:
            return format_ms(self.observed)
        if self.kind is MetricKind.RATE:
            return format_percent(self.observed)
        return format_rate(self.observed)

    def describe(self) -> str:
        """One line: ``health: p99 < 100ms — observed 87 ms — pass``."""
        outcome = "pass" if self.passed else "FAIL"
        return f"{self.name}: {self.expr} — observed {self.format_observed()} — {outcome}"

    def as_json(self) -> dict[str, object]:
        """The bench JSON ``sla`` item (DESIGN §6)."""
        return {
            "name": self.name,
            "expr": self.expr,
            "observed": self.observed,
            "pass": self.passed,
        }


def format_percent(fraction: float) -> str:
    """0.0005 -> ``0.05%``, 0.999 -> ``99.90%``: :func:`latcli.core.units.format_percent`."""
    return _format_percent(fraction)


def evaluate(thresholds: Iterable[Threshold], obs: Measurements) -> list[Verdict]:
    """One verdict per threshold, in order; a threshold with nothing measured fails."""
    verdicts = []
    for t in thresholds:
        value = observe(t, obs)
        passed = value is not None and t.check(value)
        verdicts.append(Verdict(t.name, t.expr, value, passed, t.kind))
    return verdicts
