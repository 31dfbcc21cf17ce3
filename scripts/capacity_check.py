"""`latcli capacity` against demo agents whose capacity is known by construction (issue 6).

Each demo agent here serves at most N messages at once, each taking a fixed service time S
(``/admin/fault {"concurrency_limit": N}``, latency ``fixed S``), so one replica sustains
exactly N / S req/s and a type of R replicas R × N / S. The script starts them (real
processes on free loopback ports), runs the real command (``latcli capacity TARGET --json``) on
each case, and prints the estimate against the truth: PASS when within ±15 %.

Cases: one agent of N=4 × 20 ms (200 req/s); a type of two such replicas (400 req/s, routed
p2c); one agent of N=2 × 50 ms (40 req/s); ``stream``: a demo assistant (LLM-like A2A agent)
generating N=4 answers at once, each a fixed 100 ms to the first token then 2 chunks 100 ms
apart (a slot held 200 ms: 20 streams/s), measured with ``--endpoint stream --sla
'first_artifact.p95<1s'``; its row also gives the concurrent streams at the knee (Little's law
on the mean total time) against N.

Usage: uv run python scripts/capacity_check.py [--step-duration 5s] [--only single,pair,slow,stream]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from latcli.config.loading import load_inventory
from latcli.demo.fleet import Fleet, free_port

TOLERANCE = 0.15


@dataclass(frozen=True)
class Case:
    name: str
    target: str  # agent id or type in the inventory below
    agents: tuple[str, ...]
    limit: int
    service_ms: float
    start_rate: float
    ttft_ms: float | None = None  # a streaming assistant: think time, then chunks to service_ms

    @property
    def truth(self) -> float:
        return len(self.agents) * self.limit / (self.service_ms / 1000.0)


CASES = (
    Case("single", "cap-1", ("cap-1",), 4, 20.0, 10.0),
    Case("pair", "cap-pair", ("cap-2a", "cap-2b"), 4, 20.0, 10.0),
    Case("slow", "cap-3", ("cap-3",), 2, 50.0, 10.0),
    Case("stream", "cap-4", ("cap-4",), 4, 200.0, 8.0, ttft_ms=100.0),
)
STREAM_SLA = "first_artifact.p95<1s"


def demo_of(case: Case) -> dict[str, Any]:
    """The agent's ``demo:`` key: a fixed-latency agent, or an assistant whose slot is held
    ttft + (chunks - 1) × gap = service_ms (10 tokens, 5 a chunk: 2 chunks)."""
    if case.ttft_ms is None:
        return {"latency": f"fixed {case.service_ms:g}ms", "errors": 0.0}
    gap_s = (case.service_ms - case.ttft_ms) / 1000.0
    return {"app": "assistant", "ttft": f"{case.ttft_ms:g}ms", "tokens_per_s": 5 / gap_s,
            "chunk_tokens": 5, "answer_tokens": 10, "fail_tasks": 0.0,
            "input_required": 0.0}  # fmt: skip


def write_inventory(path: Path, cases: tuple[Case, ...]) -> Path:
    agents = []
    for case in cases:
        for agent_id in case.agents:
            agents.append(
                {
                    "id": agent_id,
                    "type": case.target if len(case.agents) > 1 else f"{case.name}-type",
                    "url": f"http://127.0.0.1:{free_port()}",
                    "demo": demo_of(case),
                }
                | ({"protocol": "a2a", "timeout": "10s"} if case.ttft_ms is not None else {})
            )
    doc = {
        "version": 1,
        "defaults": {"protocol": "http", "timeout": "2s", "connect_timeout": "1s"},
        "sla": {"message": "p90 < 500ms", "error_rate": "< 0.1%"},
        "agents": agents,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def limit_agents(fleet: Fleet, case: Case) -> None:
    for agent_id in case.agents:
        url = fleet.urls[agent_id] + "/admin/fault"
        reply = httpx.post(url, json={"concurrency_limit": case.limit}, trust_env=False)
        reply.raise_for_status()
        assert reply.json()["concurrency_limit"] == case.limit, reply.text


def served_ms(fleet: Fleet, case: Case) -> float:
    """The agents' own mean time in a slot over the case: the service time really given."""
    loads = [httpx.get(fleet.urls[a] + "/admin/load", trust_env=False).json() for a in case.agents]
    served = sum(int(x["served"]) for x in loads)
    return sum(float(x["mean_service_ms"]) * int(x["served"]) for x in loads) / max(served, 1)


def run_case(case: Case, inventory: Path, step: str) -> tuple[dict[str, Any], float]:
    cmd = [sys.executable, "-m", "latcli", "capacity", case.target, "-i", str(inventory)]
    cmd += ["--json", "--step-duration", step, "--start-rate", f"{case.start_rate:g}"]
    cmd += ["--target-rps", f"{case.truth * 2:g}"]
    if case.ttft_ms is not None:
        cmd += ["--endpoint", "stream", "--sla", STREAM_SLA]
    began = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    took = time.monotonic() - began
    sys.stderr.write(done.stderr)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{case.name}: latcli capacity exited {done.returncode}")
    return json.loads(done.stdout), took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-duration", default="5s")
    parser.add_argument("--only", default="", help="comma-separated case names")
    args = parser.parse_args()
    wanted = {w for w in args.only.split(",") if w}
    cases = tuple(c for c in CASES if not wanted or c.name in wanted)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        inventory = write_inventory(Path(tmp) / "agents.yaml", cases)
        agents = load_inventory(inventory, {}).agents
        with Fleet(agents, seed=1) as fleet:
            for case in cases:
                limit_agents(fleet, case)
                print(f"== {case.name}: {case.target}", file=sys.stderr, flush=True)
                doc, took = run_case(case, inventory, args.step_duration)
                rows.append((case, doc, took, served_ms(fleet, case)))
    print(f"latcli capacity vs known capacity (±{TOLERANCE:.0%}), steps of {args.step_duration},")
    print(f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")
    print("| case | target | construction | served in | truth req/s | estimate req/s | error | "
          "steps | time | verdict |")  # fmt: skip
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    failed = 0
    for case, doc, took, served in rows:
        estimate = doc.get("sustainable_rps")
        error = None if estimate is None else (estimate - case.truth) / case.truth
        ok = error is not None and abs(error) <= TOLERANCE
        failed += not ok
        build = f"{len(case.agents)} × N={case.limit} × {case.service_ms:g} ms"
        print(
            f"| {case.name} | {case.target} | {build} | {served:.2f} ms | {case.truth:,.0f} | "
            f"{'-' if estimate is None else f'{estimate:,.4g}'} | "
            f"{'-' if error is None else f'{error:+.1%}'} | {len(doc['steps'])} | "
            f"{took:.0f} s | {'PASS' if ok else 'FAIL'} |"
        )
    for case, doc, _, _ in rows:
        streams = doc.get("streams")
        if streams:
            print(
                f"\n{case.name}: concurrent streams at the knee {streams['concurrent_at_knee']:.2f}"
                f" (N = {case.limit}); time to first token p50"
                f" {streams['first_artifact_ms']['p50']:.1f} ms, p95"
                f" {streams['first_artifact_ms']['p95']:.1f} ms (unqueued: {case.ttft_ms:g} ms)"
            )
    for case, doc, _, _ in rows:
        print(f"\n{case.name}:")
        for line in doc["reasoning"]:
            print(f"  {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
