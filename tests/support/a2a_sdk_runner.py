"""Runs the a2a-sdk echo agent (tests/support/a2a_sdk_agent.py) on a free port, stopped by PID."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from processes import stop_process

AGENT_SCRIPT = Path(__file__).with_name("a2a_sdk_agent.py")

CARD_PATH = "/.well-known/agent-card.json"

STARTUP_TIMEOUT_S = 15.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Agent:
    def __init__(self, proc: subprocess.Popen[bytes], base_url: str, log_dir: Path) -> None:
        self.proc = proc
        self.base_url = base_url
        self.log_dir = log_dir

    def stdout(self) -> str:
        return (self.log_dir / "stdout.txt").read_text(errors="replace")

    def stderr(self) -> str:
        return (self.log_dir / "stderr.txt").read_text(errors="replace")


def _stop(proc: subprocess.Popen[bytes]) -> int:
    return stop_process(proc)


@contextlib.contextmanager
def run_agent(log_dir: Path, *extra_args: str) -> Iterator[Agent]:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        open(log_dir / "stdout.txt", "wb") as out,
        open(log_dir / "stderr.txt", "wb") as err,
    ):
        proc = subprocess.Popen(
            [sys.executable, str(AGENT_SCRIPT), "--port", str(port), *extra_args],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    agent = Agent(proc, base_url, log_dir)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"agent exited early with {proc.returncode}:\n{agent.stderr()}")
            try:
                r = httpx.get(base_url + CARD_PATH, timeout=1.0)
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"agent not ready after {STARTUP_TIMEOUT_S}s:\n{agent.stderr()}")
            time.sleep(0.1)
        yield agent
    finally:
        _stop(proc)
