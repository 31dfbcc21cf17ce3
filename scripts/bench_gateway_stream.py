"""What `latcli serve` adds to the time to first token of a stream (issue 12 item 4), beside
nginx proxying the same SSE agent, in the same run. Target: p50 <= +1 ms, p99 <= +3 ms over
calling the agent directly, at 100 concurrent streams.

The agent: tests/support/stream_agent.py (raw asyncio, its own process; first artifact --first-ms
after the request, then --chunks chunks --gap-ms apart). Its own account of how late it wrote
each first artifact (``/stats``) tells the agent's lateness from a hop's. In front of it:

  direct   the A2A ``SendStreamingMessage`` to the agent itself
  nginx    Debian's nginx (one worker, keep-alive upstream, ``proxy_buffering off``)
  gateway  ``latcli serve`` (``POST /route/stream``, ``Accept: text/event-stream``), one
           process, the agent its only replica (no choice to make: the hop is what is measured)

One client (this process, uvloop, latcli's raw engine: the same reader for all three) keeps C
streams going, closed model, for --duration per target; the three take turns each round (the
order rotates). First artifact = from the request sent to the read that completes the first
event carrying answer text (``artifactUpdate`` from the agent or nginx, ``chunk`` from the
gateway). The verdict takes per target the median over rounds, and the deltas over direct.

Usage: uv run python scripts/bench_gateway_stream.py [--rounds 3] [--duration 10] [-c 100]
       [--first-ms 200] [--chunks 5] [--gap-ms 20] [--lockstep]
       [--profile gateway.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from latcli.config.model import Agent
from latcli.demo.fleet import free_port
from latcli.transport.a2a.sse import SSEDecoder
from latcli.transport.base import RequestSpec
from latcli.transport.protocols import ProtocolClient
from latcli.transport.raw.transport import RawTransport
from latcli.transport.requests import a2a_message_request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))

CRITERION = {"p50": 1.0, "p99": 3.0}  # ms the gateway may add over direct
TARGETS = ("direct", "nginx", "gateway")

NGINX_CONF = """worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream agent {{ server {agent}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://agent;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""


def start_nginx(tmp: Path, agent_url: str) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise SystemExit("nginx not found: apt-get install nginx (scripts/bench_peers.sh does)")
    port, folder = free_port(), tmp / "nginx"
    folder.mkdir()
    conf = folder / "nginx.conf"
    agent = agent_url.removeprefix("http://")
    conf.write_text(NGINX_CONF.format(dir=folder, agent=agent, port=port), encoding="utf-8")
    proc = subprocess.Popen(
        [binary, "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")]
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/.well-known/agent-card.json")
    return proc, url


def start_gateway(
    tmp: Path, agent_url: str, profile: str | None = None
) -> tuple[subprocess.Popen[str], str]:
    inventory = tmp / "agents.yaml"
    inventory.write_text(
        "version: 1\n"
        "defaults: {protocol: a2a, timeout: 30s, health: {interval: 5s, timeout: 1s}}\n"
        f"agents:\n  - {{id: stream-1, type: stream, url: '{agent_url}'}}\n",
        encoding="utf-8",
    )
    python = [sys.executable] + (["-m", "cProfile", "-o", profile] if profile else [])
    cmd = [*python, "-m", "latcli", "serve", "-i", str(inventory), "--port", "0"]
    proc = subprocess.Popen([*cmd, "--no-state"], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if "latcli serve: http://" not in line:
        proc.kill()
        raise SystemExit(f"latcli serve did not start: {line}")
    return proc, line.split("latcli serve: ", 1)[1].split(" ", 1)[0]


def wait_for(url: str) -> None:
    for _ in range(200):
        try:
            with urllib.request.urlopen(url, timeout=1):  # loopback only
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not answer")


def agent_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/stats?reset", timeout=10) as answer:  # loopback only
        doc: dict[str, Any] = json.loads(answer.read())
    return doc


@dataclass
class Run:
    """One target's turn: first-artifact times (ms) of the streams that ended well."""

    target: str
    firsts: list[float] = field(default_factory=list)
    errors: int = 0
    cpu_ms_per_stream: float | None = None
    agent_late_p99_ms: float | None = None

    def pct(self, p: float) -> float:
        values = sorted(self.firsts)
        return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


async def one_stream(transport: RawTransport, key: str, spec: RequestSpec, mark: str) -> float:
    """One stream read to its end; ms from the send to the first event that carries text."""
    decoder = SSEDecoder()
    first: float | None = None
    async with transport.stream(key, spec) as outcome:
        if outcome.status != 200:
            raise RuntimeError(f"{key}: {outcome.status} {outcome.error} {outcome.message}")
        async for at, chunk in outcome:
            if first is None:
                for event in decoder.feed(chunk):
                    if event.event == mark or mark in event.data:
                        first = at
                        break
        if outcome.error is not None:
            raise RuntimeError(f"{key}: {outcome.error} {outcome.message}")
        if first is None:
            raise RuntimeError(f"{key}: no answer text")
        return (first - outcome.sent) * 1000.0


async def load(
    transport: RawTransport,
    target: str,
    spec: RequestSpec,
    mark: str,
    c: int,
    seconds: float,
    period: float,
) -> Run:
    """C workers, each a stream after another; worker i starts i/C of a stream's ``period``
    late, so the streams are spread as independent users' are, not all in one lockstep burst
    (with a fixed schedule, 100 first tokens would otherwise arrive in the same millisecond)."""
    run = Run(target)
    loop = asyncio.get_running_loop()
    warm_until = loop.time() + 1.0 + period
    end = warm_until + seconds

    async def worker(i: int) -> None:
        await asyncio.sleep(i / c * period)
        while loop.time() < end:
            counted = loop.time() >= warm_until
            try:
                ms = await one_stream(transport, target, spec, mark)
            except RuntimeError as exc:
                run.errors += 1
                if run.errors == 1:
                    print(f"  {exc}", file=sys.stderr)
                continue
            if counted:
                run.firsts.append(ms)

    await asyncio.gather(*(worker(i) for i in range(c)))
    return run


async def specs(agent_url: str, nginx_url: str, gateway_url: str) -> dict[str, RequestSpec]:
    agent = Agent(id="agent", type="stream", url=agent_url, protocol="a2a", timeout=30.0)
    async with RawTransport() as transport:
        client = ProtocolClient(transport)
        found = await client.discover(agent)
        assert found.card is not None, found
        direct = a2a_message_request(agent, found.card, "hi", "bench-1", stream=True)
    via_nginx = RequestSpec(
        direct.method,
        direct.url.replace(agent_url, nginx_url),
        direct.headers,
        direct.body,
        timeout=30.0,
    )
    routed = RequestSpec(
        "POST",
        gateway_url + "/route/stream",
        {"content-type": "application/json", "accept": "text/event-stream"},
        b'{"message": "hi"}',
        timeout=30.0,
    )
    return {"direct": direct, "nginx": via_nginx, "gateway": routed}


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its children (nginx's worker is its master's child)."""
    parent = psutil.Process(pid)
    total = 0.0
    for proc in [parent, *parent.children(recursive=True)]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


async def rounds(
    args: argparse.Namespace, urls: dict[str, str], pids: dict[str, int]
) -> dict[str, list[Run]]:
    got: dict[str, list[Run]] = {t: [] for t in TARGETS}
    requests = await specs(urls["direct"], urls["nginx"], urls["gateway"])
    marks = {"direct": "artifactUpdate", "nginx": "artifactUpdate", "gateway": "chunk"}
    period = (args.first_ms + (args.chunks - 1) * args.gap_ms) / 1000.0  # one stream's length
    async with RawTransport(max_connections_per_key=args.concurrency + 8) as transport:
        for r in range(args.rounds):
            order = TARGETS[r % 3 :] + TARGETS[: r % 3]  # rotate: no target always goes first
            for target in order:
                agent_stats(urls["direct"])  # reset the agent's own count
                pid = pids.get(target)
                cpu0 = cpu_seconds(pid) if pid else 0.0
                run = await load(
                    transport,
                    target,
                    requests[target],
                    marks[target],
                    args.concurrency,
                    args.duration,
                    period if args.stagger else 0.0,
                )
                if pid and run.firsts:
                    run.cpu_ms_per_stream = (cpu_seconds(pid) - cpu0) / len(run.firsts) * 1e3
                late = agent_stats(urls["direct"])["first_artifact_late_us"]["p99"]
                run.agent_late_p99_ms = None if late is None else late / 1000.0
                got[target].append(run)
                print(
                    f"round {r + 1} {target}: {len(run.firsts)} streams, {run.errors} errors, "
                    f"first artifact p50 {run.pct(50):.2f} p99 {run.pct(99):.2f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    return got


def report(args: argparse.Namespace, got: dict[str, list[Run]], load_avg: list[float]) -> bool:
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M %Z')} · {os.cpu_count()} CPUs · load average "
        f"{min(load_avg):.2f}..{max(load_avg):.2f} · C={args.concurrency} · "
        f"{args.rounds} rounds x {args.duration:g} s"
    )
    workers = "spread over a stream" if args.stagger else "in lockstep"
    print(
        f"# agent: first artifact at {args.first_ms:g} ms, {args.chunks} chunks "
        f"{args.gap_ms:g} ms apart; workers {workers}"
    )
    print()
    print("| target | round | streams | errors | fa p50 ms | fa p99 ms | agent late p99 ms "
          "| proxy CPU ms/stream |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for target, runs in got.items():
        for n, run in enumerate(runs, 1):
            cpu = f"{run.cpu_ms_per_stream:.3f}" if run.cpu_ms_per_stream is not None else "-"
            late = f"{run.agent_late_p99_ms:.2f}" if run.agent_late_p99_ms is not None else "-"
            print(
                f"| {target} | {n} | {len(run.firsts)} | {run.errors} | {run.pct(50):.2f} | "
                f"{run.pct(99):.2f} | {late} | {cpu} |"
            )
    print()
    ok = True
    med = {t: {p: statistics.median(r.pct(float(p[1:])) for r in runs) for p in CRITERION}
           for t, runs in got.items()}  # fmt: skip
    for p in CRITERION:
        line = " · ".join(f"{t} {med[t][p]:.2f}" for t in TARGETS)
        print(f"first artifact {p} (median of rounds): {line} ms")
    for p, limit in CRITERION.items():
        each = [g.pct(float(p[1:])) - d.pct(float(p[1:]))
                for d, g in zip(got["direct"], got["gateway"], strict=True)]  # fmt: skip
        peer = [n.pct(float(p[1:])) - d.pct(float(p[1:]))
                for d, n in zip(got["direct"], got["nginx"], strict=True)]  # fmt: skip
        added, by_nginx = statistics.median(each), statistics.median(peer)
        passed = added <= limit
        ok &= passed
        print(
            f"{p}: gateway adds {added:+.2f} ms (rounds: {', '.join(f'{e:+.2f}' for e in each)})"
            f" · nginx adds {by_nginx:+.2f} ms ({', '.join(f'{e:+.2f}' for e in peer)})"
            f" · criterion +{limit:g} ms · {'PASS' if passed else 'FAIL'}"
        )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per target")
    parser.add_argument("-c", "--concurrency", type=int, default=100)
    parser.add_argument("--first-ms", type=float, default=200.0)
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--gap-ms", type=float, default=20.0)
    parser.add_argument(
        "--lockstep",
        dest="stagger",
        action="store_false",
        help="start every worker at once (all first tokens in one burst) instead of spread",
    )
    parser.add_argument("--profile", help="run the gateway under cProfile, its stats to FILE")
    args = parser.parse_args()
    from stream_agent import run_stream_agent

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    load_avg = [os.getloadavg()[0]]
    schedule = ("--first-ms", str(args.first_ms), "--chunks", str(args.chunks))
    with (
        run_stream_agent(*schedule, "--gap-ms", str(args.gap_ms)) as agent,
        tempfile.TemporaryDirectory() as tmp,
    ):
        nginx, nginx_url = start_nginx(Path(tmp), agent.url)
        gateway, gateway_url = start_gateway(Path(tmp), agent.url, args.profile)
        try:
            urls = {"direct": agent.url, "nginx": nginx_url, "gateway": gateway_url}
            pids = {"nginx": nginx.pid, "gateway": gateway.pid}
            got = asyncio.run(rounds(args, urls, pids))
        finally:
            for proc in (gateway, nginx):
                proc.terminate()
                proc.wait(15)
    load_avg.append(os.getloadavg()[0])
    return 0 if report(args, got, load_avg) else 1


if __name__ == "__main__":
    sys.exit(main())
