"""Gateway overhead of `latcli serve` (issue 6): at 500 req/s the gateway may add at most
1 ms at p50 and 3 ms at p99 over calling the agent directly.

Starts one demo agent (type ``echo``, the only replica of its type, so the gateway has no
choice to make and the comparison is fair) and `latcli serve` in front of it, then loads both
in the same run with `latcli bench --rate R --endpoint message` (open model: latency from each
request's due time, wrk2-style), alternating direct / gateway for --rounds pairs. The same
request either way: a type's route is a plain http agent at /route/{type}, so bench POSTs
``{"message": "ping"}`` to ``AGENT/message/send`` and to ``GATEWAY/route/echo/message/send``.

Per pair the difference is gateway minus direct; the verdict takes the median pair (one pair
hit by a noisy neighbour does not decide). The peer, when nginx is installed: nginx (one worker,
keep-alive upstream) proxying to the same agent in the same rounds, i.e. what one HTTP hop costs
on this machine when the proxy is written in C. Prints a Markdown table for docs/benchmarks.md.

With ``--baseline REF`` (a git commit or branch), the gateway as it was at REF runs beside
today's in the same rounds (its ``latcli/`` from ``git archive``), so a change to the gateway
is measured against its own past on the same machine at the same minute.

Usage: uv run python scripts/bench_gateway.py [--rate 500] [--duration 10s] [--rounds 3]
       [--agent-latency "fixed 2ms"] [--baseline REF]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from latcli.config.loading import load_inventory
from latcli.demo.fleet import Fleet, free_port

CRITERION = {"p50": 1.0, "p99": 3.0}  # ms the gateway may add


def write_inventory(path: Path, latency: str) -> Path:
    path.write_text(
        "version: 1\n"
        "defaults: {timeout: 2s, health: {path: /health, interval: 2s, timeout: 1s}}\n"
        "routing: {strategy: p2c, retries: 1, retry_budget: 20%}\n"
        "agents:\n"
        f"  - {{id: echo-1, type: echo, url: 'http://127.0.0.1:{free_port()}',"
        f" demo: {{latency: '{latency}', errors: 0}}}}\n",
        encoding="utf-8",
    )
    return path


def start_gateway(inventory: Path, cwd: Path | None = None) -> tuple[subprocess.Popen[str], str]:
    """`latcli serve` on a free port; from ``cwd``'s ``latcli/`` when given (the baseline)."""
    cmd = [sys.executable, "-m", "latcli", "serve", "-i", str(inventory), "--port", "0"]
    proc = subprocess.Popen([*cmd, "--no-state"], stderr=subprocess.PIPE, text=True, cwd=cwd)
    assert proc.stderr is not None
    found = re.search(r"(http://\S+) ", proc.stderr.readline())
    if found is None:
        proc.kill()
        raise SystemExit("latcli serve did not start")
    return proc, found.group(1)


NGINX_CONF = """worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream agent {{ server {agent}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://agent;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def start_nginx(tmp: Path, agent_url: str) -> tuple[subprocess.Popen[bytes], str] | None:
    """The peer: nginx (one worker, keep-alive upstream) proxying to the same agent, or None."""
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        return None
    port, folder = free_port(), tmp / "nginx"
    folder.mkdir()
    conf = folder / "nginx.conf"
    agent = agent_url.removeprefix("http://")
    conf.write_text(NGINX_CONF.format(dir=folder, agent=agent, port=port), encoding="utf-8")
    proc = subprocess.Popen(
        [binary, "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")]
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.post(f"{url}/message/send", json={"message": "hi"}).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    return None


def export_baseline(ref: str, into: Path) -> Path:
    """``latcli/`` as it was at ``ref``, unpacked under ``into`` (python -m finds it first)."""
    folder = into / "baseline"
    folder.mkdir()
    archive = subprocess.run(["git", "archive", ref, "latcli"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (the gateway: noise-proof where latency is not)."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def bench(url: str, rate: float, duration: str, inventory: Path) -> dict[str, Any]:
    """One `latcli bench` run; its JSON report (exit 3, an invalid run, is kept and flagged)."""
    cmd = [sys.executable, "-m", "latcli", "bench", url, "--endpoint", "message"]
    cmd += ["--rate", f"{rate:g}", "-d", duration, "--warmup", "2s", "--json", "-q"]
    done = subprocess.run([*cmd, "-i", str(inventory)], capture_output=True, text=True)
    if done.returncode not in (0, 3):
        raise SystemExit(f"bench {url} failed ({done.returncode}): {done.stderr.strip()}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def routed_bench(
    gateway: subprocess.Popen[str], url: str, args: argparse.Namespace, inventory: Path
) -> tuple[dict[str, Any], float]:
    """One bench through a gateway, and the gateway's CPU ms per routed request in it."""
    before = cpu_seconds(gateway.pid)
    report = bench(url, args.rate, args.duration, inventory)
    # Warm-up requests went through the gateway too (bench's --warmup 2s).
    routed = report["requests"] + round(args.rate * 2)
    return report, (cpu_seconds(gateway.pid) - before) / routed * 1e3


