"""RawTransport specifics: HTTP/1.1 framing, keep-alive, its pool and its classify().

The shared contract is in tests/transport/test_transport.py; these are the parts a hand-written
client can get wrong, each against a real server on loopback.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import ssl
import time
from asyncio import StreamReader as Reader
from asyncio import StreamWriter as Writer
from collections.abc import Awaitable, Callable
from typing import TypeVar

import fault_servers as fs
import pytest

from latcli.core.errors import ErrorKind
from latcli.transport.base import Outcome, RequestSpec
from latcli.transport.factory import make_transport
from latcli.transport.raw import pool as raw_pool
from latcli.transport.raw.errors import (
    _BadResponse,
    _BadURL,
    _Deadline,
    _Disconnected,
    _PoolTimeout,
    classify,
)
from latcli.transport.raw.transport import RawTransport

T = TypeVar("T")


def run(body: Callable[[RawTransport], Awaitable[T]], max_connections_per_key: int = 8) -> T:
    async def main() -> T:
        async with RawTransport(max_connections_per_key=max_connections_per_key) as transport:
            return await body(transport)

    return asyncio.run(main())


def get(url: str, **fields: object) -> RequestSpec:
    return RequestSpec("GET", url, **fields)  # type: ignore[arg-type]


def sends(*specs: RequestSpec) -> Callable[[RawTransport], Awaitable[list[Outcome]]]:
    async def body(t: RawTransport) -> list[Outcome]:
        return [await t.send("k", spec) for spec in specs]

    return body


def replying(raw: bytes, close: bool = False) -> fs.Handler:
    """A handler answering every request with ``raw`` (then closing, with ``close``)."""

    async def handler(reader: Reader, writer: Writer) -> None:
        while await fs.read_request(reader) is not None:
            writer.write(raw)
            await writer.drain()
            if close:
                return

    return handler


# --- framing ----------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_chunked_body_with_extensions_and_trailers_is_joined_and_the_connection_kept() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nx-trailer: t\r\n\r\n"
    )
    with fs.serve(replying(raw)) as server:
        first, second = run(sends(get(server.url + "/c"), get(server.url + "/c")))
        one, two = server.client_ports("/c")
    assert (first.error, first.body, second.body) == (None, b"hello world", b"hello world")
    assert one == two


@pytest.mark.timeout(10)
def test_chunked_body_split_across_reads_byte_by_byte() -> None:
    raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"

    async def dribble(reader: Reader, writer: Writer) -> None:
        await fs.read_request(reader)
        for i in range(len(raw)):
            writer.write(raw[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0.001)
        await asyncio.sleep(1)

    with fs.serve(dribble) as server:
        (outcome,) = run(sends(get(server.url)))
    assert (outcome.error, outcome.status, outcome.body) == (None, 200, b"abcde")


@pytest.mark.timeout(10)
def test_body_without_length_is_read_until_close_and_not_reused() -> None:
    raw = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end"
    with fs.serve(replying(raw, close=True)) as server:
        first, second = run(sends(get(server.url + "/u"), get(server.url + "/u")))
        one, two = server.client_ports("/u")
    assert (first.error, first.body) == (None, b"until the end")
    assert second.ok and one != two


@pytest.mark.timeout(10)
def test_connection_close_is_honoured() -> None:
    raw = fs.response_bytes(200, b"bye", extra="connection: close\r\n")
    with fs.serve(replying(raw, close=True)) as server:
        outcomes = run(sends(get(server.url + "/x"), get(server.url + "/x")))
        one, two = server.client_ports("/x")
    assert [o.body for o in outcomes] == [b"bye", b"bye"] and one != two
    assert outcomes[1].timings.connect is not None


@pytest.mark.timeout(10)
def test_http_1_0_reply_is_not_reused() -> None:
    raw = b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok"
    with fs.serve(replying(raw, close=True)) as server:
        outcomes = run(sends(get(server.url + "/o"), get(server.url + "/o")))
        one, two = server.client_ports("/o")
    assert [o.body for o in outcomes] == [b"ok", b"ok"] and one != two


@pytest.mark.timeout(10)
def test_head_and_204_have_no_body_and_keep_the_connection() -> None:
    async def handler(reader: Reader, writer: Writer) -> None:
        while (request := await fs.read_request(reader)) is not None:
            if request.method == "HEAD":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()

    with fs.serve(handler) as server:
        head, empty = run(sends(RequestSpec("HEAD", server.url + "/h"), get(server.url + "/h")))
        ports = server.client_ports("/h")
    assert (head.error, head.status, head.body) == (None, 200, b"")
    assert (empty.error, empty.status, empty.body) == (None, 204, b"")
    assert len(set(ports)) == 1


@pytest.mark.timeout(10)
def test_interim_103_is_skipped() -> None:
    raw = b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n" + fs.response_bytes(200, b"final")
    with fs.serve(replying(raw)) as server:
        (outcome,) = run(sends(get(server.url)))
    assert (outcome.error, outcome.status, outcome.body) == (None, 200, b"final")


@pytest.mark.timeout(10)
def test_body_of_many_reads_within_the_cap_is_whole() -> None:
    with fs.big_body_server(3 * fs.MIB, content_length=True) as sized:
        (a,) = run(sends(get(sized.url, max_body=4 * fs.MIB)))
    with fs.big_body_server(3 * fs.MIB) as chunked:
        (b,) = run(sends(get(chunked.url, max_body=4 * fs.MIB)))
    assert a.ok and b.ok and len(a.body) == len(b.body) == 3 * fs.MIB


@pytest.mark.timeout(10)
def test_repeated_headers_are_joined_and_names_lowercased() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n"
        b"X-Up: V\r\ncontent-length: 0\r\n\r\n"
    )
    with fs.serve(replying(raw)) as server:
        (outcome,) = run(sends(get(server.url)))
    assert dict(outcome.headers) == {"set-cookie": "a=1, b=2", "x-up": "V", "content-length": "0"}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n", "content-length"),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", "status code"),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nab\r\n", "after chunk data"),
    ],
)
@pytest.mark.timeout(10)
def test_malformed_framing_is_bad_response(raw: bytes, fragment: str) -> None:
    with fs.serve(replying(raw)) as server:
        (outcome,) = run(sends(get(server.url, timeout=2.0)))
    assert outcome.error is ErrorKind.BAD_RESPONSE, outcome.message
    assert fragment in (outcome.message or "").lower()


@pytest.mark.timeout(10)
def test_body_cut_short_by_close_is_reset() -> None:
    raw = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this"
    with fs.serve(replying(raw, close=True)) as server:
        (outcome,) = run(sends(get(server.url)))
    assert (outcome.error, outcome.status) == (ErrorKind.RESET, None), outcome.message
    assert outcome.timings.ttfb is not None


# --- keep-alive and the pool ----------------------------------------------------------------


@pytest.mark.timeout(10)
def test_idle_connection_closed_by_the_server_is_replaced_not_reported() -> None:
    raw = fs.response_bytes(200, b"ok")

    async def twice(t: RawTransport) -> list[Outcome]:
        first = await t.send("k", get(server.url + "/i"))
        await asyncio.sleep(0.2)  # the server hangs up meanwhile
        return [first, await t.send("k", get(server.url + "/i"))]

    with fs.serve(replying(raw, close=True)) as server:
        first, second = run(twice)
    assert first.ok and second.ok, second.message
    assert second.timings.connect is not None


@pytest.mark.timeout(10)
def test_mixed_and_out_of_order_deadlines_each_end_on_time() -> None:
    # Timeouts of two sizes, interleaved, one attempt queued behind a full key: every one
    # ends at its own deadline (within 10 % and a scheduling slack), none early.
    async def timed(t: RawTransport, timeout: float, delay: float) -> tuple[float, float]:
        await asyncio.sleep(delay)
        started = time.perf_counter()
        outcome = await t.send("k", get(silent.url, timeout=timeout))
        assert outcome.error is ErrorKind.TIMEOUT, outcome.message
        return timeout, time.perf_counter() - started

    async def scenario(t: RawTransport) -> list[tuple[float, float]]:
        plan = [(0.8, 0.0), (0.3, 0.0), (0.8, 0.05), (0.3, 0.1), (0.2, 0.15)]
        return await asyncio.gather(*(timed(t, timeout, delay) for timeout, delay in plan))

    with fs.silent_server() as silent:
        results = run(scenario, max_connections_per_key=4)
    for timeout, elapsed in results:  # + 50 ms: scheduling slack on a busy machine
        assert timeout <= elapsed <= timeout * 1.1 + 0.05, (timeout, elapsed)


@pytest.mark.timeout(10)
def test_waiters_are_served_in_arrival_order() -> None:
    async def burst(t: RawTransport) -> list[Outcome]:
        return await asyncio.gather(
            *(t.send("k", get(f"{server.url}/n/{i:02}")) for i in range(12))
        )

    with fs.ok_server() as server:
        outcomes = run(burst, max_connections_per_key=1)
        with server._lock:
            paths = [path for _, path in server.requests]
    assert all(o.ok for o in outcomes)
    assert paths == sorted(paths) and len(paths) == 12


@pytest.mark.timeout(10)
def test_waiting_for_a_connection_past_the_deadline_is_timeout() -> None:
    async def scenario(t: RawTransport) -> list[Outcome]:
        stuck = asyncio.ensure_future(t.send("k", get(silent.url, timeout=1.0)))
        await asyncio.sleep(0.05)
        queued = await t.send("k", get(silent.url, timeout=0.3))
        return [queued, await stuck]

    with fs.silent_server() as silent:
        queued, stuck = run(scenario, max_connections_per_key=1)
    assert queued.error is ErrorKind.TIMEOUT and "free connection" in (queued.message or "")
    assert stuck.error is ErrorKind.TIMEOUT


@pytest.mark.timeout(10)
def test_cancelled_waiters_and_senders_leave_the_pool_usable() -> None:
    async def scenario(t: RawTransport) -> Outcome:
        tasks = [asyncio.ensure_future(t.send("k", get(silent.url))) for _ in range(5)]
        await asyncio.sleep(0.1)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return await t.send("k", get(ok.url + "/after"))

    with fs.silent_server() as silent, fs.ok_server() as ok:
        after = run(scenario, max_connections_per_key=2)
    assert after.ok, after.message


@pytest.mark.timeout(10)
def test_connections_a_burst_opened_close_once_idle_past_keepalive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # After a burst, the least recently used idle connections must not be held for the run.
    monkeypatch.setattr(raw_pool, "_KEEPALIVE_SECONDS", 0.3)
    open_now = [0]

    async def slow(reader: Reader, writer: Writer) -> None:
        open_now[0] += 1
        try:
            while await fs.read_request(reader) is not None:
                await asyncio.sleep(0.05)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
        finally:
            open_now[0] -= 1

    async def scenario(t: RawTransport) -> tuple[int, int]:
        url = server.url + "/x"
        await asyncio.gather(*(t.send("k", get(url)) for _ in range(6)))
        after_burst = open_now[0]
        for _ in range(8):  # one at a time for longer than the keep-alive bound
            assert (await t.send("k", get(url))).ok
            await asyncio.sleep(0.06)
        await asyncio.sleep(0.05)
        return after_burst, open_now[0]

    with fs.serve(slow) as server:
        after_burst, later = run(scenario, max_connections_per_key=8)
    assert after_burst == 6
    assert later == 1


@pytest.mark.timeout(10)
def test_a_full_key_gives_an_idle_connection_of_another_origin_up() -> None:
    async def scenario(t: RawTransport) -> list[Outcome]:
        return [await t.send("k", get(a.url + "/a")), await t.send("k", get(b.url + "/b"))]

    with fs.ok_server() as a, fs.ok_server() as b:
        outcomes = run(scenario, max_connections_per_key=1)
    assert all(o.ok for o in outcomes)


@pytest.mark.timeout(10)
def test_redirect_to_another_origin_drops_credentials() -> None:
    async def redirect(reader: Reader, writer: Writer) -> None:
        while await fs.read_request(reader) is not None:
            location = f"location: {echo.url}/landed\r\n"
            writer.write(fs.response_bytes(303, b"", extra=location))
            await writer.drain()

    with fs.echo_server() as echo, fs.serve(redirect) as server:
        spec = RequestSpec(
            "POST",
            server.url + "/go",
            {"Authorization": "Bearer x", "X-Keep": "1"},
            b"payload",
            follow_redirects=True,
        )
        (outcome,) = run(sends(spec))
    assert outcome.ok, outcome.message
    echoed = json.loads(outcome.body)
    names = {name for name, _ in echoed["headers"]}
    assert (echoed["method"], echoed["path"], echoed["body"]) == ("GET", "/landed", "")
    assert "authorization" not in names and "x-keep" in names and "content-length" not in names


# --- requests -------------------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_a_spec_sent_again_is_encoded_once() -> None:
    async def scenario(t: RawTransport) -> bool:
        spec = get(server.url)
        await t.send("k", spec)
        cached = t._prepared[id(spec)]
        await t.send("k", spec)
        return t._prepared[id(spec)] is cached

    with fs.ok_server() as server:
        assert run(scenario)


@pytest.mark.timeout(10)
def test_spec_headers_replace_the_defaults() -> None:
    headers = {"User-Agent": "mine", "Host": "example.test"}
    with fs.echo_server() as server:
        (outcome,) = run(sends(get(server.url + "/p?q=1", headers=headers)))
    echoed = json.loads(outcome.body)
    received = echoed["headers"]
    assert echoed["path"] == "/p?q=1"
    assert [v for n, v in received if n == "user-agent"] == ["mine"]
    assert [v for n, v in received if n == "host"] == ["example.test"]
    assert ("accept-encoding", "identity") in [tuple(h) for h in received]


@pytest.mark.timeout(10)
def test_unsupported_scheme_and_a_newline_in_a_header_are_bad_response() -> None:
    (outcome,) = run(sends(get("ftp://127.0.0.1/file")))
    assert outcome.error is ErrorKind.BAD_RESPONSE and "scheme" in (outcome.message or "")
    (outcome,) = run(sends(get("http://127.0.0.1:1/", headers={"X": "a\r\nEvil: 1"})))
    assert outcome.error is ErrorKind.BAD_RESPONSE and "newline" in (outcome.message or "")


@pytest.mark.timeout(10)
def test_closed_transport_refuses_new_keys_and_make_transport_builds_it() -> None:
    async def scenario() -> None:
        t = RawTransport()
        await t.aclose()
        with pytest.raises(RuntimeError):
            await t.send("k", get("http://127.0.0.1:1/"))

    asyncio.run(scenario())
    assert isinstance(make_transport("raw"), RawTransport)
    with pytest.raises(ValueError):
        RawTransport(max_connections_per_key=0)


# --- classify -------------------------------------------------------------------------------


CLASSIFY_CASES: list[tuple[BaseException, str, ErrorKind, str]] = [
    (socket.gaierror(-2, "Name unknown"), "connect", ErrorKind.DNS, "Name unknown"),
    (ConnectionRefusedError(111, "refused"), "connect", ErrorKind.CONNECT, "refused"),
    (TimeoutError(), "connect", ErrorKind.CONNECT, "connect timed out"),
    (asyncio.TimeoutError(), "tls", ErrorKind.TLS, "handshake timed out"),
    (ssl.SSLCertVerificationError(1, "self-signed"), "tls", ErrorKind.TLS, "self-signed"),
    (ConnectionResetError(104, "peer"), "tls", ErrorKind.TLS, "peer"),
    (ssl.SSLError(1, "bad record mac"), "exchange", ErrorKind.TLS, "bad record"),
    (_PoolTimeout(), "pool", ErrorKind.TIMEOUT, "free connection"),
    (_Deadline(), "exchange", ErrorKind.TIMEOUT, "attempt timed out"),
    (ConnectionResetError(104, "reset by peer"), "exchange", ErrorKind.RESET, "reset by peer"),
    (BrokenPipeError(32, "pipe"), "exchange", ErrorKind.RESET, "pipe"),
    (OSError(errno.ECONNABORTED, "aborted"), "exchange", ErrorKind.RESET, "aborted"),
    (_Disconnected("gone"), "exchange", ErrorKind.RESET, "gone"),
    (_BadResponse("junk\nhere"), "exchange", ErrorKind.BAD_RESPONSE, "junk here"),
    (_BadURL("ftp"), "exchange", ErrorKind.BAD_RESPONSE, "ftp"),
    (OSError(errno.EIO, "io"), "exchange", ErrorKind.BAD_RESPONSE, "OSError"),
]


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("exc", "phase", "kind", "fragment"), CLASSIFY_CASES)
def test_classify(exc: BaseException, phase: str, kind: ErrorKind, fragment: str) -> None:
    got_kind, message = classify(exc, phase)  # type: ignore[arg-type]
    assert got_kind is kind
    assert fragment in message and "\n" not in message and len(message) < 250
