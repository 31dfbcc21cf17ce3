"""Conformance suite for every Transport engine, against real servers on loopback.

To hold a new engine to the same contract, append its class to ``ENGINES``.
An engine's constructor takes the keyword arguments ``max_connections_per_key``
and ``verify`` (True, False or a CA bundle path).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import fault_servers as fs
import httpx
import psutil
import pytest

from latcli.core.errors import ErrorKind
from latcli.transport.base import Outcome, RequestSpec, Transport
from latcli.transport.factory import Engine, make_transport
from latcli.transport.httpx_engine import HttpxTransport, classify
from latcli.transport.raw.transport import RawTransport
from latcli.transport.tls import shared_ssl_context

TransportFactory = Callable[..., Transport]
T = TypeVar("T")

ENGINES: list[TransportFactory] = [HttpxTransport, RawTransport]


@pytest.fixture(params=ENGINES, ids=lambda engine: engine.__name__)
def transport_factory(request: pytest.FixtureRequest) -> TransportFactory:
    factory: TransportFactory = request.param
    return factory


def run_with(
    factory: TransportFactory, body: Callable[[Transport], Awaitable[T]], **options: Any
) -> T:
    """Run ``body`` with a fresh transport in a fresh event loop, then close the transport."""

    async def main() -> T:
        transport = factory(**options)
        try:
            return await body(transport)
        finally:
            await transport.aclose()

    return asyncio.run(main())


def send_one(factory: TransportFactory, spec: RequestSpec, **options: Any) -> Outcome:
    return run_with(factory, lambda t: t.send("agent", spec), **options)


def get(url: str, **fields: Any) -> RequestSpec:
    return RequestSpec("GET", url, **fields)


# --- responses -------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_ok_response_has_status_body_headers_and_fresh_timings(
    transport_factory: TransportFactory,
) -> None:
    with fs.ok_server() as server:
        outcome = send_one(transport_factory, get(server.url + "/health"))
    assert (outcome.error, outcome.status, outcome.body) == (None, 200, b'{"ok": true}')
    assert outcome.ok and outcome.message is None
    assert outcome.headers["content-type"] == "application/json"
    assert all(name == name.lower() for name in outcome.headers)
    t = outcome.timings
    assert t.connect is not None and t.ttfb is not None and t.tls is None
    assert 0 <= t.connect <= t.ttfb <= t.total < 5000


@pytest.mark.timeout(10)
def test_non_json_200_is_a_response_not_an_error(transport_factory: TransportFactory) -> None:
    with fs.not_json_server() as server:
        outcome = send_one(transport_factory, get(server.url))
    assert (outcome.error, outcome.status) == (None, 200)
    assert outcome.body.startswith(b"<html>")


@pytest.mark.timeout(10)
def test_reused_connection_has_no_connect_phase(transport_factory: TransportFactory) -> None:
    async def twice(t: Transport) -> list[Outcome]:
        return [await t.send("agent", get(server.url + "/reuse")) for _ in range(2)]

    with fs.ok_server() as server:
        first, second = run_with(transport_factory, twice)
        one, two = server.client_ports("/reuse")
        assert one == two
    assert first.timings.connect is not None
    assert second.ok and second.timings.connect is None and second.timings.tls is None
    assert second.timings.ttfb is not None and second.timings.ttfb <= second.timings.total


@pytest.mark.timeout(10)
def test_redirect_is_not_followed_by_default(transport_factory: TransportFactory) -> None:
    with fs.redirect_server() as server:
        outcome = send_one(transport_factory, get(server.url + "/start"))
    assert (outcome.error, outcome.status) == (None, 302)
    assert outcome.headers["location"] == "/target"


@pytest.mark.timeout(10)
def test_redirect_is_followed_when_asked(transport_factory: TransportFactory) -> None:
    with fs.redirect_server() as server:
        outcome = send_one(transport_factory, get(server.url + "/start", follow_redirects=True))
    assert (outcome.error, outcome.status, outcome.body) == (None, 200, b"arrived")


@pytest.mark.timeout(10)
def test_method_headers_and_body_are_sent_as_given(transport_factory: TransportFactory) -> None:
    headers = {"Authorization": "Bearer s3cret", "A2A-Version": "1.0", "X-Trace": "a b"}
    with fs.echo_server() as server:
        url = server.url + "/message/send"
        spec = RequestSpec("POST", url, headers=headers, body=b'{"message": "hi"}')
        outcome = send_one(transport_factory, spec)
    echoed = json.loads(outcome.body)
    assert (echoed["method"], echoed["path"]) == ("POST", "/message/send")
    assert echoed["body"] == '{"message": "hi"}'
    received = {name: value for name, value in echoed["headers"]}
    for name, value in headers.items():
        assert received[name.lower()] == value
    assert received["content-length"] == "17"


# --- faults ----------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_refused_connection_is_connect(transport_factory: TransportFactory) -> None:
    with fs.refused_port() as url:
        outcome = send_one(transport_factory, get(url))
    assert (outcome.error, outcome.status, outcome.body) == (ErrorKind.CONNECT, None, b"")
    assert outcome.message and outcome.timings.total > 0


@pytest.mark.timeout(10)
def test_unresolvable_host_is_dns(transport_factory: TransportFactory) -> None:
    # RFC 6761: names under .invalid never resolve.
    outcome = send_one(transport_factory, get("http://latcli-test.invalid/"))
    assert outcome.error is ErrorKind.DNS, outcome.message


@pytest.mark.timeout(10)
def test_reset_connection_is_reset(transport_factory: TransportFactory) -> None:
    with fs.reset_server() as server:
        outcome = send_one(transport_factory, get(server.url))
    assert (outcome.error, outcome.status) == (ErrorKind.RESET, None), outcome.message


@pytest.mark.timeout(10)
def test_garbage_bytes_are_bad_response(transport_factory: TransportFactory) -> None:
    with fs.not_http_server() as server:
        outcome = send_one(transport_factory, get(server.url))
    assert outcome.error is ErrorKind.BAD_RESPONSE, outcome.message


@pytest.mark.timeout(10)
def test_tls_to_a_plain_http_port_is_tls(transport_factory: TransportFactory) -> None:
    with fs.ok_server() as server:
        outcome = send_one(transport_factory, get(server.url.replace("http:", "https:")))
    assert outcome.error is ErrorKind.TLS, outcome.message


@pytest.mark.timeout(10)
def test_connect_that_hangs_is_connect_after_connect_timeout(
    transport_factory: TransportFactory,
) -> None:
    with fs.blackhole_port() as url:
        started = time.perf_counter()
        outcome = send_one(transport_factory, get(url, connect_timeout=0.3, timeout=3.0))
        elapsed = time.perf_counter() - started
    assert outcome.error is ErrorKind.CONNECT, outcome.message
    assert "timed out" in (outcome.message or "")
    assert 0.3 <= elapsed < 1.5


@pytest.mark.timeout(10)
def test_silent_server_ends_within_timeout_plus_ten_percent(
    transport_factory: TransportFactory,
) -> None:
    with fs.silent_server() as server:
        started = time.perf_counter()
        outcome = send_one(transport_factory, get(server.url, timeout=1.0))
        elapsed = time.perf_counter() - started
    assert (outcome.error, outcome.status) == (ErrorKind.TIMEOUT, None), outcome.message
    assert 1.0 <= elapsed <= 1.1
    assert outcome.timings.ttfb is None and 1000 <= outcome.timings.total <= 1100


@pytest.mark.timeout(10)
def test_slow_body_is_cut_by_the_whole_attempt_timeout(
    transport_factory: TransportFactory,
) -> None:
    # Bytes arrive every 0.1 s: no single read times out, only the attempt bound.
    with fs.slow_body_server(pieces=30, gap=0.1) as server:
        started = time.perf_counter()
        outcome = send_one(transport_factory, get(server.url, timeout=1.0))
        elapsed = time.perf_counter() - started
    assert outcome.error is ErrorKind.TIMEOUT, outcome.message
    assert 1.0 <= elapsed <= 1.1
    assert outcome.timings.ttfb is not None and outcome.timings.ttfb < 500


@pytest.mark.timeout(10)
def test_declared_oversize_body_is_too_large_without_reading(
    transport_factory: TransportFactory,
) -> None:
    with fs.big_body_server(content_length=True) as server:
        outcome = send_one(transport_factory, get(server.url, max_body=1 << 20))
    assert (outcome.error, outcome.status, outcome.body) == (ErrorKind.TOO_LARGE, 200, b"")
    assert outcome.timings.total < 1000


class PeakRss:
    """Samples this process's RSS every 5 ms in a thread; ``peak`` is the highest seen."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.timeout(20)