def row(name: str, r: dict[str, Any]) -> str:
    lat, svc, gen = r["latency_ms"], r["service_time_ms"] or {}, r["generator"]
    return (
        f"| {name} | {r['requests']} | {sum(r['errors'].values())} | "
        f"{gen['achieved_rate']:.0f}{'' if gen['valid'] else ' (invalid)'} | "
        f"{lat['p50']:.2f} | {lat['p90']:.2f} | {lat['p99']:.2f} | "
        f"{svc.get('p50', float('nan')):.2f} | {svc.get('p99', float('nan')):.2f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--agent-latency", default="fixed 2ms")
    parser.add_argument("--baseline", help="git ref whose gateway runs beside today's")
    args = parser.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        inventory = write_inventory(Path(tmp) / "agents.yaml", args.agent_latency)
        agents = load_inventory(inventory, {}).agents
        with Fleet(agents, seed=1):
            gateway, base = start_gateway(inventory)
            old = None
            if args.baseline:
                old = start_gateway(inventory, export_baseline(args.baseline, Path(tmp)))
            peer = start_nginx(Path(tmp), agents[0].url)
            if peer is None:
                print("nginx not found: no peer rows", file=sys.stderr)
            try:
                direct_url, gateway_url = agents[0].url, f"{base}/route/echo"
                assert httpx.post(gateway_url, json={"message": "hi"}).status_code == 200
                pairs, cpu_per_request, peers, olds, old_cpu = [], [], [], [], []
                for n in range(args.rounds):
                    print(f"round {n + 1}/{args.rounds} ...", file=sys.stderr, flush=True)
                    direct = bench(direct_url, args.rate, args.duration, inventory)
                    # today's and the baseline's turns alternate: neither always runs second
                    turns = ["today", "baseline"] if n % 2 == 0 else ["baseline", "today"]
                    for turn in turns if old is not None else ["today"]:
                        if turn == "today":
                            via, cpu = routed_bench(gateway, gateway_url, args, inventory)
                            cpu_per_request.append(cpu)
                            pairs.append((direct, via))
                        elif old is not None:
                            was, cpu = routed_bench(old[0], f"{old[1]}/route/echo", args, inventory)
                            olds.append(was)
                            old_cpu.append(cpu)
                    if peer is not None:
                        peers.append(bench(peer[1], args.rate, args.duration, inventory))
            finally:
                for proc in (gateway, old[0] if old else None, peer[0] if peer else None):
                    if proc is not None:
                        proc.terminate()
                        proc.wait(15)
    load_after = os.getloadavg()

    print(f"# {time.strftime('%Y-%m-%d %H:%M %Z')} · {os.cpu_count()} CPUs · load average")
    print(f"# before {load_before[0]:.2f} {load_before[1]:.2f}, after {load_after[0]:.2f}")
    print(f"# rate {args.rate:g}/s · {args.duration} per run · agent latency {args.agent_latency}")
    print()
    print("| run | requests | errors | achieved rps | p50 | p90 | p99 | svc p50 | svc p99 |")
    print("|---|---|---|---|---|---|---|---|---|")
    diffs: dict[str, list[float]] = {"p50": [], "p99": []}
    for n, (direct, via) in enumerate(pairs, 1):
        print(row(f"{n} direct", direct))
        print(row(f"{n} gateway", via))
        if olds:
            print(row(f"{n} gateway@{args.baseline}", olds[n - 1]))
        if peers:
            print(row(f"{n} nginx proxy", peers[n - 1]))
        for p in diffs:
            diffs[p].append(via["latency_ms"][p] - direct["latency_ms"][p])
    print()
    ok = True
    for p, limit in CRITERION.items():
        added = statistics.median(diffs[p])
        each = ", ".join(f"{d:+.2f}" for d in diffs[p])
        passed = added <= limit
        ok &= passed
        verdict = "PASS" if passed else "FAIL"
        print(f"gateway adds at {p}: {added:+.2f} ms (median of pairs: {each}) · "
              f"criterion +{limit:g} ms · {verdict}")  # fmt: skip
    if peers:  # the peer: what an HTTP hop costs here when the proxy is nginx
        for p in CRITERION:
            added = [
                r["latency_ms"][p] - d["latency_ms"][p]
                for (d, _), r in zip(pairs, peers, strict=True)
            ]
            each = ", ".join(f"{a:+.2f}" for a in added)
            print(f"nginx proxy adds at {p}: {statistics.median(added):+.2f} ms (pairs: {each})")
    if olds:
        for p in CRITERION:
            added = [
                w["latency_ms"][p] - d["latency_ms"][p]
                for (d, _), w in zip(pairs, olds, strict=True)
            ]
            each = ", ".join(f"{a:+.2f}" for a in added)
            print(f"gateway@{args.baseline} adds at {p}: {statistics.median(added):+.2f} ms "
                  f"(pairs: {each})")  # fmt: skip
    each_cpu = ", ".join(f"{c:.3f}" for c in cpu_per_request)
    print(f"gateway CPU per routed request: {statistics.median(cpu_per_request):.3f} ms "
          f"(median; runs: {each_cpu})")  # fmt: skip
    if old_cpu:
        each_cpu = ", ".join(f"{c:.3f}" for c in old_cpu)
        ratio = statistics.median(cpu_per_request) / statistics.median(old_cpu)
        print(f"gateway@{args.baseline} CPU per routed request: "
              f"{statistics.median(old_cpu):.3f} ms (median; runs: {each_cpu}); "
              f"today / baseline = {ratio:.2f}")  # fmt: skip
    valid = all(r["generator"]["valid"] for pair in pairs for r in pair)
    if not valid:
        print("note: some runs could not hold the rate (invalid); see the table")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
