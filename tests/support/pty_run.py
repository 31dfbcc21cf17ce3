"""Run latcli with its stdout on a pseudo-terminal, as a user's shell would."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time


def latcli_on_a_terminal(
    args: list[str], env: dict[str, str], timeout: float = 30.0
) -> tuple[int, bytes]:
    """``(exit code, bytes written to the terminal)`` of ``latcli ARGS``; stderr is dropped."""
    master, slave = pty.openpty()
    cmd = [sys.executable, "-m", "latcli", *args]
    proc = subprocess.Popen(cmd, stdout=slave, stderr=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout), b"".join(chunks)
