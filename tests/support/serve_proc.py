"""A real `latcli serve` process on a free port, started and stopped by PID."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

READY = re.compile(r"latcli serve: (http://\S+) ")


@dataclass
class Served:
    """A running ``latcli serve`` and its stderr, read by a thread as it comes."""

    url: str
    proc: subprocess.Popen[str]
    lines: list[str]
    reader: threading.Thread

    def err(self) -> str:
        """Stderr so far; all of it once the process has ended."""
        if self.proc.poll() is not None:
            self.reader.join(5)
        return "".join(self.lines)

    def wait_for(self, text: str, seconds: float = 10.0, since: int = 0) -> str:
        """The first stderr line from line ``since`` on that contains ``text``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in self.lines[since:]:
                if text in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} on stderr within {seconds}s:\n{self.err()}")


def start_serve(inventory: Path, *args: str, env: dict[str, str] | None = None) -> Served:
    """``latcli serve --port 0``; waits for the line that names the bound URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "latcli", "serve", "-i", str(inventory), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        found = READY.search(line)
        if found is not None:
            break
    else:
        proc.kill()
        raise AssertionError(f"serve did not start: {''.join(seen)}")
    lines = seen[:-1]
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or ()), daemon=True)
    reader.start()
    return Served(found.group(1), proc, lines, reader)


def stop_serve(served: Served) -> None:
    if served.proc.poll() is None:
        served.proc.send_signal(signal.SIGTERM)
        try:
            served.proc.wait(15)
        except subprocess.TimeoutExpired:
            served.proc.kill()
            served.proc.wait()
