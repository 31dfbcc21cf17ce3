"""The inventory as frozen dataclasses (DESIGN §1): what every command reads.

Each field is declared once: its file form (type, constraints, description) rides on the
field (:mod:`latcli.config.file_keys`) and :mod:`latcli.config.schema` derives the sections.

:mod:`latcli.config.loading` builds these from agents.yaml; ad-hoc URLs become an
:class:`Agent` through :mod:`latcli.config.selection`. Header values are secrets: reprs hide them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from msgspec import Meta

from latcli.config.file_keys import (
    AtLeastOne,
    Duration,
    Name,
    Percent,
    described,
    file_key,
    key,
    nested,
    one_of,
)
from latcli.core import strategies
from latcli.core.breaker import BreakerConfig

Protocol = Literal["http", "a2a"]
PROTOCOLS: tuple[str, ...] = ("http", "a2a")
DEMO_APPS: tuple[str, ...] = ("agent", "assistant")
STRATEGIES: tuple[str, ...] = tuple(strategies.STRATEGIES)  # the one list: latcli.core.strategies
A2ABinding = Literal["jsonrpc", "http+json"]
A2A_BINDINGS: tuple[A2ABinding, ...] = ("jsonrpc", "http+json")
EwmaSignal = Literal["first_artifact", "total"]
EWMA_SIGNALS: tuple[EwmaSignal, ...] = ("first_artifact", "total")

_NON_EMPTY = Annotated[str, Meta(min_length=1)]
_SIGNAL_DOC = (
    "What a message teaches the EWMA: first_artifact (time to first "
    "token) or total; default: first_artifact for streamed sends, total otherwise."
)


@dataclass(frozen=True)
class CanaryConfig:
    """A real message sent beside the health checks (issue 12 item 5): the card GET says an
    agent is up, the canary that its model answers."""

    message: str = key("ping", described(_NON_EMPTY, "The text sent (default: ping)."))
    # Seconds between canaries (one in flight at most).
    every: float = key(30.0, described(float | str, "Time between canaries, e.g. 30s (default)."))
    # Searched in the answer's text (re.search); None: any completed answer passes.
    expect: re.Pattern[str] | None = key(
        None, described(str, "A regular expression the answer's text must contain.")
    )
    # Whole canary, first byte to last chunk; None: the agent's message ``timeout`` (an LLM
    # answers in seconds: the 1 s health timeout would fail every canary).
    timeout: float | None = key(
        None, described(float | str, "Whole canary; default: the agent's message timeout.")
    )


@dataclass(frozen=True)
class HealthConfig:
    path: str = key("/health", str)  # may carry a ?query (an ad-hoc URL's)
    interval: float = key(5.0, Duration)  # seconds
    timeout: float = key(1.0, Duration)  # seconds
    method: str = "GET"  # -m/--method on the command line
    body: bytes | None = field(default=None, repr=False)  # --body / --body-file
    # HAProxy's defaults (`rise 2 fall 3`): watch calls an agent up after 2 good checks in a
    # row and down after 3 bad ones, so one lost packet does not flap it.
    rise: int = key(2, described(AtLeastOne, "Good checks in a row before watch says up."))
    fall: int = key(3, described(AtLeastOne, "Bad checks in a row before watch says down."))
    # None: health checks only; `canary: null` removes the defaults' canary.
    canary: CanaryConfig | None = key(None, CanaryConfig, nullable=True)


@dataclass(frozen=True)
class EwmaConfig:
    decay: float = key(10.0, Duration)  # seconds (tau)
    # What a message's sample is: None = first_artifact (time to first token) for a streamed
    # send, total otherwise (LiteLLM's latency routing does the same for streaming).
    signal: EwmaSignal | None = key(None, one_of(EWMA_SIGNALS, _SIGNAL_DOC))


@dataclass(frozen=True)
class RoutingConfig:
    strategy: str = key("p2c", one_of(STRATEGIES))
    retries: int = key(1, Annotated[int, Meta(ge=0)])
    retry_budget: float = key(0.2, Percent)  # fraction


@dataclass(frozen=True)
class DemoConfig:
    """How ``latcli demo`` simulates this agent (ignored by every other command)."""

    # Parsed by latcli.core.distribution.parse_distribution.
    latency: str = key(
        "fixed 5ms", described(str, "fixed 20ms | normal 20ms 5ms | lognormal 20ms 0.6")
    )
    errors: float = key(0.0, Percent)  # fraction of requests that fail
    # Only for protocol a2a.
    a2a_version: Literal["0.3", "1.0"] = key(
        "1.0", described(str | float, 'A2A spec version: "0.3" or "1.0".')
    )
    # At most this many messages in service at once, the rest queued: capacity is known by
    # construction (concurrency_limit / latency), what `latcli capacity` is checked against.
    concurrency_limit: int | None = key(
        None, described(AtLeastOne, "Messages served at once; the rest queue.")
    )
    # `app: assistant` runs latcli.demo.assistant, an LLM-like A2A 1.0 agent; the keys
    # below are its behaviour (the other demo agents ignore them).
    app: Literal["agent", "assistant"] = key(
        "agent", one_of(DEMO_APPS, "agent (default) or assistant: an LLM-like A2A 1.0 agent")
    )
    # Think time before the first token (a distribution).
    ttft: str = key(
        "lognormal 400ms 0.5",
        described(str, "Assistant's time to first token: lognormal 400ms 0.5"),
    )
    tokens_per_s: float = key(50.0, Annotated[float, Meta(gt=0)])
    # Tokens per streamed artifact chunk.
    chunk_tokens: int = key(5, described(AtLeastOne, "Tokens per streamed chunk."))
    answer_tokens: int = key(40, AtLeastOne)
    fail_tasks: float = key(0.0, Percent)  # share of tasks that end failed ("model overloaded")
    input_required: float = key(0.0, Percent)  # share of tasks that stop at input-required
    # Seconds of HTTP 429 + Retry-After from start.
    rate_limited: float = key(
        0.0, described(float | str, "Answer HTTP 429 for this long from start.")
    )
    seed: int | None = key(
        None, int
    )  # the assistant's random source, unless `latcli demo` gives one


@dataclass(frozen=True)
class A2AConfig:
    """How latcli talks to an A2A agent beyond what its card says (DESIGN §2, §7)."""

    # None: chosen from the card (JSON-RPC preferred).
    binding: A2ABinding | None = key(
        None,
        one_of(A2A_BINDINGS, "jsonrpc or http+json; default: from the card, JSON-RPC preferred."),
    )
    # Origins (``scheme://host:port``) besides the agent's own that its card may point at;
    # the inventory's headers go there too.
    allow_origins: tuple[str, ...] = key(
        (),
        described(
            list[str], "Other origins (https://host:443) the card may name; headers go there."
        ),
    )


@dataclass(frozen=True)
class Agent:
    id: str = field(metadata=file_key(Name, per_agent=True))
    type: str = field(metadata=file_key(Name, per_agent=True))
    # No trailing slash.
    url: str = field(
        metadata=file_key(described(str, "http(s)://host[:port][/path]"), per_agent=True)
    )
    protocol: Protocol = key("http", one_of(PROTOCOLS))
    weight: float = key(1.0, Annotated[float, Meta(ge=0)])
    timeout: float = key(5.0, Duration)
    connect_timeout: float = key(1.0, Duration)
    health: HealthConfig = nested(HealthConfig)
    headers: Mapping[str, str] = field(
        default_factory=dict,
        repr=False,
        metadata=file_key(
            described(dict[str, str], "Sent with every request; values support ${VAR}.")
        ),
    )
    breaker: BreakerConfig = nested(BreakerConfig)
    ewma: EwmaConfig = nested(EwmaConfig)
    demo: DemoConfig | None = key(None, DemoConfig, per_agent=True)
    adhoc: bool = False  # made from a URL on the command line
    a2a: A2AConfig = nested(A2AConfig)

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
