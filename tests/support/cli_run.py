"""Running latcli as a subprocess the way a user does: a clean environment, Ctrl-C once it runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("LATCLI_INVENTORY", "TOKEN")}
    return {**base, "NO_COLOR": "1", **(extra or {})}


def interrupt_when_started(proc: subprocess.Popen[str], wait: float) -> tuple[str, str]:
    """Read ``proc``'s first stderr line (its first progress line: the run is under way), let it
    run ``wait`` seconds more, send SIGINT; (that line, stdout). Killed if it outlives 20 s."""
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        time.sleep(wait)
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    return first, stdout


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "latcli", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(env),
    )
