"""Stopping the servers the tests start, by PID: SIGTERM, then SIGKILL if it lingers."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """Terminate ``proc`` (kill it after ``timeout`` s) and return its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode
