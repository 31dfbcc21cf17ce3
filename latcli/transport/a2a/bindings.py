"""Which A2A interface of an agent card latcli talks to, and whether it may (DESIGN §2, §7).

A card lists interfaces: 1.0 in ``supportedInterfaces[]`` (``url``, ``protocolBinding``,
``protocolVersion``), 0.3 as ``url`` + ``preferredTransport`` + ``additionalInterfaces[]``.
latcli speaks JSON-RPC and HTTP+JSON; it prefers spec 1.0, then JSON-RPC (the binding every
SDK serves), unless the inventory forces a binding. The chosen URL must be on the agent's own
origin, or one the inventory allows: a card must not send the inventory's token elsewhere.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from latcli.config.model import A2A_BINDINGS as BINDINGS
from latcli.config.model import A2ABinding as Binding

Version = Literal["0.3", "1.0"]
# The card's spellings (1.0 ``protocolBinding``, 0.3 ``transport``) -> latcli's names.
_CARD_BINDINGS = {"JSONRPC": "jsonrpc", "HTTP+JSON": "http+json", "REST": "http+json"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Interface:
    """One interface a card offers; ``binding`` is the card's word when latcli does not speak it."""

    url: str
    binding: str
    version: Version

    @property
    def spoken(self) -> bool:
        return self.binding in BINDINGS


class CardRefused(ValueError):
    """The card cannot be used: no interface latcli speaks, or one on a foreign origin."""


def interfaces(doc: dict[str, Any], base_url: str) -> list[Interface]:
    """Every interface the card lists, URLs made absolute against ``base_url``."""
    found: list[Interface] = []
    for item in doc.get("supportedInterfaces") or []:
        if isinstance(item, dict):
            version: Version = (
                "0.3" if str(item.get("protocolVersion", "")).startswith("0.") else "1.0"
            )
            found.append(
                _interface(item.get("url"), item.get("protocolBinding"), version, base_url)
            )
    if isinstance(doc.get("url"), str) and doc["url"]:
        found.append(_interface(doc["url"], doc.get("preferredTransport"), "0.3", base_url))
    for item in doc.get("additionalInterfaces") or []:
        if isinstance(item, dict):
            found.append(_interface(item.get("url"), item.get("transport"), "0.3", base_url))
    if not found:  # a card that names no interface: JSON-RPC 0.3 at the agent's URL
        found.append(Interface(base_url, "jsonrpc", "0.3"))
    return found


def _interface(url: object, binding: object, version: Version, base_url: str) -> Interface:
    word = str(binding or "JSONRPC").strip().upper()
    absolute = urljoin(base_url, url) if isinstance(url, str) and url else base_url
    return Interface(absolute, _CARD_BINDINGS.get(word, word), version)


def choose(
    offered: Iterable[Interface],
    forced: Binding | None = None,
    agent_url: str = "",
    allowed: Iterable[str] = (),
) -> Interface:
    """The interface to use: spec 1.0 over 0.3, JSON-RPC over HTTP+JSON (``forced`` wins).

    Raises :class:`CardRefused` with one line a user can act on.
    """
    offered = list(offered)
    spoken = [i for i in offered if i.spoken and (forced is None or i.binding == forced)]
    if not spoken:
        raise CardRefused(_none_spoken(offered, forced))
    best = min(spoken, key=lambda i: (i.version != "1.0", BINDINGS.index(i.binding)))
    if agent_url:
        check_origin(best.url, agent_url, allowed)
    return best


def _none_spoken(offered: list[Interface], forced: Binding | None) -> str:
    names = ", ".join(sorted({i.binding for i in offered}))
    if forced is not None and any(i.spoken for i in offered):
        return f"the inventory asks for binding {forced} but the card offers only {names}"
    return f"the agent card offers only {names}; latcli speaks JSON-RPC and HTTP+JSON"


@functools.lru_cache(maxsize=4096)  # every request checks its URL: parse each URL once
def origin(url: str) -> str:
    """``scheme://host:port`` with the default port filled in; '' when ``url`` has no host."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return ""
    if not parts.hostname or port is None:
        return ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


def same_origin(url: str, agent_url: str, allowed: Iterable[str] = ()) -> bool:
    """Whether credentials meant for ``agent_url`` may go to ``url``."""
    target = origin(url)
    return bool(target) and (target == origin(agent_url) or target in {origin(a) for a in allowed})


def check_origin(url: str, agent_url: str, allowed: Iterable[str] = ()) -> None:
    """Raise :class:`CardRefused` naming both origins when ``url`` is off the agent's origin."""
    if same_origin(url, agent_url, allowed):
        return
    target = origin(url) or repr(url)
    raise CardRefused(
        f"agent card points at {target}, not the agent's origin {origin(agent_url)} "
        f'(refused; allow it with a2a: {{allow_origins: ["{target}"]}})'
    )
