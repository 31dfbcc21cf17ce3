"""``latcli compare`` on real bench reports: runs of ``latcli bench -o`` against delay servers
on loopback, the verdicts and exit codes, the JSON contract, JUnit, and bad input."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import fault_servers as fs
import pytest

from latcli.cli.app import main
from latcli.engines.compare import parse_metric, run_samples
from latcli.reports.bench import BenchReport

pytestmark = pytest.mark.timeout(120)


def _bench(url: str, out: Path, seconds: int) -> Path:
    code = main(["bench", url, "-c", "4", "-d", f"{seconds}s", "--warmup", "0s", "-q", "-o",
                 str(out), "--hlog", str(out.with_suffix(".hlog"))])  # fmt: skip
    assert code == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two 5 s runs of a 20 ms server, one of a 30 ms server, and a 2 s run (too short)."""
    d = tmp_path_factory.mktemp("compare")
    with fs.delay_server(0.020) as fast, fs.delay_server(0.030) as slow:
        fast_url, slow_url = fast.url + "/health", slow.url + "/health"
        return {
            "base": _bench(fast_url, d / "base.json", 5),
            "again": _bench(fast_url, d / "again.json", 5),
            "slow": _bench(slow_url, d / "slow.json", 5),
            "short": _bench(fast_url, d / "short.json", 2),
        }


