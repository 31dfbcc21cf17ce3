"""AiohttpTransport specifics; the shared contract is in test_transport.py."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import ssl
import time
from types import SimpleNamespace

import aiohttp
import fault_servers as fs
import pytest
from aiohttp import http_exceptions
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from latcli.errors import ErrorKind
from latcli.transport.aiohttp_transport import AiohttpTransport, classify
from latcli.transport.base import Outcome, RequestSpec

KEY = SimpleNamespace(host="example.test", port=443, ssl=True, is_ssl=True)  # read by str()


def get(url: str, **fields: object) -> RequestSpec:
    return RequestSpec("GET", url, **fields)  # type: ignore[arg-type]


def _caused(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


def _cycle() -> BaseException:
    first, second = aiohttp.ClientOSError(104, "a"), OSError("b")
    first.__context__, second.__context__ = second, first
    return first


def _bad_status_line() -> BaseException:
    # As aiohttp raises it: ClientResponseError <- HttpProcessingError <- BadStatusLine.
    line = http_exceptions.BadStatusLine("SSH-2.0-OpenSSH_9.6")
    inner = _caused(http_exceptions.HttpProcessingError(code=400, message=str(line)), line)
    outer = aiohttp.ClientResponseError(None, (), status=400, message="Invalid status")  # type: ignore[arg-type]
    return _caused(outer, inner)


_REQUEST = aiohttp.RequestInfo(URL("http://a.test/"), "GET", CIMultiDictProxy(CIMultiDict()))


def _gai() -> socket.gaierror:
    return socket.gaierror(-2, "Name or service not known")


CLASSIFY_CASES: list[tuple[BaseException, ErrorKind, str]] = [
    (_caused(aiohttp.ClientConnectorDNSError(KEY, _gai()), _gai()), ErrorKind.DNS, "Name"),
    (aiohttp.ClientConnectorDNSError(KEY, _gai()), ErrorKind.DNS, "Name or service"),
    (
        aiohttp.ClientConnectorCertificateError(
            KEY, ssl.SSLCertVerificationError(1, "self-signed")
        ),
        ErrorKind.TLS,
        "self-sig",
    ),
    (
        aiohttp.ClientConnectorSSLError(KEY, ssl.SSLError(1, "WRONG_VERSION_NUMBER")),
        ErrorKind.TLS,
        "WRONG_VERSION",
    ),
    (
        aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "Connect call failed")),
        ErrorKind.CONNECT,
        "connect failed: connection refused",
    ),
    (aiohttp.ConnectionTimeoutError("Connection timeout to host"), ErrorKind.CONNECT, "timed out"),
    (aiohttp.SocketTimeoutError("Timeout on reading"), ErrorKind.TIMEOUT, "read timed out"),
    (TimeoutError(), ErrorKind.TIMEOUT, "attempt timed out"),
    (asyncio.TimeoutError(), ErrorKind.TIMEOUT, "attempt timed out"),
    (aiohttp.ServerDisconnectedError(), ErrorKind.RESET, "disconnected"),
    (aiohttp.ClientOSError(104, "Connection reset by peer"), ErrorKind.RESET, "reset by peer"),
    (aiohttp.ClientConnectionResetError("Cannot write"), ErrorKind.RESET, "Cannot write"),
    (_bad_status_line(), ErrorKind.BAD_RESPONSE, "SSH-2.0"),
    (aiohttp.ClientPayloadError("payload not completed"), ErrorKind.BAD_RESPONSE, "not completed"),
    (aiohttp.NonHttpUrlClientError("ftp://x/"), ErrorKind.BAD_RESPONSE, "NonHttpUrlClientError"),
    (aiohttp.TooManyRedirects(_REQUEST, ()), ErrorKind.BAD_RESPONSE, "message="),
    (_cycle(), ErrorKind.RESET, ""),
]


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("exc", "kind", "fragment"), CLASSIFY_CASES)
def test_classify(exc: BaseException, kind: ErrorKind, fragment: str) -> None:
    got_kind, message = classify(exc)
    assert got_kind is kind
    assert fragment in message and "\n" not in message and len(message) < 250


def test_connect_timeout_during_the_tls_handshake_is_tls() -> None:
    exc = aiohttp.ConnectionTimeoutError("Connection timeout to host")
    assert classify(exc, in_tls=True) == (ErrorKind.TLS, "tls: handshake timed out")


@pytest.mark.timeout(10)
def test_a_saturated_key_does_not_starve_another() -> None:
    # The conformance test's scenario with a deterministic third request: it
    # expires while queued, before either slot frees, so it never connects.
    async def scenario(t: AiohttpTransport) -> tuple[list[Outcome], Outcome, float]:
        timeouts = (1.0, 1.0, 0.8)
        stuck = [
            asyncio.ensure_future(t.send("slow", get(silent.url + "/stuck", timeout=timeout)))
            for timeout in timeouts
        ]
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        fast = await t.send("fast", get(ok.url, timeout=1.0))
        fast_seconds = time.perf_counter() - started
        return await asyncio.gather(*stuck), fast, fast_seconds

    async def main() -> tuple[list[Outcome], Outcome, float]:
        async with AiohttpTransport(max_connections_per_key=2) as t:
            return await scenario(t)

    with fs.silent_server() as silent, fs.ok_server() as ok:
        stuck, fast, fast_seconds = asyncio.run(main())
        assert len(set(silent.client_ports("/stuck"))) == 2
    assert fast.ok and fast_seconds < 0.5
    assert [o.error for o in stuck] == [ErrorKind.TIMEOUT] * 3


@pytest.mark.timeout(10)
def test_a_reset_is_not_silently_retried() -> None:
    # aiohttp resends an idempotent request once by default; one attempt is one request.
    async def main() -> Outcome:
        async with AiohttpTransport() as t:
            return await t.send("agent", get(server.url + "/once"))

    with fs.reset_server() as server:
        outcome = asyncio.run(main())
        assert len(server.client_ports("/once")) == 1
    assert outcome.error is ErrorKind.RESET


@pytest.mark.timeout(10)
def test_default_headers_match_the_httpx_engine() -> None:
    async def main() -> Outcome:
        async with AiohttpTransport() as t:
            return await t.send("agent", RequestSpec("POST", server.url, body=b"{}"))

    with fs.echo_server() as server:
        outcome = asyncio.run(main())
    received = dict(json.loads(outcome.body)["headers"])
    assert received["accept-encoding"] == "identity"
    assert received["user-agent"].startswith("latcli/")
    assert "content-type" not in received  # raw bytes: no guessed type, as in httpx


@pytest.mark.slow
@pytest.mark.timeout(15)
def test_long_timeouts_are_not_rounded_up_to_whole_seconds() -> None:
    # aiohttp rounds deadlines of timeouts over 5 s up to the next whole second of
    # loop time by default; this timeout's deadline lands 0.1 s past one, so
    # rounding would overshoot by 0.9 s.
    async def main() -> tuple[Outcome, float, float]:
        async with AiohttpTransport() as t:
            now = asyncio.get_running_loop().time()
            timeout = 5.1 + (math.ceil(now) - now)
            started = time.perf_counter()
            outcome = await t.send("agent", get(server.url, timeout=timeout))
            return outcome, timeout, time.perf_counter() - started

    with fs.silent_server() as server:
        outcome, timeout, elapsed = asyncio.run(main())
    assert outcome.error is ErrorKind.TIMEOUT
    assert timeout <= elapsed <= timeout + 0.3


@pytest.mark.timeout(10)
def test_without_phases_only_the_total_is_timed() -> None:
    async def main() -> list[Outcome]:
        async with AiohttpTransport(phases=False) as t:
            return [await t.send("agent", get(server.url)) for _ in range(2)]

    with fs.ok_server() as server:
        first, second = asyncio.run(main())
    assert first.ok and first.status == 200 and second.ok
    assert first.timings.total > 0
    assert (first.timings.connect, first.timings.tls, first.timings.ttfb) == (None, None, None)


def test_a_plain_http_connect_timeout_after_tcp_is_up_is_not_tls() -> None:
    # A loaded loop can spend the connect budget after TCP is up; only TLS hops are "in tls".
    from latcli.transport.aiohttp_transport import _Trace

    plain, secure = _Trace(secure=False), _Trace(secure=True)
    for trace in (plain, secure):
        trace.conn_start = trace.tcp_up = time.perf_counter()
    assert (plain.in_tls, secure.in_tls) == (False, True)


@pytest.mark.timeout(10)
def test_queued_requests_are_served_in_turn() -> None:
    # aiohttp alone hands a freed connection to whoever asks next: a closed-loop
    # worker re-asking at once starved the others. The per-key gate is FIFO.
    async def main() -> list[int]:
        served = [0] * 20
        async with AiohttpTransport(max_connections_per_key=2) as t:

            async def worker(i: int, until: float) -> None:
                while time.perf_counter() < until:
                    assert (await t.send("agent", get(server.url + "/turn"))).ok
                    served[i] += 1

            until = time.perf_counter() + 0.5
            await asyncio.gather(*(worker(i, until) for i in range(20)))
        return served

    with fs.ok_server() as server:
        served = asyncio.run(main())
    assert min(served) >= max(served) // 2, served
