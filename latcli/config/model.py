"""The inventory as frozen dataclasses (DESIGN §1): what every command reads.

:mod:`latcli.config.loading` builds these from agents.yaml; ad-hoc URLs become an
:class:`Agent` through :mod:`latcli.config.selection`. Header values are secrets: reprs hide them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from latcli.core.breaker import BreakerConfig

Protocol = Literal["http", "a2a"]
PROTOCOLS: tuple[str, ...] = ("http", "a2a")
DEMO_APPS: tuple[str, ...] = ("agent", "assistant")
STRATEGIES: tuple[str, ...] = ("p2c", "fastest", "round_robin", "least_loaded", "weighted")
A2ABinding = Literal["jsonrpc", "http+json"]
A2A_BINDINGS: tuple[A2ABinding, ...] = ("jsonrpc", "http+json")
EwmaSignal = Literal["first_artifact", "total"]
EWMA_SIGNALS: tuple[EwmaSignal, ...] = ("first_artifact", "total")


@dataclass(frozen=True)
class CanaryConfig:
    """A real message sent beside the health checks (issue 12 item 5): the card GET says an
    agent is up, the canary that its model answers."""

    message: str = "ping"
    every: float = 30.0  # seconds between canaries (one in flight at most)
    # Searched in the answer's text (re.search); None: any completed answer passes.
    expect: re.Pattern[str] | None = None
    # Whole canary, first byte to last chunk; None: the agent's message ``timeout`` (an LLM
    # answers in seconds: the 1 s health timeout would fail every canary).
    timeout: float | None = None


@dataclass(frozen=True)
class HealthConfig:
    path: str = "/health"  # may carry a ?query (an ad-hoc URL's)
    interval: float = 5.0  # seconds
    timeout: float = 1.0  # seconds
    method: str = "GET"  # -m/--method on the command line
    body: bytes | None = field(default=None, repr=False)  # --body / --body-file
    # HAProxy's defaults (`rise 2 fall 3`): watch calls an agent up after 2 good checks in a
    # row and down after 3 bad ones, so one lost packet does not flap it.
    rise: int = 2
    fall: int = 3
    canary: CanaryConfig | None = None  # None: health checks only


@dataclass(frozen=True)
class EwmaConfig:
    decay: float = 10.0  # seconds (tau)
    # What a message's sample is: None = first_artifact (time to first token) for a streamed
    # send, total otherwise (LiteLLM's latency routing does the same for streaming).
    signal: EwmaSignal | None = None


@dataclass(frozen=True)
class RoutingConfig:
    strategy: str = "p2c"
    retries: int = 1
    retry_budget: float = 0.2  # fraction


@dataclass(frozen=True)
class DemoConfig:
    """How ``latcli demo`` simulates this agent (ignored by every other command)."""

    latency: str = "fixed 5ms"  # parsed by latcli.core.distribution.parse_distribution
    errors: float = 0.0  # fraction of requests that fail
    a2a_version: Literal["0.3", "1.0"] = "1.0"  # only for protocol a2a
    # At most this many messages in service at once, the rest queued: capacity is known by
    # construction (concurrency_limit / latency), what `latcli capacity` is checked against.
    concurrency_limit: int | None = None
    # `app: assistant` runs latcli.demo.assistant, an LLM-like A2A 1.0 agent; the keys
    # below are its behaviour (the other demo agents ignore them).
    app: Literal["agent", "assistant"] = "agent"
    ttft: str = "lognormal 400ms 0.5"  # think time before the first token (a distribution)
    tokens_per_s: float = 50.0
    chunk_tokens: int = 5  # tokens per streamed artifact chunk
    answer_tokens: int = 40
    fail_tasks: float = 0.0  # share of tasks that end failed ("model overloaded")
    input_required: float = 0.0  # share of tasks that stop at input-required
    rate_limited: float = 0.0  # seconds of HTTP 429 + Retry-After from start
    seed: int | None = None  # the assistant's random source, unless `latcli demo` gives one


@dataclass(frozen=True)
class A2AConfig:
    """How latcli talks to an A2A agent beyond what its card says (DESIGN §2, §7)."""

    binding: A2ABinding | None = None  # None: chosen from the card (JSON-RPC preferred)
    # Origins (``scheme://host:port``) besides the agent's own that its card may point at;
    # the inventory's headers go there too.
    allow_origins: tuple[str, ...] = ()


@dataclass(frozen=True)
class Agent:
    id: str
    type: str
    url: str  # no trailing slash
    protocol: Protocol = "http"
    weight: float = 1.0
    timeout: float = 5.0
    connect_timeout: float = 1.0
    health: HealthConfig = field(default_factory=HealthConfig)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    breaker: BreakerConfig = field(default_factory=BreakerConfig)
    ewma: EwmaConfig = field(default_factory=EwmaConfig)
    demo: DemoConfig | None = None
    adhoc: bool = False  # made from a URL on the command line
    a2a: A2AConfig = field(default_factory=A2AConfig)

    def shown_headers(self) -> dict[str, str]:
        """Headers as they may be printed: every value is ``***``."""
        return {k: "***" for k in self.headers}


@dataclass(frozen=True)
class Inventory:
    """A loaded inventory.

    ``defaults`` is the file's ``defaults`` section applied to an :class:`Agent`
    whose id, type and url are empty: the template :func:`adhoc_agent` copies
    settings from. None means "no inventory file" (plain Agent defaults apply).
    """

    path: Path | None
    agents: tuple[Agent, ...]
    routing: RoutingConfig = field(default_factory=RoutingConfig)
    sla: Mapping[str, str] = field(default_factory=dict)  # name -> expression text
    defaults: Agent | None = None


# The template ad-hoc agents and the `defaults` section start from: plain Agent defaults.
BLANK_AGENT = Agent("", "", "")