def test_streamed_64mib_body_is_too_large_with_bounded_memory(
    transport_factory: TransportFactory,
) -> None:
    cap = 8 << 20  # large enough that buffering the whole body would show in RSS
    with fs.big_body_server(64 * fs.MIB) as server:
        send_one(transport_factory, get(server.url + "/warm", max_body=cap))  # warm allocators
        baseline = psutil.Process().memory_info().rss
        with PeakRss() as rss:
            outcome = send_one(transport_factory, get(server.url, max_body=cap))
    assert (outcome.error, outcome.status, outcome.body) == (ErrorKind.TOO_LARGE, 200, b"")
    assert rss.peak - baseline < 30 * fs.MIB


# --- bulkheads and cancellation -------------------------------------------------------


@pytest.mark.timeout(10)
def test_each_key_gets_its_own_connections(transport_factory: TransportFactory) -> None:
    async def three(t: Transport) -> list[Outcome]:
        return [await t.send(key, get(f"{server.url}/key/{key}")) for key in ("a", "a", "b")]

    with fs.ok_server() as server:
        outcomes = run_with(transport_factory, three)
        a1, a2 = server.client_ports("/key/a")
        (b,) = server.client_ports("/key/b")
    assert all(o.ok for o in outcomes)
    assert a1 == a2 != b  # "a" reused its connection; "b" opened its own