def _compare(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict[str, Any]]:
    code = main(["compare", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_slower_candidate_exits_1(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = _compare(capsys, runs["base"], runs["slow"])
    assert code == 1 and doc["verdict"] == "slower"
    assert doc["schema"] == "latcli.compare/v1" and doc["metric"] == "p50"
    assert doc["baseline"]["n"] >= 4 and doc["candidate"]["n"] >= 4
    assert 1.3 < doc["ratio"] < 1.6  # ~31 ms / ~21 ms
    lo, hi = doc["ci"]
    assert lo <= doc["ratio"] <= hi and doc["p_value"] < 0.05


def test_the_other_way_round_is_faster_and_exits_0(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = _compare(capsys, runs["slow"], runs["base"])
    assert (code, doc["verdict"]) == (0, "faster") and doc["ratio"] < 0.8


def test_two_runs_of_one_server_are_the_same(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # 10 %: the shared test machine's noise between two runs, not the statistics, is checked
    # by scripts/compare_check.py at the default threshold
    code, doc = _compare(capsys, runs["base"], runs["again"], "--threshold", "10%")
    assert (code, doc["verdict"]) == (0, "same")
    assert 0.9 < doc["ratio"] < 1.1


def test_throughput_lower_is_slower(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # closed model, 4 connections: 20 ms answers give ~190 req/s, 30 ms ones ~130 req/s
    code, doc = _compare(capsys, runs["base"], runs["slow"], "--metric", "rps")
    assert (code, doc["verdict"]) == (1, "slower") and doc["ratio"] < 0.8


def test_several_runs_a_side_are_pooled(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = _compare(capsys, runs["base"], runs["again"], "vs", runs["slow"], "--metric", "p90")
    base = BenchReport.from_json(json.loads(runs["base"].read_text()))
    one, _ = run_samples(base, parse_metric("p90"), "base")
    assert code == 1 and doc["metric"] == "p90"
    assert doc["baseline"]["files"] == [str(runs["base"]), str(runs["again"])]
    assert doc["baseline"]["n"] > len(one) >= 4


def test_too_few_intervals_says_how_long_to_run(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["compare", str(runs["short"]), str(runs["slow"]), "--json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 2 and doc["verdict"] is None and doc["p_value"] is None
    assert "at least 4 per side" in doc["reason"] and "-d 4s" in doc["reason"]
    assert "too few intervals" in captured.err


def test_human_table_and_junit(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = tmp_path / "c.xml"
    code = main(["compare", str(runs["base"]), str(runs["slow"]), "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 1 and "slower" in out and "Mann–Whitney U" in out and "p50 (ms)" in out
    case = ET.fromstring(junit.read_text()).find("testsuite/testcase")
    assert case is not None and case.find("failure") is not None
    assert main(["compare", str(runs["base"]), str(runs["again"]), "--threshold", "10%",
                 "--junit", str(junit)]) == 0  # fmt: skip
    same = ET.fromstring(junit.read_text()).find("testsuite/testcase")
    assert same is not None and same.find("failure") is None


def test_an_hlog_is_a_side_too(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """bench --hlog logs the same intervals as the JSON's timeline: the same p50 samples."""
    code, doc = _compare(capsys, runs["base"].with_suffix(".hlog"), runs["base"])
    assert (code, doc["verdict"], doc["ratio"], doc["p_value"]) == (0, "same", 1.0, 1.0)
    assert doc["notes"] == []  # an hlog names no endpoint: nothing to tell apart
    code, doc = _compare(capsys, runs["base"].with_suffix(".hlog"), runs["slow"])
    assert (code, doc["verdict"]) == (1, "slower")


def test_same_seed_same_interval(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    _, one = _compare(capsys, runs["base"], runs["slow"], "--seed", "5")
    _, two = _compare(capsys, runs["base"], runs["slow"], "--seed", "5")
    assert one["ci"] == two["ci"]


def test_interval_percentiles_from_histograms_match_the_points(runs: dict[str, Path]) -> None:
    """p50 read from each point's histogram (the path p90, p95 ... take) equals the p50 the
    report wrote; the mean lies between the interval's min and max."""
    doc = json.loads(runs["base"].read_text())
    report = BenchReport.from_json(doc)
    listed, _ = run_samples(report, parse_metric("p50"), "base")
    bare = copy.deepcopy(doc)
    for point in bare["timeline"]:
        del point["p50_ms"]
    decoded, _ = run_samples(BenchReport.from_json(bare), parse_metric("p50"), "base")
    assert decoded == pytest.approx(listed, abs=0.001)
    means, _ = run_samples(report, parse_metric("mean"), "base")
    assert all(19.0 < m < 40.0 for m in means)
    rates, _ = run_samples(report, parse_metric("error_rate"), "base")
    assert rates and set(rates) == {0.0}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["{base}"], "one file"),
        (["{base}", "{again}", "{slow}"], "3 files"),
        (["{base}", "vs"], "each side"),
        (["{base}", "{base}", "--metric", "p101"], "unknown metric"),
        (["{base}", "{base}", "--metric", "latency"], "unknown metric"),
        (["{base}", "{base}", "--metric", "first_artifact.p95"], "no per-interval stream phases"),
        (["{base}", "pyproject.toml"], "pyproject.toml: neither"),
        (["{base}", "missing.json"], "missing.json: cannot read"),
        (["{base}", "{base}", "--threshold", "five"], "--threshold"),
        (["{base}", "{base}", "--confidence", "20%"], "confidence"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    runs: dict[str, Path], args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [a.format(**{k: str(v) for k, v in runs.items()}) for a in args]
    assert main(["compare", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_a_report_that_is_not_a_bench_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "probe.json"
    other.write_text(json.dumps({"schema": "latcli.probe/v1", "ok": True, "agents": []}))
    assert main(["compare", str(other), str(other)]) == 2
    assert "not a latcli.bench/v1 report" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "name", "unit"),
    [
        ("p50", "p50", "ms"),
        ("P99.9", "p99.9", "ms"),
        ("mean", "mean", "ms"),
        ("rps", "rps", "req/s"),
        ("error_rate", "error_rate", "fraction"),
        ("first_artifact.p95", "first_artifact.p95", "ms"),
        ("total.p99.9", "total.p99.9", "ms"),
    ],
)
def test_parse_metric(text: str, name: str, unit: str) -> None:
    m = parse_metric(text)
    assert (m.name, m.unit) == (name, unit)


def test_doubtful_runs_and_different_endpoints_are_noted(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = json.loads(runs["slow"].read_text())
    doc["generator"]["valid"] = False
    doc["pass"] = False  # as latcli writes an invalid run
    doc["interrupted"] = True
    doc["endpoint"] = "message"
    doubtful = tmp_path / "doubtful.json"
    doubtful.write_text(json.dumps(doc))
    code, out = _compare(capsys, runs["base"], doubtful)
    assert code == 1 and out["verdict"] == "slower"  # noted, still judged
    assert any("did not hold its rate" in n for n in out["notes"])
    assert any("interrupted" in n for n in out["notes"])
    assert "the sides measure different endpoints: health vs message" in out["notes"]


def test_a_side_without_answers_says_so(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fs.refused_port() as url:
        failed = tmp_path / "failed.json"
        main(["bench", url + "/health", "-c", "1", "-d", "2s", "--warmup", "0s", "-q", "-o",
              str(failed)])  # fmt: skip
    capsys.readouterr()
    code, out = _compare(capsys, runs["base"], failed)
    assert code == 2 and out["verdict"] is None
    assert "no interval with a value in the candidate" in out["reason"]
