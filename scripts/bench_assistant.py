"""How faithfully the demo assistant keeps its own streaming schedule under concurrent streams,
beside an a2a-sdk 1.3.0 agent (TaskUpdater) keeping the same schedule, in the same run.

Both agents: first artifact 200 ms after the request, then 4 more chunks 20 ms apart (issue 11's
reference schedule). A bare aiohttp SSE loop (the client vLLM's serving benchmark uses) opens C
streams at once, R rounds, alternating agents; per stream it records the first artifact's lag
behind 200 ms and each later chunk's lag behind its due time (200 + 20 k ms). Prints p50/p99 of
both per agent and the ratio assistant / sdk.

Usage: uv run python scripts/bench_assistant.py [--concurrency 100 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
import uuid

import aiohttp

TTFT, GAP, CHUNKS = 0.200, 0.020, 5
FAULT = {"ttft": "200ms", "tokens_per_s": 50, "chunk_tokens": 1, "answer_tokens": CHUNKS}


def _sdk_app(port: int) -> object:
    """An a2a-sdk agent with the same schedule (deadline-timed, as the assistant is)."""
    from a2a.helpers import new_task_from_user_message
    from a2a.server.agent_execution import AgentExecutor, RequestContext
    from a2a.server.events import EventQueue
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
    from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
    from a2a.types import a2a_pb2 as pb
    from starlette.applications import Starlette

    class Schedule(AgentExecutor):
        async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
            start = time.monotonic()
            assert context.message is not None
            await event_queue.enqueue_event(new_task_from_user_message(context.message))
            updater = TaskUpdater(event_queue, str(context.task_id), str(context.context_id))
            await updater.start_work()
            for k in range(CHUNKS):
                await asyncio.sleep(max(0.0, start + TTFT + k * GAP - time.monotonic()))
                part = [pb.Part(text=f"t{k} ")]
                last = k == CHUNKS - 1
                await updater.add_artifact(part, "a", append=k > 0, last_chunk=last)
            await updater.complete()

        async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
            return None

    url = f"http://127.0.0.1:{port}"
    card = pb.AgentCard(
        name="sdk",
        description="schedule",
        version="1",
        supported_interfaces=[
            pb.AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=pb.AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
    )
    handler = DefaultRequestHandler(Schedule(), InMemoryTaskStore(), card)
    routes = [*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/")]
    return Starlette(routes=routes)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(kind: str, port: int) -> subprocess.Popen[bytes]:
    if kind == "assistant":
        cmd = [sys.executable, "-m", "latcli.demo.assistant", "--id", "a", "--port", str(port)]
        cmd += ["--fault", json.dumps(FAULT)]
    else:
        cmd = [sys.executable, __file__, "--serve-sdk", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{kind} agent did not start")


async def _stream(session: aiohttp.ClientSession, url: str) -> tuple[float, list[float]]:
    """One streamed message: (first artifact lag, later chunks' lags), seconds."""
    msg = {"role": "ROLE_USER", "messageId": str(uuid.uuid4()), "parts": [{"text": "go"}]}
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": {"message": msg}}
    times: list[float] = []
    start = time.monotonic()
    async with session.post(url, json=body, headers={"A2A-Version": "1.0"}) as response:
        async for line in response.content:
            if line.startswith(b"data:") and b"artifactUpdate" in line:
                times.append(time.monotonic() - start)
    assert len(times) == CHUNKS, times
    return times[0] - TTFT, [t - (TTFT + k * GAP) for k, t in enumerate(times) if k]


async def _rounds(url: str, concurrency: int, rounds: int) -> list[tuple[float, list[float]]]:
    """``rounds`` bursts of ``concurrency`` streams on warm connections (a first burst opens
    them), so the lags are the agent's, not TCP set-up's."""
    connector = aiohttp.TCPConnector(limit=0)
    out: list[tuple[float, list[float]]] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(_stream(session, url) for _ in range(concurrency)))
        for _ in range(rounds):
            out += await asyncio.gather(*(_stream(session, url) for _ in range(concurrency)))
    return out


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1] * 1000 if len(values) > 1 else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--serve-sdk", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sdk:
        import logging

        import uvicorn

        logging.getLogger("a2a").setLevel(logging.ERROR)
        uvicorn.run(_sdk_app(args.serve_sdk), port=args.serve_sdk, log_level="warning")  # type: ignore[arg-type]
        return
    ports = {kind: _free_port() for kind in ("assistant", "sdk")}
    procs = [_start(kind, port) for kind, port in ports.items()]
    try:
        for c in args.concurrency:
            first: dict[str, list[float]] = {k: [] for k in ports}
            later: dict[str, list[float]] = {k: [] for k in ports}
            for _ in range(args.rounds):
                for kind, port in ports.items():  # interleaved: drift hits both alike
                    for lag, lags in asyncio.run(_rounds(f"http://127.0.0.1:{port}", c, 1)):
                        first[kind].append(lag)
                        later[kind].extend(lags)
            print(f"concurrency {c}, {args.rounds} rounds (lag behind the schedule, ms):")
            for kind in ports:
                f, g = first[kind], later[kind]
                print(
                    f"  {kind:9} first artifact p50 {_pct(f, 50):6.2f} p99 {_pct(f, 99):6.2f}"
                    f" · later chunks p50 {_pct(g, 50):6.2f} p99 {_pct(g, 99):6.2f}"
                )
            ratio = _pct(first["assistant"], 99) / max(_pct(first["sdk"], 99), 1e-9)
            print(f"  first artifact p99 ratio assistant / sdk: {ratio:.2f}")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
