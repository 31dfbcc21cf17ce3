"""The raw engine's streaming send: what the shared contract in test_a2a_wire.py cannot see.

A stream read to its end leaves a reusable connection; one left early gives its slot back;
and an A2A stream read through the raw engine gives the httpx engine's text, state and phases.
"""

from __future__ import annotations

import asyncio
import json

from fault_servers import read_request, response_bytes, serve
from test_a2a_wire import a2a_agent, agent_server, chunk, scripted, sse, status

from latcli.transport.base import RequestSpec
from latcli.transport.httpx_engine import HttpxTransport
from latcli.transport.protocols import ProtocolClient, Reply
from latcli.transport.raw.transport import RawTransport


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
