"""The raw engine's streaming send: what the shared contract in test_a2a_wire.py cannot see.

A stream read to its end leaves a reusable connection; one left early gives its slot back;
and an A2A stream read through the raw engine gives the httpx engine's text, state and phases.
``read_with`` (a consumer callback, run by the raw engine's feeder after each loop pass's
reads) keeps the iteration's contract on every engine, and a burst of reads is stamped
before any of them is consumed.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, cast

import pytest
from a2a_wire_agent import a2a_agent, agent_server, chunk, scripted, sse, status
from fault_servers import read_request, response_bytes, serve

from latcli.core.errors import ErrorKind
from latcli.transport.base import RequestSpec, StreamingOutcome
from latcli.transport.httpx_engine import HttpxTransport
from latcli.transport.protocols import ProtocolClient
from latcli.transport.raw.connection import _Connection
from latcli.transport.raw.stream import _Feeder, _Sink
from latcli.transport.raw.transport import RawTransport
from latcli.transport.replies import Reply


def test_a_stream_read_whole_leaves_its_connection_for_the_next_request() -> None:
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while (request := await read_request(reader)) is not None:
            if request.method == "POST":
                await scripted([(0.0, b"data: 1\n\n"), (0.02, b"data: 2\n\n")])(writer)
            else:
                writer.write(response_bytes(200, b"ok", "text/plain"))
                await writer.drain()

    async def go(url: str) -> tuple[list[bytes], int | None]:
        async with RawTransport(max_connections_per_key=1) as transport:
            async with transport.stream("k", RequestSpec("POST", url, body=b"{}")) as outcome:
                got = [data async for _, data in outcome]
                assert outcome.error is None and outcome.ended is not None
            after = await transport.send("k", RequestSpec("GET", url))
            return got, after.status

    with serve(handler) as server:
        got, status_after = asyncio.run(go(server.url + "/"))
    assert b"".join(got) == b"data: 1\n\ndata: 2\n\n"
    assert status_after == 200 and len(connections) == 1


def test_a_stream_left_early_gives_its_slot_back_and_is_never_reused() -> None:
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while (request := await read_request(reader)) is not None:
            if request.method == "POST":
                steps = [(0.0, b"data: 1\n\n")] + [(0.05, b"data: more\n\n")] * 20
                await scripted(steps)(writer)
            else:
                writer.write(response_bytes(200, b"ok", "text/plain"))
                await writer.drain()

    async def go(url: str) -> int | None:
        async with RawTransport(max_connections_per_key=1) as transport:
            async with transport.stream("k", RequestSpec("POST", url, body=b"{}")) as outcome:
                async for _ in outcome:
                    break  # the caller stops reading: the rest of the stream is not for anyone
            spec = RequestSpec("GET", url, timeout=2.0)
            return (await transport.send("k", spec)).status

    with serve(handler) as server:
        assert asyncio.run(go(server.url + "/")) == 200
    assert len(connections) == 2


def _stream(transport_factory: type[RawTransport] | type[HttpxTransport], url: str) -> Reply:
    async def go() -> Reply:
        async with transport_factory() as transport:
            return await ProtocolClient(transport).stream_message(a2a_agent(url), "hi", None)

    return asyncio.run(go())


def test_an_a2a_stream_reads_alike_through_the_raw_and_the_httpx_engines() -> None:
    events = [
        (0.0, sse(status("TASK_STATE_WORKING"))),
        (0.05, sse(chunk("Hel", False))),
        (0.02, sse(chunk("lo", True))),
        (0.02, sse(status("TASK_STATE_COMPLETED"))),
    ]
    replies = []
    for factory in (RawTransport, HttpxTransport):
        with agent_server(scripted(events)) as (server, _):
            replies.append(_stream(factory, server.url))
    raw, reference = replies
    assert raw.ok and reference.ok, (raw.message, reference.message)
    assert (raw.text, raw.state) == (reference.text, reference.state) == ("Hello", "completed")
    assert raw.stream is not None and reference.stream is not None
    assert raw.stream.events == reference.stream.events == 4
    assert raw.stream.first_artifact_ms is not None and raw.stream.first_artifact_ms >= 40
    assert json.dumps(raw.stream.to_json())  # the send/v1 shape serialises


def test_bad_framing_mid_stream_is_bad_response_and_gives_the_slot_back() -> None:
    """A hostile agent breaks its chunked coding after the first event: the stream ends as
    ``bad_response`` (llhttp's verdict), the connection is dropped, and with one connection
    per key the next request still gets through."""
    connections: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while (request := await read_request(reader)) is not None:
            if request.method == "POST":
                head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                writer.write(head + b"transfer-encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n")
                await writer.drain()
                await asyncio.sleep(0.02)
                writer.write(b"zz\r\nnot a chunk\r\n")  # an invalid chunk size
                await writer.drain()
            else:
                writer.write(response_bytes(200, b"ok", "text/plain"))
                await writer.drain()

    async def go(url: str) -> tuple[list[bytes], str | None, int | None]:
        async with RawTransport(max_connections_per_key=1) as transport:
            async with transport.stream("k", RequestSpec("POST", url, body=b"{}")) as outcome:
                got = [data async for _, data in outcome]
                kind = None if outcome.error is None else outcome.error.value
            after = await transport.send("k", RequestSpec("GET", url, timeout=2.0))
            return got, kind, after.status

    with serve(handler) as server:
        got, kind, status_after = asyncio.run(go(server.url + "/"))
    assert b"".join(got) == b"data: 1\n\n" and kind == "bad_response"
    assert status_after == 200 and len(connections) == 2  # never reused after the bad bytes


# ---- read_with: the consumer callback ------------------------------------------------------

Factory = type[RawTransport] | type[HttpxTransport]
ENGINES = pytest.mark.parametrize("factory", [RawTransport, HttpxTransport], ids=["raw", "httpx"])


def _read_with(
    factory: Factory, url: str, spec: RequestSpec, stop_after: int = 0
) -> tuple[StreamingOutcome, list[tuple[float, bytes]], int | None]:
    """``read_with`` on one stream (stop after ``stop_after`` pieces, 0: never), then a GET on
    the same key with one connection: its status (the slot was given back)."""
    got: list[tuple[float, bytes]] = []

    def consume(at: float, data: bytes) -> bool:
        got.append((at, data))
        return len(got) == stop_after

    async def go() -> tuple[StreamingOutcome, int | None]:
        async with factory(max_connections_per_key=1) as transport:
            async with transport.stream("k", spec) as outcome:
                await outcome.read_with(consume)
            after = await transport.send("k", RequestSpec("GET", url, timeout=2.0))
            return outcome, after.status

    outcome, status_after = asyncio.run(go())
    return outcome, got, status_after


@ENGINES
def test_read_with_gives_the_pieces_iteration_gives_and_records_the_end(factory: Factory) -> None:
    steps = [(0.0, b"data: 1\n\n"), (0.05, b"data: 2\n\n"), (0.05, b"data: 3\n\n")]
    with agent_server(scripted(steps)) as (server, _):
        spec = RequestSpec("POST", server.url + "/", body=b"{}")
        outcome, got, after = _read_with(factory, server.url + "/", spec)
    assert b"".join(data for _, data in got) == b"data: 1\n\ndata: 2\n\ndata: 3\n\n"
    stamps = [at for at, _ in got]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= 0.08  # stamped on arrival
    assert outcome.error is None and outcome.ended is not None and outcome.ended >= stamps[-1]
    assert after == 200


@ENGINES
def test_read_with_ends_at_the_whole_attempt_deadline(factory: Factory) -> None:
    steps = [(0.0, b"data: 1\n\n"), (5.0, b"never")]
    with agent_server(scripted(steps)) as (server, _):
        spec = RequestSpec("POST", server.url + "/", body=b"{}", timeout=0.4)
        began = time.perf_counter()
        outcome, got, after = _read_with(factory, server.url + "/", spec)
        waited = time.perf_counter() - began
    assert [data for _, data in got] == [b"data: 1\n\n"]
    assert outcome.error is ErrorKind.TIMEOUT and 0.35 <= waited < 2.0
    assert after == 200  # the cut connection was closed, its slot given back


def test_a_consumer_that_stops_early_leaves_the_connection_closed_not_reused() -> None:
    connections: list[int] = []
    steps = [(0.0, b"data: 1\n\n")] + [(0.05, b"data: more\n\n")] * 20

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while (request := await read_request(reader)) is not None:
            if request.method == "POST":
                await scripted(steps)(writer)
            else:
                writer.write(response_bytes(200, b"ok", "text/plain"))
                await writer.drain()

    with serve(handler) as server:
        spec = RequestSpec("POST", server.url + "/", body=b"{}")
        outcome, got, after = _read_with(RawTransport, server.url + "/", spec, stop_after=1)
    assert [data for _, data in got] == [b"data: 1\n\n"] and outcome.ended is None
    assert after == 200 and len(connections) == 2


def test_what_the_consumer_raises_is_raised_by_read_with_and_the_slot_is_given_back() -> None:
    steps = [(0.0, b"data: 1\n\n"), (0.05, b"data: 2\n\n")]

    def consume(at: float, data: bytes) -> bool:
        raise LookupError("the consumer's own bug")

    async def go(url: str) -> int | None:
        async with RawTransport(max_connections_per_key=1) as transport:
            with pytest.raises(LookupError, match="own bug"):
                async with transport.stream("k", RequestSpec("POST", url, body=b"{}")) as out:
                    await out.read_with(consume)
            return (await transport.send("k", RequestSpec("GET", url, timeout=2.0))).status

    with agent_server(scripted(steps)) as (server, _):
        assert asyncio.run(go(server.url + "/")) == 200


def test_a_reader_cancelled_mid_stream_gives_the_slot_back() -> None:
    steps = [(0.0, b"data: 1\n\n")] + [(0.05, b"data: more\n\n")] * 40
    got: list[bytes] = []

    async def go(url: str) -> int | None:
        async with RawTransport(max_connections_per_key=1) as transport:

            async def read() -> None:
                async with transport.stream("k", RequestSpec("POST", url, body=b"{}")) as out:
                    await out.read_with(lambda at, data: bool(got.append(data)))

            task = asyncio.ensure_future(read())
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            seen = len(got)
            await asyncio.sleep(0.15)
            assert len(got) == seen  # nothing reaches a consumer whose reader has gone
            return (await transport.send("k", RequestSpec("GET", url, timeout=2.0))).status

    with agent_server(scripted(steps)) as (server, _):
        assert asyncio.run(go(server.url + "/")) == 200
    assert got and got[0] == b"data: 1\n\n"


def test_a_head_that_never_comes_ends_the_stream_at_its_deadline() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5.0)  # reads the request, never answers

    async def go(url: str) -> tuple[StreamingOutcome, float]:
        async with RawTransport() as transport:
            began = time.perf_counter()
            spec = RequestSpec("POST", url, body=b"{}", timeout=0.3)
            async with transport.stream("k", spec) as outcome:
                await outcome.read_with(lambda at, data: False)
            return outcome, time.perf_counter() - began

    with serve(handler) as server:
        outcome, waited = asyncio.run(go(server.url + "/"))
    assert outcome.status is None and outcome.error is ErrorKind.TIMEOUT
    assert 0.25 <= waited < 1.5


class _Socket:
    """Stands in for a connection's asyncio transport: what the connection writes is dropped."""

    def write(self, data: bytes) -> None:
        pass

    def abort(self) -> None:
        pass

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def test_a_burst_of_reads_is_stamped_before_any_of_them_is_consumed() -> None:
    """Ten streams' reads arrive in one loop pass: each is stamped as its data_received runs,
    in arrival order, and no consumer runs until the pass's reads are all stamped."""

    async def go() -> tuple[list[float], list[tuple[int, float, float]]]:
        loop = asyncio.get_running_loop()
        feeder = _Feeder(loop)
        consumed: list[tuple[int, float, float]] = []  # (stream, stamp, consumed at)
        conns, sinks = [], []
        for i in range(10):
            conn = _Connection(("http", "127.0.0.1", 80))
            conn.connection_made(cast(Any, _Socket()))
            sink = _Sink(feeder)
            head = conn.start_stream(b"POST / HTTP/1.1\r\n\r\n", 1 << 20, sink)
            conn.data_received(_HEAD)
            await head
            sink.attach(
                lambda at, data, i=i: bool(consumed.append((i, at, time.perf_counter()))), loop
            )
            conns.append(conn)
            sinks.append(sink)
        stamped = []
        for conn in conns:  # one pass of the loop: every socket readable at once
            conn.data_received(b"9\r\ndata: 1\n\n\r\n")
            stamped.append(time.perf_counter())
            assert not consumed
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return stamped, consumed

    stamped, consumed = asyncio.run(go())
    assert [i for i, _, _ in consumed] == list(range(10))
    stamps = [at for _, at, _ in consumed]
    assert stamps == sorted(stamps)
    for (_, at, ran), after in zip(consumed, stamped, strict=True):
        assert at <= after  # stamped inside its own data_received, not when consumed
        assert ran >= stamped[-1]  # consumed only after the whole burst was stamped


def test_the_feeder_wakes_a_few_finished_readers_per_pass_in_order_and_all_of_them() -> None:
    """Twenty streams end in one pass: their readers are woken in the order they ended, at most
    _RESUMES_PER_PASS per pass (the loop polls its sockets in between), none lost, and one whose
    reader was cancelled meanwhile is skipped."""
    from latcli.transport.raw.stream import _RESUMES_PER_PASS

    async def go() -> tuple[list[list[int]], list[object]]:
        loop = asyncio.get_running_loop()
        feeder = _Feeder(loop)
        dones = [loop.create_future() for _ in range(20)]
        for i, done in enumerate(dones):
            feeder.resume(done, i if i != 7 else LookupError("consumer bug"))
        dones[3].cancel()
        passes: list[list[int]] = []
        while not all(d.done() for d in dones):
            await asyncio.sleep(0)  # one pass of the loop each
            passes.append([i for i, d in enumerate(dones) if d.done() and not d.cancelled()])
        results = [
            d.exception() if d.exception() else d.result() for d in dones if not d.cancelled()
        ]
        return passes, results

    passes, results = asyncio.run(go())
    order = [i for i in range(20) if i != 3]
    woken = [len(b) - len(a) for a, b in zip([[], *passes], passes, strict=False)]
    assert max(woken) <= _RESUMES_PER_PASS and len([w for w in woken if w]) >= 3
    assert all(seen == order[: len(seen)] for seen in passes)  # first ended, first woken
    assert passes[-1] == order
    assert isinstance(results[6], LookupError)  # index 7 (3 was cancelled and skipped)
    assert [r for r in results if not isinstance(r, Exception)] == [
        i for i in range(20) if i not in (3, 7)
    ]


@pytest.mark.parametrize("factory", [RawTransport, HttpxTransport], ids=["raw", "httpx"])
def test_phases_count_from_the_send_not_from_the_wait_for_a_connection(
    factory: type[RawTransport] | type[HttpxTransport],
) -> None:
    """DESIGN §2: each phase from the moment the request was sent. With one connection per
    key, the second of two streams waits a whole stream for it: that wait is the client's
    queue, not the agent's time to first token."""
    events = [
        (0.0, sse(status("TASK_STATE_WORKING"))),
        (0.08, sse(chunk("Hi", False))),
        (0.04, sse(status("TASK_STATE_COMPLETED"))),
    ]

    async def two() -> tuple[list[Reply], float]:
        async with factory(max_connections_per_key=1) as transport:
            client = ProtocolClient(transport)
            agent = a2a_agent(server.url)
            began = time.perf_counter()
            replies = await asyncio.gather(*(client.stream_message(agent, "hi") for _ in "ab"))
            return list(replies), time.perf_counter() - began

    with agent_server(scripted(events)) as (server, _):
        replies, elapsed = asyncio.run(two())
    assert all(r.ok and r.stream is not None for r in replies), [r.message for r in replies]
    assert elapsed >= 0.24  # one stream after the other: the second did wait
    firsts = [r.stream.first_artifact_ms for r in replies if r.stream is not None]
    assert all(f is not None and 80 <= f < 140 for f in firsts), firsts
