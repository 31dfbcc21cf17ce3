"""The command line as users of hey, oha and curl expect it (issue 15 items 2, 4, 5): one number
style, nothing cropped on a narrow or piped console, send by id/URL/stdin, plain errors with
hints, help that fits, a demo whose latency fault shows in watch."""

from __future__ import annotations

import asyncio
import errno
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fault_servers as fs
import httpx
import pytest
import yaml
from rich.console import Console

from latcli.cli.app import command, main
from latcli.config.loading import load_inventory
from latcli.config.model import Agent
from latcli.config.problems import InventoryError
from latcli.core.errors import ErrorKind
from latcli.core.sla import MetricKind, Verdict
from latcli.core.stats import ReplicaStats
from latcli.core.units import format_ms, format_ms_value
from latcli.demo.control import get_fault
from latcli.demo.fleet import free_port
from latcli.engines.send import run_probe
from latcli.engines.watch.rows import penalised
from latcli.render.bench_view import bench_summary
from latcli.render.layout import blocks, fit
from latcli.render.probe_view import probe_summary, probe_table
from latcli.reports.bench import AgentRow, BenchReport, Generator, RunHistograms
from latcli.reports.bounded_histogram import BoundedHistogram, Spectrum
from latcli.reports.histogram import SUMMARY_KEYS
from latcli.reports.probe import ProbeReport, ProbeResult
from latcli.transport.base import Timings
from latcli.transport.exc import text as exc_text

# -- nothing cropped ---------------------------------------------------------------------------


def _bench_report() -> BenchReport:
    """A report's numbers as a long open run gives them (no histograms: the summary's table)."""
    latency = Spectrum(0.412, 17.64, 88.25, 120.5, 997.3, 2403.7, 2995.1, 3012.8, 41.77)
    empty = BoundedHistogram()

    def agent(requests: int, share: float) -> AgentRow:
        return AgentRow(requests, requests, share, latency, None, empty)

    return BenchReport(
        target="http://127.0.0.1:8001/health", endpoint="health", model="open",
        concurrency=None, rate=2500.0, duration_s=30.0, ok=72_001,
        errors={"timeout": 100, "http_5xx": 7}, status_codes={}, throughput_rps=2403.6,
        goodput_rps=2400.0, latency_ms=latency, phases_ms=None, service_time_ms=None,
        agents={"weather-1": agent(54_081, 0.75), "weather-2": agent(18_027, 0.25)},
        generator=Generator(2500.0, 2403.6, 12.34, valid=False, reason="lagging"),
        sla=(Verdict("p99", "p99 < 500ms", 997.3, False, MetricKind.LATENCY),),
        histograms=RunHistograms(empty),
    )  # fmt: skip


def _render(renderable: object, width: int) -> str:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


@pytest.mark.parametrize("width", [60, 80, 100])
def test_bench_summary_keeps_every_digit_on_a_narrow_console(width: int) -> None:
    report = _bench_report()
    text = _render(bench_summary(report), width)
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    words = set(text.split())
    for key in SUMMARY_KEYS:
        assert format_ms_value(report.latency_ms[key]) in words, key
        assert key in words  # headers whole too: no "p99.…", no "p…"
    for number in ("72,108", "2,403.6", "54,081", "18,027", "75%", "25%", "997", "ms"):
        assert number in words, number
    for cell in (
        "17.6 ms",
        "3.01 s",
        "12.3 ms",
        "100 (0.139%)",
        "7 (0.00971%)",
        "target 2,500 req/s",
    ):
        assert cell in " ".join(text.split()), cell


