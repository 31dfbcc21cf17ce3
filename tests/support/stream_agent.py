"""A lean A2A 1.0 streaming agent with a fixed schedule, for bench tests and the stream benchmark.

Raw asyncio HTTP/1.1 (keep-alive, chunked SSE) on uvloop, a protocol and one timer per write:
nothing between the schedule and the socket, so one process holds hundreds of concurrent streams
on time and reads a burst of 100 requests in a few ms (``--loop asyncio`` for the stdlib loop).
Every JSON-RPC ``SendStreamingMessage`` is answered from the moment its request is read (t0):

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
import heapq
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
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


# Events are filled into byte templates, not json.dumps'd: ~1 µs instead of ~5 an event, so a
# burst of 100 streams' events keeps the agent's loop free to read the next requests.
_CHUNK = (b'{"artifactUpdate": {"taskId": "%s", "contextId": "%s", "artifact": {"artifactId": '
          b'"answer", "name": "answer", "parts": [{"text": "%s"}]}, "append": %s}}')  # fmt: skip
_STATUS = b'{"statusUpdate": {"taskId": "%s", "contextId": "%s", "status": {"state": "%s"}}}'


def _event(head: bytes, result: bytes) -> bytes:
    """One SSE event in one chunk of the chunked body; ``head`` opens the JSON-RPC response."""
    frame = b"data: " + head + result + b"}\n\n"
    return b"%x\r\n%s\r\n" % (len(frame), frame)


def _rpc_head(rpc_id: object) -> bytes:
    return b'{"jsonrpc": "2.0", "id": ' + json.dumps(rpc_id).encode() + b', "result": '


def _status(task: bytes, state: bytes, text: str | None = None) -> bytes:
    if text is None:
        return _STATUS % (task, task, state)
    status = {"state": state.decode(), "message": {"role": "ROLE_AGENT", "messageId":
              task.decode() + "-s", "parts": [{"text": text}]}}  # fmt: skip
    return json.dumps({"statusUpdate": {"taskId": task.decode(), "contextId": task.decode(),
                                        "status": status}}).encode()  # fmt: skip


def _chunk(task: bytes, i: int) -> bytes:
    return _CHUNK % (task, task, b"tok%d" % i if i == 0 else b" tok%d" % i,
                     b"true" if i > 0 else b"false")  # fmt: skip


class Clock:
    """Callbacks run at their due time to ~0.05 ms, never before it: an event loop's timers
    wake on whole milliseconds (epoll; libuv's clock), ~0.5 ms late on average, which would be
    charged to the client. One timer wakes the loop 1.5 ms early; it then polls (I/O still served
    between polls, and the CPU yielded to a client sharing the core: without it the client's
    stamps came ~4 ms late at p99 on 2 cores) until the earliest callback is due, and runs
    every callback that is."""

    EARLY_S = 0.0015

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Callable[..., None], tuple[object, ...]]] = []
        self._seq = 0
        self._armed: asyncio.TimerHandle | asyncio.Handle | None = None
        self._armed_for = 0.0

    def at(self, due: float, callback: Callable[..., None], *args: object) -> None:
        self._seq += 1
        heapq.heappush(self._due, (due, self._seq, callback, args))
        if self._armed is None or due < self._armed_for:
            self._arm()

    def _arm(self) -> None:
        if self._armed is not None:
            self._armed.cancel()
        loop = asyncio.get_running_loop()
        due = self._due[0][0]
        self._armed_for = due
        wait = due - self.EARLY_S - time.monotonic()
        if wait > 0:
            self._armed = loop.call_later(wait, self._run)
        else:
            self._armed = loop.call_soon(self._run)

    def _run(self) -> None:
        self._armed = None
        now = time.monotonic()
        if self._due and self._due[0][0] > now:
            os.sched_yield()  # polling: a client process on this core runs first
        while self._due and self._due[0][0] <= now:
            _, _, callback, args = heapq.heappop(self._due)
            callback(*args)
        if self._due:
            self._arm()


class Agent:
    """The fleet-wide account (streams, lateness, task instants) and the request handling."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.first_s, self.gap_s, self.chunks = args.first_ms / 1e3, args.gap_ms / 1e3, args.chunks
        self.fail_every = args.fail_every
        self.streaming = not args.no_streaming
        self.base = ""
        self.streams = 0
        self.late_us: list[int] = []  # first artifact written minus its due time
        self.tasks: dict[str, tuple[float, float]] = {}  # task id -> (t0, first artifact written)
        self.clock = Clock()

    def request(self, conn: Connection, method: str, target: str, body: bytes, t0: float) -> None:
        if method == "GET" and target == CARD_PATH:
            conn.plain(_card(self.base, self.streaming))
        elif method == "GET" and target in ("/stats", "/stats?reset"):
            conn.plain(self._stats())
            if target.endswith("?reset"):  # between benchmark runs
                self.streams, self.late_us, self.tasks = 0, [], {}
        elif method == "GET" and target == "/tasks":
            conn.plain(json.dumps(self.tasks).encode())
        elif method == "POST":
            self._stream(conn, body, t0)
        else:
            conn.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")

    def _stats(self) -> bytes:
        late = sorted(self.late_us)

        def at(p: float) -> int | None:
            return late[min(len(late) - 1, int(p / 100 * len(late)))] if late else None

        return json.dumps({"streams": self.streams, "first_artifact_late_us":
                           {"p50": at(50), "p99": at(99), "max": late[-1] if late else None}}
                          ).encode()  # fmt: skip

    def _stream(self, conn: Connection, body: bytes, t0: float) -> None:
        self.streams += 1
        doc = json.loads(body)
        head = _rpc_head(doc.get("id") if isinstance(doc, dict) else None)
        task = f"t{self.streams}"
        tid = task.encode()
        # the message asks for it (the rest of a JSON-RPC request holds no "fail")
        failing = bool(b"fail" in body or (self.fail_every and self.streams % self.fail_every == 0))
        conn.busy = True  # a keep-alive client sends its next request after this answer
        # The head and the first event in two writes, as a server framework sends them.
        conn.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                   b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")  # fmt: skip
        conn.write(_event(head, _status(tid, b"TASK_STATE_WORKING")))
        at = self.clock.at
        # One callback per write, due at t0 + its offset (time.monotonic): no coroutine per
        # stream, so a burst of streams costs the agent little.
        due0 = t0 + self.first_s

        def write(i: int) -> None:
            if conn.closed:
                return
            conn.write(_event(head, _chunk(tid, i)))
            if i == 0:
                written = time.monotonic()
                self.late_us.append(int((written - due0) * 1e6))
                self.tasks[task] = (t0, written)
            if i + 1 < self.chunks:
                at(due0 + (i + 1) * self.gap_s, write, i + 1)
                return
            end = (_status(tid, b"TASK_STATE_FAILED", "model overloaded") if failing
                   else _status(tid, b"TASK_STATE_COMPLETED"))  # fmt: skip
            conn.write(_event(head, end) + b"0\r\n\r\n")
            conn.busy = False
            conn.next_request()

        if self.chunks:
            at(due0, write, 0)
        else:
            conn.write(_event(head, _status(tid, b"TASK_STATE_COMPLETED")) + b"0\r\n\r\n")
            conn.busy = False


class Connection(asyncio.Protocol):
    """One keep-alive connection: requests are read from a buffer (head, then Content-Length
    bytes), one at a time. A request's schedule starts (t0) when the read that completed it
    arrived: every read is stamped first and handled once the loop's pass is over, so a burst
    of 100 requests (a closed-model client's first round) starts 100 schedules on arrival,
    not one handling (~25 µs) after another."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.buffer = b""
        self.busy = False
        self.closed = False
        self.arrived = 0.0  # time.monotonic() of the latest read
        self.queued = False  # handling of the buffer is scheduled (call_soon)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def plain(self, body: bytes) -> None:
        self.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                   b"content-length: %d\r\n\r\n%s" % (len(body), body))  # fmt: skip

    def data_received(self, data: bytes) -> None:
        self.arrived = time.monotonic()
        self.buffer += data
        if not self.queued:  # uvloop runs call_soon callbacks after the pass's reads
            self.queued = True
            asyncio.get_running_loop().call_soon(self._handle)

    def _handle(self) -> None:
        self.queued = False
        self.next_request()

    def next_request(self) -> None:
        while not self.busy and not self.closed:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            t0 = self.arrived
            lines = self.buffer[:end].decode("latin-1").split("\r\n")
            try:
                method, target = lines[0].split(" ")[:2]
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
            except ValueError:
                self._close()
                return
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            try:
                self.agent.request(self, method, target, body, t0)
            except ValueError:
                self._close()

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


async def _serve(args: argparse.Namespace) -> None:
    agent = Agent(args)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(agent), args.host, args.port, backlog=1024)
    agent.base = f"http://{args.host}:{args.port}"
    stop = asyncio.Event()
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
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop",
                        help="uvloop (the default) reads a burst of requests sooner")  # fmt: skip
    args = parser.parse_args(argv)
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(_serve(args))
    else:
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
