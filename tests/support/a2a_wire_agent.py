"""Scripted A2A agents on loopback: a card, then SSE or JSON bytes written on a schedule."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from fault_servers import Request, RunningServer, _keepalive, read_request, response_bytes, serve

from latcli.config.model import Agent

CARD_PATH = "/.well-known/agent-card.json"

Step = tuple[float, bytes]  # (sleep before, bytes to write as one chunk)


def card_doc(url: str, streaming: bool = True) -> dict[str, Any]:
    return {
        "name": "scripted",
        "supportedInterfaces": [
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
        "capabilities": {"streaming": streaming},
    }


def sse(result: Any, rpc_id: Any = "1") -> bytes:
    """One SSE event: a JSON-RPC response carrying ``result``."""
    return (
        b"data: "
        + json.dumps({"jsonrpc": "2.0", "id": rpc_id, "result": result}).encode()
        + b"\n\n"
    )


def status(state: str, text: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"state": state}
    if text:
        body["message"] = {"parts": [{"text": text}]}
    return {"statusUpdate": {"taskId": "t", "status": body}}


def chunk(text: str, append: bool) -> dict[str, Any]:
    return {
        "artifactUpdate": {
            "artifact": {"artifactId": "a", "parts": [{"text": text}]},
            "append": append,
        }
    }


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


Responder = Callable[[asyncio.StreamWriter], Awaitable[None]]


def scripted(
    steps: Sequence[Step], *, finish: bool = True, ctype: str = "text/event-stream"
) -> Responder:
    """A chunked response written step by step; ``finish=False`` hangs up mid-body."""

    async def respond(writer: asyncio.StreamWriter) -> None:
        head = f"HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ntransfer-encoding: chunked\r\n\r\n"
        writer.write(head.encode())
        await writer.drain()
        for delay, data in steps:
            await asyncio.sleep(delay)
            writer.write(chunked(data))
            await writer.drain()
        if finish:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        else:
            writer.transport.abort()

    return respond


def whole(body: bytes, ctype: str = "application/json") -> Responder:
    async def respond(writer: asyncio.StreamWriter) -> None:
        writer.write(response_bytes(200, body, ctype))
        await writer.drain()

    return respond


@contextmanager
def agent_server(
    answer: Responder, card: Callable[[str], bytes] | None = None
) -> Iterator[tuple[RunningServer, list[dict[str, str]]]]:
    """A server answering the card GET (pointing at itself unless ``card`` says otherwise) and
    every POST with ``answer``; the headers of each request are logged."""
    seen: list[dict[str, str]] = []
    box: dict[str, str] = {}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            seen.append(dict(request.headers))
            if request.method == "GET":
                doc = card(box["url"]) if card else json.dumps(card_doc(box["url"] + "/")).encode()
                writer.write(response_bytes(200, doc, "application/json"))
                await writer.drain()
            else:
                await answer(writer)

    with serve(handler) as server:
        box["url"] = server.url
        yield server, seen


def pointing_at(url: str) -> Callable[[str], bytes]:
    """A card whose one interface is at ``url``, wherever it is served from."""
    return lambda _: json.dumps(card_doc(url + "/")).encode()


def a2a_agent(url: str, **extra: Any) -> Agent:
    return Agent(id="a", type="t", url=url, protocol="a2a", timeout=5.0, **extra)


def card_v03_response(url: str, name: str) -> bytes:
    """The HTTP response carrying a spec 0.3 card at ``url`` that says it streams."""
    card = {
        "name": name,
        "url": url + "/",
        "version": "1",
        "protocolVersion": "0.3.0",
        "capabilities": {"streaming": True},
    }
    return response_bytes(200, json.dumps(card).encode(), "application/json")


@contextmanager
def v03_sse_agent(name: str, events: Sequence[dict[str, Any]]) -> Iterator[RunningServer]:
    """An A2A 0.3 agent with a streaming card that answers every message with ``events``,
    written whole as one ``text/event-stream`` body (read by the client as SSE events)."""
    box: list[RunningServer] = []

    def respond(request: Request) -> bytes:
        if request.method == "GET":
            return card_v03_response(box[0].url, name)
        rpc_id = json.loads(request.body).get("id")
        body = b"".join(sse(e, rpc_id) for e in events)
        return response_bytes(200, body, "text/event-stream")

    with serve(lambda r, w: _keepalive(r, w, respond)) as server:
        box.append(server)
        yield server
