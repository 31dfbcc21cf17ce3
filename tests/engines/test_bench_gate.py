"""The CI gate is honest (issue 15, item 1): percentiles over answered requests, failures by
error kind and HTTP status, ``rps`` as goodput, a run with no answer fails, report paths are
checked before any load, and ``latcli report`` refuses what is not a report. Real servers on
127.0.0.1 throughout."""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fault_servers as fs
import pytest
from cli_run import _env, interrupt_when_started

from latcli.cli.app import main

pytestmark = pytest.mark.timeout(60)
README = Path(__file__).resolve().parents[2] / "README.md"


def _half_503() -> contextlib.AbstractContextManager[fs.RunningServer]:
    """Every second request answered 503 (the first 200)."""
    turn = itertools.count()
    ok = fs.response_bytes(200, b"{}", "application/json")
    busy = fs.response_bytes(503, b"busy")
    return fs.serve(lambda r, w: fs._keepalive(r, w, lambda _: busy if next(turn) % 2 else ok))


@pytest.fixture
def dead() -> Iterator[str]:
    with fs.refused_port() as url:
        yield url + "/health"


def test_a_dead_target_fails_the_gate(dead: str, capsys: pytest.CaptureFixture[str]) -> None:
    # The reproduction: both thresholds passed and the run exited 0.
    args = ["bench", dead, "-r", "20", "-n", "10", "--sla", "p99<50ms", "--sla", "rps>=10"]
    assert main([*args, "-q", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["ok"], doc["errors"], doc["pass"]) == (0, {"connect": 10}, False)
    assert [(s["observed"], s["pass"]) for s in doc["sla"]] == [(None, False), (0.0, False)]
    assert doc["status_codes"] == {} and doc["goodput_rps"] == 0.0


def test_all_errors_without_sla_exit_1_and_never_read_valid(
    dead: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", dead, "-c", "2", "-n", "6", "-q"]) == 1
    out, err = capsys.readouterr()
    generator = next(line for line in out.splitlines() if line.startswith("generator"))
    assert "FAILED (no request was answered)" in generator and "VALID" not in generator
    assert "connect 6 (100%)" in out
    assert "no request was answered" in err


def test_statuses_are_counted_and_failures_stay_out_of_the_percentiles(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with _half_503() as server:
        code = main(["bench", server.url + "/x", "-c", "1", "-n", "40", "-q", "--json",
                     "--sla", "rps>=1"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert doc["status_codes"] == {"200": 20, "503": 20}
    assert (doc["ok"], doc["errors"]) == (20, {"http_5xx": 20})
    assert doc["histograms"]["latency"]["count"] == 20  # answered only
    assert doc["goodput_rps"] == pytest.approx(doc["throughput_rps"] / 2, rel=0.01)
    assert doc["sla"][0]["observed"] == pytest.approx(doc["goodput_rps"], rel=1e-3)
    agent = next(iter(doc["agents"].values()))
    assert (agent["requests"], agent["answered"]) == (40, 20)


def test_statuses_show_in_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    with _half_503() as server:
        main(["bench", server.url + "/x", "-c", "1", "-n", "10", "-q"])
    out = capsys.readouterr().out
    assert "[200] 5 · [503] 5" in out
    assert "answered)" in out  # the header's goodput beside the throughput


@pytest.mark.parametrize("option", ["-o", "--hlog", "--junit", "--html"])
def test_an_unwritable_report_path_exits_2_before_any_request(
    option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with fs.echo_server() as server:
        code = main(["bench", server.url + "/h", "-n", "5", "-q", option, "/nonexistent/x"])
        assert server.requests == []  # nothing was sent
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "/nonexistent/x: cannot write" in err


def test_a_directory_in_the_files_place_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fs.echo_server() as server:
        assert main(["bench", server.url + "/h", "-n", "5", "-q", "-o", str(tmp_path)]) == 2
        assert server.requests == []
    assert "is a directory" in capsys.readouterr().err


def test_the_summary_is_printed_when_a_write_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The directory exists when the paths are checked and is gone when the run ends.
    gone = tmp_path / "gone"
    gone.mkdir()
    ok = fs.response_bytes(200, b"{}", "application/json")

    def respond(_: fs.Request) -> bytes:
        shutil.rmtree(gone, ignore_errors=True)
        return ok

    with fs.serve(lambda r, w: fs._keepalive(r, w, respond)) as server:
        code = main(["bench", server.url + "/h", "-c", "1", "-n", "5", "-q",
                     "-o", str(gone / "r.json"), "--junit", str(tmp_path / "r.xml")])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 2
    assert "p99" in out and "5 requests" in out  # the result is not lost
    assert f"{gone / 'r.json'}: cannot write" in err
    assert (tmp_path / "r.xml").exists()  # the other asked file is still written


def test_report_refuses_a_file_that_is_not_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(README)]) == 2
    err = capsys.readouterr().err
    assert "README.md" in err and "neither" in err
    comment = tmp_path / "notes.txt"
    comment.write_text("# a comment\n1,2,3\n")
    assert main(["report", str(comment)]) == 2


def test_an_interrupted_open_run_says_so_and_its_rates_agree(tmp_path: Path) -> None:
    # Ctrl-C printed 99.7 req/s in the header and "achieved 43.0 req/s · VALID" below.
    with fs.ok_server() as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "latcli", "bench", server.url + "/h", "-r", "100", "-d",
             "60s", "-o", str(tmp_path / "r.json")],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=_env({"COLUMNS": "200"}),
        )  # fmt: skip
        _, stdout = interrupt_when_started(proc, 1.0)
    assert proc.returncode == 130
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["interrupted"] is True
    assert doc["generator"]["achieved_rate"] == pytest.approx(doc["throughput_rps"], rel=0.1)
    assert doc["generator"]["achieved_rate"] == pytest.approx(100, rel=0.2)
    header = stdout.splitlines()[0]
    generator = next(line for line in stdout.splitlines() if line.startswith("generator"))
    assert "interrupted" in header
    assert "INTERRUPTED" in generator and "VALID" not in generator


def test_without_a_model_bench_runs_closed_with_50_connections(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with fs.ok_server() as server:
        assert main(["bench", server.url + "/h", "-n", "100", "-q", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["model"], doc["concurrency"], doc["rate"]) == ("closed", 50, None)


def test_workers_merge_statuses_and_feed_the_live_view() -> None:
    from latcli.config.loading import load_inventory
    from latcli.engines.bench.targets import resolve_target
    from latcli.engines.bench.workers import run_bench
    from latcli.reports.bench_model import BenchPlan, Progress

    seen: list[Progress] = []
    with _half_503() as server:
        url = server.url + "/x"
        plan = BenchPlan(url, "url", concurrency=2, duration_s=2.5, workers=2)
        inv = load_inventory(README.parent / "agents.yaml", {})
        result = run_bench(plan, resolve_target(inv, url), seen.append)
    assert result.status_codes[200] == result.ok > 0
    assert result.status_codes[503] == result.errors["http_5xx"] > 0
    last = seen[-1]  # the parent's view, summed over both workers
    assert last.p50_ms is not None and set(last.status_codes) == {200, 503}
    assert last.errors_by_kind["http_5xx"] == last.status_codes[503]


def test_junit_fails_a_run_with_no_answer_even_without_thresholds(
    dead: str, tmp_path: Path
) -> None:
    import xml.etree.ElementTree as ET

    junit = tmp_path / "r.xml"
    assert main(["bench", dead, "-n", "3", "-c", "1", "-q", "--junit", str(junit)]) == 1
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures")) == ("2", "1")
    failure = root.find("testsuite/testcase[@name='requests answered']/failure")
    assert failure is not None and failure.get("message") == "0 of 3 requests answered"
    assert "connect 3" in (failure.text or "")


@pytest.mark.parametrize("option", ["-o", "--html"])
def test_capacity_checks_its_report_paths_before_any_request(
    option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with fs.echo_server() as server:
        args = ["capacity", server.url + "/h", "--endpoint", "health", option, "/nonexistent/c"]
        assert main(args) == 2
        assert server.requests == []
    assert "/nonexistent/c: cannot write" in capsys.readouterr().err
