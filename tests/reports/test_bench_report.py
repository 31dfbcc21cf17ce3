"""Bench reports: the JSON contract, .hlog through hdrh's reader, JUnit XML, merging, the rich
summary, exit codes and ``latcli report`` as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
from rich.console import Console

from latcli.core.errors import ExitCode
from latcli.core.sla import evaluate, parse_threshold
from latcli.engines.bench.outputs import write_junit
from latcli.render.bench_view import bench_summary
from latcli.render.junit import junit_xml
from latcli.reports.bench import SCHEMA, BenchReport, json_text, write_json
from latcli.reports.bench_build import build_report
from latcli.reports.bench_load import load_report
from latcli.reports.bench_merge import merge_reports
from latcli.reports.bench_model import (
    IN_FLIGHT_POLICY,
    AgentTally,
    BenchPlan,
    BenchResult,
    IntervalSample,
)
from latcli.reports.bench_sla import exit_code, observation
from latcli.reports.files import ReportError
from latcli.reports.histogram import SUMMARY_KEYS, LatencyHistogram, read_hlog
from latcli.reports.hlog import HLOG_NOTE, report_from_hlog, write_hlog

T0 = 1_700_000_000.0
ERROR_KINDS = {
    "dns",
    "connect",
    "tls",
    "reset",
    "timeout",
    "http_4xx",
    "http_5xx",
    "rpc_error",
    "bad_response",
    "too_large",
    "breaker_open",
}
OPEN = BenchPlan("weather", "type", endpoint="message", rate=200.0, duration_s=5.0)
CLOSED = BenchPlan("weather", "type", endpoint="message", concurrency=8, requests=1000)


def _values(n: int, seed: int) -> list[int]:
    """n latencies in µs, spread over four decades (so percentiles differ from one another)."""
    return [(i * 7919 + seed) % 1000 * (10 ** (i % 4)) + 1 for i in range(n)]


def _result(
    values_us: list[int],
    *,
    open_model: bool = True,
    started_at: float = T0,
    elapsed_s: float = 5.0,
    errors: dict[str, int] | None = None,
) -> BenchResult:
    """A result as the engine fills it: two agents alternate, one interval per second."""
    r = BenchResult(started_at=started_at, elapsed_s=elapsed_s)
    if open_model:
        r.service_time, r.schedule_lag = LatencyHistogram(), LatencyHistogram()
    per_interval = max(1, -(-len(values_us) // int(elapsed_s)))
    for i, v in enumerate(values_us):
        r.latency.record_us(v)
        if r.service_time is not None and r.schedule_lag is not None:
            r.service_time.record_us(v // 2)
            r.schedule_lag.record_us(v - v // 2)
        agent = r.agents.setdefault(f"weather-{i % 2 + 1}", AgentTally())
        agent.requests += 1
        agent.latency.record_us(v)
        if i % per_interval == 0:
            r.intervals.append(IntervalSample(i // per_interval, 1.0, LatencyHistogram()))
        one = LatencyHistogram()
        one.record_us(v)
        r.intervals[-1].absorb(one)  # intervals are kept encoded: values go in by absorb
    r.errors = dict(errors or {})
    r.ok = len(values_us) - sum(r.errors.values())
    return r


def _report(
    r: BenchResult,
    plan: BenchPlan = OPEN,
    exprs: tuple[str, ...] = (),
    *,
    valid: bool = True,
) -> BenchReport:
    verdicts = evaluate([parse_threshold(e) for e in exprs], observation(r))
    target = plan.rate
    achieved = r.requests / r.elapsed_s if r.elapsed_s else 0.0
    lag = r.schedule_lag.percentile_ms(99) if r.schedule_lag else None
    return build_report(
        plan,
        r,
        verdicts,
        valid=valid,
        target_rate=target,
        achieved_rate=achieved,
        schedule_lag_p99_ms=lag,
    )


VALUES = _values(1000, 0)


@pytest.fixture(scope="module")
def run() -> BenchResult:
    return _result(VALUES, errors={"timeout": 7, "http_5xx": 3})


@pytest.fixture(scope="module")
def report(run: BenchResult) -> BenchReport:
    return _report(run, exprs=("p99<5s", "error_rate<0.5%"))


@pytest.fixture(scope="module")
def doc(report: BenchReport) -> dict[str, Any]:
    return report.to_json()


# --- the JSON contract (DESIGN §6) ---------------------------------------------------------


def _is_ms_summary(value: object) -> bool:
    return (
        isinstance(value, dict)
        and tuple(value) == SUMMARY_KEYS
        and all(isinstance(v, float) for v in value.values())
    )


def test_json_follows_the_contract_field_by_field(doc: dict[str, Any], run: BenchResult) -> None:
    assert json.loads(json.dumps(doc)) == doc  # plain JSON values only
    assert BenchReport.from_json(doc).to_json() == doc
    assert doc["schema"] == SCHEMA
    assert (doc["target"], doc["endpoint"], doc["model"]) == ("weather", "message", "open")
    assert doc["concurrency"] is None and doc["rate"] == 200.0
    assert doc["duration_s"] == 5.0
    assert (doc["requests"], doc["ok"]) == (1000, 990)
    assert doc["errors"] == {"http_5xx": 3, "timeout": 7}
    assert set(doc["errors"]) <= ERROR_KINDS
    assert doc["throughput_rps"] == 200.0
    assert _is_ms_summary(doc["latency_ms"]) and _is_ms_summary(doc["service_time_ms"])
    assert doc["latency_ms"] == run.latency.summary()
    assert (
        doc["latency_ms"]["min"] == min(VALUES) / 1000
        and doc["latency_ms"]["max"] == max(VALUES) / 1000
    )
    agents = doc["agents"]
    assert set(agents) == {"weather-1", "weather-2"}
    for a in agents.values():
        assert isinstance(a["requests"], int) and a["requests"] == 500
        assert isinstance(a["share"], float) and a["share"] == 0.5
        assert _is_ms_summary(a["latency_ms"])
    gen = doc["generator"]
    assert tuple(gen)[:4] == ("target_rate", "achieved_rate", "schedule_lag_ms_p99", "valid")
    assert gen["target_rate"] == 200.0 and gen["achieved_rate"] == 200.0
    assert isinstance(gen["schedule_lag_ms_p99"], float) and gen["valid"] is True
    assert [tuple(s)[:4] for s in doc["sla"]] == [("name", "expr", "observed", "pass")] * 2
    assert [s["pass"] for s in doc["sla"]] == [True, False]
    assert doc["sla"][1]["observed"] == 0.01
    assert doc["pass"] is False


def test_json_carries_what_a_merge_needs(doc: dict[str, Any], run: BenchResult) -> None:
    assert doc["started_at"] == T0 and doc["interrupted"] is False
    assert doc["dropped_in_flight"] == 0 and doc["policy"] == IN_FLIGHT_POLICY
    hists = doc["histograms"]
    latency = hists["latency"]
    assert latency["encoded"].startswith("HISTF") and latency["sum_us"] == run.latency.sum_us
    assert (latency["min_us"], latency["max_us"], latency["count"]) == (
        min(VALUES),
        max(VALUES),
        1000,
    )
    assert LatencyHistogram.decode(latency["encoded"]).count == 1000
    assert set(hists["agents"]) == set(doc["agents"])
    assert hists["service_time"]["count"] == hists["schedule_lag"]["count"] == 1000


def test_closed_model_has_no_service_time_nor_schedule_lag() -> None:
    doc = _report(_result(VALUES, open_model=False), CLOSED).to_json()
    assert (doc["model"], doc["concurrency"], doc["rate"]) == ("closed", 8, None)
    assert doc["service_time_ms"] is None and doc["generator"]["schedule_lag_ms_p99"] is None
    assert doc["histograms"]["service_time"] is None


def test_empty_run_reports_zeros_and_a_zero_sample_threshold_fails() -> None:
    r = BenchResult(started_at=T0, elapsed_s=5.0)
    report = _report(r, exprs=("p99<100ms", "error_rate<1%", "rps>=0"))
    doc = report.to_json()
    assert (doc["requests"], doc["throughput_rps"]) == (0, 0.0)
    assert doc["latency_ms"] == dict.fromkeys(SUMMARY_KEYS, 0.0)
    assert [(s["observed"], s["pass"]) for s in doc["sla"]] == [(None, False)] * 3
    assert exit_code(report) is ExitCode.FAILED
    assert BenchReport.from_json(doc).to_json() == doc


def test_observation_rps_is_goodput_over_the_measured_time(run: BenchResult) -> None:
    obs = observation(run)  # 990 answered of 1,000 in 5 s
    assert (obs.samples, obs.requests, obs.errors, obs.rps) == (1000, 1000, 10, 198.0)
    assert observation(BenchResult()).rps is None


# --- exit codes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("valid", "exprs", "code"),
    [
        (True, (), ExitCode.OK),
        (True, ("p99<5s",), ExitCode.OK),
        (True, ("p99<5s", "p50<1us"), ExitCode.FAILED),
        (False, (), ExitCode.INVALID_RUN),
        (False, ("p50<1us",), ExitCode.INVALID_RUN),  # an invalid run's numbers prove nothing
    ],
)
def test_exit_code(run: BenchResult, valid: bool, exprs: tuple[str, ...], code: ExitCode) -> None:
    assert exit_code(_report(run, exprs=exprs, valid=valid)) is code


# --- .hlog -----------------------------------------------------------------------------------


def test_hlog_round_trips_through_hdrh_reader(tmp_path: Path, run: BenchResult) -> None:
    path = tmp_path / "run.hlog"
    write_hlog(path, run)
    reader = HistogramLogReader(str(path), HdrHistogram(1, 3_600_000_000, 3))
    hdrs = list(iter(reader.get_next_interval_histogram, None))
    assert reader.get_start_time_sec() == T0
    reader.close()
    assert [h.get_total_count() for h in hdrs] == [iv.histogram.count for iv in run.intervals]
    back = read_hlog(path)
    assert [(iv.start_s, iv.length_s) for iv in back] == [(i, 1.0) for i in range(5)]
    assert [iv.max_ms for iv in back] == [iv.histogram.max_ms for iv in run.intervals]


def test_report_from_hlog_has_the_latency_and_says_what_is_missing(
    tmp_path: Path, run: BenchResult
) -> None:
    path = tmp_path / "run.hlog"
    write_hlog(path, run)
    doc = report_from_hlog(path).to_json()
    assert doc["schema"] == SCHEMA and doc["note"] == HLOG_NOTE
    assert (doc["requests"], doc["ok"], doc["errors"], doc["agents"]) == (1000, 1000, {}, {})
    assert (doc["duration_s"], doc["started_at"], doc["throughput_rps"]) == (5.0, T0, 200.0)
    ours = run.latency.summary()
    for key in SUMMARY_KEYS[:-1]:  # bucket-exact; max from the logged column, exact
        assert doc["latency_ms"][key] == pytest.approx(ours[key], rel=1e-3), key
    assert doc["latency_ms"]["max"] == ours["max"]
    assert doc["latency_ms"]["mean"] == pytest.approx(ours["mean"], rel=1e-3)  # estimated


def test_hlog_of_a_run_without_intervals_logs_the_whole_histogram(tmp_path: Path) -> None:
    r = _result(VALUES)
    r.intervals.clear()
    write_hlog(tmp_path / "x.hlog", r)
    assert [iv.histogram.count for iv in read_hlog(tmp_path / "x.hlog")] == [1000]


# --- JUnit -----------------------------------------------------------------------------------


def _junit(report: BenchReport) -> ET.Element:
    return ET.fromstring(junit_xml(report).encode("utf-8"))


def test_junit_one_case_per_threshold_with_failures_for_breaches(run: BenchResult) -> None:
    exprs = ("p99<5s", "error_rate<0.5%", "p50 <= 1us", "rps>=100")
    root = _junit(_report(run, exprs=exprs))
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("name") == "latcli bench weather"
    cases = suites[0].findall("testcase")
    assert [c.get("name") for c in cases] == [
        "sla.p99: p99 < 5s",
        "sla.error_rate: error_rate < 0.5%",
        "sla.p50: p50 <= 1us",
        "sla.rps: rps >= 100",
    ]
    assert {c.get("classname") for c in cases} == {"latcli.bench.message"}
    assert {c.get("time") for c in cases} == {"5.000"}
    failed = {c.get("name"): c.find("failure") for c in cases}
    assert [name for name, f in failed.items() if f is not None] == [
        "sla.error_rate: error_rate < 0.5%",
        "sla.p50: p50 <= 1us",
    ]
    failure = failed["sla.error_rate: error_rate < 0.5%"]
    assert failure is not None and failure.get("message") == "observed 1%"
    assert (suites[0].get("tests"), suites[0].get("failures")) == ("4", "2")


@pytest.mark.parametrize("valid", [True, False])
def test_junit_without_thresholds_has_one_case_for_generator_validity(
    run: BenchResult, valid: bool
) -> None:
    cases = _junit(_report(run, valid=valid)).findall("testsuite/testcase")
    assert len(cases) == 1
    assert (cases[0].find("failure") is None) is valid


def test_junit_escapes_what_xml_cannot_hold(run: BenchResult) -> None:
    plan = BenchPlan('a<b>&"c"\x00\x1b', "url", endpoint="health", rate=1.0)
    suite = _junit(_report(run, plan, ("p99<5s",))).find("testsuite")
    assert suite is not None and suite.get("name") == 'latcli bench a<b>&"c"\ufffd\ufffd'


def test_report_files_are_written(tmp_path: Path, report: BenchReport) -> None:
    write_json(tmp_path / "r.json", report)
    write_junit(tmp_path / "r.xml", report)
    assert load_report(tmp_path / "r.json").to_json() == report.to_json()
    assert (tmp_path / "r.json").read_text() == json_text(report) + "\n"
    assert len(ET.parse(tmp_path / "r.xml").getroot().findall(".//testcase")) == 2
    with pytest.raises(ReportError, match="cannot write"):
        write_json(tmp_path / "missing" / "r.json", report)


# --- merging ---------------------------------------------------------------------------------


def _strip(report: BenchReport) -> dict[str, Any]:
    """The contract's measured fields (encodings can differ in bytes for equal counts)."""
    doc = report.to_json()
    keys = ("requests", "ok", "errors", "latency_ms", "service_time_ms", "sla")
    agents = {
        k: {"requests": a["requests"], "latency_ms": a["latency_ms"]}
        for k, a in doc["agents"].items()
    }
    return {**{k: doc[k] for k in keys}, "agents": agents}


