"""What the trust boundaries cost on the paths that run often (issue 10 items 3-5, 7).

Each row times the new work ("this") beside a reference timed in the same run (the machine is
shared and noisy: a no-op call of the same shape, or the same work without the new step) and
prints the ratio:

* ``escape_controls`` on a typical clean reply (the common case: a regex search and nothing
  else) and on a hostile one, beside ``str(reply)``;
* ``redact_url`` on a URL without userinfo (every watch row, every probe row) and with one;
* a routed call's per-agent guard: an ``except`` clause on a ``try`` that was there already (free
  when nothing is raised, Python 3.11+) and one clock read; the clock read is timed beside a
  whole ``Router.send`` to an in-memory agent, the ratio is its share;
* the alias budget pass over a 1,000-agent file's nodes, beside the whole ``load_inventory``
  (a file without an anchor, no ``&``, skips the pass).

Usage: uv run python scripts/bench_trust.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from latcli.config.loading import load_inventory
from latcli.config.selection import adhoc_agent
from latcli.config.yaml_lines import alias_bomb
from latcli.core.escape import escape_controls
from latcli.core.redact import redact_url
from latcli.routing.router import Router
from latcli.transport.base import Outcome, RequestSpec, Timings

CLEAN = "It will rain in the afternoon; take an umbrella. " * 4
HOSTILE = "\x1b]0;pwned\x07\x1b[2J " + CLEAN + " \u202eevil\r!"


def per_call_ns(fn: Callable[[], object], number: int, rounds: int) -> float:
    """Median over ``rounds`` of the mean time per call, in ns."""
    times = timeit.repeat(fn, number=number, repeat=rounds)
    return statistics.median(times) / number * 1e9


class _Answer:
    """An in-memory agent: every request gets a 200 JSON reply at once (no socket)."""

    async def send(self, key: str, spec: RequestSpec) -> Outcome:
        return Outcome(200, b'{"reply": "ok"}', Timings(total=0.1))

    async def aclose(self) -> None:
        pass


def _routed_us(calls: int) -> float:
    agents = [adhoc_agent(f"http://127.0.0.1:{9000 + i}") for i in range(3)]
    agents = [replace(a, id=f"a{i}", type="t") for i, a in enumerate(agents)]

    async def run() -> float:
        router = Router(agents, transport=_Answer(), state=None)
        started = time.perf_counter()
        for _ in range(calls):
            await router.send("t", "hi")
        took = time.perf_counter() - started
        await router.aclose()
        return took / calls * 1e6

    return asyncio.run(run())


def _inventory_ms(path: Path, rounds: int) -> tuple[float, float]:
    """Median ms of the alias budget pass alone and of the whole load, interleaved."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(path.read_text())
    node = loader.get_single_node()
    loader.dispose()
    budget, whole = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        alias_bomb(node)
        budget.append(time.perf_counter() - started)
        started = time.perf_counter()
        load_inventory(path, {})
        whole.append(time.perf_counter() - started)
    return statistics.median(budget) * 1000, statistics.median(whole) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    rows: list[tuple[str, float, float, str]] = []

    base = per_call_ns(lambda: str(CLEAN), 200_000, rounds)
    rows.append(
        (
            "escape_controls, clean 200-char reply",
            per_call_ns(lambda: escape_controls(CLEAN), 200_000, rounds),
            base,
            "ns",
        )
    )
    rows.append(
        (
            "escape_controls, hostile reply",
            per_call_ns(lambda: escape_controls(HOSTILE), 50_000, rounds),
            base,
            "ns",
        )
    )
    url, secret = "http://127.0.0.1:8001", "http://ops:pw@127.0.0.1:8001"
    base = per_call_ns(lambda: str(url), 200_000, rounds)
    rows.append(
        (
            "redact_url, no userinfo",
            per_call_ns(lambda: redact_url(url), 200_000, rounds),
            base,
            "ns",
        )
    )
    rows.append(
        (
            "redact_url, user:password",
            per_call_ns(lambda: redact_url(secret), 100_000, rounds),
            base,
            "ns",
        )
    )

    routed = statistics.median(_routed_us(20_000) for _ in range(rounds)) * 1000
    clock = per_call_ns(time.monotonic, 200_000, rounds)
    rows.append(("guard's clock read vs a Router.send", clock, routed, "ns"))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "agents.yaml")
        lines = ["version: 1", "defaults: &d {timeout: 2s, health: {path: /health}}", "agents:"]
        lines += [
            f"  - {{id: a{i}, type: t{i % 10}, url: 'http://127.0.0.1:{2000 + i}'}}"
            for i in range(1000)
        ]
        path.write_text("\n".join(lines) + "\n")
        budget, whole = _inventory_ms(path, rounds)
    rows.append(("alias budget pass vs load, 1,000 agents", budget, whole, "ms"))

    print(f"{'what':<40} {'this':>12} {'beside':>12} {'ratio':>7}")
    for what, now, was, unit in rows:
        print(f"{what:<40} {now:>9.1f} {unit:<2} {was:>9.1f} {unit:<2} {now / was:>6.2f}×")


if __name__ == "__main__":
    main()
