"""``latcli send`` as a user runs it: a subprocess against the demo fleet (DESIGN §3, §4, §6).

Every run gets the fleet's inventory (``-i``) and its own state file through
``LATCLI_STATE`` in ``tmp_path``; nothing touches the user's real state.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from latcli.config.model import Agent
from latcli.core.breaker import Breaker
from latcli.core.stats import ReplicaStats
from latcli.demo.agent import answer
from latcli.routing.state_sqlite import StateStore

RUN_TIMEOUT = 30  # seconds per latcli process: a hang fails the test instead of stalling it
DECISION = re.compile(r"^→ (?P<agent>[\w-]+) · (?P<strategy>\w+) · \d+(\.\d+)? m?s$")
NUMBER = (int, float)


def env_for(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LATCLI_")}
    env.update(LATCLI_STATE=str(state), NO_COLOR="1", COLUMNS="100")
    return env


def send(demo_fleet: Any, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "latcli", "send", "-i", str(demo_fleet.inventory_path), *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env_for(state), timeout=RUN_TIMEOUT, check=False
    )


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def load_row(path: Path, agent: Agent) -> ReplicaStats | None:
    """The stored stats of ``agent`` as a later run's router would load them."""
    stats = ReplicaStats(agent.ewma.decay, agent.breaker.window)
    breaker = Breaker(agent.breaker, random.Random(0))
    with StateStore(path, warn=pytest.fail) as store:
        found = store.load_into(
            f"{agent.id}@{agent.url}", stats, breaker, time.monotonic(), time.time()
        )
    return stats if found else None


def stored_calls(path: Path, agents: list[Agent]) -> int:
    """Success-window calls stored for ``agents``, summed."""
    total = 0
    for a in agents:
        stats = load_row(path, a)
        if stats is not None:
            total += stats.success.calls(time.monotonic())
    return total


# ---- output -----------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_reply_on_stdout_and_decision_on_stderr(demo_fleet: Any, tmp_path: Path) -> None:
    done = send(demo_fleet, tmp_path / "state.db", "weather", "will it rain?")
    assert done.returncode == 0, done.stderr
    [decision] = lines(done.stderr)
    m = DECISION.match(decision)
    assert m, decision
    assert m["strategy"] == "p2c"
    assert m["agent"] in ("weather-1", "weather-2")
    assert done.stdout == answer(m["agent"], "will it rain?") + "\n"