def test_bench_summary_piped_gets_its_natural_width(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from latcli.render.console import stdout_console

    monkeypatch.delenv("COLUMNS", raising=False)
    stdout_console().print(bench_summary(_bench_report()))
    out = capsys.readouterr().out
    spectrum = next(line for line in out.splitlines() if line.strip().startswith("latency"))
    values = _bench_report().latency_ms.as_json().values()
    assert spectrum.split()[1:] == [format_ms_value(v) for v in values]


def _probe_result(agent_id: str, samples: tuple[float, ...], **more: Any) -> ProbeResult:
    agent = Agent(id=agent_id, type="weather", url="http://127.0.0.1:8001")
    timings = Timings(connect=0.412, tls=None, ttfb=1514.2, total=samples[0] if samples else 0)
    healthy = bool(samples)
    return ProbeResult(agent, healthy, 200 if healthy else None, timings, samples, 3, 0, **more)


def test_probe_table_keeps_every_digit_at_60_columns() -> None:
    report = ProbeReport(
        (
            _probe_result("weather-1", (17.64, 24.06, 1514.2)),
            _probe_result("weather-2", (0.952, 2403.7, 88.25), discovery_ms=12.34),
            _probe_result(
                "calendar-9", (), error=ErrorKind.CONNECT, message="connect failed: refused"
            ),
        )
    )
    for count in (1, 3):
        text = _render(probe_table(report, count), 60)
        assert "…" not in text
        assert max(len(line.rstrip()) for line in text.splitlines()) <= 60
        flat = " ".join(text.split())
        expected = ["24.1 ms", "12.3 ms"] + (["1.51 s", "952 µs", "2.40 s"] if count == 3 else [])
        expected += ["412 µs"] if count == 1 else []
        for cell in expected:
            assert cell in flat, (count, cell)
        for header in ("latency", "discovery", "detail") if count == 1 else ("p50", "p99", "max"):
            assert header in text.split(), header


def test_a_real_probe_summary_at_60_columns(demo_fleet: Any) -> None:
    report = asyncio.run(run_probe(demo_fleet.agents, 3))
    text = _render(probe_table(report, 3), 60)
    assert "…" not in text
    flat = " ".join(text.split())
    for r in report.results:
        assert r.agent.id in text
        for value in (r.latency_ms, r.percentile(99), min(r.samples), max(r.samples)):
            assert format_ms(value) in flat


# -- plain errors, hints ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 8001)"),
         "connection refused"),
        (
            OSError(
                "Multiple exceptions: [Errno 99] Cannot assign requested address, "
                "[Errno 111] Connect call failed ('127.0.0.1', 8001)"
            ),
            "connection refused",
        ),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
         "connection reset by peer"),
        (socket.gaierror(-2, "Name or service not known"), "Name or service not known"),
        (ValueError("a   b"), "a b"),
        (RuntimeError(), "RuntimeError"),
    ],
)  # fmt: skip
def test_exception_text_is_plain_words(exc: BaseException, text: str) -> None:
    assert exc_text(exc) == text


def test_probe_of_a_refused_port_says_connection_refused_on_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with fs.refused_port() as url:
        assert main(["probe", url]) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "connect" in x and "127.0.0.1" in x)
    assert "connect failed: connection refused" in line and "Errno" not in out


def test_an_address_without_scheme_gets_a_did_you_mean(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["probe", "localhost:8001", "-i", str(demo_fleet.inventory_path)]) == 2
    err = capsys.readouterr().err
    assert "did you mean http://localhost:8001?" in err and len(err.strip().splitlines()) == 1


def test_probe_summary_asks_whether_the_demo_runs() -> None:
    down = ProbeReport((_probe_result("weather-1", (), error=ErrorKind.CONNECT),))
    assert "latcli demo" in _render(probe_summary(down, demo_fleet=True), 100)
    assert "latcli demo" not in _render(probe_summary(down, demo_fleet=False), 100)


def test_no_inventory_found_is_said_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LATCLI_INVENTORY", raising=False)
    # A bad webhook stops the command before any traffic, after the inventory was looked for.
    assert main(["watch", "--alert-webhook", "notaurl"]) == 2
    first = capsys.readouterr().err.splitlines()
    assert "built-in demo fleet" in first[0] and "--alert-webhook" in first[-1]
    with fs.refused_port() as url:
        main(["probe", url, "--json"])  # only a URL: no demo agent is used, nothing to say
        adhoc = capsys.readouterr()
        (tmp_path / "mine.yaml").write_text(
            f"version: 1\nagents: [{{id: a, type: t, url: '{url}'}}]"
        )
        main(["probe", "-i", str(tmp_path / "mine.yaml"), "--json"])
        named = capsys.readouterr()
    assert json.loads(adhoc.out)["schema"] == "latcli.probe/v1"  # stdout stays machine-readable
    assert "demo fleet" not in adhoc.err and "demo fleet" not in named.err


