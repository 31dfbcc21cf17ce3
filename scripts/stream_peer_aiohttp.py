"""Peer for scripts/bench_stream.py: the bare aiohttp SSE client loop of vLLM's serving
benchmark and genai-perf, aimed at an A2A ``SendStreamingMessage`` (JSON-RPC, SSE answer).

C loops for D seconds, each: POST, then ``async for chunk in response.content`` splitting on
blank lines, strip ``data: ``, ``json.loads``; the first event carrying an ``artifactUpdate``
is the time to first artifact (from just before the POST), the last event the total. Prints
one JSON line: samples' p50/p99 (exact, nearest rank), streams, events and the process's CPU.

Run with aiohttp beside the project, never in it: ``uv run --with aiohttp python THIS URL C D``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid

import aiohttp  # type: ignore[import-not-found]


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[max(0, min(len(values) - 1, -(-len(values) * p // 100) - 1))]


async def main(url: str, concurrency: int, seconds: float) -> dict[str, object]:
    first: list[float] = []
    total: list[float] = []
    events = errors = 0
    stop_at = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"A2A-Version": "1.0", "Accept": "text/event-stream"}

    async def loop(session: aiohttp.ClientSession) -> None:
        nonlocal events, errors
        while time.monotonic() < stop_at:
            mid = str(uuid.uuid4())
            body = {"jsonrpc": "2.0", "id": mid, "method": "SendStreamingMessage",
                    "params": {"message": {"role": "ROLE_USER", "messageId": mid,
                                           "parts": [{"text": "ping"}]}}}  # fmt: skip
            start = time.perf_counter()
            got_first = None
            buffer = b""
            async with session.post(url, json=body, headers=headers) as response:
                async for chunk in response.content:
                    buffer += chunk
                    while b"\n\n" in buffer:
                        raw, buffer = buffer.split(b"\n\n", 1)
                        data = raw.decode().removeprefix("data: ")
                        doc = json.loads(data)
                        events += 1
                        result = doc.get("result") or {}
                        if got_first is None and "artifactUpdate" in result:
                            got_first = time.perf_counter()
                        state = (result.get("statusUpdate") or {}).get("status", {}).get("state")
                        if state == "TASK_STATE_FAILED":
                            errors += 1
            end = time.perf_counter()
            if got_first is not None:
                first.append((got_first - start) * 1000.0)
                total.append((end - start) * 1000.0)

    cpu0 = time.process_time()
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(loop(session) for _ in range(concurrency)))
    cpu = time.process_time() - cpu0
    return {
        "tool": "aiohttp",
        "streams": len(first),
        "errors": errors,
        "events": events,
        "first_artifact_p50": _pct(first, 50),
        "first_artifact_p99": _pct(first, 99),
        "total_p50": _pct(total, 50),
        "cpu_s": cpu,
        "cpu_us_per_event": cpu / events * 1e6 if events else None,
    }


if __name__ == "__main__":
    target, c, d = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(asyncio.run(main(target, c, d))))
