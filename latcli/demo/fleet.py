"""Start, watch over and stop one demo agent subprocess per inventory agent.

Children run in their own session, so a Ctrl-C at the terminal reaches only
the launcher, which then stops them (context manager exit, then atexit). They
also exit by themselves when the launcher dies (``--parent-pid``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import urlsplit

import httpx

from latcli.config.model import Agent, DemoConfig
from latcli.core.errors import ExitCode, LatcliError
from latcli.core.units import format_duration

DEMO_INVENTORY = Path(__file__).with_name("agents.yaml")  # the demo fleet, shipped in the wheel
STARTUP_TIMEOUT = 10.0  # seconds for every agent to answer its health check
STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL
_POLL = 0.05  # seconds between health polls while starting
HEALTH_PATH = "/health"
CARD_PATH = "/.well-known/agent-card.json"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it; racy, fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """True when a server could listen on ``host:port`` now.

    SO_REUSEADDR as uvicorn sets it, so a port in TIME_WAIT counts as free.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@dataclass
class _Child:
    """One agent's process and the file its output goes to."""

    agent: Agent
    host: str
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def health_url(self) -> str:
        return self.url + (CARD_PATH if self.agent.protocol == "a2a" else HEALTH_PATH)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self, lines: int = 2) -> str:
        """The last lines the agent wrote, for error messages."""
        if self.log is None:
            return ""
        self.log.seek(0)
        text = self.log.read().decode(errors="replace").strip()
        return " | ".join(text.splitlines()[-lines:])


