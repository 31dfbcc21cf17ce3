"""CPU per SSE event of latcli's A2A stream reading, side by side with two peers' loops.

No network: the same bytes (A2A 1.0 events as a2a-sdk 1.3.0 writes them, one event per read,
or 16 KiB reads) go through, in the same process, one after another, best of --repeat:

  latcli   SSEDecoder (WHATWG) + protocols.loads (depth-bounded) + split_event + StreamReader
  sdk      a2a-sdk's parse_sse_stream loop over httpx's LineDecoder + json.loads
  vllm     the bare loop of vLLM's serving benchmark / genai-perf: split on blank lines,
           strip "data: ", json.loads (no CR handling, no multi-line data)

Usage: uv run python scripts/bench_sse.py [--events 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from httpx._decoders import LineDecoder

from latcli.transport.a2a.sse import SSEDecoder
from latcli.transport.a2a.stream import StreamReader, split_event
from latcli.transport.replies import loads


def make_events(n: int) -> list[bytes]:
    events = []
    for i in range(n):
        update = {
            "artifactUpdate": {
                "taskId": "2f358820-4167-4cf5-b28c-b2619801c567",
                "contextId": "46f40d8a-2223-497a-b870-40332e1a8e8a",
                "artifact": {
                    "artifactId": "answer",
                    "name": "answer",
                    "parts": [{"text": f" tok{i}"}],
                },
                "append": i > 0,
            }
        }
        doc = {"result": update, "id": 1, "jsonrpc": "2.0"}
        events.append(b"data: " + json.dumps(doc).encode() + b"\r\n\r\n")
    return events


def latcli(reads: list[bytes]) -> int:
    decoder, reader, count = SSEDecoder(), StreamReader(0.0), 0
    for at, data in enumerate(reads):
        for event in decoder.feed(data):
            reader.event(float(at), *split_event(loads(event.data), jsonrpc=True))
            count += 1
    return count


def sdk(reads: list[bytes]) -> int:
    lines, count, chunks = LineDecoder(), 0, []
    for data in reads:
        for line in lines.decode(data.decode("utf-8")):
            raw = line.rstrip("\r\n")
            if not raw:
                if chunks:
                    json.loads("\n".join(chunks))
                    count += 1
                chunks = []
                continue
            if raw.startswith(":"):
                continue
            key, _, val = raw.partition(":")
            if key == "data":
                chunks.append(val[1:] if val.startswith(" ") else val)
    return count


def vllm(reads: list[bytes]) -> int:
    buffer, count = b"", 0
    for data in reads:
        buffer += data
        while b"\r\n\r\n" in buffer:
            event, buffer = buffer.split(b"\r\n\r\n", 1)
            json.loads(event.removeprefix(b"data: "))
            count += 1
    return count


def best_us(run: Callable[[list[bytes]], int], reads: list[bytes], n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        began = time.process_time()
        assert run(reads) == n
        best = min(best, time.process_time() - began)
    return best / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    events = make_events(args.events)
    blob = b"".join(events)
    layouts = {
        "one event per read": events,
        "16 KiB reads": [blob[i : i + 16384] for i in range(0, len(blob), 16384)],
    }
    for name, reads in layouts.items():
        got = {f.__name__: best_us(f, reads, args.events, args.repeat) for f in (latcli, sdk, vllm)}
        print(
            f"{name:20} latcli {got['latcli']:5.2f} µs/event · sdk {got['sdk']:5.2f} · "
            f"vllm {got['vllm']:5.2f} · latcli/sdk {got['latcli'] / got['sdk']:.2f}x · "
            f"latcli/vllm {got['latcli'] / got['vllm']:.2f}x"
        )


if __name__ == "__main__":
    main()