def test_merge_of_two_runs_equals_one_run_that_recorded_everything() -> None:
    a_values, b_values = _values(1000, 1), _values(600, 2)
    exprs = ("p99<5s", "p50<2ms", "mean<100ms", "max<1s", "error_rate<1%", "rps>=300")
    a = _report(_result(a_values, errors={"timeout": 4}), exprs=exprs)
    b = _report(_result(b_values, errors={"timeout": 1, "reset": 9}), exprs=exprs)
    one = _report(_result(a_values + b_values, errors={"timeout": 5, "reset": 9}), exprs=exprs)
    read = [BenchReport.from_json(json.loads(json_text(r))) for r in (a, b)]
    merged = merge_reports(read)
    # Agents alternate, so one run's agents got the same values as the two runs' together.
    assert _strip(merged) == _strip(one)
    assert merged.agents["weather-1"].requests == 500 + 300
    assert merged.histograms.latency.hist.sum_us == one.histograms.latency.hist.sum_us
    assert (merged.runs, merged.duration_s) == (2, 5.0)
    # Concurrent runs (same period): throughput and rates add up.
    assert merged.throughput_rps == a.throughput_rps + b.throughput_rps == 320.0
    assert merged.generator.target_rate == merged.rate == 400.0
    # Verdicts were evaluated again on the merged data: rps>=300 fails alone, passes together.
    assert a.sla[-1].passed is False and merged.sla[-1].passed is True


