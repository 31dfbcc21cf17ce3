"""A lean A2A 1.0 streaming agent with a fixed schedule, for bench tests and the stream benchmark.

Raw asyncio HTTP/1.1 (keep-alive, chunked SSE): nothing between the schedule and the socket, so
one process holds hundreds of concurrent streams on time. Every JSON-RPC ``SendStreamingMessage``
is answered from the moment its request is read (t0):

* at t0: a ``statusUpdate`` TASK_STATE_WORKING (the first event);
* at t0 + ``--first-ms``: the first ``artifactUpdate`` chunk, then ``--chunks - 1`` more
  ``--gap-ms`` apart (``append`` after the first);
* right after the last chunk: TASK_STATE_COMPLETED, or TASK_STATE_FAILED with "model overloaded"
  when the message text contains ``fail`` (or every ``--fail-every``-th stream).

``GET /stats`` answers the agent's own account: how late it actually wrote each first artifact
(µs past its due time, p50/p99/max), so a client's overhead can be told from the agent's;
``GET /stats?reset`` answers it and starts a new count. ``GET /tasks`` lists, per task id, the
CLOCK_MONOTONIC instants (s) its request was read (t0) and its first artifact written: with a
client's own stamps (perf_counter is the same clock on Linux) a client's time over the schedule
splits into the agent's reading, the agent's writing and the client's receiving.

    python tests/support/stream_agent.py --port P [--first-ms 200] [--chunks 5] [--gap-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from processes import stop_process

SCRIPT = Path(__file__)
CARD_PATH = "/.well-known/agent-card.json"


def _card(base: str, streaming: bool = True) -> bytes:
    return json.dumps(
        {
            "name": "scheduled stream",
            "description": "first artifact at a fixed time, then chunks at a fixed gap",
            "version": "1.0.0",
            "supportedInterfaces": [
                {"url": base + "/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
            ],
            "capabilities": {"streaming": streaming},
            "defaultInputModes": ["text/plain"],
            "defaultOutputModes": ["text/plain"],
            "skills": [{"id": "echo", "name": "echo", "description": "tokens", "tags": []}],
        }
    ).encode()


def _event(rpc_id: object, result: dict[str, object]) -> bytes:
    data = json.dumps({"jsonrpc": "2.0", "id": rpc_id, "result": result}).encode()
    frame = b"data: " + data + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(frame), frame)  # one chunk of the chunked body


def _status(task: str, state: str, text: str | None = None) -> dict[str, object]:
    status: dict[str, object] = {"state": state}
    if text is not None:
        status["message"] = {"role": "ROLE_AGENT", "messageId": task + "-s",
                             "parts": [{"text": text}]}  # fmt: skip
    return {"statusUpdate": {"taskId": task, "contextId": task, "status": status}}


def _chunk(task: str, i: int) -> dict[str, object]:
    artifact = {"artifactId": "answer", "name": "answer",
                "parts": [{"text": f"tok{i}" if i == 0 else f" tok{i}"}]}  # fmt: skip
    return {"artifactUpdate": {"taskId": task, "contextId": task, "artifact": artifact,
                               "append": i > 0}}  # fmt: skip


class Agent:
    def __init__(self, args: argparse.Namespace) -> None:
        self.first_s, self.gap_s, self.chunks = args.first_ms / 1e3, args.gap_ms / 1e3, args.chunks
        self.fail_every = args.fail_every
        self.streaming = not args.no_streaming
        self.base = ""
        self.streams = 0
        self.late_us: list[int] = []  # first artifact written minus its due time
        self.tasks: dict[str, tuple[float, float]] = {}  # task id -> (t0, first artifact written)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                t0 = time.monotonic()
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                if method == "GET" and target == CARD_PATH:
                    self._plain(writer, _card(self.base, self.streaming))
                elif method == "GET" and target in ("/stats", "/stats?reset"):
                    self._plain(writer, self._stats())
                    if target.endswith("?reset"):  # between benchmark runs
                        self.streams, self.late_us, self.tasks = 0, [], {}
                elif method == "GET" and target == "/tasks":
                    self._plain(writer, json.dumps(self.tasks).encode())
                elif method == "POST":
                    await self._stream(writer, json.loads(body), t0)
                else:
                    writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    def _plain(self, writer: asyncio.StreamWriter, body: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip

    def _stats(self) -> bytes:
        late = sorted(self.late_us)

        def at(p: float) -> int | None:
            return late[min(len(late) - 1, int(p / 100 * len(late)))] if late else None

        return json.dumps({"streams": self.streams, "first_artifact_late_us":
                           {"p50": at(50), "p99": at(99), "max": late[-1] if late else None}}
                          ).encode()  # fmt: skip

    async def _stream(
        self, writer: asyncio.StreamWriter, doc: dict[str, object], t0: float
    ) -> None:
        self.streams += 1
        rpc_id = doc.get("id")
        task = f"t{self.streams}"
        text = json.dumps(doc.get("params"))
        failing = "fail" in text or (self.fail_every and self.streams % self.fail_every == 0)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")  # fmt: skip
        writer.write(_event(rpc_id, _status(task, "TASK_STATE_WORKING")))
        await writer.drain()
        for i in range(self.chunks):
            due = t0 + self.first_s + i * self.gap_s
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(_event(rpc_id, _chunk(task, i)))
            if i == 0:
                written = time.monotonic()
                self.late_us.append(max(0, int((written - due) * 1e6)))
                self.tasks[task] = (t0, written)
        if failing:
            end = _status(task, "TASK_STATE_FAILED", "model overloaded")
        else:
            end = _status(task, "TASK_STATE_COMPLETED")
        writer.write(_event(rpc_id, end) + b"0\r\n\r\n")


async def _serve(args: argparse.Namespace) -> None:
    agent = Agent(args)
    server = await asyncio.start_server(agent.handle, args.host, args.port, backlog=1024)
    agent.base = f"http://{args.host}:{args.port}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--first-ms", type=float, default=200.0)
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--gap-ms", type=float, default=20.0)
    parser.add_argument("--fail-every", type=int, default=0, help="fail every Nth stream")
    parser.add_argument("--no-streaming", action="store_true", help="card: streaming false")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))
    return 0


# ---- the test side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningStreamAgent:
    url: str  # http://127.0.0.1:PORT
    pid: int

    def stats(self) -> dict[str, object]:
        with urllib.request.urlopen(self.url + "/stats", timeout=5) as answer:  # loopback only
            doc: dict[str, object] = json.loads(answer.read())
        return doc


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def run_stream_agent(*extra: str, startup_s: float = 20.0) -> Iterator[RunningStreamAgent]:
    """Start the agent on a free loopback port; stop it (by its PID) on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--port", str(port), *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            deadline = time.monotonic() + startup_s
            while True:
                if proc.poll() is not None:
                    err.seek(0)
                    raise RuntimeError(
                        f"stream agent exited: {err.read().decode(errors='replace')}"
                    )
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(url + CARD_PATH, timeout=1.0),
                ):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"stream agent not ready after {startup_s}s")
                time.sleep(0.05)
            yield RunningStreamAgent(url, proc.pid)
        finally:
            stop_process(proc)


if __name__ == "__main__":
    sys.exit(main())
