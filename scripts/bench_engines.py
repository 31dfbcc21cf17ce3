"""Side by side: the transport engines against one tiny keep-alive server.

Two patterns, each engine in a fresh process (so CPU time is the engine's alone):
  rate   one key, CONCURRENCY closed-loop workers for SECONDS: req/s, p50, p99
  fanout KEYS keys (one port each), one request per key at once (watch/probe): wall, CPU

``--baseline DIR`` adds ``raw@base``: the raw engine of another checkout (e.g. /work/main),
imported from DIR, so a change to the engine is measured against its parent in the same run.
Starts scripts/many_ports_server.py itself. Prints one line per engine and the ratios to raw.
Usage: uv run python scripts/bench_engines.py [--seconds 3] [--concurrency 50] [--keys 1000]
           [--connections N] [--engines httpx,raw] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ENGINES = ("httpx", "raw")
BASE = "raw@base"
SERVER = Path(__file__).with_name("many_ports_server.py")


def _transport(engine: str, connections: int) -> object:
    if engine == "raw":
        from latcli.transport.raw.transport import RawTransport

        return RawTransport(max_connections_per_key=connections)
    from latcli.transport.httpx_engine import HttpxTransport

    return HttpxTransport(max_connections_per_key=connections)


def _quantile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


async def _rate(
    engine: str, port: int, seconds: float, concurrency: int, connections: int
) -> dict[str, float]:
    from latcli.transport.base import RequestSpec

    spec = RequestSpec("GET", f"http://127.0.0.1:{port}/health")
    transport = _transport(engine, connections)
    latencies: list[float] = []
    errors = 0

    async def worker(until: float) -> None:
        nonlocal errors
        while time.perf_counter() < until:
            started = time.perf_counter()
            outcome = await transport.send("agent", spec)  # type: ignore[attr-defined]
            latencies.append((time.perf_counter() - started) * 1000.0)
            errors += not outcome.ok

    await asyncio.gather(*(worker(time.perf_counter() + 0.3) for _ in range(concurrency)))  # warm
    latencies.clear()
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(wall + seconds) for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await transport.aclose()  # type: ignore[attr-defined]
    latencies.sort()
    return {
        "rps": len(latencies) / wall,
        "p50_ms": _quantile(latencies, 0.50),
        "p99_ms": _quantile(latencies, 0.99),
        "cpu_per_req_us": cpu / len(latencies) * 1e6,
        "errors": errors,
    }


async def _fanout(engine: str, ports: list[int]) -> dict[str, float]:
    from latcli.transport.base import RequestSpec

    transport = _transport(engine, 8)
    specs = [RequestSpec("GET", f"http://127.0.0.1:{port}/health") for port in ports]
    cpu, wall = time.process_time(), time.perf_counter()
    outcomes = await asyncio.gather(
        *(transport.send(f"agent-{i}", spec) for i, spec in enumerate(specs))  # type: ignore[attr-defined]
    )
    sent_wall, sent_cpu = time.perf_counter() - wall, time.process_time() - cpu
    await transport.aclose()  # type: ignore[attr-defined]
    total = [o.timings.total for o in outcomes]
    kinds = Counter(f"{o.error}: {o.message}" for o in outcomes if not o.ok)
    for kind, count in kinds.most_common(3):
        print(f"  ({engine} fanout: {count} x {kind})", file=sys.stderr)
    return {
        "wall_ms": sent_wall * 1000.0,
        "cpu_ms": sent_cpu * 1000.0,
        "close_ms": (time.perf_counter() - wall - sent_wall) * 1000.0,
        "median_attempt_ms": statistics.median(total),
        "errors": sum(not o.ok for o in outcomes),
    }


def _child(args: argparse.Namespace) -> None:
    ports = [int(p) for p in Path(args.portfile).read_text().split()]
    if args.child == "rate":
        connections = args.connections or args.concurrency
        rate = _rate(args.engine, ports[0], args.seconds, args.concurrency, connections)
        result = asyncio.run(rate)
    else:
        result = asyncio.run(_fanout(args.engine, ports[: args.keys]))
    import latcli

    print(f"  ({args.engine} from {Path(latcli.__file__).parent})", file=sys.stderr)
    print(json.dumps(result))


def _run_child(
    pattern: str, engine: str, portfile: Path, args: argparse.Namespace
) -> dict[str, float]:
    env = dict(os.environ)
    if engine == BASE:  # the same engine, imported from the other checkout
        engine, env["PYTHONPATH"] = "raw", args.baseline
    command = [sys.executable, __file__, "--child", pattern, "--engine", engine]
    command += ["--portfile", str(portfile), "--seconds", str(args.seconds)]
    command += ["--concurrency", str(args.concurrency), "--keys", str(args.keys)]
    command += ["--connections", str(args.connections)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, env=env)
    result: dict[str, float] = json.loads(done.stdout)
    return result


def _server(ports: int, portfile: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([sys.executable, str(SERVER), str(ports), str(portfile)])
    deadline = time.monotonic() + 30
    while not (portfile.exists() and portfile.read_text().endswith("\n")):
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise SystemExit("many_ports_server.py did not start")
        time.sleep(0.05)
    return server


def _report(title: str, results: dict[str, dict[str, float]]) -> None:
    print(title)
    for engine, result in results.items():
        fields = "  ".join(f"{name}={value:,.1f}" for name, value in result.items())
        print(f"  {engine:8} {fields}")
    raw = results.get("raw")
    for engine, result in results.items():
        if raw is None or engine == "raw":
            continue
        ratios = "  ".join(
            f"{name}={result[name] / raw[name]:.2f}x"
            for name in result
            if name != "errors" and raw[name]
        )
        print(f"  {engine}/raw  {ratios}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=0, help="per key; 0: one per worker")
    parser.add_argument("--child", choices=("rate", "fanout"))
    parser.add_argument("--engine", choices=ENGINES)
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated, in order")
    parser.add_argument("--baseline", help="a checkout whose raw engine runs as raw@base")
    parser.add_argument("--portfile")
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    portfile = Path(tempfile.mkdtemp()) / "ports"
    server = _server(args.keys, portfile)
    try:
        engines = args.engines.split(",") + ([BASE] if args.baseline else [])
        rate = {engine: _run_child("rate", engine, portfile, args) for engine in engines}
        fanout = {engine: _run_child("fanout", engine, portfile, args) for engine in engines}
    finally:
        server.kill()
    connections = args.connections or args.concurrency
    _report(
        f"one key, {args.concurrency} workers on {connections} connections, {args.seconds:g} s:",
        rate,
    )
    _report(f"{args.keys} keys, one request each:", fanout)


if __name__ == "__main__":
    main()
