"""The CLI shell: exit codes, inventory problems as FILE:LINE lines, secrets, ``latcli demo``.

Commands run as a user runs them (``python -m latcli``) where stdout, stderr or the exit
code of the real process is the point; in-process through ``main(argv)`` otherwise.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import fault_servers as fs
import psutil
import pytest
from cli_run import spawn

from latcli import __version__
from latcli.cli.app import main
from latcli.config.loading import load_inventory
from latcli.demo.control import get_fault
from latcli.demo.fleet import free_port

pytestmark = pytest.mark.timeout(30)

SECRET = "s3cr3t"

PROBLEM_LINE = re.compile(r"^\S+\.yaml(:\d+)?( \S+)?: .+$")


def latcli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = spawn(*args, env=env)
    out, err = proc.communicate(timeout=25)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# name -> (file text or None for a missing file, expected stderr lines). FILE stands for the
# path; a line ending in "..." only has to start with what comes before.
BAD_INVENTORIES: dict[str, tuple[str | None, list[str]]] = {
    "missing-file": (None, ["FILE: file not found"]),
    "yaml-syntax": (
        """\
        version: 1
        agents:
          - {id: a, type: t, url: "http://127.0.0.1:1"
        """,
        ["FILE:4: invalid YAML: ..."],  # the wording is the YAML parser's (PyYAML or libyaml)
    ),
    "unknown-key": (
        """\
        version: 1
        agents:
          - id: a
            type: t
            urll: "http://127.0.0.1:1"
        """,
        ["FILE:5 agents[0].urll: unknown key (did you mean 'url'?)"],
    ),
    "wrong-type": (
        """\
        version: 1
        agents:
          - id: a
            type: t
            url: "http://127.0.0.1:1"
            weight: heavy
        """,
        ["FILE:6 agents[0].weight: expected a number, got a string"],
    ),
    "duplicate-id": (
        """\
        version: 1
        agents:
          - {id: a, type: t, url: "http://127.0.0.1:1"}
          - {id: b, type: t, url: "http://127.0.0.1:2"}
          - {id: a, type: t, url: "http://127.0.0.1:3"}
        """,
        ["FILE:5 agents[2].id: duplicate id 'a' (first at line 3)"],
    ),
    "bad-url": (
        """\
        version: 1
        agents:
          - {id: a, type: t, url: "http://127.0.0.1:1"}
          - {id: b, type: t, url: "ftp://127.0.0.1:2"}
        """,
        ["FILE:4 agents[1].url: not an http(s) URL"],
    ),
    "undefined-var": (
        """\
        version: 1
        defaults:
          headers: {Authorization: "Bearer ${LATCLI_TEST_UNDEFINED_TOKEN}"}
        agents:
          - {id: a, type: t, url: "http://127.0.0.1:1"}
        """,
        ["FILE:3 defaults.headers.Authorization: undefined variable LATCLI_TEST_UNDEFINED_TOKEN"],
    ),
}


def assert_lines(text: str, expected: list[str]) -> None:
    lines = text.splitlines()
    assert len(lines) == len(expected), text
    for line, want in zip(lines, expected, strict=True):
        assert line.startswith(want[:-3]) if want.endswith("...") else line == want
        assert PROBLEM_LINE.match(line), line


def _bad_inventory(directory: Path, name: str) -> tuple[str, list[str]]:
    """Path of the ``name`` case's file (written unless it is the missing one), expected lines."""
    text, lines = BAD_INVENTORIES[name]
    path = directory / f"{name}.yaml"
    if text is not None:
        write(path, text)
    return str(path), [line.replace("FILE", str(path)) for line in lines]


@pytest.mark.parametrize("name", list(BAD_INVENTORIES))
def test_inventory_problem_is_one_file_line_per_problem_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    path, expected = _bad_inventory(tmp_path, name)
    assert main(["probe", "-i", path, "--json"]) == 2
    captured = capsys.readouterr()
    assert_lines(captured.err, expected)
    assert captured.out == ""


def test_inventory_problems_reach_the_user_of_the_real_process(tmp_path: Path) -> None:
    names = ["missing-file", "unknown-key", "undefined-var"]
    cases = {name: _bad_inventory(tmp_path, name) for name in names}
    # Side by side: the interpreters start in parallel.
    procs = {name: spawn("probe", "-i", path, "--json") for name, (path, _) in cases.items()}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=25)
        assert (proc.returncode, out) == (2, ""), name
        assert "Traceback" not in err
        assert_lines(err, cases[name][1])


