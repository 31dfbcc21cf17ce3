"""No agent can crash a command (DESIGN §7, issue 10 item 3, the commands other than serve):
probe, send and watch against real hostile agents exit 0/1 with one line, never a traceback;
one agent's unexpected error is its failed call, logged once; LATCLI_DEBUG=1 shows it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fault_servers as fs
import pytest
from hostile_agents import deep_json_agent, huge_length_agent, interim_flood_agent

from latcli.cli.app import main
from latcli.core.errors import ErrorKind
from latcli.transport.guard import guarded
from latcli.transport.replies import Reply

RUN_TIMEOUT = 60


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATCLI_")}
    env.update(LATCLI_STATE=str(tmp_path / "state.db"), NO_COLOR="1", COLUMNS="120", **extra)
    return env


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "latcli", *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path, **env),
        timeout=RUN_TIMEOUT,
        check=False,
    )


def _inventory(tmp_path: Path, *agents: tuple[str, str, str]) -> Path:
    """(id, url, protocol) per agent; each agent's type is its id without the number."""
    path = tmp_path / "agents.yaml"
    lines = [
        f"  - {{id: {i}, type: {i.rsplit('-', 1)[0]}, url: '{url}', protocol: {p}, timeout: 3s}}"
        for i, url, p in agents
    ]
    path.write_text("version: 1\nagents:\n" + "\n".join(lines) + "\n")
    return path


def _no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in (0, 1), (proc.returncode, proc.stderr)


@pytest.fixture
def deep() -> Iterator[str]:
    with deep_json_agent() as server:
        yield server.url


# ---- probe ------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["httpx", "raw"])
def test_probe_a2a_agent_with_a_100k_deep_card(tmp_path: Path, deep: str, engine: str) -> None:
    inv = _inventory(tmp_path, ("deep-1", deep, "a2a"))
    proc = _run(tmp_path, "probe", "-i", str(inv), "--json", "--engine", engine)
    _no_traceback(proc)
    assert proc.returncode == 1
    agent = json.loads(proc.stdout)["agents"][0]
    assert agent["error"]["kind"] == "bad_response"


@pytest.mark.parametrize(
    "hostile", [interim_flood_agent, huge_length_agent], ids=["5000-interim-heads", "huge-length"]
)
@pytest.mark.parametrize("engine", ["raw", "httpx"])
def test_probe_an_agent_whose_answer_breaks_an_engine(
    tmp_path: Path, hostile: object, engine: str
) -> None:
    with hostile() as server:  # type: ignore[operator]
        proc = _run(tmp_path, "probe", server.url, "--engine", engine)
    _no_traceback(proc)
    # at most the guard's line, and asyncio's when an engine's protocol callback raised
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) <= 2, proc.stderr


# ---- send ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["http", "a2a"])
def test_send_to_an_agent_answering_100k_deep_json(
    tmp_path: Path, deep: str, protocol: str
) -> None:
    inv = _inventory(tmp_path, ("deep-1", deep, protocol))
    proc = _run(tmp_path, "send", "-i", str(inv), "deep", "hi", "--json")
    _no_traceback(proc)
    assert proc.returncode == 1
    result = json.loads(proc.stdout)["results"][0]
    assert result["ok"] is False
    assert result["attempts"][0]["outcome"] == "bad_response"


def test_send_human_against_a_hostile_agent_is_one_decision_line(tmp_path: Path, deep: str) -> None:
    inv = _inventory(tmp_path, ("deep-1", deep, "http"))
    proc = _run(tmp_path, "send", "-i", str(inv), "deep", "hi", "--retries", "0")
    _no_traceback(proc)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "✗ no answer" in proc.stderr and "bad_response" in proc.stderr


# ---- watch ---------------------------------------------------------------------------------------


def test_watch_keeps_checking_beside_a_hostile_agent(tmp_path: Path, deep: str) -> None:
    with fs.ok_server() as good:
        inv = _inventory(tmp_path, ("deep-1", deep, "a2a"), ("good-1", good.url, "http"))
        proc = _run(
            tmp_path, "watch", "-i", str(inv), "--json", "--count", "4", "--interval", "0.2s"
        )
    _no_traceback(proc)
    assert proc.returncode == 1  # deep-1 is down
    ticks = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(ticks) == 4
    rows = {a["id"]: a for a in ticks[-1]["agents"]}
    assert rows["good-1"]["state"] == "healthy" and rows["good-1"]["checks"] >= 3
    assert rows["deep-1"]["state"] == "down" and rows["deep-1"]["checks"] >= 3
    assert rows["deep-1"]["last_error"] == "bad_response"
    assert rows["deep-1"]["last_message"] and rows["good-1"]["last_message"] is None
    # an unexpected error is logged once per agent, however many checks it spoils
    assert proc.stderr.count("unexpected") <= 1, proc.stderr


# ---- the guard and the CLI boundary ------------------------------------------------------------


async def _raising() -> Reply:
    raise RecursionError("maximum recursion depth exceeded")


def test_guard_turns_an_exception_into_that_agents_bad_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="latcli"):
        first = asyncio.run(guarded(_raising(), "guard-test-1"))
        second = asyncio.run(guarded(_raising(), "guard-test-1"))
    assert first.error is ErrorKind.BAD_RESPONSE and second.error is ErrorKind.BAD_RESPONSE
    assert first.message == "unexpected RecursionError: maximum recursion depth exceeded"
    assert first.is_failure and first.status is None
    logged = [r for r in caplog.records if "guard-test-1" in r.getMessage()]
    assert len(logged) == 1  # once per agent and exception type
    assert logged[0].exc_info is None  # no traceback unless LATCLI_DEBUG


def test_guard_lets_cancellation_through() -> None:
    async def cancelled() -> Reply:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(guarded(cancelled(), "guard-test-2"))


def test_guard_logs_the_traceback_with_latcli_debug(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LATCLI_DEBUG", "1")
    with caplog.at_level(logging.WARNING, logger="latcli"):
        asyncio.run(guarded(_raising(), "guard-test-3"))
    logged = [r for r in caplog.records if "guard-test-3" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None


def _broken_probe(*args: object, **kwargs: object) -> object:
    raise ValueError("a bug \x1b]0;title\x07 at http://u:pw@h/")


def test_cli_boundary_turns_a_leftover_exception_into_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LATCLI_DEBUG", raising=False)
    monkeypatch.setattr("latcli.engines.send.run_probe", _broken_probe)
    assert main(["probe", "http://127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "latcli: internal error: ValueError: a bug \\x1b]0;title\\x07 at http://u:***@h/"
        " (LATCLI_DEBUG=1 shows the traceback)"
    ]


def test_cli_boundary_lets_a_bug_through_with_latcli_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATCLI_DEBUG", "1")
    monkeypatch.setattr("latcli.engines.send.run_probe", _broken_probe)
    with pytest.raises(ValueError, match="a bug"):
        main(["probe", "http://127.0.0.1:1"])


# ---- bench ------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["discovery", "message"])
def test_bench_counts_a_hostile_answer_as_bad_response(
    tmp_path: Path, deep: str, endpoint: str
) -> None:
    """Before: the request raised, ended its loop's task, and the run reported 0 requests."""
    inv = _inventory(tmp_path, ("deep-1", deep, "a2a"))
    proc = _run(tmp_path, "bench", "deep-1", "-i", str(inv), "--endpoint", endpoint,
                "-n", "6", "-c", "2", "-q", "--json")  # fmt: skip
    _no_traceback(proc)
    report = json.loads(proc.stdout)
    assert report["requests"] == 6
    assert report["errors"] == {"bad_response": 6}