@pytest.mark.timeout(60)
def test_json_output_follows_the_send_contract(demo_fleet: Any, tmp_path: Path) -> None:
    done = send(demo_fleet, tmp_path / "state.db", "weather", "hi", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["schema"] == "latcli.send/v1"
    assert doc["ok"] is True
    assert doc["strategy"] == "p2c"
    assert isinstance(doc["latency_ms"], float) and doc["latency_ms"] > 0
    [result] = doc["results"]
    assert result["type"] == "weather"
    assert result["agent"] in ("weather-1", "weather-2")
    assert result["ok"] is True
    assert result["reply"] == answer(result["agent"], "hi")
    assert isinstance(result["latency_ms"], NUMBER) and result["latency_ms"] > 0
    assert result["latency_ms"] <= doc["latency_ms"]
    [attempt] = result["attempts"]
    assert attempt["agent"] == result["agent"]
    assert attempt["outcome"] == "ok"
    assert attempt["status"] == 200
    assert isinstance(attempt["latency_ms"], NUMBER) and attempt["latency_ms"] > 0
    assert attempt["latency_ms"] <= result["latency_ms"]
    assert lines(done.stderr) == []  # --json: no decision line


@pytest.mark.timeout(60)
def test_fan_out_prints_both_replies_and_the_coordination(demo_fleet: Any, tmp_path: Path) -> None:
    done = send(demo_fleet, tmp_path / "state.db", "weather,calendar", "what's on?")
    assert done.returncode == 0, done.stderr
    replies = dict(line.split(": ", 1) for line in lines(done.stdout))
    assert set(replies) == {"weather", "calendar"}
    decisions = lines(done.stderr)
    assert len(decisions) == 3, decisions
    for type_, line in zip(("weather", "calendar"), decisions, strict=False):
        assert line.startswith(f"{type_} ")
        m = DECISION.match(line.removeprefix(f"{type_} "))
        assert m, line
        assert replies[type_] == answer(m["agent"], "what's on?")
    assert re.fullmatch(r"coordination: \d+(\.\d+)? m?s for 2 types", decisions[2]), decisions[2]


@pytest.mark.timeout(60)
def test_fan_out_json_lists_every_type(demo_fleet: Any, tmp_path: Path) -> None:
    done = send(demo_fleet, tmp_path / "state.db", "weather,calendar", "hi", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert [r["type"] for r in doc["results"]] == ["weather", "calendar"]
    assert all(r["ok"] for r in doc["results"])
    assert all(doc["latency_ms"] >= r["latency_ms"] for r in doc["results"])


# ---- errors -----------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_an_unknown_type_is_a_one_line_usage_error(demo_fleet: Any, tmp_path: Path) -> None:
    done = send(demo_fleet, tmp_path / "state.db", "nosuch", "hi")
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = lines(done.stderr)
    assert "nosuch" in line and "weather" in line  # names the known types
    assert "Traceback" not in done.stderr


@pytest.mark.timeout(60)
def test_a_type_whose_only_replica_fails_exits_1_listing_attempts(
    demo_fleet: Any, tmp_path: Path
) -> None:
    with demo_fleet.faulted("flaky-1", errors=1.0):
        done = send(demo_fleet, tmp_path / "state.db", "news", "hi")
        as_json = send(demo_fleet, tmp_path / "state2.db", "news", "hi", "--json")
    assert done.returncode == 1
    assert done.stdout == ""
    err = lines(done.stderr)
    assert err[0].startswith("✗ no answer"), err
    # the inventory's retries: 1 retries the lone replica once (no other one is left)
    for line in err[1:3]:
        assert re.fullmatch(r"\s+flaky-1: http_5xx HTTP 500 in \d+(\.\d+)? m?s", line), err
    assert "Traceback" not in done.stderr
    # the JSON document is printed on failure too
    assert as_json.returncode == 1
    doc = json.loads(as_json.stdout)
    assert doc["schema"] == "latcli.send/v1" and doc["ok"] is False
    [result] = doc["results"]
    assert result["ok"] is False and result["agent"] is None and result["reply"] is None
    assert [(a["agent"], a["outcome"], a["status"]) for a in result["attempts"]] == [
        ("flaky-1", "http_5xx", 500)
    ] * 2


# ---- options ----------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_routing_options_are_accepted(demo_fleet: Any, tmp_path: Path) -> None:
    # one process for all four (each process costs a second of imports on a busy machine)
    options = ["--strategy", "round_robin", "--retries", "0", "--timeout", "2s", "--hedge"]
    done = send(demo_fleet, tmp_path / "state.db", "weather", "hi", "--json", *options)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] is True
    assert doc["strategy"] == "round_robin"
    # --retries 0 and a healthy fleet: one attempt, on whichever replica's turn it was
    [result] = doc["results"]
    assert [a["agent"] for a in result["attempts"]] in (["weather-1"], ["weather-2"])


@pytest.mark.timeout(90)
def test_round_robin_rotates_across_runs_through_the_state_file(
    demo_fleet: Any, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    options = ["--json", "--strategy", "round_robin", "--retries", "0"]
    picked = []
    for i in range(3):  # each process starts where the previous one left the rotation
        done = send(demo_fleet, state, "weather", f"turn {i}", *options)
        assert done.returncode == 0, done.stderr
        picked.append(json.loads(done.stdout)["results"][0]["agent"])
    assert picked[0] != picked[1] and picked[2] == picked[0], picked
    assert set(picked) == {"weather-1", "weather-2"}


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["weather", "hi", "--strategy", "nope"], "nope", id="strategy"),
        pytest.param(["weather", "hi", "--timeout", "abc"], "--timeout", id="timeout"),
        pytest.param(["weather", "hi", "--retries", "-1"], "--retries", id="retries"),
        pytest.param([",", "hi"], "type", id="no-type"),
    ],
)
def test_bad_option_values_exit_2(
    demo_fleet: Any, tmp_path: Path, args: list[str], needle: str
) -> None:
    done = send(demo_fleet, tmp_path / "state.db", *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert needle in done.stderr
    assert "Traceback" not in done.stderr


# ---- persistent state -------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_state_persists_between_runs(demo_fleet: Any, tmp_path: Path) -> None:
    state = tmp_path / "state" / "latcli.db"
    for i in range(3):
        done = send(demo_fleet, state, "weather", f"n{i}")
        assert done.returncode == 0, done.stderr
    assert state.is_file()
    weather = [demo_fleet.agent("weather-1"), demo_fleet.agent("weather-2")]
    loaded = [s for s in (load_row(state, a) for a in weather) if s is not None]
    assert loaded, "a later router found no history"
    assert all(s.has_history and s.ewma.cost(time.monotonic()) > 0 for s in loaded)
    assert stored_calls(state, weather) == 3


@pytest.mark.timeout(60)
def test_no_state_reads_and_writes_nothing(demo_fleet: Any, tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    done = send(demo_fleet, state, "weather", "hi", "--no-state")
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(90)
def test_concurrent_processes_share_one_state_file_without_lost_updates(
    demo_fleet: Any, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    cmd = [sys.executable, "-m", "latcli", "send", "-i", str(demo_fleet.inventory_path)]
    procs = [
        subprocess.Popen(
            [*cmd, "weather", f"p{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env_for(state),
        )
        for i in range(6)
    ]
    try:
        outputs = [p.communicate(timeout=RUN_TIMEOUT * 2) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert out.strip(), err
        assert "state file" not in err, err  # no busy/corrupt warning: every run saved
    with sqlite3.connect(state) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    weather = [demo_fleet.agent("weather-1"), demo_fleet.agent("weather-2")]
    assert stored_calls(state, weather) == 6


@pytest.mark.timeout(60)
def test_a_corrupt_state_file_is_set_aside_and_send_still_works(
    demo_fleet: Any, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    junk = random.Random(5).randbytes(8192)
    state.write_bytes(junk)
    done = send(demo_fleet, state, "weather", "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    warning = [line for line in lines(done.stderr) if "state file" in line]
    assert len(warning) == 1, done.stderr
    assert str(state) in warning[0] or "state.db" in warning[0]
    assert "corrupt" in warning[0] and "moved to" in warning[0]
    [aside] = [p for p in tmp_path.iterdir() if p.name.startswith("state.db.corrupt-")]
    assert aside.read_bytes() == junk  # set aside untouched, not deleted
    assert state.is_file()
    assert stored_calls(state, [demo_fleet.agent("weather-1"), demo_fleet.agent("weather-2")]) == 1