def test_merge_of_runs_one_after_another_averages_throughput() -> None:
    a = _report(_result(_values(1000, 1), elapsed_s=5.0))
    b = _report(_result(_values(500, 2), started_at=T0 + 60, elapsed_s=5.0))
    merged = merge_reports([a, b])
    assert (merged.duration_s, merged.throughput_rps, merged.rate) == (10.0, 150.0, 200.0)
    assert merged.started_at == T0


def test_merge_is_valid_only_if_every_run_was() -> None:
    a = _report(_result(VALUES))
    b = _report(_result(VALUES), valid=False)
    assert exit_code(merge_reports([a, b])) is ExitCode.INVALID_RUN


def test_merge_refuses_reports_of_different_endpoints() -> None:
    a = _report(_result(VALUES))
    b = _report(_result(VALUES), BenchPlan("weather", "type", endpoint="health", rate=200.0))
    with pytest.raises(ReportError, match="different endpoints: message, health"):
        merge_reports([a, b])


def test_merge_with_thresholds_judges_by_them_and_one_report_passes_through(
    report: BenchReport,
) -> None:
    assert merge_reports([report]) is report
    judged = merge_reports([report], thresholds=[parse_threshold("p50<1us")])
    assert [(v.expr, v.passed) for v in judged.sla] == [("p50 < 1us", False)]
    assert _strip(judged) | {"sla": []} == _strip(report) | {"sla": []}