@pytest.mark.timeout(10)
def test_a_key_never_opens_more_than_its_connection_limit(
    transport_factory: TransportFactory,
) -> None:
    async def burst(t: Transport) -> list[Outcome]:
        return await asyncio.gather(*(t.send("a", get(server.url + "/burst")) for _ in range(30)))

    with fs.ok_server() as server:
        outcomes = run_with(transport_factory, burst, max_connections_per_key=3)
        ports = server.client_ports("/burst")
    assert all(o.ok for o in outcomes) and len(ports) == 30
    assert 1 <= len(set(ports)) <= 3


@pytest.mark.timeout(10)
# httpx-only: "the third never reached the server" holds only while the three deadlines are
# closer together than the engine's path from a freed slot to bytes on the wire; raw's path is
# shorter (flaky under load). tests/transport/test_raw_transport.py checks raw's queueing.
@pytest.mark.parametrize("transport_factory", [HttpxTransport], ids=["HttpxTransport"])
def test_a_saturated_key_does_not_starve_another(transport_factory: TransportFactory) -> None:
    async def scenario(t: Transport) -> tuple[list[Outcome], Outcome, float]:
        stuck = [
            asyncio.ensure_future(t.send("slow", get(silent.url + "/stuck", timeout=1.0)))
            for _ in range(3)
        ]
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        fast = await t.send("fast", get(ok.url, timeout=1.0))
        fast_seconds = time.perf_counter() - started
        return await asyncio.gather(*stuck), fast, fast_seconds

    with fs.silent_server() as silent, fs.ok_server() as ok:
        stuck, fast, fast_seconds = run_with(transport_factory, scenario, max_connections_per_key=2)
        # The third request queued inside its bulkhead and never reached the server.
        assert len(set(silent.client_ports("/stuck"))) == 2
    assert fast.ok and fast_seconds < 0.5
    assert [o.error for o in stuck] == [ErrorKind.TIMEOUT] * 3


@pytest.mark.timeout(10)
def test_caller_cancellation_propagates(transport_factory: TransportFactory) -> None:
    async def cancelled(t: Transport) -> float:
        task = asyncio.ensure_future(t.send("agent", get(server.url, timeout=5.0)))
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.perf_counter() - started

    with fs.silent_server() as server:
        assert run_with(transport_factory, cancelled) < 0.5