class Fleet:
    """Demo agents as subprocesses: ``with Fleet(inventory.agents) as fleet: ...``.

    ``ports`` overrides the port of the agent with that id (tests pass free ports);
    otherwise each agent listens on the host and port of its inventory URL.
    """

    def __init__(
        self,
        agents: Sequence[Agent],
        ports: Mapping[str, int] | None = None,
        *,
        seed: int | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        self._agents = {a.id: a for a in agents}
        self._children = {a.id: _child_for(a, (ports or {}).get(a.id)) for a in agents}
        self._seed = seed
        self._startup_timeout = startup_timeout

    # -- what the fleet looks like ------------------------------------------------

    @property
    def pids(self) -> dict[str, int]:
        """Agent id -> pid, for the agents whose process is running."""
        return {i: c.proc.pid for i, c in self._children.items() if c.proc and c.running()}

    @property
    def urls(self) -> dict[str, str]:
        """Agent id -> base URL the agent listens on (no trailing slash)."""
        return {i: c.url for i, c in self._children.items()}

    def describe(self) -> list[tuple[str, str, str, str]]:
        """``(id, type, protocol, url)`` per agent, in inventory order.

        The protocol of an A2A agent includes its version: ``a2a 1.0``, ``a2a 0.3``.
        """
        rows: list[tuple[str, str, str, str]] = []
        for agent_id, child in self._children.items():
            protocol: str = child.agent.protocol
            if protocol == "a2a":
                protocol += f" {_demo(child.agent).a2a_version}"
            rows.append((agent_id, child.agent.type, protocol, child.url))
        return rows

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        """Spawn every agent and wait until each answers its health check.

        Raises LatcliError: a port in use (exit 2) or an agent that did not come up
        within the startup timeout (exit 1). On error no child is left running.
        """
        _check_ports(list(self._children.values()))
        atexit.register(self.stop)
        try:
            for child in self._children.values():
                self._spawn(child)
            self._wait_healthy(list(self._children.values()))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every child: SIGTERM, then SIGKILL after the grace period. Idempotent."""
        children = [c for c in self._children.values() if c.proc is not None]
        for child in children:
            if child.running():
                _signal(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for child in children:
            _reap(child, deadline)
            if child.log is not None:
                child.log.close()
                child.log = None
        atexit.unregister(self.stop)

    def kill(self, agent_id: str) -> None:
        """SIGKILL one agent (no goodbye), as a crash would; the others keep running."""
        child = self._child(agent_id)
        if child.running():
            _signal(child, signal.SIGKILL)
        _reap(child, time.monotonic())

    def restart(self, agent_id: str) -> None:
        """Stop one agent if it runs, start it again on the same port, wait until healthy."""
        child = self._child(agent_id)
        if child.running():
            _signal(child, signal.SIGTERM)
        _reap(child, time.monotonic() + STOP_GRACE)
        _check_ports([child])
        self._spawn(child)
        try:
            self._wait_healthy([child])
        except BaseException:
            _signal(child, signal.SIGKILL)
            _reap(child, time.monotonic())
            raise

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers --------------------------------------------------------------------

    def _child(self, agent_id: str) -> _Child:
        try:
            return self._children[agent_id]
        except KeyError:
            known = ", ".join(self._children)
            raise LatcliError(f"no demo agent {agent_id!r} (known: {known})") from None

    def _spawn(self, child: _Child) -> None:
        if child.log is None:
            # A file, not a pipe: nobody reads while the agent runs, a full pipe would block it.
            child.log = tempfile.TemporaryFile()  # noqa: SIM115 -- closed by stop()
        child.log.seek(0)
        child.log.truncate()
        # A new session: Ctrl-C at the terminal goes to the launcher only, which stops us.
        child.proc = subprocess.Popen(
            _command(child, self._seed),
            stdin=subprocess.DEVNULL,
            stdout=child.log,
            stderr=child.log,
            start_new_session=True,
        )

    def _wait_healthy(self, children: list[_Child]) -> None:
        deadline = time.monotonic() + self._startup_timeout
        waiting = list(children)
        with httpx.Client(trust_env=False, timeout=1.0) as client:
            while waiting:
                waiting = [c for c in waiting if not _answers(client, c)]
                for child in waiting:
                    if not child.running():
                        raise _start_error(child, "exited during startup")
                if waiting and time.monotonic() > deadline:
                    raise _start_error(
                        waiting[0], f"no answer within {format_duration(self._startup_timeout)}"
                    )
                time.sleep(_POLL if waiting else 0)


def _demo(agent: Agent) -> DemoConfig:
    return agent.demo if agent.demo is not None else DemoConfig()


def _child_for(agent: Agent, port: int | None) -> _Child:
    parts = urlsplit(agent.url)
    if parts.scheme != "http" or not parts.hostname:
        raise LatcliError(f"demo agent {agent.id}: URL must be http://HOST:PORT, not {agent.url}")
    if port is None:
        port = parts.port or 80
    return _Child(agent, parts.hostname, port)


def _command(child: _Child, seed: int | None) -> list[str]:
    demo = _demo(child.agent)
    if demo.app == "assistant":  # an LLM-like A2A 1.0 agent: its own app
        return _assistant_command(child, demo, seed)
    cmd = [sys.executable, "-m", "latcli.demo.agent", "--id", child.agent.id]
    cmd += ["--host", child.host, "--port", str(child.port)]
    cmd += ["--protocol", child.agent.protocol, "--a2a-version", demo.a2a_version]
    cmd += ["--latency", demo.latency, "--errors", repr(demo.errors)]
    cmd += ["--parent-pid", str(os.getpid())]
    if demo.concurrency_limit is not None:
        cmd += ["--concurrency-limit", str(demo.concurrency_limit)]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    return cmd


def _assistant_command(child: _Child, demo: DemoConfig, seed: int | None) -> list[str]:
    from latcli.demo.assistant.launch import command

    if child.agent.protocol != "a2a":  # its health check is the card GET
        raise LatcliError(f"demo agent {child.agent.id}: app assistant needs protocol: a2a")
    return command(child.agent.id, child.host, child.port, demo, seed, os.getpid())


def _check_ports(children: list[_Child]) -> None:
    """Raise LatcliError (exit 2) naming the first port that is taken or used twice."""
    seen: dict[tuple[str, int], str] = {}
    for child in children:
        key = (child.host, child.port)
        if key in seen:
            raise LatcliError(
                f"port {child.port} is used by both {seen[key]} and {child.agent.id}"
                " — change agents.yaml"
            )
        seen[key] = child.agent.id
        if not port_is_free(child.host, child.port):
            raise LatcliError(
                f"port {child.port} ({child.agent.id}) is already in use"
                " — stop the other process or change agents.yaml"
            )


def _answers(client: httpx.Client, child: _Child) -> bool:
    try:
        return client.get(child.health_url).status_code == 200
    except httpx.HTTPError:
        return False


def _start_error(child: _Child, why: str) -> LatcliError:
    tail = child.stderr_tail()
    detail = f": {tail}" if tail else ""
    return LatcliError(f"demo agent {child.agent.id} at {child.url} {why}{detail}", ExitCode.FAILED)


def _signal(child: _Child, sig: signal.Signals) -> None:
    if child.proc is not None:
        with contextlib.suppress(ProcessLookupError):  # it exited on its own meanwhile
            child.proc.send_signal(sig)


def _reap(child: _Child, deadline: float) -> None:
    """Wait for the child until ``deadline``, then SIGKILL it; always leaves it reaped."""
    if child.proc is None:
        return
    try:
        child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _signal(child, signal.SIGKILL)
        child.proc.wait()
