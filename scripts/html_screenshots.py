"""Regenerate docs/html-report-bench.png and docs/html-report-capacity.png from real runs.

Starts the demo agents weather-1 and weather-2 on free loopback ports, then:

* ``latcli bench weather --rate 100 -d 10s --endpoint message --html ...``: the open model
  through the router (two agents, service time beside latency);
* ``latcli capacity weather-1 ... --html ...`` with weather-1 limited to 2 messages at once
  (the demo agent's ``concurrency_limit``), so that its capacity is ~2 / 16 ms by
  construction and the knee shows;

and screenshots both pages, whole, with headless Chromium 1280 px wide. The JSON and HTML
stay in the output directory (a temporary one unless --keep DIR).

Usage: uv run python scripts/html_screenshots.py [--keep DIR] [--docs DIR]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import yaml

from latcli.config.loading import load_inventory
from latcli.demo.fleet import DEMO_INVENTORY, Fleet, free_port

ROOT = Path(__file__).resolve().parent.parent
AGENTS = ("weather-1", "weather-2")
WIDTH = 1280


def inventory(path: Path) -> Path:
    """The demo inventory, its weather agents on free ports, the others left out."""
    doc = yaml.safe_load(DEMO_INVENTORY.read_text(encoding="utf-8"))
    doc["agents"] = [a for a in doc["agents"] if a["id"] in AGENTS]
    for entry in doc["agents"]:
        entry["url"] = f"http://127.0.0.1:{free_port()}"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def latcli(*args: str) -> int:
    print("$ latcli " + " ".join(args), file=sys.stderr)
    return subprocess.run([sys.executable, "-m", "latcli", *args], check=False).returncode


def chromium(page: Path, profile: Path, *args: str) -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--hide-scrollbars", f"--user-data-dir={profile}"]  # fmt: skip
    cmd = [exe, *flags, *args, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120).stdout


def screenshot(page: Path, png: Path, profile: Path) -> None:
    """The whole page: its height as the render self-check measured it at this width."""
    dom = chromium(page, profile, "--dump-dom", f"--window-size={WIDTH},800")
    found = re.search(r'<body[^>]*data-height="(\d+)"', dom)
    height = int(found.group(1)) if found else 2400
    chromium(page, profile, f"--screenshot={png}", f"--window-size={WIDTH},{height}")
    print(f"{png} ({WIDTH}x{height}, {png.stat().st_size:,} bytes)", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keep", type=Path, help="write the runs' files here (kept)")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="where the PNGs go")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="latcli-html-"))
    work.mkdir(parents=True, exist_ok=True)
    inv = inventory(work / "agents.yaml")
    agents = load_inventory(inv, {}).agents
    with Fleet(agents, seed=7):
        code = latcli("bench", "weather", "-i", str(inv), "--rate", "100", "-d", "10s",
                      "--warmup", "1s", "--endpoint", "message", "-q",
                      "--sla", "p99<150ms", "--sla", "error_rate<0.1%", "--sla", "rps>=95",
                      "-o", str(work / "bench.json"),
                      "--html", str(work / "bench.html"))  # fmt: skip
        if code not in (0, 1, 3):
            return code
        weather_1 = next(a.url for a in agents if a.id == "weather-1")
        httpx.post(f"{weather_1}/admin/fault", json={"concurrency_limit": 2}).raise_for_status()
        code = latcli("capacity", "weather-1", "-i", str(inv), "--start-rate", "20",
                      "--step-duration", "2s", "--sla", "p99<100ms", "--target-rps", "500", "-q",
                      "-o", str(work / "capacity.json"),
                      "--html", str(work / "capacity.html"))  # fmt: skip
        if code not in (0, 1):
            return code
    args.docs.mkdir(parents=True, exist_ok=True)
    profile = work / "chromium-profile"
    screenshot(work / "bench.html", args.docs / "html-report-bench.png", profile)
    screenshot(work / "capacity.html", args.docs / "html-report-capacity.png", profile)
    shutil.rmtree(profile, ignore_errors=True)
    print(f"the runs' JSON and HTML: {work}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