# --- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> fs.TlsFiles:
    return fs.make_tls_files(str(tmp_path_factory.mktemp("tls")))


@pytest.mark.timeout(10)
def test_tls_with_trusted_ca_has_tls_timing(
    transport_factory: TransportFactory, tls_files: fs.TlsFiles
) -> None:
    with fs.tls_ok_server(tls_files) as server:
        outcome = send_one(transport_factory, get(server.url), verify=tls_files.certfile)
    assert (outcome.error, outcome.status) == (None, 200), outcome.message
    t = outcome.timings
    assert t.connect is not None and t.tls is not None and t.ttfb is not None
    assert t.connect + t.tls <= t.ttfb <= t.total


@pytest.mark.timeout(10)
def test_untrusted_certificate_is_tls(
    transport_factory: TransportFactory, tls_files: fs.TlsFiles
) -> None:
    with fs.tls_ok_server(tls_files) as server:
        outcome = send_one(transport_factory, get(server.url))
    assert outcome.error is ErrorKind.TLS, outcome.message
    assert "certificate" in (outcome.message or "").lower()


@pytest.mark.timeout(10)
def test_unverified_tls_accepts_self_signed(
    transport_factory: TransportFactory, tls_files: fs.TlsFiles
) -> None:
    with fs.tls_ok_server(tls_files) as server:
        outcome = send_one(transport_factory, get(server.url), verify=False)
    assert (outcome.error, outcome.status) == (None, 200), outcome.message


