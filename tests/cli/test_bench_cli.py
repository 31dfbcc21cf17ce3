"""``latcli bench`` as a user runs it: flags, exit codes, every report file, SLA gates and
Ctrl-C (a real SIGINT to a subprocess that must still write its reports)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import fault_servers as fs
import pytest
from cli_run import _env, interrupt_when_started
from conftest import DemoFleet

from latcli.cli.app import main
from latcli.reports.histogram import read_hlog

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def url() -> object:
    with fs.ok_server() as server:
        yield server.url + "/health"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-c", "2", "--rate", "10"], "exclude each other"),
        (["-c", "-1"], "-1"),
        (["--rate", "-5"], "more than zero"),
        (["--rate", "0"], "more than zero"),
        (["-c", "2", "-n", "5", "-d", "1s"], "exclude each other"),
        (["-c", "2", "-d", "-3s"], "duration"),
        (["-c", "2", "--max-in-flight", "5"], "only with --rate"),
        (["-c", "2", "--endpoint", "nope"], "health"),
        (["-c", "2", "--engine", "nope"], "httpx"),
        (["-c", "2", "--workers", "0"], "0"),
        (["-c", "2", "-n", "1", "--sla", "p99<100"], "needs a unit"),
    ],
)
def test_bad_flags_exit_2(
    url: str, args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", url, "-q", *args]) == 2
    assert needle in capsys.readouterr().err


def test_json_and_every_report_file(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, hlog, junit = tmp_path / "r.json", tmp_path / "r.hlog", tmp_path / "r.xml"
    code = main(
        ["bench", url, "-c", "3", "-n", "200", "--json", "-q", "-o", str(out),
         "--hlog", str(hlog), "--junit", str(junit), "--sla", "p99<10s", "--sla", "rps>=1"]
    )  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == doc
    assert doc["schema"] == "latcli.bench/v1"
    assert doc["model"] == "closed" and doc["concurrency"] == 3
    assert doc["requests"] == doc["ok"] == 200
    assert doc["pass"] is True and [s["pass"] for s in doc["sla"]] == [True, True]
    assert doc["generator"]["valid"] is True
    assert "dropped_in_flight" in doc and "awaited" in doc["policy"]
    assert sum(iv.histogram.count for iv in read_hlog(hlog)) == 200
    assert ET.fromstring(junit.read_text()).iter("testcase")


def test_human_summary_on_stdout(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", url, "-c", "2", "-n", "50", "-q"]) == 0
    assert "p99" in capsys.readouterr().out


def test_sla_breach_exits_1_and_zero_samples_fail(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", url, "-c", "2", "-n", "20", "-q", "--json", "--sla", "p50<1us"]) == 1
    assert json.loads(capsys.readouterr().out)["pass"] is False
    with fs.refused_port() as dead:
        code = main(["bench", dead, "-c", "1", "-n", "3", "-q", "--json", "--sla", "rps>=0"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["errors"] == {"connect": 3} and doc["ok"] == 0
    assert doc["sla"][0]["pass"] is True  # goodput 0 meets rps>=0 ...
    assert code == 1 and doc["pass"] is False  # ... but a run with no answer fails
    with fs.refused_port() as dead:
        code = main(["bench", dead, "-c", "1", "-n", "3", "-q", "--json", "--sla", "p99<1s"])
    assert code == 1  # a refused connection's time is not a latency: p99 has no data
    item = json.loads(capsys.readouterr().out)["sla"][0]
    assert (item["expr"], item["observed"], item["pass"]) == ("p99 < 1s", None, False)


def test_invalid_run_exits_3(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", url, "--rate", "1000000", "-d", "0.5s", "-q", "--json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert code == 3
    assert doc["generator"]["valid"] is False
    assert doc["generator"]["achieved_rate"] < 0.99 * 1_000_000
    assert "invalid run" in captured.err


@pytest.mark.parametrize(
    ("sla", "endpoint", "expected"),
    [
        (["--sla"], "message", ["message", "availability", "error_rate"]),  # bare: DESIGN §5
        (["--sla", "inventory"], "message", ["message", "availability", "error_rate"]),
        (["--sla", "health"], "message", ["health", "availability", "error_rate"]),
    ],
)
def test_inventory_sla_for_the_endpoint(
    demo_fleet: DemoFleet,
    capsys: pytest.CaptureFixture[str],
    sla: list[str],
    endpoint: str,
    expected: list[str],
) -> None:
    inv = str(demo_fleet.inventory_path)
    # The bare --sla sits before TARGET: the rewrite must not swallow "weather".
    code = main(["bench", *sla, "weather", "-i", inv, "-c", "4", "-n", "40", "-q", "--json",
                 "--endpoint", endpoint])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    names = [s["name"] for s in doc["sla"]]
    assert names == expected
    assert code == (0 if doc["pass"] else 1)
    assert set(doc["agents"]) <= {"weather-1", "weather-2"}
    assert sum(a["requests"] for a in doc["agents"].values()) == 40


def test_ctrl_c_writes_every_report_and_exits_130(url: str, tmp_path: Path) -> None:
    out, hlog, junit = tmp_path / "r.json", tmp_path / "r.hlog", tmp_path / "r.xml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "latcli", "bench", url, "-c", "2", "-d", "60s",
         "-o", str(out), "--hlog", str(hlog), "--junit", str(junit), "--json"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(),
    )  # fmt: skip
    line, stdout = interrupt_when_started(proc, 0.3)
    assert "req/s" in line
    assert proc.returncode == 130
    doc = json.loads(out.read_text())
    assert json.loads(stdout) == doc
    assert doc["interrupted"] is True and doc["requests"] > 0
    assert read_hlog(hlog)
    assert junit.read_text().startswith("<?xml")


def _default_workers() -> int:
    """What a default run (-c 50, 10 s) of a URL uses on this machine (cores.py's rule)."""
    from latcli.engines.bench.cores import default_workers, usable_cores
    from latcli.reports.bench_model import BenchPlan

    return default_workers(BenchPlan("u", "url", concurrency=50, duration_s=10.0), usable_cores())


def test_ctrl_c_to_the_terminal_stops_a_default_run_with_its_workers(
    url: str, tmp_path: Path
) -> None:
    """A terminal's Ctrl-C reaches the whole process group, workers included: the default run
    (one worker per core where that helps) still writes its partial report and exits 130."""
    import os
    import signal
    import time

    out = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "latcli", "bench", url, "-d", "60s", "-o", str(out)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_env(), start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        assert "req/s" in proc.stderr.readline()  # measuring: every worker started
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGINT)
        proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    doc = json.loads(out.read_text())
    assert doc["interrupted"] is True and doc["requests"] > 0 and doc["errors"] == {}
    assert doc["workers"] == _default_workers() and doc["concurrency"] == 50