def test_merge_json_with_hlog(tmp_path: Path, run: BenchResult, report: BenchReport) -> None:
    write_hlog(tmp_path / "run.hlog", run)
    merged = merge_reports([report, report_from_hlog(tmp_path / "run.hlog")])
    assert (merged.requests, merged.endpoint, merged.note) == (2000, "message", HLOG_NOTE)
    assert merged.latency_ms.max == report.latency_ms.max


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"schema": "latcli.probe/v1"}', "not a latcli.bench/v1 report"),
        ("{nope", r"x:1: not JSON"),
        ('{"schema": "latcli.bench/v1"}', "x: not a latcli.bench/v1 report: histograms: expected"),
        ("hello", "neither"),
        ("#[Histogram log format version 1.2]\n0.000,1.000,1.000,HISTFAAAAXXX\n", "HdrHistogram"),
    ],
)
def test_load_report_names_the_file_on_bad_content(
    tmp_path: Path, content: str, match: str
) -> None:
    path = tmp_path / "x"
    path.write_text(content)
    with pytest.raises(ReportError, match=match):
        load_report(path)


# --- the rich summary ------------------------------------------------------------------------


def _screen(report: BenchReport, width: int = 100) -> str:
    console = Console(record=True, width=width)
    console.print(bench_summary(report))
    return console.export_text()


