"""Real hostile agents on 127.0.0.1 (DESIGN §7): each speaks enough of a protocol to be probed
and sent to, and answers with what an adversary would send: terminal escapes and rich markup
in its text, JSON nested 100,000 deep, thousands of interim heads, an absurd Content-Length.

Built on :mod:`fault_servers` (a real socket, a loop in a thread); nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator

from fault_servers import Request, RunningServer, _keepalive, response_bytes, serve

# An OSC window title, clear-screen, an OSC 8 hyperlink, rich markup, a bidi override, a bare CR.
EVIL = (
    "\x1b]0;pwned\x07\x1b[2J\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07"
    " [link=http://evil.example/]here[/link] [bold red]alarm[/bold red] \u202eevil\r!"
)
CARD_PATH = "/.well-known/agent-card.json"
DEEP = 100_000  # nesting that ends json.loads in RecursionError


def deep_json(depth: int = DEEP) -> bytes:
    return b"[" * depth + b"]" * depth


def _card(base: str, name: str) -> dict[str, object]:
    """A spec 0.3 card whose text fields are all ``name``."""
    return {
        "name": name,
        "description": name,
        "url": base + "/",
        "version": "1",
        "protocolVersion": "0.3.0",
        "skills": [{"id": "s", "name": name}],
    }


def _text_answer(request: Request, base: Callable[[], str], rpc_error: bool) -> bytes:
    if request.path == CARD_PATH:
        body = json.dumps(_card(base(), EVIL)).encode()
        return response_bytes(200, body, "application/json")
    if request.path == "/message/send":
        return response_bytes(200, json.dumps({"reply": EVIL}).encode(), "application/json")
    if request.method == "POST":  # JSON-RPC at the card's url
        rpc_id = json.loads(request.body or b"{}").get("id")
        if rpc_error:
            doc: dict[str, object] = {"code": -32000, "message": EVIL}
            answer = {"jsonrpc": "2.0", "id": rpc_id, "error": doc}
        else:
            message = {"kind": "message", "role": "agent", "messageId": "m", "parts": []}
            message["parts"] = [{"kind": "text", "text": EVIL}]
            answer = {"jsonrpc": "2.0", "id": rpc_id, "result": message}
        return response_bytes(200, json.dumps(answer).encode(), "application/json")
    return response_bytes(200, b"ok")


def text_agent(rpc_error: bool = False) -> contextlib.AbstractContextManager[RunningServer]:
    """Healthy, and every text it returns (reply, card name, description, skills, JSON-RPC
    error message with ``rpc_error``) is :data:`EVIL`. Speaks ``http`` and A2A 0.3."""
    box: list[RunningServer] = []
    return _bound(box, lambda r: _text_answer(r, lambda: box[0].url, rpc_error))


@contextlib.contextmanager
def _bound(
    box: list[RunningServer], respond: Callable[[Request], bytes]
) -> Iterator[RunningServer]:
    """A server whose answers may name its own URL (``box[0]``, filled once it listens)."""
    with serve(lambda r, w: _keepalive(r, w, respond)) as server:
        box.append(server)
        yield server


def markup_error_agent() -> contextlib.AbstractContextManager[RunningServer]:
    """Answers every GET with a 200 whose body is not JSON but rich markup: probe's error
    message for an A2A card then quotes it."""
    reply = response_bytes(200, b"[link=http://evil.example/]x[/link]", "text/plain")
    return serve(lambda r, w: _keepalive(r, w, lambda _: reply))


def deep_json_agent() -> contextlib.AbstractContextManager[RunningServer]:
    """Every answer (card, health, reply) is a 200 whose JSON nests :data:`DEEP` levels."""
    reply = response_bytes(200, deep_json(), "application/json")
    return serve(lambda r, w: _keepalive(r, w, lambda _: reply))


async def _interim_flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" * 5000 + response_bytes(200, b"{}"))
    await writer.drain()
    await reader.read()


def interim_flood_agent() -> contextlib.AbstractContextManager[RunningServer]:
    """5,000 ``100 Continue`` heads in one write, then a 200 (issue 10: RecursionError)."""
    return serve(_interim_flood)


async def _huge_length(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: " + b"9" * 5000 + b"\r\n\r\n{}")
    await writer.drain()
    await reader.read()


def huge_length_agent() -> contextlib.AbstractContextManager[RunningServer]:
    """A Content-Length of 5,000 digits (issue 10: a ValueError out of the fast engine)."""
    return serve(_huge_length)
