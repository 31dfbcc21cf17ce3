"""What ``latcli serve`` was asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from latcli.engines.serve.limits import Limits
from latcli.transport.factory import Engine

DRAIN = 10.0  # seconds in-flight requests get to finish after SIGTERM


@dataclass(frozen=True)
class ServeOptions:
    """What ``latcli serve`` was asked; None leaves the inventory's choice."""

    host: str = "127.0.0.1"
    port: int = 8000
    interval: float | None = None
    strategy: str | None = None
    drain: float = DRAIN
    engine: Engine = "raw"
    state: Path | None = None
    no_state: bool = False
    verify: bool | str = True  # TLS to the agents: default trust store, a CA file, or off
    limits: Limits = field(default_factory=Limits)
    token: str | None = None  # LATCLI_SERVE_TOKEN
    no_auth: bool = False  # serve beyond loopback without a token, knowingly
    access_log: bool = False


__all__ = ["DRAIN", "ServeOptions"]
