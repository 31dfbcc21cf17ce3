"""SLA grammar, inventory thresholds and verdicts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from latcli.core.errors import ExitCode, LatcliError
from latcli.core.sla import (
    Measurements,
    MetricKind,
    SlaSyntaxError,
    Threshold,
    Verdict,
    evaluate,
    format_percent,
    parse_threshold,
    thresholds_from_inventory,
)

VALID = [
    # text, metric, op, limit (canonical unit), expr
    ("p99<100ms", "p99", "<", 100.0, "p99 < 100ms"),
    ("p99 < 100ms", "p99", "<", 100.0, "p99 < 100ms"),
    ("  p99   <   100 ms ", "p99", "<", 100.0, "p99 < 100 ms"),
    ("p99.9<=1s", "p99.9", "<=", 1000.0, "p99.9 <= 1s"),
    ("P99.90 > 1.5s", "p99.9", ">", 1500.0, "p99.9 > 1.5s"),
    ("p50<250us", "p50", "<", 0.25, "p50 < 250us"),
    ("p100<1m", "p100", "<", 60_000.0, "p100 < 1m"),
    ("p99<1.1s", "p99", "<", 1100.0, "p99 < 1.1s"),
    ("mean<50ms", "mean", "<", 50.0, "mean < 50ms"),
    ("max<2s", "max", "<", 2000.0, "max < 2s"),
    ("min>=1ms", "min", ">=", 1.0, "min >= 1ms"),
    ("error_rate<0.1%", "error_rate", "<", 0.001, "error_rate < 0.1%"),
    ("availability>=99.9%", "availability", ">=", 0.999, "availability >= 99.9%"),
    ("rps>=100", "rps", ">=", 100.0, "rps >= 100"),
    ("rps > 12.5/s", "rps", ">", 12.5, "rps > 12.5/s"),
]


@pytest.mark.parametrize(("text", "metric", "op", "limit", "expr"), VALID)
def test_valid_expressions(text: str, metric: str, op: str, limit: float, expr: str) -> None:
    t = parse_threshold(text)
    assert (t.metric, t.op, t.limit, t.expr, t.name) == (metric, op, limit, expr, metric)


INVALID = [
    # text, name, exact message
    ("", None, "bad SLA threshold '': expected METRIC OP VALUE, e.g. p99<100ms"),
    ("p99<100", None, "bad SLA threshold 'p99<100': latency '100' needs a unit (try 100ms)"),
    (
        "p99=100ms",
        None,
        "bad SLA threshold 'p99=100ms': unsupported operator '=' (expected < <= > >=)",
    ),
    (
        "p99=<1s",
        None,
        "bad SLA threshold 'p99=<1s': unsupported operator '=<' (expected < <= > >=)",
    ),
    (
        "p99 100ms",
        None,
        "bad SLA threshold 'p99 100ms': expected an operator < <= > >= after 'p99'",
    ),
    (
        "p999x<1ms",
        None,
        "bad SLA threshold 'p999x<1ms': unknown metric 'p999x' "
        "(expected pNN, pNN.N, mean, min, max, error_rate, availability, rps)",
    ),
    (
        "p0<1ms",
        None,
        "bad SLA threshold 'p0<1ms': percentile 'p0' out of range (expected p1 ... p100)",
    ),
    (
        "p100.1<1ms",
        None,
        "bad SLA threshold 'p100.1<1ms': percentile 'p100.1' out of range (expected p1 ... p100)",
    ),
    ("p99<", None, "bad SLA threshold 'p99<': missing value after the operator"),
    (
        "p99<fast",
        None,
        "bad SLA threshold 'p99<fast': 'fast' is not a duration (try 100ms, 1.5s)",
    ),
    (
        "p99 < 100ms extra",
        None,
        "bad SLA threshold 'p99 < 100ms extra': '100ms extra' is not a duration (try 100ms, 1.5s)",
    ),
    (
        "error_rate<0.1",
        None,
        "bad SLA threshold 'error_rate<0.1': '0.1' is not a percentage 0-100% (try 0.1%)",
    ),
    (
        "availability>=120%",
        None,
        "bad SLA threshold 'availability>=120%': '120%' is not a percentage 0-100% (try 0.1%)",
    ),
    (
        "rps>=fast",
        None,
        "bad SLA threshold 'rps>=fast': 'fast' is not a rate in requests/s (try 100)",
    ),
    ("< 1ms", None, "bad SLA threshold '< 1ms': expected METRIC OP VALUE, e.g. p99<100ms"),
    (
        "< 100ms",
        "health",
        "sla.health: bad SLA threshold '< 100ms': expected METRIC OP VALUE, e.g. p99<100ms",
    ),
    (
        "99.9%",
        "availability",
        "sla.availability: bad SLA threshold '99.9%': "
        "expected an operator < <= > >= after 'availability'",
    ),
    (
        "p99<1ms\np50<1ms",
        None,
        "bad SLA threshold 'p99<1ms\\np50<1ms': expected METRIC OP VALUE on one line, "
        "e.g. p99<100ms",
    ),
]


@pytest.mark.parametrize(("text", "name", "message"), INVALID)
def test_invalid_expressions(text: str, name: str | None, message: str) -> None:
    with pytest.raises(SlaSyntaxError) as info:
        parse_threshold(text, name)
    assert str(info.value) == message
    assert info.value.exit_code is ExitCode.USAGE
    assert isinstance(info.value, LatcliError)


def test_metric_implied_by_name() -> None:
    t = parse_threshold(">= 99.9%", "availability")
    assert (t.name, t.metric, t.op, t.limit) == ("availability", "availability", ">=", 0.999)
    assert t.expr == "availability >= 99.9%"


def test_name_labels_an_explicit_metric() -> None:
    t = parse_threshold("p99 < 100ms", "health")
    assert (t.name, t.metric, t.percentile, t.kind) == ("health", "p99", 99.0, MetricKind.LATENCY)


SEED_SLA = {
    "health": "p99 < 100ms",
    "discovery": "p95 < 200ms",
    "message": "p90 < 500ms",
    "coordination": "p95 < 2s",
    "availability": ">= 99.9%",
    "error_rate": "< 0.1%",
}


@pytest.mark.parametrize(
    ("endpoint", "latency"),
    [
        ("health", "p99 < 100ms"),
        ("discovery", "p95 < 200ms"),
        ("message", "p90 < 500ms"),
        ("coordination", "p95 < 2s"),
    ],
)
def test_inventory_thresholds_per_endpoint(endpoint: str, latency: str) -> None:
    got = thresholds_from_inventory(SEED_SLA, endpoint)
    assert [(t.name, t.expr) for t in got] == [
        (endpoint, latency),
        ("availability", "availability >= 99.9%"),
        ("error_rate", "error_rate < 0.1%"),
    ]


def test_inventory_without_the_endpoint_keeps_rates() -> None:
    got = thresholds_from_inventory({"health": "p99 < 1s", "error_rate": "< 1%"}, "message")
    assert [t.name for t in got] == ["error_rate"]


def test_inventory_bad_entry_names_its_key() -> None:
    with pytest.raises(SlaSyntaxError, match=r"^sla\.availability: .*'>= 99\.9'"):
        thresholds_from_inventory({"availability": ">= 99.9"}, "health")


def test_inventory_unknown_endpoint() -> None:
    with pytest.raises(SlaSyntaxError, match="unknown SLA endpoint 'streaming'"):
        thresholds_from_inventory(SEED_SLA, "streaming")


def test_inventory_stream_phases_apply_to_stream_only() -> None:
    sla = {**SEED_SLA, "stream.first_artifact": "p95 < 1s", "stream.total": "mean<10s"}
    got = thresholds_from_inventory(sla, "stream")
    phased = [(t.name, t.metric, t.phase, t.limit) for t in got if t.phase]
    assert phased == [
        ("stream.first_artifact", "first_artifact.p95", "first_artifact", 1000.0),
        ("stream.total", "total.mean", "total", 10000.0),
    ]
    assert not any(t.phase for t in thresholds_from_inventory(sla, "message"))


def test_a_phase_threshold_judges_its_phase_only() -> None:
    t = parse_threshold("first_artifact.p50 < 250ms")
    phase = _obs([200.0, 210.0, 220.0])
    slow = _obs([900.0, 950.0])  # the whole-request latency must not be what is judged
    obs = replace(slow, phases={"first_artifact": phase})
    (v,) = evaluate([t], obs)
    assert v.passed and v.observed == 210.0
    (none,) = evaluate([t], slow)  # no phases measured: nothing to judge, fails
    assert not none.passed and none.observed is None


def _obs(
    values_ms: list[float] | None = None,
    errors: int = 0,
    requests: int | None = None,
    rps: float | None = None,
) -> Measurements:
    """An exact observation: percentile by nearest rank over the given values."""
    values = sorted(values_ms or [])

    def percentile(p: float) -> float | None:
        if not values:
            return None
        rank = max(1, -(-len(values) * p // 100))  # ceil without float surprises
        return values[int(rank) - 1]

    return Measurements(
        samples=len(values),
        percentile=percentile,
        mean_ms=sum(values) / len(values) if values else None,
        min_ms=values[0] if values else None,
        max_ms=values[-1] if values else None,
        errors=errors,
        requests=len(values) if requests is None else requests,
        rps=rps,
    )


ALL_METRICS = [
    "p99<1s",
    "mean<1s",
    "min<1s",
    "max<1s",
    "error_rate<=100%",
    "availability>=0%",
    "rps>=0",
]


@pytest.mark.parametrize("text", ALL_METRICS)
def test_zero_samples_fail(text: str) -> None:
    # Each of these passes on any data at all, so only "no data" can fail it.
    [v] = evaluate([parse_threshold(text)], _obs([], rps=0.0))
    assert (v.observed, v.passed) == (None, False)
    assert v.format_observed() == "no data"


def test_zero_samples_fail_even_with_stale_values() -> None:
    # A window that emptied may still answer its last values; samples decides.
    stale = Measurements(
        samples=0,
        percentile=lambda p: 5.0,
        mean_ms=5.0,
        min_ms=5.0,
        max_ms=5.0,
        errors=0,
        requests=0,
        rps=9.0,
    )
    verdicts = evaluate([parse_threshold(t) for t in ALL_METRICS], stale)
    assert [(v.observed, v.passed) for v in verdicts] == [(None, False)] * len(ALL_METRICS)


def test_trivial_thresholds_pass_with_data() -> None:
    verdicts = evaluate([parse_threshold(t) for t in ALL_METRICS], _obs([5.0], rps=1.0))
    assert all(v.passed for v in verdicts)


def test_rates_need_requests_not_latency_samples() -> None:
    # All-failed runs record no latency but still have an error rate.
    obs = _obs([], errors=3, requests=3)
    [er, av, p99] = evaluate(
        [parse_threshold(t) for t in ("error_rate<50%", "availability>=50%", "p99<1s")], obs
    )
    assert (er.observed, er.passed) == (1.0, False)
    assert (av.observed, av.passed) == (0.0, False)
    assert (p99.observed, p99.passed) == (None, False)


BOUNDARY = [
    # expression, observation, passes
    ("p99<100ms", _obs([100.0]), False),
    ("p99<=100ms", _obs([100.0]), True),
    ("p99>100ms", _obs([100.0]), False),
    ("p99>=100ms", _obs([100.0]), True),
    ("p99<100ms", _obs([99.999]), True),
    ("mean<=2ms", _obs([1.0, 3.0]), True),
    ("mean<2ms", _obs([1.0, 3.0]), False),
    ("max<3ms", _obs([1.0, 3.0]), False),
    ("min>=1ms", _obs([1.0, 3.0]), True),
    ("availability>=99.9%", _obs([1.0] * 999, errors=1, requests=1000), True),
    ("availability>99.9%", _obs([1.0] * 999, errors=1, requests=1000), False),
    ("error_rate<=0.1%", _obs([1.0] * 999, errors=1, requests=1000), True),
    ("error_rate<0.1%", _obs([1.0] * 999, errors=1, requests=1000), False),
    ("rps>=100", _obs([1.0], rps=100.0), True),
    ("rps>100", _obs([1.0], rps=100.0), False),
    ("p99<1.1s", _obs([1100.0]), False),
    ("p99<=1.1s", _obs([1100.0]), True),
]


@pytest.mark.parametrize(("text", "obs", "passes"), BOUNDARY)
def test_operators_at_the_boundary(text: str, obs: Measurements, passes: bool) -> None:
    [v] = evaluate([parse_threshold(text)], obs)
    assert v.passed is passes


def test_percentile_metric_asks_for_its_percentile() -> None:
    obs = _obs([float(i) for i in range(1, 1001)])
    [p50, p999] = evaluate([parse_threshold("p50<1s"), parse_threshold("p99.9<1s")], obs)
    assert (p50.observed, p999.observed) == (500.0, 999.0)


def test_verdict_for_humans_and_json() -> None:
    thresholds = [
        parse_threshold("p99 < 100ms", "health"),
        parse_threshold("< 0.1%", "error_rate"),
        parse_threshold("rps>=100"),
    ]
    verdicts = evaluate(thresholds, _obs([87.0] * 19, errors=1, requests=20, rps=120.5))
    assert [v.describe() for v in verdicts] == [
        "health: p99 < 100ms — observed 87.0 ms — pass",
        "error_rate: error_rate < 0.1% — observed 5% — FAIL",
        "rps: rps >= 100 — observed 120.5 req/s — pass",
    ]
    assert verdicts[0].as_json() == {
        "name": "health",
        "expr": "p99 < 100ms",
        "observed": 87.0,
        "pass": True,
    }


@pytest.mark.parametrize(
    ("fraction", "text"),
    [
        (0.0005, "0.05%"),
        (0.999, "99.9%"),
        (1.0, "100%"),
        (0.0, "0%"),
        (0.99987, "99.98%"),
        (0.78571, "78.6%"),
        (0.9995, "99.95%"),
    ],
)
def test_format_percent(fraction: float, text: str) -> None:
    assert format_percent(fraction) == text


def test_threshold_and_verdict_are_frozen() -> None:
    t = parse_threshold("p99<1s")
    v = Verdict("x", "p99 < 1s", 1.0, True, MetricKind.LATENCY)
    for obj in (t, v):
        with pytest.raises(AttributeError):
            obj.name = "y"  # type: ignore[misc]
    assert isinstance(t, Threshold)
