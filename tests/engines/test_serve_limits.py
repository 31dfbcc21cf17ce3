"""``latcli serve``'s limits, each against the real server (``python -m latcli serve``).

Slow and huge heads are written on raw sockets; the connection cap is held with many
sockets; ``--max-in-flight``, a client that hangs up and a drain that runs out are played
against a real slow agent (tests/support/fault_servers.py) that records whether each call it got
was answered or cancelled by the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from conftest import DemoFleet
from fault_servers import SlowAgent, deep_json_server, ok_server, slow_agent_server
from hostile_agents import interim_flood_agent
from prometheus_client.parser import text_string_to_metric_families
from serve_proc import Served, start_serve, stop_serve

from latcli.cli.app import main
from latcli.config.loading import load_inventory
from latcli.config.model import Agent, HealthConfig, Inventory
from latcli.demo.fleet import free_port
from latcli.engines.serve.auth import client_token, is_loopback
from latcli.engines.serve.limits import parse_size
from latcli.engines.serve.options import ServeOptions
from latcli.engines.serve.run import run_serve
from latcli.engines.serve.tasks import backoff, printable, supervise
from latcli.engines.watch.loop import Watch
from latcli.engines.watch.run import WatchOptions, run_watch
from latcli.reports.watch import WatchSnapshot

pytestmark = pytest.mark.timeout(90)


def _inventory(path: Path, demo_fleet: DemoFleet, **extra: dict[str, str]) -> Path:
    """The demo fleet plus ``extra`` agents by id: ``{"url": ..., "type": ...}``."""
    doc = yaml.safe_load(demo_fleet.inventory_path.read_text(encoding="utf-8"))
    doc["agents"].extend({"id": agent_id, **entry} for agent_id, entry in extra.items())
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def slow() -> Iterator[SlowAgent]:
    with slow_agent_server(delay=1.5) as agent:
        yield agent


@pytest.fixture(scope="module")
def limited(
    demo_fleet: DemoFleet, slow: SlowAgent, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """A gateway with small limits: 1 s to read a request, 1 s idle, 5 in flight, 20 conns."""
    folder = tmp_path_factory.mktemp("limits")
    inventory = _inventory(
        folder / "agents.yaml",
        demo_fleet,
        **{"slow-1": {"type": "slow", "url": slow.url, "timeout": "10s"}},
    )
    served = start_serve(
        inventory,
        *("--interval", "0.5s", "--no-state", "--read-timeout", "1s", "--idle-timeout", "1s"),
        *("--max-in-flight", "5", "--max-connections", "20", "--access-log"),
    )
    try:
        yield served
    finally:
        stop_serve(served)


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _raw(url: str, data: bytes, *, wait: float = 5.0) -> bytes:
    """Write ``data`` on a new connection and read until the server closes it."""
    with socket.create_connection(_address(url), timeout=wait) as sock:
        # the server may answer and close before taking everything
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        return _read_all(sock)


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _status_and_json(raw: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def _metric(url: str, family: str, **labels: str) -> float:
    text = httpx.get(url + "/metrics").text
    for f in text_string_to_metric_families(text):
        if f.name == family:
            return sum(
                s.value
                for s in f.samples
                if s.name == family + "_total"
                and all(s.labels.get(k) == v for k, v in labels.items())
            )
    return 0.0


# -- the head ---------------------------------------------------------------------------------


def test_a_head_over_16_kib_is_431_json_and_the_connection_closes(limited: Served) -> None:
    big = b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * (20 * 1024) + b"\r\n\r\n"
    status, body = _status_and_json(_raw(limited.url, big))
    assert status == 431
    assert body == {"error": {"kind": "too_large", "message": "request head over 16384 bytes"}}


def test_a_200_mb_header_is_cut_after_the_budget_not_buffered(limited: Served) -> None:
    """The gateway answers once the budget is spent, long before the client is done writing,
    and holds none of it (the issue measured 42 -> 386 MB without a limit)."""
    gateway = psutil.Process(limited.proc.pid)
    before = gateway.memory_info().rss
    with socket.create_connection(_address(limited.url), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: ")
        sent = 0
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(200 * 16):  # 200 MB in 64 KiB writes, if nobody stops it
                sock.sendall(b"a" * 65536)
                sent += 65536
    assert sent < 64 << 20  # what the kernel's buffers took, not the whole header
    assert gateway.memory_info().rss - before < 16 << 20


def test_a_long_url_is_414_with_the_default_budget(limited: Served) -> None:
    head = b"POST /route/" + b"x" * 70_000 + b" HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n"
    status, body = _status_and_json(_raw(limited.url, head))
    assert status == 414
    assert body["error"] == {
        "kind": "too_large",
        "message": "URL over 16384 bytes (the request head limit)",
    }


def test_a_head_under_the_budget_and_a_body_over_it_pass(limited: Served) -> None:
    """Only the head counts: a 500 KB body in a few large reads is not a head."""
    headers = {"x-fill": "a" * 12_000}
    r = httpx.post(limited.url + "/route/weather", json={"message": "x" * 500_000}, headers=headers)
    assert r.status_code == 200, r.text


def test_a_malformed_request_is_400_json(limited: Served) -> None:
    status, body = _status_and_json(_raw(limited.url, b"GET /health HTTP/9.9\r\n\r\n"))
    assert status == 400
    assert body["error"]["kind"] == "bad_request"  # type: ignore[index]


@pytest.mark.parametrize("size", [257, 300, 5000])
def test_a_type_name_over_256_bytes_is_400(limited: Served, size: int) -> None:
    r = httpx.post(limited.url + "/route/" + "t" * size, json={"message": "hi"})
    assert r.status_code == 400
    assert r.json()["error"] == {"kind": "bad_request", "message": "type name over 256 bytes"}


def test_a_type_name_of_256_bytes_is_only_unknown(limited: Served) -> None:
    r = httpx.post(limited.url + "/route/" + "t" * 256, json={"message": "hi"})
    assert r.status_code == 404


def test_a_path_over_65535_bytes_is_414_not_truncated_into_another_type(
    demo_fleet: DemoFleet, tmp_path: Path
) -> None:
    """httptools < 0.8 cut URLs at 64 KiB and the gateway routed what was left; 0.9 refuses
    them. Even with a head budget that lets them through, they are a 414, never routed."""
    served = start_serve(demo_fleet.inventory_path, "--no-state", "--max-head-size", "256KiB")
    try:  # raw sockets: httpx refuses URLs over 65,536 characters itself
        for path in ("/route/weather?pad=" + "p" * 70_000, "/route/" + "w" * 70_000 + "weather"):
            status, body = _post(served.url, path)
            assert status == 414
            assert body["error"] == {"kind": "too_large", "message": "URL over 65535 bytes"}
        assert _post(served.url, "/route/weather?pad=" + "p" * 60_000)[0] == 200
        assert _post(served.url, "/route/" + "w" * 60_000)[0] == 400  # the type name's limit
    finally:
        stop_serve(served)


def _post(url: str, path: str) -> tuple[int, dict[str, object]]:
    body = b'{"message": "hi"}'
    head = f"POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n".encode()
    return _status_and_json(_raw(url, head + b"content-length: 17\r\n\r\n" + body))


# -- slow and idle connections ----------------------------------------------------------------


def test_a_trickled_head_is_answered_408_and_closed(limited: Served) -> None:
    with socket.create_connection(_address(limited.url), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(100):  # a header byte every 0.1 s: 10 s if nobody stops it
                sock.sendall(b"x")
                time.sleep(0.1)
        elapsed = time.monotonic() - started
        answer = _read_all(sock)
    assert 0.9 < elapsed < 3.0
    if answer:  # a reset can overtake the 408 in the client's buffer
        assert _status_and_json(answer)[0] == 408


def test_a_trickled_head_is_408_json(limited: Served) -> None:
    with socket.create_connection(_address(limited.url), timeout=5) as sock:
        sock.sendall(b"POST /route/weather HTTP/1.1\r\nhost: x\r\n")
        answer = _read_all(sock)  # the read deadline (1 s) passes with the head unfinished
    status, body = _status_and_json(answer)
    assert status == 408
    assert body["error"] == {"kind": "timeout", "message": "request not received within 1s"}


def test_a_trickled_body_is_408(limited: Served) -> None:
    with socket.create_connection(_address(limited.url), timeout=5) as sock:
        sock.sendall(b"POST /route/weather HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
        status, _ = _status_and_json(_read_all(sock))
    assert status == 408


def test_a_silent_connection_is_closed_after_the_idle_timeout(limited: Served) -> None:
    with socket.create_connection(_address(limited.url), timeout=5) as sock:
        started = time.monotonic()
        assert _read_all(sock) == b""  # closed without a word: nothing was asked
        assert 0.9 < time.monotonic() - started < 3.0


def test_a_keep_alive_connection_is_closed_when_idle(limited: Served) -> None:
    with socket.create_connection(_address(limited.url), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        started = time.monotonic()
        answer = _read_all(sock)
        assert b" 200 " in answer.split(b"\r\n", 1)[0]
        assert 0.9 < time.monotonic() - started < 3.0


def test_the_refusals_are_counted(limited: Served) -> None:
    _raw(limited.url, b"GET /health HTTP/1.1\r\nx-big: " + b"a" * 20_000 + b"\r\n\r\n")
    _raw(limited.url, b"GET /health HTTP/1.1\r\nhost: x\r\n")
    assert _metric(limited.url, "latcli_gateway_refused", limit="max_head") >= 1
    assert _metric(limited.url, "latcli_gateway_refused", limit="read_timeout") >= 1
    assert re.search(r"Z 127\.0\.0\.1:\d+ - - 431 - - max_head$", limited.wait_for(" 431 "))
    assert re.search(r"Z 127\.0\.0\.1:\d+ - - 408 - - read_timeout$", limited.wait_for(" 408 "))


# -- the connection cap -----------------------------------------------------------------------


def test_connections_over_the_cap_are_closed_at_once_with_503(demo_fleet: DemoFleet) -> None:
    """20 held connections (the cap), then 20 more: each closed at once after a 503."""
    served = start_serve(demo_fleet.inventory_path, "--no-state", "--max-connections", "20")
    try:
        held = [socket.create_connection(_address(served.url), timeout=5) for _ in range(20)]
        try:
            time.sleep(0.2)
            answers = []
            for _ in range(20):
                with socket.create_connection(_address(served.url), timeout=5) as extra:
                    answers.append(_read_all(extra))
            assert all(a.startswith(b"HTTP/1.1 503 ") for a in answers)
            _, body = _status_and_json(answers[0])
            assert body["error"]["kind"] == "overloaded"  # type: ignore[index]
            assert b"retry-after: 1" in answers[0].lower()
            # the cap holds for every client (a reset may overtake the 503)
            with contextlib.suppress(httpx.TransportError):
                assert httpx.get(served.url + "/health").status_code == 503
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        assert httpx.get(served.url + "/health").status_code == 200  # room again
        shed = _metric(served.url, "latcli_gateway_shed", limit="max_connections")
        assert shed >= 21
    finally:
        stop_serve(served)


# -- requests in flight -----------------------------------------------------------------------


def test_over_max_in_flight_is_503_overloaded_with_retry_after_and_counted(
    limited: Served, slow: SlowAgent
) -> None:
    before = _metric(limited.url, "latcli_gateway_shed", limit="max_in_flight")
    with ThreadPoolExecutor(12) as pool:
        futures = [
            pool.submit(httpx.post, limited.url + "/route/slow", json={"message": "hi"}, timeout=10)
            for _ in range(12)
        ]
        answers = [f.result() for f in futures]
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 5 + [503] * 7
    shed = [r for r in answers if r.status_code == 503]
    assert all(r.headers["retry-after"] == "1" for r in shed)
    assert shed[0].json() == {
        "error": {"kind": "overloaded", "message": "5 requests in flight (--max-in-flight)"}
    }
    after = _metric(limited.url, "latcli_gateway_shed", limit="max_in_flight")
    assert after - before == 7
    # the shed requests never reached the agent: its own count is the answered five
    assert httpx.post(limited.url + "/route/weather", json={"message": "hi"}).status_code == 200


# -- a client that hangs up -------------------------------------------------------------------


def test_a_client_that_disconnects_cancels_its_call_at_the_agent(
    limited: Served, slow: SlowAgent
) -> None:
    start = len(slow.outcomes)
    body = b'{"message": "hang up"}'
    head = b"POST /route/slow HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    with socket.create_connection(_address(limited.url), timeout=5) as sock:
        sock.sendall(head + b"content-length: %d\r\n\r\n" % len(body) + body)
        time.sleep(0.4)  # routed: the agent holds the call for 1.5 s
    deadline = time.monotonic() + 1.0  # well before the agent would answer
    while len(slow.outcomes) == start and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slow.outcomes[start:] == ["cancelled"]
    assert _metric(limited.url, "latcli_gateway_cut", reason="client_disconnect") >= 1
    line = limited.wait_for("POST /route/slow 499")
    assert line.rstrip().endswith(" -")  # no agent answered


# -- bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"message": "hi", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    ],
)
def test_a_deeply_nested_json_body_is_400(limited: Served, content: bytes) -> None:
    r = httpx.post(limited.url + "/route/weather", content=content)
    assert r.status_code == 400
    assert r.json()["error"]["kind"] == "bad_request"
    assert "nested" in r.json()["error"]["message"]  # too deep, whichever parser saw it


# -- GET /agents at once ----------------------------------------------------------------------


def test_agents_answers_at_once_with_unchecked_agents_unknown(demo_fleet: DemoFleet) -> None:
    served = start_serve(demo_fleet.inventory_path, "--no-state", "--interval", "30s")
    try:
        r = httpx.get(served.url + "/agents")
        assert r.status_code == 200
        body = r.json()
        assert body["schema"] == "latcli.watch/v1"
        assert {a["id"] for a in body["agents"]} == {a.id for a in demo_fleet.agents}
        assert {a["state"] for a in body["agents"]} == {"unknown"}
        assert all(a["checks"] == 0 for a in body["agents"])
    finally:
        stop_serve(served)


# -- the access log ---------------------------------------------------------------------------


def test_access_log_has_method_path_status_ms_and_agent(limited: Served) -> None:
    seen = len(limited.lines)
    r = httpx.post(limited.url + "/route/weather", json={"message": "hi"})
    agent = r.json()["agent"]
    line = limited.wait_for("POST /route/weather 200 ", since=seen)
    assert line.rstrip().endswith(f"ms {agent}")
    httpx.get(limited.url + "/route/%1b]0;owned%07 x")
    shown = limited.wait_for("GET /route/")
    assert "\x1b" not in shown and " /route/%1b]0;owned%07%20x 405 " in shown


def test_no_access_log_by_default(demo_fleet: DemoFleet) -> None:
    served = start_serve(demo_fleet.inventory_path, "--no-state")
    try:
        assert httpx.post(served.url + "/route/weather", json={"message": "hi"}).is_success
    finally:
        stop_serve(served)
    assert "/route/weather" not in served.err()


# -- the drain --------------------------------------------------------------------------------


def test_a_drain_that_runs_out_answers_json_503_and_counts_the_cut_calls(
    demo_fleet: DemoFleet, tmp_path: Path
) -> None:
    with slow_agent_server(delay=8.0) as agent:
        inventory = _inventory(
            tmp_path / "agents.yaml",
            demo_fleet,
            **{"slow-1": {"type": "slow", "url": agent.url, "timeout": "20s"}},
        )
        served = start_serve(inventory, "--no-state", "--drain", "1s")
        try:
            with ThreadPoolExecutor(2) as pool:
                calls = [
                    pool.submit(
                        httpx.post, served.url + "/route/slow", json={"message": "m"}, timeout=15
                    )
                    for _ in range(2)
                ]
                time.sleep(0.5)  # both are in flight at the agent
                served.proc.send_signal(signal.SIGTERM)
                answers = [c.result(15) for c in calls]
            assert served.proc.wait(15) == 0
        finally:
            stop_serve(served)
    for r in answers:
        assert r.status_code == 503
        assert r.json()["error"]["kind"] == "unavailable"
    err = served.err()
    assert "the 1s drain ran out: 2 calls cut (answered 503), state saved" in err
    assert "drained" not in err and "Traceback" not in err and "Cancel " not in err


# -- client token -----------------------------------------------------------------------------


def test_beyond_loopback_without_a_token_refuses_to_start(
    demo_fleet: DemoFleet, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LATCLI_SERVE_TOKEN", raising=False)
    args = ["serve", "-i", str(demo_fleet.inventory_path), "--host", "0.0.0.0", "--port", "0"]
    assert main([*args, "--no-state"]) == 2
    err = capsys.readouterr().err
    assert "LATCLI_SERVE_TOKEN" in err and "--no-auth" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_token_is_wanted_everywhere_but_health(demo_fleet: DemoFleet) -> None:
    served = start_serve(
        demo_fleet.inventory_path, "--no-state", env={"LATCLI_SERVE_TOKEN": "s3cret"}
    )
    good = {"authorization": "Bearer s3cret"}
    try:
        assert httpx.get(served.url + "/health").status_code == 200
        for path in ("/agents", "/metrics"):
            assert httpx.get(served.url + path).status_code == 401
            assert httpx.get(served.url + path, headers=good).status_code == 200
        route = served.url + "/route/weather"
        refused = httpx.post(route, json={"message": "hi"}, headers={"authorization": "Bearer x"})
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["error"]["kind"] == "unauthorized"
        assert httpx.post(route, json={"message": "hi"}, headers=good).status_code == 200
    finally:
        stop_serve(served)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.0.1", True), ("localhost", True), ("::1", True),
     ("0.0.0.0", False), ("::", False), ("192.0.2.10", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_no_auth_serves_beyond_loopback_without_a_token_and_says_a_set_one_is_ignored() -> None:
    said: list[str] = []
    assert client_token(ServeOptions(host="0.0.0.0", no_auth=True), said.append) is None
    assert said == []
    opts = ServeOptions(host="0.0.0.0", no_auth=True, token="t")
    assert client_token(opts, said.append) is None
    assert said == ["latcli serve: --no-auth: LATCLI_SERVE_TOKEN is set but not checked"]
    assert client_token(ServeOptions(host="0.0.0.0", token="t"), said.append) == "t"
    assert client_token(ServeOptions(host="127.0.0.1"), said.append) is None


# -- a health check that raises ---------------------------------------------------------------


def test_serve_keeps_routing_beside_an_agent_whose_card_is_nested_100k_deep(
    demo_fleet: DemoFleet, tmp_path: Path
) -> None:
    """Issue 10: beside a 100k-deep card and an agent sending 5,000 interim heads in one
    write (once a RecursionError that ended serve's health loop), weather keeps routing."""
    with deep_json_server() as deep, interim_flood_agent() as flood:
        inventory = _inventory(
            tmp_path / "agents.yaml",
            demo_fleet,
            **{
                "deep-1": {"type": "deep", "url": deep.url, "protocol": "a2a"},
                "flood-1": {"type": "flood", "url": flood.url},
            },
        )
        served = start_serve(inventory, "--no-state", "--interval", "0.2s")
        try:
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:  # a dozen check rounds of the deep card
                r = httpx.post(served.url + "/route/weather", json={"message": "hi"})
                assert r.status_code == 200
                time.sleep(0.1)
            assert served.proc.poll() is None
            rows = {a["id"]: a for a in httpx.get(served.url + "/agents").json()["agents"]}
            assert rows["deep-1"]["state"] != "healthy"
            assert rows["weather-1"]["state"] in {"healthy", "degraded"}
            assert rows["flood-1"]["checks"] >= 1  # checked, and the loop went on
            deep_route = httpx.post(served.url + "/route/deep", json={"message": "hi"})
            assert deep_route.status_code in {500, 503}
            assert deep_route.json()["error"]["kind"]
        finally:
            stop_serve(served)
    assert served.proc.returncode == 0
    assert "Traceback" not in served.err()


def test_a_check_that_raises_is_that_agents_failed_check_and_watch_goes_on() -> None:
    """Watch alone: the deep card (RecursionError without a depth bound, bad_response with
    one) fails deep-1's checks every tick; ok-1 beside it stays healthy, no tick is lost."""
    health = HealthConfig(interval=0.1, timeout=2.0)
    with deep_json_server() as deep, ok_server(b'{"status": "ok"}') as ok:
        agents = [
            Agent("deep-1", "deep", deep.url, protocol="a2a", health=health),
            Agent("ok-1", "ok", ok.url, health=health),
        ]
        seen: list[WatchSnapshot] = []
        inv = Inventory(None, tuple(agents))
        opts = WatchOptions(interval=0.1, no_state=True, count=8)
        asyncio.run(run_watch(inv, agents, opts, seen.append, lambda _: None))
    assert len(seen) == 8
    rows = {a.id: a for a in seen[-1].agents}
    assert rows["deep-1"].state == "down" and rows["deep-1"].last_error == "bad_response"
    assert rows["deep-1"].checks >= 4
    assert rows["ok-1"].state == "healthy"


def test_serve_restarts_its_health_checks_when_they_die(
    demo_fleet: DemoFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_serve in this process: the first tick raises (a bug in watch, injected), the
    supervisor logs it and restarts the checks, and the gateway answers all along."""
    real_tick = Watch.tick
    ticks: list[int] = []

    def tick(self: Watch, lag_ms: float = 0.0) -> WatchSnapshot:
        ticks.append(1)
        if len(ticks) == 1:
            raise RuntimeError("a bug in tick")
        return real_tick(self, lag_ms)

    monkeypatch.setattr(Watch, "tick", tick)
    inv = load_inventory(demo_fleet.inventory_path, {})
    url = f"http://127.0.0.1:{free_port()}"
    opts = ServeOptions(port=int(url.rsplit(":", 1)[1]), interval=0.2, no_state=True)
    lines: list[str] = []
    seen: dict[str, object] = {}

    def client() -> None:
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any("restarting" in x for x in lines):
                time.sleep(0.05)
            seen["weather"] = httpx.post(url + "/route/weather", json={"message": "hi"})
            while time.monotonic() < deadline:
                agents = httpx.get(url + "/agents").json()
                if agents["tick"] >= 1:
                    seen["agents"] = agents
                    seen["metrics"] = _metric(url, "latcli_gateway_task_restarts")
                    break
                time.sleep(0.05)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=client)
    thread.start()
    code = asyncio.run(run_serve(inv, list(inv.agents), opts, lines.append))
    thread.join(10)
    assert code == 0
    restarted = [x for x in lines if "restarting" in x]
    assert restarted == [
        "latcli serve: health checks died (RuntimeError: a bug in tick); restarting in 0.5s"
        " (restart 1)"
    ]
    weather = seen["weather"]
    assert isinstance(weather, httpx.Response) and weather.status_code == 200
    assert "agents" in seen, "no tick after the restart"
    assert seen["metrics"] == 1


# -- the supervisor, alone --------------------------------------------------------------------


def test_supervise_restarts_a_task_that_dies_and_logs_each_restart() -> None:
    runs: list[int] = []
    lines: list[str] = []

    async def scenario() -> None:
        fourth = asyncio.Event()

        async def flaky() -> None:
            runs.append(len(runs))
            if len(runs) <= 3:
                raise RecursionError("maximum recursion depth exceeded")
            fourth.set()
            await asyncio.sleep(3600)

        task = asyncio.create_task(supervise("health checks", flaky, lines.append, first=0.01))
        await fourth.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(scenario(), 5))
    assert len(runs) == 4
    assert lines == [
        "latcli serve: health checks died (RecursionError: maximum recursion depth exceeded);"
        f" restarting in {d:g}s (restart {n})"
        for n, d in ((1, 0.01), (2, 0.02), (3, 0.04))
    ]


@pytest.mark.parametrize(
    ("delay", "ran", "expected"),
    [(0.5, 1.0, 1.0), (16.0, 1.0, 30.0), (30.0, 1.0, 30.0), (30.0, 60.0, 0.5)],
)
def test_backoff_doubles_to_a_ceiling_and_starts_over_after_a_settled_run(
    delay: float, ran: float, expected: float
) -> None:
    assert backoff(delay, ran, first=0.5, most=30.0, settled=60.0) == expected


@pytest.mark.parametrize(
    ("text", "size"),
    [("16KiB", 16384), ("16k", 16384), ("64 kb", 65536), ("1MiB", 1 << 20), ("8192", 8192)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "16 KB2", "-1k", "1g", "lots"])
def test_parse_size_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_a_bad_size_option_is_one_line_and_exit_2(
    demo_fleet: DemoFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["serve", "-i", str(demo_fleet.inventory_path), "--max-head-size", "huge"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--max-head-size" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "shown"),
    [("plain é", "plain é"), ("a\x1b[2Jb", "a\\x1b[2Jb"), ("\x07\x9b", "\\x07\\x9b")],
)
def test_printable_escapes_control_characters(text: str, shown: str) -> None:
    assert printable(text) == shown