@pytest.mark.timeout(10)
def test_ssl_cert_file_is_the_trust_store_when_set(
    transport_factory: TransportFactory, tls_files: fs.TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", tls_files.certfile)
    with fs.tls_ok_server(tls_files) as server:
        outcome = send_one(transport_factory, get(server.url))
    assert (outcome.error, outcome.status) == (None, 200), outcome.message


@pytest.mark.timeout(10)
def test_a_ca_directory_is_a_trust_store(
    transport_factory: TransportFactory, tls_files: fs.TlsFiles, tmp_path: Path
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl to name the CA file by its subject hash")
    hashed = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", tls_files.certfile],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shutil.copy(tls_files.certfile, tmp_path / f"{hashed}.0")
    with fs.tls_ok_server(tls_files) as server:
        outcome = send_one(transport_factory, get(server.url), verify=str(tmp_path))
    assert (outcome.error, outcome.status) == (None, 200), outcome.message


@pytest.mark.timeout(10)
@pytest.mark.parametrize("engine", ["httpx", "raw"])
def test_make_transport_gives_every_engine_its_verify(
    engine: Engine, tls_files: fs.TlsFiles
) -> None:
    def factory(**options: Any) -> Transport:
        return make_transport(engine, **options)

    with fs.tls_ok_server(tls_files) as server:
        trusted = send_one(factory, get(server.url), verify=tls_files.certfile)
        insecure = send_one(factory, get(server.url), verify=False)
        default = send_one(factory, get(server.url))
    assert (trusted.error, insecure.error, default.error) == (None, None, ErrorKind.TLS)


# --- URL credentials and requests no server should see -------------------------------------


@pytest.mark.timeout(10)
def test_url_userinfo_is_basic_auth_never_the_host_or_the_request_line(
    transport_factory: TransportFactory,
) -> None:
    with fs.echo_server() as server:
        netloc = server.url.removeprefix("http://")
        url = f"http://us%40er:p%3Ass@{netloc}/ui?x=1"
        plain = send_one(transport_factory, get(url))
        given = send_one(transport_factory, get(url, headers={"Authorization": "Bearer t"}))
    echoed = json.loads(plain.body)
    headers = dict(echoed["headers"])
    assert echoed["path"] == "/ui?x=1" and headers["host"] == netloc
    assert headers["authorization"] == "Basic " + base64.b64encode(b"us@er:p:ss").decode()
    assert "us%40er" not in plain.body.decode() and "p%3Ass" not in plain.body.decode()
    authorizations = [v for n, v in json.loads(given.body)["headers"] if n == "authorization"]
    assert authorizations == ["Bearer t"]


@pytest.mark.timeout(10)
def test_a_header_no_request_can_carry_is_bad_response_not_an_exception(
    transport_factory: TransportFactory,
) -> None:
    with fs.ok_server() as server:
        outcome = send_one(transport_factory, get(server.url, headers={"X": "a\r\nEvil: 1"}))
        after = send_one(transport_factory, get(server.url))
    assert outcome.error is ErrorKind.BAD_RESPONSE, outcome.message
    assert after.ok and not server.client_ports("/Evil")


# --- HttpxTransport specifics ---------------------------------------------------------


def _caused(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


def _cycle() -> BaseException:
    first, second = httpx.ReadError("a"), OSError("b")
    first.__context__, second.__context__ = second, first
    return first


CLASSIFY_CASES: list[tuple[BaseException, ErrorKind, str]] = [
    (_caused(httpx.ConnectError(""), socket.gaierror(-2, "Name unknown")), ErrorKind.DNS, "Name"),
    (
        _caused(httpx.ConnectError(""), ssl.SSLCertVerificationError(1, "self-signed")),
        ErrorKind.TLS,
        "self-signed",
    ),
    (
        _caused(httpx.ConnectError(""), ConnectionRefusedError(111, "no")),
        ErrorKind.CONNECT,
        "connect failed: connection refused",  # plain words, whatever the OS text (issue 15)
    ),
    (httpx.ConnectTimeout(""), ErrorKind.CONNECT, "timed out"),
    (httpx.ReadTimeout(""), ErrorKind.TIMEOUT, "read timed out"),
    (httpx.WriteTimeout(""), ErrorKind.TIMEOUT, "write timed out"),
    (httpx.PoolTimeout(""), ErrorKind.TIMEOUT, "free connection"),
    (TimeoutError(), ErrorKind.TIMEOUT, "attempt timed out"),
    (asyncio.TimeoutError(), ErrorKind.TIMEOUT, "attempt timed out"),
    (_caused(httpx.ReadError(""), ConnectionResetError(104, "reset")), ErrorKind.RESET, "reset"),
    (
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        ErrorKind.RESET,
        "disconnected",
    ),
    (httpx.RemoteProtocolError("illegal status line"), ErrorKind.BAD_RESPONSE, "illegal"),
    (httpx.DecodingError("bad gzip"), ErrorKind.BAD_RESPONSE, "DecodingError"),
    (httpx.UnsupportedProtocol("ftp"), ErrorKind.BAD_RESPONSE, "UnsupportedProtocol"),
    (_cycle(), ErrorKind.RESET, ""),
]


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("exc", "kind", "fragment"), CLASSIFY_CASES)
def test_classify(exc: BaseException, kind: ErrorKind, fragment: str) -> None:
    got_kind, message = classify(exc)
    assert got_kind is kind
    assert fragment in message and "\n" not in message and len(message) < 250


# The engines that keep a client per key: its attribute, and how a client says it is closed.
PER_KEY_CLIENTS = [
    pytest.param(HttpxTransport, "_clients", lambda c: c.is_closed, id="httpx"),
]


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("engine", "attr", "is_closed"), PER_KEY_CLIENTS)
def test_keys_get_distinct_clients_sharing_one_tls_context(
    engine: Callable[[], Any], attr: str, is_closed: Callable[[Any], bool]
) -> None:
    async def scenario() -> None:
        async with engine() as t:
            with fs.ok_server() as server:
                for key in ("a", "b", "a"):
                    assert (await t.send(key, get(server.url))).ok
            clients = getattr(t, attr)
            assert set(clients) == {"a", "b"}
            a, b = clients["a"], clients["b"]
            assert a is not b
        assert is_closed(a) and is_closed(b)
        with pytest.raises(RuntimeError):
            await t.send("a", get("http://127.0.0.1:1"))

    asyncio.run(scenario())
    assert engine()._ssl_context is shared_ssl_context(True)