def test_summary_shows_spectrum_generator_agents_and_verdicts(run: BenchResult) -> None:
    report = _report(run, exprs=("p99<5s", "error_rate<0.5%"), valid=False)
    text = _screen(report)
    lines = text.splitlines()
    assert all(len(line.rstrip()) <= 100 for line in lines)
    assert "weather · message · open model 200 req/s · 5 s · 1,000 requests" in lines[0]
    header = next(line for line in lines if "p99.99" in line).split()
    assert header == ["ms", *SUMMARY_KEYS]
    latency = next(line for line in lines if line.strip().startswith("latency"))
    cells = [float(c.replace(",", "")) for c in latency.split()[1:]]
    assert cells == pytest.approx([report.latency_ms[k] for k in SUMMARY_KEYS], rel=5e-3, abs=1e-3)
    assert any(line.strip().startswith("service") for line in lines)
    assert "timeout 7 (0.7%) · http_5xx 3 (0.3%)" in text
    assert "target 200 req/s · achieved 200.0 req/s" in text and "INVALID" in text
    agent_rows = [line.split() for line in lines if line.strip().startswith("weather-")]
    assert [row[:3] for row in agent_rows] == [
        ["weather-1", "50%", "500"],
        ["weather-2", "50%", "500"],
    ]
    assert "PASS   p99 < 5s" in text and "FAIL   error_rate < 0.5%" in text


