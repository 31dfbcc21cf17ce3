"""``latcli serve``: the gateway as a real uvicorn process over the session's demo fleet.

Nothing on the network is mocked: the gateway is ``python -m latcli serve`` on a free port,
the agents are the demo fleet (tests/conftest.py), a dead replica is a loopback port nobody
listens on. Only the 500 case runs the app in a thread, over a transport that raises.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml
from conftest import DemoFleet
from prometheus_client.parser import text_string_to_metric_families
from serve_proc import start_serve, stop_serve

from latcli.cli.app import main
from latcli.config.model import Agent
from latcli.demo.fleet import free_port
from latcli.engines.serve.app import make_app
from latcli.engines.serve.gateway import Gateway
from latcli.routing.results import RouteResult
from latcli.routing.router import Router
from latcli.transport.base import Outcome, RequestSpec

pytestmark = pytest.mark.timeout(60)


def _inventory(demo_fleet: DemoFleet, path: Path) -> Path:
    """The demo fleet plus ghost-1, the only replica of type ghost, on a dead port."""
    doc = yaml.safe_load(demo_fleet.inventory_path.read_text(encoding="utf-8"))
    doc["agents"].append(
        {"id": "ghost-1", "type": "ghost", "url": f"http://127.0.0.1:{free_port()}"}
    )
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def gateway(demo_fleet: DemoFleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    inventory = _inventory(demo_fleet, tmp_path_factory.mktemp("serve") / "agents.yaml")
    served = start_serve(inventory, "--interval", "0.2s", "--no-state")
    try:
        yield served.url
    finally:
        stop_serve(served)


@pytest.mark.parametrize("path", ["/route/weather", "/route/weather/message/send"])
def test_route_answers_with_the_agent_reply_latency_and_attempts(gateway: str, path: str) -> None:
    r = httpx.post(gateway + path, json={"message": "rain?"})
    assert r.status_code == 200
    body = r.json()
    assert body["agent"] in {"weather-1", "weather-2"}
    assert "rain?" in body["reply"]
    assert body["latency_ms"] > 0
    assert body["attempts"][-1] == {
        "agent": body["agent"],
        "outcome": "ok",
        "status": 200,
        "latency_ms": body["attempts"][-1]["latency_ms"],
    }


def test_route_reaches_a2a_agents(gateway: str) -> None:
    r = httpx.post(gateway + "/route/calendar", json={"message": "lunch"})
    assert r.status_code == 200
    assert r.json()["agent"] in {"calendar-1", "calendar-2"}


def test_unknown_type_is_404_naming_the_types(gateway: str) -> None:
    r = httpx.post(gateway + "/route/nope", json={"message": "hi"})
    assert r.status_code == 404
    assert r.json() == {
        "error": {"kind": "not_found", "message": "unknown type 'nope'"},
        "types": ["assistant", "calendar", "ghost", "news", "weather"],
    }


def test_no_replica_answering_is_503_with_the_attempts(gateway: str) -> None:
    r = httpx.post(gateway + "/route/ghost", json={"message": "hi"})
    assert r.status_code == 503
    body = r.json()
    assert body["error"]["message"]
    assert body["error"]["kind"] in {"connect", "breaker_open"}
    # the lone replica is retried once while its breaker admits (retries: 1), never when open
    assert [a["agent"] for a in body["attempts"]] in ([], ["ghost-1"], ["ghost-1"] * 2)
    assert all(a["outcome"] == "connect" for a in body["attempts"])


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty body"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[1, 2]", "got an array"),
        (b'"hi"', "got a string"),
        (b'{"text": "hi"}', 'missing "message"'),
        (b'{"message": 42}', "got a number"),
        (b'{"message": null}', "got null"),
    ],
)
def test_bad_bodies_are_400_with_a_reason(gateway: str, content: bytes, reason: str) -> None:
    r = httpx.post(gateway + "/route/weather", content=content)
    assert r.status_code == 400
    assert reason in r.json()["error"]["message"]


def test_a_body_over_1_mib_is_413(gateway: str) -> None:
    r = httpx.post(gateway + "/route/weather", json={"message": "x" * (1 << 20)})
    assert r.status_code == 413
    assert "body over" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/route/weather", 405), ("GET", "/nowhere", 404), ("POST", "/health", 405)],
)
def test_wrong_paths_and_methods_answer_json(
    gateway: str, method: str, path: str, status: int
) -> None:
    r = httpx.request(method, gateway + path)
    assert r.status_code == status
    assert r.json()["error"]["message"]


def test_health(gateway: str) -> None:
    r = httpx.get(gateway + "/health")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


def test_agents_is_the_watch_snapshot_with_every_agent(gateway: str, demo_fleet: DemoFleet) -> None:
    deadline = time.monotonic() + 10
    while True:
        r = httpx.get(gateway + "/agents")
        checked = r.status_code == 200 and all(a["checks"] for a in r.json()["agents"])
        if checked or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status_code == 200
    body = r.json()
    assert body["schema"] == "latcli.watch/v1"
    rows = {a["id"]: a for a in body["agents"]}
    assert set(rows) == {a.id for a in demo_fleet.agents} | {"ghost-1"}
    assert rows["weather-1"]["state"] in {"healthy", "degraded"}
    assert rows["ghost-1"]["state"] == "down"
    assert body["picks"]["weather"] in {"weather-1", "weather-2"}


def test_metrics_parse_and_count_routed_requests(gateway: str) -> None:
    httpx.post(gateway + "/route/weather", json={"message": "hi"})
    r = httpx.get(gateway + "/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    routed = [
        s
        for s in families["latcli_gateway_requests"].samples
        if s.name == "latcli_gateway_requests_total"
        and s.labels == {"type": "weather", "code": "200"}
    ]
    assert routed and routed[0].value >= 1
    assert "latcli_gateway_request_duration_seconds" in families
    assert "latcli_agent_up" in families  # watch's families, from the background checks


@pytest.mark.parametrize(
    ("path", "endpoint"), [("/route/weather", "message"), ("/health", "health")]
)
def test_bench_runs_against_the_gateway(
    gateway: str, path: str, endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A type's route is a plain http agent at /route/{type}: bench POSTs /message/send."""
    args = ["bench", gateway + path, "--endpoint", endpoint, "-n", "30", "-c", "3"]
    code = main([*args, "--warmup", "0s", "--json", "-q"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (report["requests"], report["ok"], report["errors"]) == (30, 30, {})


def test_sigterm_drains_in_flight_requests_saves_state_and_exits_0(
    demo_fleet: DemoFleet, tmp_path: Path
) -> None:
    state = tmp_path / "state.db"
    served = start_serve(demo_fleet.inventory_path, "--interval", "0.5s", "--state", str(state))
    try:
        assert httpx.post(served.url + "/route/weather", json={"message": "warm"}).is_success
        with (
            demo_fleet.faulted("weather-1", latency="1s"),
            demo_fleet.faulted("weather-2", latency="1s"),
            ThreadPoolExecutor(1) as pool,
        ):
            slow = pool.submit(
                httpx.post, served.url + "/route/weather", json={"message": "slow"}, timeout=10
            )
            time.sleep(0.3)  # the request is in flight
            started = time.monotonic()
            served.proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            with pytest.raises(httpx.ConnectError):  # no longer accepting
                httpx.get(served.url + "/health")
            r = slow.result(10)
            assert r.status_code == 200 and r.json()["agent"] in {"weather-1", "weather-2"}
            assert served.proc.wait(10) == 0
            assert time.monotonic() - started < 5
    finally:
        stop_serve(served)
    assert "drained, state saved" in served.err()
    assert state.stat().st_size > 0


def test_sigint_exits_130(demo_fleet: DemoFleet) -> None:
    served = start_serve(demo_fleet.inventory_path, "--no-state")
    try:
        served.proc.send_signal(signal.SIGINT)
        assert served.proc.wait(10) == 130
    finally:
        stop_serve(served)


def test_a_port_in_use_is_one_line_and_exit_2(
    demo_fleet: DemoFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["serve", "-i", str(demo_fleet.inventory_path), "--port", str(port), "--no-state"]
        assert main(args) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


class _Exploding:
    """A transport with a bug: every send raises something no transport should."""

    async def send(self, key: str, spec: RequestSpec) -> Outcome:
        raise RuntimeError("transport bug")

    async def aclose(self) -> None:
        return None


class _ExplodingRouter(Router):
    """A router with a bug: what the gateway's own error boundary is for."""

    async def send(self, type_: str, text: str, *, timeout: float | None = None) -> RouteResult:
        raise RuntimeError("router bug")


def _post_once(router: Router) -> httpx.Response:
    port = free_port()
    config = uvicorn.Config(
        make_app(Gateway(router)), port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        return httpx.post(f"http://127.0.0.1:{port}/route/weather", json={"message": "hi"})
    finally:
        server.should_exit = True
        thread.join(10)


def test_an_unexpected_exception_is_500_json_and_one_line(
    capfd: pytest.CaptureFixture[str],
) -> None:
    agent = Agent("weather-1", "weather", f"http://127.0.0.1:{free_port()}")
    r = _post_once(_ExplodingRouter([agent]))
    assert (r.status_code, r.json()) == (
        500,
        {"error": {"kind": "internal", "message": "internal error"}},
    )
    err = capfd.readouterr().err
    assert "POST /route/weather: RuntimeError: router bug" in err
    assert "Traceback" not in err


def test_an_exception_inside_one_agents_call_is_that_calls_bad_response(
    capfd: pytest.CaptureFixture[str],
) -> None:
    agent = Agent("weather-1", "weather", f"http://127.0.0.1:{free_port()}")
    r = _post_once(Router([agent], transport=_Exploding(), retries=0))
    assert r.status_code == 503
    assert [a["outcome"] for a in r.json()["attempts"]] == ["bad_response"]
    assert "Traceback" not in capfd.readouterr().err
