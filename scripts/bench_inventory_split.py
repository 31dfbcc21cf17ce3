"""load_inventory before (inventory.py at f3b8e62) and after the split, same run, alternating.

git show f3b8e62:latcli/config/inventory.py > /tmp/old_inventory.py
uv run python scripts/bench_inventory_split.py
"""

import importlib.util
import pathlib
import statistics
import sys
import tempfile
import time

from latcli.config.loading import load_inventory

AGENT = (
    "  - {{id: a{i}, type: t{t}, url: 'http://127.0.0.1:{port}', weight: 2, ewma: {{decay: 5s}}}}"
)


def old_loader() -> object:
    spec = importlib.util.spec_from_file_location("old_inventory", "/tmp/old_inventory.py")
    assert spec is not None and spec.loader is not None
    old = importlib.util.module_from_spec(spec)
    sys.modules["old_inventory"] = old
    spec.loader.exec_module(old)
    return old.load_inventory


def main() -> None:
    before = old_loader()
    with tempfile.TemporaryDirectory() as d:
        path = pathlib.Path(d) / "agents.yaml"
        lines = [
            "version: 1",
            "defaults: {timeout: 2s, health: {interval: 1s}, breaker: {failures: 3}}",
            "agents:",
        ]
        lines += [AGENT.format(i=i, t=i % 10, port=9000 + i) for i in range(1000)]
        path.write_text("\n".join(lines) + "\n")
        times: dict[str, list[float]] = {"before": [], "after": []}
        for _ in range(25):  # CPU time, alternating: the machine is shared and noisy
            for name, load in (("before", before), ("after", load_inventory)):
                t0 = time.process_time()
                load(path, {})  # type: ignore[operator]
                times[name].append(time.process_time() - t0)
    b, a = statistics.median(times["before"]), statistics.median(times["after"])
    print(
        f"load_inventory, 1,000 agents, CPU, median of 25: before {b * 1000:.1f} ms,"
        f" after {a * 1000:.1f} ms, after/before {a / b:.2f}"
    )


if __name__ == "__main__":
    main()