def test_every_problem_of_a_file_is_listed_in_file_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path / "agents.yaml",
        """\
        version: 1
        defaults:
          timeout: fast
        agents:
          - {id: a, type: t, url: "nope"}
          - {id: a, type: t, url: "ftp://127.0.0.1:2"}
          - {id: b, type: t, url: "http://127.0.0.1:3", colour: red}
        """,
    )
    assert main(["probe", "-i", str(path), "--json"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 5, lines
    assert [int(line.split(" ")[0].rsplit(":", 1)[1]) for line in lines] == [3, 5, 6, 6, 7]
    assert "defaults.timeout: not a duration" in lines[0]
    assert "agents[0].url: not an http(s) URL" in lines[1]
    assert any("agents[1].id: duplicate id 'a' (first at line 5)" in line for line in lines[2:4])
    assert any("agents[1].url: not an http(s) URL" in line for line in lines[2:4])
    assert "agents[2].colour: unknown key" in lines[4]


def _secret_inventory(path: Path, url: str, extra_agent: str = "") -> Path:
    return write(
        path,
        f"""\
        version: 1
        defaults:
          headers: {{Authorization: "Bearer ${{TOKEN}}", X-Api-Key: "${{TOKEN}}"}}
        agents:
          - {{id: echo, type: t, url: "{url}"}}
          - {{id: gone, type: t, url: "http://127.0.0.1:9", protocol: a2a}}
        {extra_agent}""",
    )


def test_secret_headers_are_sent_but_never_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TOKEN", SECRET)
    with fs.echo_server() as server:
        inv = _secret_inventory(tmp_path / "agents.yaml", server.url)
        agents = load_inventory(inv).agents
        assert agents[0].headers["Authorization"] == f"Bearer {SECRET}"  # the secret is in use
        assert agents[0].shown_headers() == {"Authorization": "***", "X-Api-Key": "***"}
        assert SECRET not in repr(agents)
        human = latcli("probe", "-i", str(inv), "--count", "2", env={"TOKEN": SECRET})
        outputs = []
        for argv, code in [
            (["probe", "-i", str(inv), "--json"], 1),
            (["probe", "-i", str(inv), "nosuch"], 2),
            (["schema"], 0),
        ]:
            assert main(argv) == code
            outputs.append(capsys.readouterr())
    assert human.returncode == 1
    assert "echo" in human.stdout and "gone" in human.stdout
    assert SECRET not in human.stdout + human.stderr
    doc = json.loads(outputs[0].out)
    assert [a["healthy"] for a in doc["agents"]] == [True, False]
    assert "nosuch" in outputs[1].err
    for output in outputs:
        assert SECRET not in output.out + output.err


def test_secret_in_a_bad_header_is_not_quoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A line break in a header value is an inventory problem; the message must not show it.
    monkeypatch.setenv("TOKEN", f"{SECRET}\r\nX-Evil: 1")
    inv = _secret_inventory(
        tmp_path / "agents.yaml",
        "http://127.0.0.1:9",
        extra_agent='  - {id: bad, type: t, url: "ftp://x", headers: {Cookie: "${TOKEN}"}}\n',
    )
    assert main(["probe", "-i", str(inv), "--json"]) == 2
    captured = capsys.readouterr()
    assert "line break" in captured.err and "agents[2].url" in captured.err
    assert SECRET not in captured.out + captured.err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"latcli {__version__}"


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("probe", "demo", "schema"):
        assert re.search(rf"\b{command}\b", out), command


def test_schema_is_valid_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "agents" in json.dumps(schema)


# Typer 0.29 vendors click as typer._click: main() must catch its usage errors (exit 2).
@pytest.mark.parametrize(
    "argv",
    [
        ["probe", "--count", "0"],
        ["probe", "--nosuch"],
        ["probe", "--count", "many"],
        ["demo", "--interval", "soon"],
    ],
    ids=["count-0", "unknown-option", "not-an-int", "bad-duration"],
)
def test_usage_errors_are_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert argv[1] in err and "Traceback" not in err


def test_demo_fault_unknown_agent_is_exit_2(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "fault", "NOSUCH", "-i", str(demo_fleet.inventory_path)]) == 2
    err = capsys.readouterr().err
    assert "NOSUCH" in err and len(err.strip().splitlines()) == 1


def test_demo_fault_changes_a_running_agent(
    demo_fleet: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = str(demo_fleet.inventory_path)
    url = demo_fleet.agent("weather-1").url
    before = asyncio.run(get_fault(url))
    try:
        assert main(["demo", "fault", "weather-1", "--latency", "300ms", "-i", inv]) == 0
        assert "weather-1" in capsys.readouterr().out
        assert asyncio.run(get_fault(url))["latency"] == "fixed 300ms"

        assert main(["demo", "fault", "weather-1", "--down", "-i", inv]) == 0
        assert asyncio.run(get_fault(url))["down"] is True
        capsys.readouterr()
        assert main(["probe", "weather-1", "-i", inv, "--json"]) == 1
        (got,) = json.loads(capsys.readouterr().out)["agents"]
        assert got["error"]["kind"] == "http_5xx"

        assert main(["demo", "fault", "weather-1", "--up", "-i", inv]) == 0
        state = asyncio.run(get_fault(url))
        assert state["down"] is False and state["latency"] == "fixed 300ms"

        assert main(["demo", "fault", "weather-1", "--concurrency-limit", "3", "-i", inv]) == 0
        assert asyncio.run(get_fault(url))["concurrency_limit"] == 3
    finally:
        restore = ["demo", "fault", "weather-1", "--latency", str(before["latency"]), "-i", inv]
        assert main([*restore, "--concurrency-limit", "0"]) == 0
        assert main(["demo", "fault", "weather-1", "--up", "-i", inv]) == 0
    assert asyncio.run(get_fault(url)) == before


def _demo_inventory(path: Path, ports: list[int]) -> Path:
    return write(
        path,
        f"""\
        version: 1
        agents:
          - {{id: w1, type: weather, url: "http://127.0.0.1:{ports[0]}",
              demo: {{latency: "5ms"}}}}
          - {{id: c1, type: calendar, url: "http://127.0.0.1:{ports[1]}", protocol: a2a,
              demo: {{latency: "5ms", a2a_version: "1.0"}}}}
          - {{id: c2, type: calendar, url: "http://127.0.0.1:{ports[2]}", protocol: a2a,
              demo: {{latency: "5ms", a2a_version: "0.3"}}}}
        """,
    )


def _lines(stream: Any) -> Queue[str]:
    """Lines of ``stream`` as they arrive, read by a daemon thread."""
    lines: Queue[str] = Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _read_until(lines: Queue[str], done: str, seen: list[str], deadline: float) -> None:
    while not any(done in line for line in seen):
        try:
            seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        except Empty:
            pytest.fail(f"no {done!r} in time; output so far:\n{''.join(seen)}")


def _listeners(ports: list[int]) -> set[int]:
    """PIDs of the processes listening on ``ports``."""
    return {
        c.pid
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port in ports and c.pid
    }


@pytest.fixture()
def demo_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    ports = [free_port() for _ in range(3)]
    inv = _demo_inventory(tmp_path / "agents.yaml", ports)
    env = {"COLUMNS": "120", "LATCLI_STATE": str(tmp_path / "state.db")}
    proc = spawn("demo", "-i", str(inv), "--interval", "300ms", env=env)
    try:
        yield proc, ports
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@pytest.mark.timeout(40)
def test_demo_starts_the_fleet_watches_it_and_stops_on_ctrl_c(
    demo_process: tuple[subprocess.Popen[str], list[int]],
) -> None:
    proc, ports = demo_process
    assert proc.stdout is not None
    seen: list[str] = []
    _read_until(_lines(proc.stdout), "send would pick weather → w1", seen, time.monotonic() + 20)
    output = "".join(seen)
    assert "demo fleet" in output
    for agent_id, protocol, port in zip(
        ("w1", "c1", "c2"), ("http", "a2a 1.0", "a2a 0.3"), ports, strict=True
    ):
        row = next(line for line in seen if f" {agent_id} " in f" {line} " and "127.0.0.1" in line)
        assert protocol in row and f"127.0.0.1:{port}" in row
    assert "latcli watch · every 300 ms" in output  # the demo opens watch on its fleet
    assert all(f" {a} " in output for a in ("w1", "c1", "c2")) and " healthy " in output

    agents = {c.pid for c in psutil.Process(proc.pid).children()}
    assert _listeners(ports) == agents and len(agents) == 3

    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("latcli demo did not stop within 5 s of Ctrl-C")
    assert code == 130
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert "Traceback" not in err and "stopping 3 agents" in err
    assert _listeners(ports) == set()
    assert not [pid for pid in agents if psutil.pid_exists(pid)]


def test_demo_refuses_a_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        inv = _demo_inventory(tmp_path / "agents.yaml", [free_port(), port, free_port()])
        assert main(["demo", "-i", str(inv)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"port {port} (c1) is already in use" in line