def test_the_live_view_of_a_default_run_on_a_terminal(url: str) -> None:
    """stderr a terminal: the live view redraws from the workers' merged ticks, then goes."""
    import os
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "latcli", "bench", url, "-d", "2s", "--json"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=_env(),
    )  # fmt: skip
    os.close(slave)
    screen = b""
    try:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not chunk:
                break
            screen += chunk
        stdout, _ = proc.communicate(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    doc = json.loads(stdout)
    assert doc["workers"] == _default_workers() and doc["requests"] > 0
    assert b"req/s" in screen and b"p99" in screen


@pytest.mark.parametrize("command", ["bench", "capacity"])
def test_strategy_routes_a_type(
    command: str, demo_fleet: DemoFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = str(demo_fleet.inventory_path)
    if command == "capacity":  # only the check: a bad name is refused before any load
        assert main([command, "weather", "-i", inv, "--strategy", "nope"]) == 2
        assert "round_robin" in capsys.readouterr().err
        return
    # --endpoint message: the routed call itself (health requests go to Router.pick, a peek)
    args = ["bench", "weather", "-i", inv, "-c", "1", "-n", "20", "-q", "--json"]
    assert main([*args, "--endpoint", "message", "--strategy", "round_robin"]) == 0
    shares = {k: a["requests"] for k, a in json.loads(capsys.readouterr().out)["agents"].items()}
    assert shares == {"weather-1": 10, "weather-2": 10}  # in turn, whatever their latency
