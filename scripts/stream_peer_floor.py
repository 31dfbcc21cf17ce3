"""Baseline for scripts/bench_stream.py: the least a Python client can do per SSE event.

C keep-alive connections, each an asyncio Protocol on uvloop: write the same A2A
``SendStreamingMessage`` request (a new id each time), frame the chunked answer with httptools
(llhttp), split the events on blank lines and decode each with msgspec; nothing else (no
pooling, deadlines, phases, histograms, SSE rules or A2A states). The first event carrying an
``artifactUpdate`` is the time to first artifact, from just before the write. Its CPU per event
is the floor latcli's own is read against: the loop's wake-ups and system calls, which every
client pays, and which drift with the machine's load more than the ratio to them does.

Prints one JSON line as the other peers do. Usage: uv run python THIS URL C SECONDS
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

import httptools
import msgspec
import uvloop

_decode = msgspec.json.Decoder().decode


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[max(0, min(len(values) - 1, -(-len(values) * int(p) // 100) - 1))]


class _Stream(asyncio.Protocol):
    """One connection sending one streamed message after another until ``stop_at``."""

    def __init__(self, head: bytes, stats: dict[str, list[float]], stop_at: float) -> None:
        self.head, self.stats, self.stop_at = head, stats, stop_at
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.start = self.first = 0.0
        self.complete = False
        self.parser = httptools.HttpResponseParser(self)
        self.seq = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()

    def send(self) -> None:
        self.seq += 1
        rpc_id = f"{id(self):x}-{self.seq:08d}".encode()
        body = (b'{"jsonrpc":"2.0","id":"' + rpc_id + b'","method":"SendStreamingMessage",'
                b'"params":{"message":{"role":"ROLE_USER","messageId":"' + rpc_id +
                b'","parts":[{"text":"ping"}]}}}')  # fmt: skip
        self.parser = httptools.HttpResponseParser(self)
        self.buffer, self.first, self.complete = b"", 0.0, False
        self.start = time.perf_counter()
        assert self.transport is not None
        self.transport.write(self.head + b"content-length: %d\r\n\r\n" % len(body) + body)

    def on_body(self, body: bytes) -> None:
        buffer = self.buffer + body
        while b"\n\n" in buffer:
            raw, buffer = buffer.split(b"\n\n", 1)
            doc = _decode(raw[6:] if raw.startswith(b"data: ") else raw[5:])
            self.stats["events"][0] += 1
            if not self.first and "artifactUpdate" in doc.get("result", {}):
                self.first = time.perf_counter()
        self.buffer = buffer

    def on_message_complete(self) -> None:
        self.complete = True

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)
        if not self.complete:
            return
        end = time.perf_counter()
        if self.first:
            self.stats["first"].append((self.first - self.start) * 1000.0)
            self.stats["total"].append((end - self.start) * 1000.0)
        if time.monotonic() < self.stop_at:
            self.send()
        elif self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def main(url: str, concurrency: int, seconds: float) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (f"POST {parts.path or '/'} HTTP/1.1\r\nhost: {host}:{port}\r\n"
            "content-type: application/json\r\naccept: text/event-stream\r\n"
            "a2a-version: 1.0\r\n").encode()  # fmt: skip
    stats: dict[str, list[float]] = {"first": [], "total": [], "events": [0]}
    loop = asyncio.get_running_loop()
    cpu0 = time.process_time()
    stop_at = time.monotonic() + seconds
    made = await asyncio.gather(
        *(
            loop.create_connection(lambda: _Stream(head, stats, stop_at), host, port)
            for _ in range(concurrency)
        )
    )
    await asyncio.gather(*(protocol.done for _, protocol in made))
    cpu = time.process_time() - cpu0
    events = int(stats["events"][0])
    return {
        "tool": "floor",
        "streams": len(stats["first"]),
        "errors": 0,
        "events": events,
        "first_artifact_p50": _pct(stats["first"], 50),
        "first_artifact_p99": _pct(stats["first"], 99),
        "total_p50": _pct(stats["total"], 50),
        "cpu_s": cpu,
        "cpu_us_per_event": cpu / events * 1e6 if events else None,
    }


if __name__ == "__main__":
    target, c, d = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(uvloop.run(main(target, c, d))))