def test_every_unknown_key_of_a_section_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\n"
        "defaults:\n  timout: 2s\n  retrys: 2\n"
        "agents:\n"
        "  - {id: a, type: t, url: 'http://127.0.0.1:1', helth: {path: /x}, wieght: 2}\n"
        "  - id: b\n    type: t\n    url: 'http://127.0.0.1:2'\n"
        "    health: {path: /h, intervl: 1s, timeot: 1s}\n"
    )
    with pytest.raises(InventoryError) as info:
        load_inventory(path, {})
    where = [p.path for p in info.value.problems]
    assert where == [
        "defaults.timout",
        "defaults.retrys",
        "agents[0].helth",
        "agents[0].wieght",
        "agents[1].health.intervl",
        "agents[1].health.timeot",
    ]
    assert "did you mean 'timeout'?" in str(info.value)


def test_a_bad_webhook_is_refused_before_the_watch_starts(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    start = time.monotonic()
    args = ["watch", "--alert-webhook", "notaurl", "--count", "3", "--json"]
    assert main([*args, "-i", str(demo_fleet.inventory_path)]) == 2
    assert time.monotonic() - start < 1.0
    captured = capsys.readouterr()
    assert "--alert-webhook" in captured.err and "not an http(s) URL" in captured.err
    assert captured.out == ""  # not one tick


# -- send: types, ids, URLs, stdin ------------------------------------------------------------


@pytest.mark.parametrize("how", ["id", "url"])
def test_send_to_one_agent_by_id_or_url(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    agent = demo_fleet.agent("weather-2")
    target = agent.id if how == "id" else agent.url
    args = ["send", target, "hi there", "-i", str(demo_fleet.inventory_path), "--no-state"]
    for _ in range(3):  # routed to weather-2 every time, though weather-1 is faster
        assert main([*args, "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        (result,) = doc["results"]
        assert result["agent"] == "weather-2" and "hi there" in result["reply"]


def test_send_to_an_adhoc_url_and_a_type_at_once(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    url = demo_fleet.agent("weather-1").url + "/"  # a spelling of an inventory agent's URL
    inv = str(demo_fleet.inventory_path)
    assert main(["send", f"calendar,{url}", "hello", "-i", inv, "--no-state", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["type"] for r in results] == ["calendar", url]
    assert results[1]["agent"] == "weather-1"


def test_send_reads_the_message_from_stdin(
    demo_fleet: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a message from a pipe\n"))
    inv = str(demo_fleet.inventory_path)
    assert main(["send", "weather-1", "-", "-i", inv, "--no-state"]) == 0
    out, err = capsys.readouterr()
    assert "a message from a pipe" in out and "→ weather-1" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["send", "weather-1", "-", "-i", inv, "--no-state"]) == 2
    assert "no message on stdin" in capsys.readouterr().err


def test_send_to_an_unknown_name_is_a_usage_error(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["send", "weather-9", "x", "-i", str(demo_fleet.inventory_path)]) == 2
    assert "unknown agent or type 'weather-9'" in capsys.readouterr().err


def test_send_to_a_stopped_demo_fleet_asks_whether_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from latcli.config.loading import DEMO_INVENTORY

    with fs.refused_port() as url:
        doc = yaml.safe_load(DEMO_INVENTORY.read_text())
        port = int(url.rsplit(":", 1)[1])
        # The demo inventory itself, its one weather agent on a refusing port.
        doc["agents"] = [{"id": "weather-1", "type": "weather", "url": url}]
        fake = tmp_path / "agents.yaml"
        fake.write_text(yaml.safe_dump(doc))
        monkeypatch.setattr("latcli.config.loading.DEMO_INVENTORY", fake)
        assert main(["send", "weather", "hi", "-i", str(fake), "--no-state"]) == 1
    assert port and "is `latcli demo` running?" in capsys.readouterr().err


# -- demo fault ----------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["50%", "0.5"])
def test_demo_fault_errors_takes_a_percentage_or_a_fraction(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    inv = str(demo_fleet.inventory_path)
    url = demo_fleet.agent("weather-2").url
    try:
        assert main(["demo", "fault", "weather-2", "--errors", given, "-i", inv]) == 0
        assert asyncio.run(get_fault(url))["errors"] == 0.5
        line = capsys.readouterr().out.strip()
        assert line.startswith("weather-2: latency lognormal 60ms 0.5") and "errors 50%" in line
    finally:
        assert main(["demo", "fault", "weather-2", "--errors", "0%", "-i", inv]) == 0


def test_demo_fault_refuses_a_bad_rate(demo_fleet: Any, capsys: pytest.CaptureFixture[str]) -> None:
    inv = str(demo_fleet.inventory_path)
    assert main(["demo", "fault", "weather-2", "--errors", "lots", "-i", inv]) == 2
    assert "try 50% or 0.5" in capsys.readouterr().err


def test_a_latency_fault_slows_health_checks_too(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = str(demo_fleet.inventory_path)
    agent = demo_fleet.agent("weather-1")
    before = asyncio.run(get_fault(agent.url))
    try:
        assert main(["demo", "fault", "weather-1", "--latency", "300ms", "-i", inv]) == 0
        assert "health checks too" in capsys.readouterr().out
        with httpx.Client(trust_env=False) as client:
            start = time.perf_counter()
            assert client.get(agent.url + "/health").status_code == 200
            took = time.perf_counter() - start
        assert took >= 0.3
        assert main(["probe", "weather-1", "-i", inv, "--json"]) == 0
        (probed,) = json.loads(capsys.readouterr().out)["agents"]
        assert probed["latency_ms"] >= 300.0  # what watch and probe see: slow
    finally:
        restore = ["demo", "fault", "weather-1", "--latency", str(before["latency"]), "-i", inv]
        assert main(restore) == 0
    assert asyncio.run(get_fault(agent.url)) == before  # back to cheap checks


def test_demo_fault_with_no_demo_running_asks_whether_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = tmp_path / "agents.yaml"
    inv.write_text(
        f"version: 1\nagents: [{{id: w, type: t, url: 'http://127.0.0.1:{free_port()}'}}]"
    )
    assert main(["demo", "fault", "w", "--down", "-i", str(inv)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("connection refused: is `latcli demo` running?") and "\n" not in err


# -- watch's EWMA penalty note, from the numbers ---------------------------------------------


def test_an_ewma_fed_failure_penalties_is_told_apart() -> None:
    stats = ReplicaStats(tau=10.0, success_window_s=30.0)
    for i in range(5):
        stats.start()
        stats.finish(float(i), 5.0, ok=True)
    assert not penalised(stats, 5.0)
    stats.start()
    stats.finish(5.0, 2.0, ok=False, cost_ms=2000.0)  # failed in 2 ms, counted as the 2 s timeout
    assert penalised(stats, 5.0)


# -- help, options, completion -----------------------------------------------------------------


def test_top_level_help_summaries_fit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    commands = out.split("Commands:")[1].strip().splitlines()
    assert len(commands) >= 9 and not any("..." in line for line in commands)
    assert all(len(line) <= 80 for line in out.splitlines())
    assert "--install-completion" in out and "--show-completion" in out


def test_one_meaning_per_short_option_and_ordinary_metavars() -> None:
    meaning: dict[str, set[str]] = {}
    metavars: set[str] = set()

    def walk(cmd: Any) -> None:
        for param in cmd.params:
            shorts = [o for o in param.opts if re.fullmatch(r"-[A-Za-z]", o)]
            longs = [o for o in param.opts if o.startswith("--")]
            for short in shorts:
                meaning.setdefault(short, set()).add(longs[0])
            if param.metavar:
                metavars.add(param.metavar)
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(command())
    assert meaning["-n"] == {"--requests"}
    assert all(len(longs) == 1 for longs in meaning.values()), meaning
    assert {"N", "DURATION", "FILE", "URL"} <= metavars
    assert not any("<" in m or "range" in m for m in metavars), metavars


def test_probe_requests_and_count_are_one_option(demo_fleet: Any) -> None:
    inv = str(demo_fleet.inventory_path)
    assert main(["probe", "weather-1", "-n", "2", "-i", inv, "--json"]) == 0
    assert main(["probe", "weather-1", "--count", "2", "-i", inv, "--json"]) == 0
    assert main(["watch", "-n", "1", "-i", inv]) == 2  # -n is requests; watch counts ticks


def test_shell_completion_script_and_completions(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "100"}
    shown = subprocess.run(
        [sys.executable, "-m", "latcli", "--show-completion", "bash"],
        capture_output=True, text=True, env=env, timeout=30, check=False,
    )  # fmt: skip
    assert shown.returncode == 0 and "_LATCLI_COMPLETE=complete_bash" in shown.stdout
    env.update(COMP_WORDS="latcli probe --re", COMP_CWORD="2", _LATCLI_COMPLETE="complete_bash")
    done = subprocess.run(
        [sys.executable, "-m", "latcli"],
        capture_output=True, text=True, env=env, timeout=30, check=False,
    )  # fmt: skip
    assert done.stdout.split() == ["--requests"]
    env.update(COMP_WORDS="latcli probe wea", COMP_CWORD="2")
    env.pop("LATCLI_INVENTORY", None)
    names = subprocess.run(  # outside a project: the built-in demo fleet, and no note about it
        [sys.executable, "-m", "latcli"], cwd=tmp_path,
        capture_output=True, text=True, env=env, timeout=30, check=False,
    )  # fmt: skip
    assert names.stdout.split() == ["weather", "weather-1", "weather-2"]
    assert names.stderr == ""  # nothing printed into the user's prompt line


# -- watch, end to end: what a user who breaks an agent sees ------------------------------------


def _watch_ticks(inv: Path, agent: str, capsys: pytest.CaptureFixture[str]) -> list[Any]:
    args = ["watch", agent, "-i", str(inv), "--interval", "200ms", "--count", "4"]
    main([*args, "--json", "--no-state"])
    return [json.loads(line)["agents"][0] for line in capsys.readouterr().out.splitlines()]


def test_watch_sees_a_slowed_demo_agent_slow(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with demo_fleet.faulted("weather-2", latency="300ms"):
        last = _watch_ticks(demo_fleet.inventory_path, "weather-2", capsys)[-1]
    assert last["p50_ms"] >= 300.0 and last["state"] == "degraded"  # health p99 < 100ms breached


def test_watch_marks_an_ewma_held_up_by_failure_penalties(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with demo_fleet.faulted("flaky-1", down=True):
        ticks = _watch_ticks(demo_fleet.inventory_path, "flaky-1", capsys)
    last = ticks[-1]
    assert last["success_rate"] == 0.0 and last["ewma_penalty"] is True
    assert last["ewma_ms"] > 100.0  # the 503s took a few ms; the EWMA holds the 2 s timeout


# -- the layout rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("widths", "keys", "room", "expected"),
    [
        ([10, 5, 5, 5], 1, 100, [[0, 1, 2, 3]]),  # fits: one block
        ([10, 5, 5, 5], 1, 22, [[0, 1, 2], [0, 3]]),  # the key column repeats in each block
        ([10, 5, 5, 5], 1, 16, [[0, 1], [0, 2], [0, 3]]),
        ([10, 30, 5], 1, 20, [[0, 1], [0, 2]]),  # too wide for any block: a block of its own
        ([10], 1, 5, [[0]]),  # keys only
        ([4, 4, 4], 2, 9, [[0, 1, 2]]),
        ([4, 4, 4, 4], 2, 13, [[0, 1, 2], [0, 1, 3]]),
    ],
)
def test_blocks(widths: list[int], keys: int, room: int, expected: list[list[int]]) -> None:
    def width_of(indices: Any) -> int:
        return sum(widths[i] for i in indices) + len(indices) - 1

    assert list(blocks(len(widths), keys, width_of, room)) == expected


def test_a_table_that_fits_is_rendered_as_it_is() -> None:
    from rich import box
    from rich.table import Table

    table = Table("agent", "count", "p99", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_row("weather-1", "1,234.5", "6.78 ms")
    assert _render(fit(table), 100) == _render(table, 100)
    assert "…" in _render(table, 22)  # rich alone crops
    narrow = _render(fit(table), 22)
    assert "1,234.5" in narrow and "6.78 ms" in narrow and "…" not in narrow
    assert narrow.count("weather-1") == 2  # two blocks, the key column in each


def test_watch_of_a_silent_demo_fleet_asks_whether_it_runs() -> None:
    from dataclasses import replace

    from latcli.cli.runtime import DEMO_HINT, with_demo_hint
    from latcli.reports.watch import AgentRow, WatchSnapshot

    def agent(agent_id: str, error: str | None) -> AgentRow:
        return AgentRow(agent_id, "t", "http://127.0.0.1:1", "http", "down", None, None, None,
                        0.0, "closed", None, 0, error, 3)  # fmt: skip

    snap = WatchSnapshot(0.0, 3, "agents.yaml", 2.0, "p2c", (agent("a", "connect"),))
    assert with_demo_hint(snap).notes == (DEMO_HINT,)
    assert with_demo_hint(with_demo_hint(snap)).notes == (DEMO_HINT,)  # said once
    one_answers = replace(snap, agents=(agent("a", "connect"), agent("b", None)))
    assert with_demo_hint(one_answers).notes == ()
