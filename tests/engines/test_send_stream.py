"""``latcli send`` and ``latcli probe --message`` against real a2a-sdk 1.3.0 agents
(tests/support/a2a_sdk_agents.py) started here on loopback: the answer streamed to stdout as it
arrives, the decision line, exit codes, ``--json`` fields, and routing on time to first token
(issue 11 items 4-5, issue 12 item 1). Every latcli run is a subprocess, as a user runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from a2a_sdk_agents import RunningAgent, run_sdk_agent
from a2a_wire_agent import v03_sse_agent
from fault_servers import RunningServer
from hostile_agents import EVIL
from pty_run import latcli_on_a_terminal

from latcli.config.loading import load_inventory
from latcli.config.model import Agent, EwmaConfig
from latcli.config.problems import InventoryError
from latcli.config.schema import inventory_json_schema
from latcli.core.errors import ErrorKind
from latcli.render.send_view import decision_lines
from latcli.routing.recorder import ewma_sample
from latcli.routing.results import Attempt, FanOut, RouteResult
from latcli.routing.router import Router
from latcli.transport.a2a.stream import StreamPhases
from latcli.transport.base import Timings
from latcli.transport.replies import Reply

pytestmark = pytest.mark.timeout(180)

RUN_TIMEOUT = 30  # seconds per latcli process
THINK_MS, CHUNKS, GAP_MS = 200.0, 5, 100.0  # the stream agent's schedule
TEXT = "tok0 tok1 tok2 tok3 tok4"
DECISION = re.compile(
    r"^→ (?P<agent>[\w-]+) · p2c · (?P<total>\d+(\.\d+)?) m?s"
    r"(?: · first token (?P<ttft>\d+(\.\d+)?) ms · (?P<chunks>\d+) chunks?)?(?P<rest>.*)$"
)


@dataclass(frozen=True)
class Fleet:
    inventory: Path
    agents: dict[str, RunningAgent]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """A streaming agent, one whose tasks fail, one that asks for input; one inventory."""
    schedule = ("--think-ms", str(THINK_MS), "--chunks", str(CHUNKS), "--gap-ms", str(GAP_MS))
    with (
        run_sdk_agent("stream", *schedule) as llm,
        run_sdk_agent("fail", "--think-ms", "20") as bad,
        run_sdk_agent("input", "--think-ms", "20") as ask,
        run_sdk_agent("rest", *schedule) as rest,
    ):
        path = tmp_path_factory.mktemp("stream") / "agents.yaml"
        entries = [
            {"id": "llm-1", "type": "llm", "url": llm.url},
            {"id": "bad-1", "type": "bad", "url": bad.url},
            {"id": "ask-1", "type": "ask", "url": ask.url},
            {"id": "rest-1", "type": "rest", "url": rest.url},  # HTTP+JSON only
            # the streaming agent with less time than its answer takes
            {"id": "hasty-1", "type": "hasty", "url": llm.url, "timeout": "300ms"},
        ]
        doc = {"version": 1, "defaults": {"protocol": "a2a", "timeout": "10s"}, "agents": entries}
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        yield Fleet(path, {"llm": llm, "bad": bad, "ask": ask})


def env() -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith("LATCLI_")}
    return {**kept, "NO_COLOR": "1", "COLUMNS": "160"}


def latcli(inventory: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    cmd = [sys.executable, "-m", "latcli", *args[:1], "-i", str(inventory), *args[1:]]
    return subprocess.run(cmd, capture_output=True, env=env(), timeout=RUN_TIMEOUT, check=False)


def send(fleet: Fleet, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return latcli(fleet.inventory, "send", "--state", str(tmp_path / "state.db"), *args)


def on_a_terminal(args: list[str], environ: dict[str, str]) -> tuple[int, bytes]:
    """Run latcli with stdout on a pseudo-terminal; (exit code, bytes written to it)."""
    return latcli_on_a_terminal(args, environ, RUN_TIMEOUT)


def err_lines(done: subprocess.CompletedProcess[bytes]) -> list[str]:
    return [line for line in done.stderr.decode().splitlines() if line.strip()]


# ---- send: streamed to stdout --------------------------------------------------------------


def test_the_answer_reaches_stdout_chunk_by_chunk_before_it_is_finished(
    fleet: Fleet, tmp_path: Path
) -> None:
    cmd = [sys.executable, "-m", "latcli", "send", "-i", str(fleet.inventory)]
    cmd += ["--state", str(tmp_path / "state.db"), "llm", "hi"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    assert proc.stdout is not None
    arrivals: list[tuple[float, bytes]] = []
    while piece := os.read(proc.stdout.fileno(), 4096):
        arrivals.append((time.perf_counter(), piece))
    stderr = proc.stderr.read() if proc.stderr else b""
    assert proc.wait(timeout=RUN_TIMEOUT) == 0, stderr
    # byte-exact when piped: the reply as the agent sent it, then one newline
    assert b"".join(p for _, p in arrivals) == TEXT.encode() + b"\n"
    first_token = next(t for t, p in arrivals if p.startswith(b"tok0"))
    last_token = next(t for t, p in arrivals if b"tok4" in p)
    # the chunks come GAP_MS apart: the first was written ~400 ms before the last
    assert last_token - first_token >= (CHUNKS - 1) * GAP_MS / 1000.0 * 0.8
    assert len(arrivals) >= 3
    [decision] = [line for line in stderr.decode().splitlines() if line.strip()]
    m = DECISION.match(decision)
    assert m and m["agent"] == "llm-1", decision
    assert m["chunks"] == str(CHUNKS) and m["rest"] == ""
    assert THINK_MS <= float(m["ttft"]) < THINK_MS + 300


def test_no_stream_asks_for_one_reply(fleet: Fleet, tmp_path: Path) -> None:
    done = send(fleet, tmp_path, "llm", "hi", "--no-stream")
    assert done.returncode == 0, done.stderr
    assert done.stdout == TEXT.encode() + b"\n"
    [decision] = err_lines(done)
    m = DECISION.match(decision)
    assert m and m["ttft"] is None and m["rest"] == "", decision
    doc = json.loads(send(fleet, tmp_path, "llm", "hi", "--no-stream", "--json").stdout)
    [result] = doc["results"]
    assert (result["state"], result["stream"], result["reply"]) == ("completed", None, TEXT)


def test_json_carries_the_state_and_the_phases(fleet: Fleet, tmp_path: Path) -> None:
    done = send(fleet, tmp_path, "llm", "hi", "--json")
    assert done.returncode == 0, done.stderr
    assert err_lines(done) == []
    doc = json.loads(done.stdout)
    assert doc["schema"] == "latcli.send/v1" and doc["ok"] is True
    [result] = doc["results"]
    assert (result["agent"], result["reply"], result["state"]) == ("llm-1", TEXT, "completed")
    phases = result["stream"]
    assert set(phases) == {
        "first_event_ms",
        "working_ms",
        "first_artifact_ms",
        "gap_ms_max",
        "events",
        "total_ms",
    }
    assert phases["events"] == CHUNKS + 3  # task, working, the chunks, completed
    assert 0 < phases["first_event_ms"] <= phases["working_ms"] <= phases["first_artifact_ms"]
    assert THINK_MS <= phases["first_artifact_ms"] <= phases["total_ms"]
    assert phases["total_ms"] >= THINK_MS + (CHUNKS - 1) * GAP_MS
    assert phases["gap_ms_max"] >= GAP_MS - 5
    [attempt] = result["attempts"]
    assert (attempt["outcome"], attempt["message"]) == ("ok", None)


def test_a_failed_task_exits_1_with_the_agents_message(fleet: Fleet, tmp_path: Path) -> None:
    done = send(fleet, tmp_path, "bad", "hi")
    assert done.returncode == 1
    assert done.stdout == b""
    err = err_lines(done)
    assert err[0].startswith("✗ no answer"), err
    # the inventory's default retries: 1 tries the lone replica twice; both say why
    assert len(err) == 3, err
    for line in err[1:]:
        assert re.fullmatch(r"\s+bad-1: task_failed in \d+(\.\d+)? ms: .*model overloaded", line), (
            err
        )
    doc = json.loads(send(fleet, tmp_path, "bad", "hi", "--json").stdout)
    assert doc["ok"] is False
    [result] = doc["results"]
    assert (result["ok"], result["state"], result["reply"]) == (False, "failed", None)
    assert [a["outcome"] for a in result["attempts"]] == [ErrorKind.TASK_FAILED.value] * 2
    assert all("model overloaded" in a["message"] for a in result["attempts"])


def test_input_required_is_an_answer_that_says_its_state(fleet: Fleet, tmp_path: Path) -> None:
    done = send(fleet, tmp_path, "ask", "what's the weather?")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"which city?\n"
    [decision] = err_lines(done)
    m = DECISION.match(decision)
    assert m and m["agent"] == "ask-1" and m["rest"] == " · input-required", decision
    doc = json.loads(send(fleet, tmp_path, "ask", "hi", "--json").stdout)
    assert doc["results"][0]["state"] == "input-required" and doc["ok"] is True


def test_a_fan_out_writes_each_reply_whole(fleet: Fleet, tmp_path: Path) -> None:
    done = send(fleet, tmp_path, "llm,ask,bad", "hi")
    assert done.returncode == 1  # one type failed
    assert done.stdout.decode().splitlines() == [f"llm: {TEXT}", "ask: which city?"]
    err = err_lines(done)
    assert err[0].startswith("llm → llm-1 · p2c") and f"· {CHUNKS} chunks" in err[0], err
    assert err[1].endswith("· input-required"), err
    assert err[2].startswith("bad ✗ no answer"), err
    assert any("model overloaded" in line for line in err[3:]), err


def test_a_stream_cut_by_the_timeout_is_a_failed_send(fleet: Fleet, tmp_path: Path) -> None:
    done = send(fleet, tmp_path, "hasty", "hi", "--retries", "0")
    assert done.returncode == 1
    err = err_lines(done)
    assert err[0].startswith("✗ no answer"), err
    assert re.match(r"\s+hasty-1: timeout", err[1]), err


# ---- probe --message -----------------------------------------------------------------------


def probe_doc(fleet: Fleet, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    done = latcli(fleet.inventory, "probe", *args, "--json")
    doc = json.loads(done.stdout)
    assert doc["schema"] == "latcli.probe/v1"
    return done.returncode, {a["id"]: a for a in doc["agents"]}


def test_probe_shows_that_an_agent_streams_and_its_bindings(fleet: Fleet) -> None:
    done = latcli(fleet.inventory, "probe", "llm", "rest")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.decode().splitlines() if line.strip()}
    assert rows["llm-1"].rstrip().endswith("a2a 1.0 streams")  # JSON-RPC alone goes unsaid
    assert rows["rest-1"].rstrip().endswith("a2a 1.0 http+json streams")
    rc, agents = probe_doc(fleet, "llm", "rest")
    assert rc == 0
    card = agents["llm-1"]["card"]
    assert (card["binding"], card["bindings"], card["streaming"]) == ("jsonrpc", ["jsonrpc"], True)
    assert agents["llm-1"]["answer"] is None  # no --message: no message sent
    card = agents["rest-1"]["card"]
    assert (card["binding"], card["bindings"]) == ("http+json", ["http+json"])


def test_an_http_json_agent_streams_too(fleet: Fleet, tmp_path: Path) -> None:
    done = send(fleet, tmp_path, "rest", "hi")
    assert done.returncode == 0, done.stderr
    assert done.stdout == TEXT.encode() + b"\n"
    [decision] = err_lines(done)
    m = DECISION.match(decision)
    assert m and m["agent"] == "rest-1" and m["chunks"] == str(CHUNKS), decision


@pytest.mark.parametrize("engine", ["httpx", "raw"])
def test_probe_message_is_a_semantic_health_check(fleet: Fleet, engine: str) -> None:
    args = ("llm", "ask", "bad", "hasty", "--message", "ping", "--engine", engine)
    rc, agents = probe_doc(fleet, *args)
    assert rc == 1
    llm = agents["llm-1"]
    assert llm["healthy"] is True and llm["error"] is None
    answer = llm["answer"]
    assert (answer["ok"], answer["state"], answer["reply"]) == (True, "completed", TEXT)
    assert THINK_MS <= answer["first_artifact_ms"] <= answer["latency_ms"]
    assert answer["stream"]["events"] == CHUNKS + 3
    # input-required answers; a failed task or a timeout does not
    assert agents["ask-1"]["healthy"] is True
    assert agents["ask-1"]["answer"]["state"] == "input-required"
    for agent_id, kind in (("bad-1", "task_failed"), ("hasty-1", "timeout")):
        got = agents[agent_id]
        assert got["healthy"] is False and got["status"] == 200, got  # the card GET was fine
        assert got["error"]["kind"] == kind and got["answer"]["ok"] is False
    assert "model overloaded" in agents["bad-1"]["error"]["message"]


def test_probe_message_table_shows_first_token_and_the_verdict(fleet: Fleet) -> None:
    done = latcli(fleet.inventory, "probe", "llm", "bad", "ask", "--message", "ping")
    assert done.returncode == 1
    out = done.stdout.decode()
    header = next(line for line in out.splitlines() if "agent" in line)
    assert "1st token" in header and "answer" in header
    llm = next(line for line in out.splitlines() if line.strip().startswith("llm-1"))
    assert "healthy" in llm and "streams" in llm
    assert "task_failed" in out and "model overloaded" in out and "input-required" in out
    assert "2/3 healthy · unhealthy: bad-1" in out


def test_probe_message_needs_text(fleet: Fleet) -> None:
    done = latcli(fleet.inventory, "probe", "llm", "--message", " ")
    assert done.returncode == 2
    assert b"--message" in done.stderr and b"Traceback" not in done.stderr


# ---- routing on time to first token (issue 12 item 1) --------------------------------------


@pytest.fixture(scope="module")
def a_and_b() -> Iterator[tuple[RunningAgent, RunningAgent]]:
    """A: first token at 50 ms, done at ~650 ms. B: first token at 300 ms, done at ~310 ms."""
    with (
        run_sdk_agent("stream", "--think-ms", "50", "--chunks", "7", "--gap-ms", "100") as a,
        run_sdk_agent("stream", "--think-ms", "300", "--chunks", "2", "--gap-ms", "10") as b,
    ):
        yield a, b


def picks(tmp_path: Path, a: RunningAgent, b: RunningAgent, signal: str | None) -> list[str]:
    """The replica each of 8 consecutive ``latcli send`` processes chose (one state file)."""
    # decay 60s: an idle replica's cost does not fade within the run (the signal is tested)
    ewma = {"decay": "60s", **({"signal": signal} if signal else {})}
    doc = {
        "version": 1,
        "defaults": {"protocol": "a2a", "timeout": "10s", "ewma": ewma},
        "agents": [
            {"id": "A", "type": "llm", "url": a.url},
            {"id": "B", "type": "llm", "url": b.url},
        ],
    }
    path = tmp_path / f"ab-{signal}.yaml"
    path.write_text(yaml.safe_dump(doc))
    state = str(tmp_path / f"ab-{signal}.db")
    chosen = []
    for _ in range(8):
        done = latcli(path, "send", "--state", state, "llm", "hi", "--json")
        assert done.returncode == 0, done.stderr
        chosen.append(json.loads(done.stdout)["results"][0]["agent"])
    return chosen


def test_streamed_sends_route_on_time_to_first_token_and_total_on_request(
    a_and_b: tuple[RunningAgent, RunningAgent], tmp_path: Path
) -> None:
    a, b = a_and_b
    by_ttft = picks(tmp_path, a, b, None)  # the default for streamed sends: first_artifact
    assert set(by_ttft[:2]) == {"A", "B"}  # each replica takes one request before it has history
    assert by_ttft.count("A") >= 6, by_ttft
    by_total = picks(tmp_path, a, b, "total")
    assert set(by_total[:2]) == {"A", "B"}
    assert by_total.count("B") >= 6, by_total


# ---- the pure parts --------------------------------------------------------------------------


def phases(first_artifact: float | None) -> StreamPhases:
    return StreamPhases(1.0, 2.0, first_artifact, 10.0, 600.0, 8, 5)


@pytest.mark.parametrize(
    ("signal", "stream", "expected"),
    [
        (None, phases(50.0), 50.0),  # streamed: time to first token by default
        (None, None, None),  # unary: its total (no replacement sample)
        ("total", phases(50.0), None),
        ("first_artifact", phases(50.0), 50.0),
        ("first_artifact", None, None),  # nothing streamed: the total, whatever the setting
        (None, phases(None), None),  # an answer without text: the total
    ],
)
def test_ewma_sample_follows_the_signal(
    signal: Any, stream: StreamPhases | None, expected: float | None
) -> None:
    agent = Agent("a", "t", "http://h:1", ewma=EwmaConfig(signal=signal))
    reply = Reply(200, Timings(total=600.0), text="x", state="completed", stream=stream)
    assert ewma_sample(agent, reply) == expected


def test_inventory_ewma_signal_in_defaults_and_per_agent(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\ndefaults:\n  ewma: {decay: 5s, signal: total}\nagents:\n"
        '  - {id: a, type: t, url: "http://h:1"}\n'
        '  - {id: b, type: t, url: "http://h:2", ewma: {signal: first_artifact}}\n'
    )
    a, b = load_inventory(path).agents
    assert (a.ewma.decay, a.ewma.signal) == (5.0, "total")
    assert (b.ewma.decay, b.ewma.signal) == (5.0, "first_artifact")
    path.write_text(
        'version: 1\nagents:\n  - {id: a, type: t, url: "http://h:1", ewma: {signal: ttft}}\n'
    )
    schema = inventory_json_schema()["$defs"]["EwmaSection"]["properties"]  # type: ignore[index]
    assert schema["signal"]["enum"] == ["first_artifact", "total"]
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    assert str(caught.value).splitlines() == [
        f"{path}:3 agents[0].ewma.signal: must be one of first_artifact, total (got 'ttft')"
    ]


# ---- hand-written SSE agents: hostile text, a stream that fails after its first chunk -------


def sse_agent(
    chunks: list[str], final: str, said: str = ""
) -> contextlib.AbstractContextManager[RunningServer]:
    """A2A 0.3 agent whose ``message/stream`` answer is ``chunks`` as artifact updates, then a
    final status ``final`` (with the message ``said``): written whole, read as SSE events."""
    events: list[dict[str, Any]] = [
        {
            "kind": "artifact-update",
            "taskId": "t",
            "contextId": "c",
            "append": i > 0,
            "artifact": {"artifactId": "a", "parts": [{"kind": "text", "text": text}]},
        }
        for i, text in enumerate(chunks)
    ]
    status: dict[str, Any] = {"state": final}
    if said:
        parts = [{"kind": "text", "text": said}]
        status["message"] = {
            "kind": "message",
            "role": "agent",
            "messageId": "m",
            "parts": parts,
        }
    events.append(
        {"kind": "status-update", "taskId": "t", "contextId": "c", "status": status, "final": True}
    )
    return v03_sse_agent("sse", events)


def one_type(tmp_path: Path, *urls: str) -> Path:
    path = tmp_path / "agents.yaml"
    agents = [{"id": f"s{i}", "type": "llm", "url": url} for i, url in enumerate(urls)]
    doc = {"version": 1, "defaults": {"protocol": "a2a"}, "agents": agents}
    path.write_text(yaml.safe_dump(doc))
    return path


def test_streamed_chunks_are_escaped_on_a_terminal_and_exact_piped(tmp_path: Path) -> None:
    halves = [EVIL[:20], EVIL[20:]]
    with sse_agent(halves, "completed") as server:
        inv = one_type(tmp_path, server.url)
        args = ["send", "-i", str(inv), "--state", str(tmp_path / "s.db"), "llm", "hi"]
        code, written = on_a_terminal(args, env())
        piped = latcli(inv, "send", "--state", str(tmp_path / "s.db"), "llm", "hi")
        raw_code, raw_written = on_a_terminal([*args, "--raw"], env())
    assert code == 0 and piped.returncode == 0 and raw_code == 0, piped.stderr
    shown = written.decode()
    assert not any(c in shown for c in ("\x1b", "\u202e", "\x07"))
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in shown and "\\u202eevil\\x0d!" in shown
    assert piped.stdout == EVIL.encode() + b"\n"  # byte-exact when piped
    assert "\x1b]0;pwned\x07\x1b[2J" in raw_written.decode()
    assert "first token" in piped.stderr.decode() and "2 chunks" in piped.stderr.decode()


def test_a_stream_that_fails_after_its_first_chunk_is_not_retried_elsewhere() -> None:
    """Once a chunk went out the answer is committed: another replica's answer after it would
    be a mix of two answers. Without a chunk sink the failed task fails over as ever."""
    with (
        sse_agent(["half an ans"], "failed", "model overloaded") as broken,
        sse_agent(["whole answer"], "completed") as good,
    ):
        agents = [
            Agent("s0", "llm", broken.url, "a2a", timeout=5.0),
            Agent("s1", "llm", good.url, "a2a", timeout=5.0),
        ]

        async def go(relay: bool) -> tuple[RouteResult, list[str]]:
            chunks: list[str] = []
            async with Router(agents, strategy="round_robin", retries=1, state=None) as router:
                router.rotate_to("llm", "s0")  # the broken replica first
                sink = chunks.append if relay else None
                return await router.send("llm", "hi", stream=True, on_chunk=sink), chunks

        committed, written = asyncio.run(go(relay=True))
        whole, nothing = asyncio.run(go(relay=False))
    assert written == ["half an ans"]
    assert (committed.ok, committed.error, committed.state) == (
        False,
        "failed after its first chunk",
        "failed",
    )
    [attempt] = committed.attempts
    assert (attempt.agent, attempt.outcome) == ("s0", "task_failed")
    assert attempt.message is not None and "model overloaded" in attempt.message
    assert nothing == []
    assert (whole.ok, whole.agent, whole.reply, whole.state) == (
        True,
        "s1",
        "whole answer",
        "completed",
    )
    assert [a.agent for a in whole.attempts] == ["s0", "s1"]
    assert whole.stream is not None and whole.stream.chunks == 1


# ---- the demo fleet: agents whose card does not stream -------------------------------------


@pytest.mark.timeout(60)
def test_an_agent_that_does_not_stream_answers_whole_by_default(
    demo_fleet: Any, tmp_path: Path
) -> None:
    """The demo's A2A agents (capabilities.streaming false, spec 1.0 and 0.3) and plain http
    agents: send asks for a stream and gets one reply, the decision line as before."""
    for target in ("calendar", "weather"):
        done = latcli(
            demo_fleet.inventory_path, "send", "--state", str(tmp_path / "s.db"), target, "hi"
        )
        assert done.returncode == 0, done.stderr
        [decision] = err_lines(done)
        m = DECISION.match(decision)
        assert m and m["ttft"] is None and m["rest"] == "", decision
        assert done.stdout.endswith(b"\n") and done.stdout.count(b"\n") == 1
        as_json = latcli(
            demo_fleet.inventory_path,
            "send",
            "--state",
            str(tmp_path / "s.db"),
            target,
            "hi",
            "--json",
        )
        [result] = json.loads(as_json.stdout)["results"]
        assert result["ok"] is True and result["stream"] is None
        assert "state" in result  # a Message answer has none; a Task its own


@pytest.mark.timeout(60)
def test_probe_message_to_demo_agents_answered_whole(demo_fleet: Any) -> None:
    done = latcli(
        demo_fleet.inventory_path, "probe", "weather-1", "calendar-1", "--message", "hi", "--json"
    )
    assert done.returncode == 0, done.stderr
    for agent in json.loads(done.stdout)["agents"]:
        answer = agent["answer"]
        assert agent["healthy"] is True and answer["ok"] is True, agent
        assert answer["stream"] is None and answer["first_artifact_ms"] is None
        assert answer["reply"] and answer["latency_ms"] > 0


def test_a_reader_that_goes_away_ends_the_writing_not_the_send(
    fleet: Fleet, tmp_path: Path
) -> None:
    """``latcli send llm hi | head -c 3``: no traceback, no verdict against the agent."""
    state = tmp_path / "state.db"
    cmd = [sys.executable, "-m", "latcli", "send", "-i", str(fleet.inventory)]
    cmd += ["--state", str(state), "llm", "hi"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    assert proc.stdout is not None and proc.stderr is not None
    assert os.read(proc.stdout.fileno(), 3) == b"tok"
    proc.stdout.close()  # the reader is gone while the answer still streams
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=RUN_TIMEOUT) == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    [decision] = [line for line in stderr.splitlines() if line.strip()]
    assert DECISION.match(decision) and f"· {CHUNKS} chunks" in decision, decision
    doc = json.loads(send(fleet, tmp_path, "llm", "hi", "--json").stdout)
    assert doc["ok"] is True  # the agent was not blamed: its breaker let the next send through


def test_an_on_chunk_that_raises_is_the_callers_error_not_the_agents(fleet: Fleet) -> None:
    llm = fleet.agents["llm"]
    agent = Agent("llm-1", "llm", llm.url, "a2a", timeout=10.0)

    def sink(text: str) -> None:
        raise ValueError("my sink broke")

    async def go() -> tuple[float, int]:
        async with Router([agent], retries=1, state=None) as router:
            with pytest.raises(ValueError, match="my sink broke"):
                await router.send("llm", "hi", stream=True, on_chunk=sink)
            stats = router.replica("llm-1").stats
            return stats.success.calls(time.monotonic()), stats.in_flight

    calls, in_flight = asyncio.run(go())
    assert (calls, in_flight) == (0, 0)  # no verdict recorded, no retry, nothing left in flight


# ---- the decision line, as rendered ---------------------------------------------------------


def routed(
    ok: bool, *attempts: Attempt, state: str | None = None, stream: StreamPhases | None = None
) -> FanOut:
    agent = attempts[-1].agent if ok else None
    result = RouteResult(
        "llm",
        ok,
        agent,
        "x" if ok else None,
        612.0,
        attempts,
        "p2c",
        None if ok else "every attempt failed",
        state,
        stream,
    )
    return FanOut((result,), 612.0, "p2c")


@pytest.mark.parametrize(
    ("fan", "expected"),
    [
        (routed(True, Attempt("a", "ok", 200, 600.0)), ["→ a · p2c · 612 ms"]),
        (
            routed(True, Attempt("a", "ok", 200, 600.0), state="completed", stream=phases(203.0)),
            ["→ a · p2c · 612 ms · first token 203 ms · 5 chunks"],
        ),
        (
            routed(True, Attempt("a", "ok", 200, 210.0), state="input-required"),
            ["→ a · p2c · 612 ms · input-required"],
        ),
        (
            routed(
                False, Attempt("a", "task_failed", 200, 206.0, message="task failed: overloaded")
            ),
            [
                "✗ no answer (every attempt failed) after 612 ms",
                "    a: task_failed in 206 ms: task failed: overloaded",
            ],
        ),
        (
            routed(False, Attempt("a", "http_5xx", 500, 3.41, message="HTTP 500")),
            [
                "✗ no answer (every attempt failed) after 612 ms",
                "    a: http_5xx HTTP 500 in 3.41 ms",
            ],
        ),
    ],
    ids=["plain", "streamed", "input-required", "task-failed", "http-500"],
)
def test_decision_lines(fan: FanOut, expected: list[str]) -> None:
    assert decision_lines(fan) == expected


def test_hedge_writes_the_streamed_answer_once(fleet: Fleet, tmp_path: Path) -> None:
    """Two hedged streams would interleave: only the winner's text is written."""
    done = send(fleet, tmp_path, "llm", "hi", "--hedge")
    assert done.returncode == 0, done.stderr
    assert done.stdout == TEXT.encode() + b"\n"
    [decision] = err_lines(done)
    m = DECISION.match(decision)
    assert m and m["chunks"] == str(CHUNKS), decision  # streamed all the same: phases known
