"""Request shaping as hey, oha, vegeta and curl users expect (issue 15, item 3): ``-H``, ``-m``,
``--body``, ``--body-file``, ``--timeout`` and query strings arrive at a real recording server
for bench and probe, and one rule says what a URL means in every command."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import fault_servers as fs
import pytest

from latcli.cli.app import main
from latcli.config.model import STRATEGIES
from latcli.config.selection import adhoc_agent
from latcli.config.shaping import RequestShape, ShapeError, parse_header, request_shape
from latcli.transport.requests import health_request

pytestmark = pytest.mark.timeout(60)

SHAPE = ["-m", "post", "-H", "X-Token: abc 123", "-H", "Content-Type: application/json",
         "--body", '{"q": 1}']  # fmt: skip


@pytest.fixture
def recorder() -> Iterator[tuple[fs.RunningServer, list[fs.Request]]]:
    """An echo server that also keeps every parsed request."""
    seen: list[fs.Request] = []
    ok = fs.response_bytes(200, b"{}", "application/json")

    def respond(request: fs.Request) -> bytes:
        seen.append(request)
        return ok

    with fs.serve(lambda r, w: fs._keepalive(r, w, respond)) as server:
        yield server, seen


def _shaped(request: fs.Request) -> tuple[str, str, str | None, str | None, bytes]:
    headers = dict(request.headers)
    return (request.method, request.path, headers.get("x-token"),
            headers.get("content-type"), request.body)  # fmt: skip


EXPECTED = ("POST", "/api/v1?x=1&y=two", "abc 123", "application/json", b'{"q": 1}')


def test_bench_sends_the_shaped_request(
    recorder: tuple[fs.RunningServer, list[fs.Request]], capsys: pytest.CaptureFixture[str]
) -> None:
    server, seen = recorder
    url = server.url + "/api/v1?x=1&y=two"
    assert main(["bench", url, "-c", "2", "-n", "10", "-q", "--json", *SHAPE]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] == 10
    assert len(seen) == 10 and {_shaped(r) for r in seen} == {EXPECTED}


def test_probe_sends_the_shaped_request(
    recorder: tuple[fs.RunningServer, list[fs.Request]], capsys: pytest.CaptureFixture[str]
) -> None:
    server, seen = recorder
    url = server.url + "/api/v1?x=1&y=two"
    assert main(["probe", url, "--json", *SHAPE]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True
    assert [_shaped(r) for r in seen] == [EXPECTED]


def test_body_file_is_sent_as_read(
    recorder: tuple[fs.RunningServer, list[fs.Request]], tmp_path: Path
) -> None:
    server, seen = recorder
    body = tmp_path / "body.bin"
    body.write_bytes(b"\x00binary\xffbody")
    assert main(["bench", server.url + "/in", "-c", "1", "-n", "2", "-q", "-m", "PUT",
                 "--body-file", str(body)]) == 0  # fmt: skip
    assert {(r.method, r.body) for r in seen} == {("PUT", b"\x00binary\xffbody")}


def test_a_header_on_the_command_line_overrides_the_inventorys(
    recorder: tuple[fs.RunningServer, list[fs.Request]], tmp_path: Path
) -> None:
    server, seen = recorder
    inv = tmp_path / "agents.yaml"
    inv.write_text(
        "version: 1\nagents:\n"
        f"  - {{id: a, type: t, url: '{server.url}', headers: {{X-Token: old, X-Keep: k}}}}\n"
    )
    assert main(["probe", "a", "-i", str(inv), "-H", "x-token: new"]) == 0
    headers = dict(seen[0].headers)
    assert (seen[0].path, headers["x-token"], headers["x-keep"]) == ("/health", "new", "k")


@pytest.mark.parametrize("command", ["probe", "bench"])
def test_one_url_rule_in_every_command(
    command: str, recorder: tuple[fs.RunningServer, list[fs.Request]]
) -> None:
    # probe http://host/health requested /health/health while bench requested /health.
    server, seen = recorder
    extra = ["-n", "1", "-c", "1", "-q"] if command == "bench" else []
    assert main([command, server.url + "/health", *extra]) == 0
    assert main([command, server.url, *extra]) == 0  # a bare origin: the health path
    assert main([command, server.url + "/status/", *extra]) == 0  # as given, slash kept
    assert [r.path for r in seen] == ["/health", "/health", "/status/"]


def test_timeout_bounds_each_request(capsys: pytest.CaptureFixture[str]) -> None:
    with fs.silent_server() as server:
        began = time.monotonic()
        code = main(["bench", server.url + "/h", "-c", "1", "-n", "2", "-q", "--json",
                     "--timeout", "200ms"])  # fmt: skip
        took = time.monotonic() - began
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["errors"] == {"timeout": 2}
    assert took < 1.5  # two 200 ms timeouts, not the inventory's default


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-H", "no colon"], "expected 'Name: value'"),
        (["-H", "Bad Name: x"], "not a header name"),
        (["-H", "X: caf\u00e9"], "printable ASCII"),
        (["-m", "GE T"], "not an HTTP method"),
        (["--body", "a", "--body-file", "b"], "exclude each other"),
        (["--body-file", "/nonexistent/body"], "/nonexistent/body"),
        (["--timeout", "0s"], "more than zero"),
        (["--strategy", "fastestt"], "p2c"),
        (["--endpoint", "message", "-m", "PUT"], "health request"),
    ],
)
def test_bad_shaping_exits_2_before_sending(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with fs.echo_server() as server:
        assert main(["bench", server.url + "/h", "-n", "1", "-q", *args]) == 2
        assert server.requests == []
    assert needle in capsys.readouterr().err


def test_probe_refuses_a_bad_header_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "http://127.0.0.1:9/", "-H", "nocolon"]) == 2
    assert "expected 'Name: value'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["bench", "capacity"])
def test_help_states_the_strategies_and_the_url_rule(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(s in text for s in STRATEGIES)
    assert "requested as given" in text and "--header" in text and "--timeout" in text


def test_bench_help_has_a_defaults_paragraph(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Defaults: closed model, 50 connections" in text


# ---- the values, without a socket ------------------------------------------------------------


def test_parse_header_keeps_the_value_as_written() -> None:
    assert parse_header("Authorization:  Bearer a:b ") == ("Authorization", "Bearer a:b")
    assert parse_header("X-Empty:") == ("X-Empty", "")
    with pytest.raises(ShapeError):
        parse_header(": value")


def test_a_later_header_of_the_same_name_wins_whatever_its_case() -> None:
    shape = request_shape(["X-A: 1", "x-a: 2", "X-B: 3"], "get")
    assert dict(shape.headers) == {"x-a": "2", "X-B": "3"} and shape.method == "GET"


def test_a_shape_applies_to_the_health_request_and_the_timeouts() -> None:
    agent = adhoc_agent("http://h:1/x?y=1")
    shaped = RequestShape({"X": "1"}, "POST", b"b", 0.25).apply(agent)
    spec = health_request(shaped)
    assert (spec.method, spec.url, spec.body, spec.headers["X"]) == (
        "POST", "http://h:1/x?y=1", b"b", "1")  # fmt: skip
    assert (spec.timeout, spec.connect_timeout, shaped.timeout) == (0.25, 0.25, 0.25)
    assert RequestShape().apply(agent) is agent


# ---- --targets FILE (vegeta's http format) ---------------------------------------------------


def test_a_targets_file_sends_its_mix_in_turn(
    recorder: tuple[fs.RunningServer, list[fs.Request]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, seen = recorder
    (tmp_path / "thing.json").write_bytes(b'{"thing": 1}')
    targets = tmp_path / "mix.txt"
    targets.write_text(
        f"# two requests, in turn\nGET {server.url}/a?x=1\nX-Token: one\n\n"
        f"POST {server.url}/b\nContent-Type: application/json\n@thing.json\n"
    )
    code = main(["bench", "--targets", str(targets), "-c", "1", "-n", "10", "-q", "--json",
                 "-H", "X-All: yes"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["target_kind"] == "mix"
    got = [(r.method, r.path, dict(r.headers).get("x-token"), r.body) for r in seen]
    assert got == [("GET", "/a?x=1", "one", b""), ("POST", "/b", None, b'{"thing": 1}')] * 5
    assert all(dict(r.headers)["x-all"] == "yes" for r in seen)
    shares = {name: a["share"] for name, a in doc["agents"].items()}
    assert shares == {f"GET {server.url}/a?x=1": 0.5, f"POST {server.url}/b": 0.5}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "no target"),
        ("GET\n", ":1: not an http(s) URL"),
        ("G=T http://h/\n", ":1: expected 'METHOD URL'"),
        ("GET http://h/\nno colon\n", ":2: header"),
        ("POST http://h/\n@missing.json\n", ":2: body file missing.json"),
        ("POST http://h/\n@\n", ":2: '@' needs a file name"),
        ("POST http://h/\n@b\nX: 1\n", "@FILE body line must be the last"),
    ],
)
def test_a_bad_targets_file_names_its_line(
    text: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "b").write_bytes(b"x")
    targets = tmp_path / "t.txt"
    targets.write_text(text)
    assert main(["bench", "--targets", str(targets), "-n", "1", "-q"]) == 2
    err = capsys.readouterr().err
    assert needle in err and str(targets) in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["http://127.0.0.1:9/"],  # a TARGET and a file
        ["-m", "POST"],  # the file says the method
        ["--endpoint", "message"],
    ],
)
def test_targets_excludes_what_the_file_says(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = tmp_path / "t.txt"
    targets.write_text("GET http://127.0.0.1:9/\n")
    assert main(["bench", "--targets", str(targets), "-n", "1", "-q", *args]) == 2
    assert main(["bench", "-n", "1", "-q"]) == 2  # neither TARGET nor a file
    assert "TARGET" in capsys.readouterr().err


def test_watch_and_send_carry_the_header_too(
    recorder: tuple[fs.RunningServer, list[fs.Request]], tmp_path: Path
) -> None:
    server, seen = recorder
    inv = tmp_path / "agents.yaml"
    inv.write_text(f"version: 1\nagents:\n  - {{id: a, type: t, url: '{server.url}'}}\n")
    common = ["-i", str(inv), "-H", "X-Token: w"]
    assert main(["watch", "a", "--count", "1", "--interval", "1s", "--no-state", "--json",
                 "--timeout", "500ms", *common]) == 0  # fmt: skip
    assert main(["send", "t", "hello", "--no-state", *common]) == 0
    got = [(r.method, r.path, dict(r.headers).get("x-token")) for r in seen]
    assert ("GET", "/health", "w") in got and ("POST", "/message/send", "w") in got
    assert all(token == "w" for _, _, token in got)


def test_a_query_makes_a_url_ad_hoc_even_on_an_inventory_agents_origin(
    recorder: tuple[fs.RunningServer, list[fs.Request]], tmp_path: Path
) -> None:
    server, seen = recorder
    inv = tmp_path / "agents.yaml"
    inv.write_text(f"version: 1\nagents:\n  - {{id: a, type: t, url: '{server.url}'}}\n")
    assert main(["probe", "-i", str(inv), server.url]) == 0  # the inventory agent: /health
    assert main(["probe", "-i", str(inv), server.url + "/?v=1"]) == 0  # as given
    assert [r.path for r in seen] == ["/health", "/?v=1"]