def test_summary_spectrum_fits_80_columns(run: BenchResult) -> None:
    lines = _screen(_report(run), width=80).splitlines()
    assert "…" not in "".join(lines)
    assert len([line for line in lines if line.strip().startswith(("latency", "service"))]) == 2


def test_summary_of_a_valid_closed_run_without_sla() -> None:
    text = _screen(_report(_result(VALUES, open_model=False), CLOSED))
    assert "closed model ×8" in text and "VALID" in text and "INVALID" not in text
    assert "service" not in text and "errors     none" in text


# --- latcli report, as a user runs it --------------------------------------------------------


def _latcli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, "-m", "latcli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def test_cli_report_merges_json_files(tmp_path: Path) -> None:
    exprs = ("p99<5s", "error_rate<1%")
    a = _report(_result(_values(1000, 1), errors={"timeout": 4}), exprs=exprs)
    b = _report(_result(_values(600, 2), errors={"reset": 9}), exprs=exprs)
    write_json(tmp_path / "a.json", a)
    write_json(tmp_path / "b.json", b)
    out, junit = tmp_path / "m.json", tmp_path / "m.xml"
    proc = _latcli(
        "report", tmp_path / "a.json", tmp_path / "b.json", "--json", "-o", out, "--junit", junit
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc == json.loads(out.read_text())
    assert (doc["schema"], doc["requests"], doc["errors"]) == (
        SCHEMA,
        1600,
        {"reset": 9, "timeout": 4},
    )
    assert doc["latency_ms"] == merge_reports([a, b]).to_json()["latency_ms"]
    assert len(ET.parse(junit).getroot().findall(".//testcase")) == 2


def test_cli_report_renders_and_gates(tmp_path: Path, run: BenchResult) -> None:
    write_json(tmp_path / "a.json", _report(run))
    write_hlog(tmp_path / "a.hlog", run)
    proc = _latcli("report", tmp_path / "a.json", tmp_path / "a.hlog", "--sla", "p50<1us")
    assert proc.returncode == ExitCode.FAILED, proc.stderr
    assert "p99.99" in proc.stdout and "FAIL" in proc.stdout and "merged from 2 runs" in proc.stdout
    write_json(tmp_path / "bad.json", _report(run, valid=False))
    assert _latcli("report", tmp_path / "bad.json").returncode == ExitCode.INVALID_RUN


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.json"], "missing.json: cannot read: No such file or directory"),
        (["a.json", "--sla", "p99<100"], "needs a unit"),
    ],
)
def test_cli_report_usage_errors_are_one_line_exit_2(
    tmp_path: Path, run: BenchResult, args: list[str], message: str
) -> None:
    write_json(tmp_path / "a.json", _report(run))
    proc = _latcli("report", *[str(tmp_path / a) if a.endswith(".json") else a for a in args])
    assert proc.returncode == ExitCode.USAGE
    assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1 and message in proc.stderr
