"""Which agents a command works on: inventory agents by id, type or URL, and ad-hoc URLs.

One rule in every command (probe, watch, send, bench, serve, demo): a selector names an id,
else a type, else a URL; an unknown URL becomes an ad-hoc agent built from the inventory's
defaults. Unknown names raise LatcliError with what is known and a did-you-mean for addresses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from latcli.config.model import BLANK_AGENT, Agent, Inventory
from latcli.config.urls import host_of, http_url, port_of
from latcli.core.errors import LatcliError
from latcli.core.redact import redact_url


def adhoc_agent(url: str, defaults: Agent | None = None) -> Agent:
    """An agent for a URL given on the command line.

    One rule in every command: a URL with a path (or a query) is requested as given
    (``http://h/health`` checks ``/health``, ``http://h/x?y=1`` checks ``/x?y=1``); a bare
    origin (``http://h:8001``) gets the health path. Messages go to ``{url}/message/send``.
    id is ``host:port`` (plus the path and query, if any), type ``adhoc``, protocol http; the
    other settings come from ``defaults`` (``Inventory.defaults``). A bad URL raises LatcliError.
    """
    parts = http_url(url)
    if parts is None or parts.fragment:
        shown = redact_url(url)
        raise LatcliError(f"not an http(s) URL: {shown!r} (try http://127.0.0.1:8001)")
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    base = defaults or BLANK_AGENT
    # As typed: a trailing "/" kept, "/" for an origin with a query; else the health path.
    typed = parts.path[len(path) :] if path else "/"
    rest = typed if parts.path not in ("", "/") or parts.query else base.health.path
    return replace(
        base,
        id=f"{host_of(parts)}:{port_of(parts)}{path}{query}",
        type="adhoc",
        url=f"{parts.scheme}://{parts.netloc}{path}",
        protocol="http",
        demo=None,
        adhoc=True,
        health=replace(base.health, path=rest + query),
    )


def select_agents(
    inv: Inventory, selectors: Sequence[str], type_filter: str | None = None
) -> list[Agent]:
    """The agents named by ``selectors`` (ids, types or URLs), in inventory order, then
    ad-hoc agents in the order given; no selector means every agent. No duplicates.

    ``type_filter`` keeps only agents of that type. Unknown names raise LatcliError.
    """
    picked: set[str] = set()
    extra: dict[str, Agent] = {}
    for selector in selectors:
        matches = _matches(inv, selector)
        if matches:
            picked.update(a.id for a in matches)
        elif "://" in selector:
            agent = adhoc_agent(selector, inv.defaults)
            extra.setdefault(agent.id, agent)
        else:
            hint = _as_url(selector)
            raise LatcliError(f"unknown agent or type {selector!r}{hint} ({_known(inv)})")
    chosen = [a for a in inv.agents if not selectors or a.id in picked] + list(extra.values())
    if type_filter is None:
        return chosen
    known = [*inv.agents, *chosen]
    if type_filter not in {a.type for a in known}:
        raise LatcliError(f"unknown type {type_filter!r} (types: {_types(known)})")
    return [a for a in chosen if a.type == type_filter]


def _matches(inv: Inventory, selector: str) -> list[Agent]:
    by_id = [a for a in inv.agents if a.id == selector]
    if by_id:
        return by_id
    by_type = [a for a in inv.agents if a.type == selector]
    if by_type or "://" not in selector:
        return by_type
    key = _url_key(selector)
    return [a for a in inv.agents if key is not None and _url_key(a.url) == key]


def _url_key(url: str) -> tuple[str, str, int, str, str] | None:
    """What makes two URLs the same agent: scheme, host, port (defaults filled in), path and
    query (a URL with a query is an ad-hoc request, never an inventory agent)."""
    parts = http_url(url)
    if parts is None:
        return None
    return (parts.scheme, parts.hostname or "", port_of(parts), parts.path.rstrip("/"), parts.query)


_HOST_PORT = re.compile(
    r"^(localhost|[\w.-]*\.[\w.-]*|\[[0-9a-fA-F:]+\])(:\d{1,5})?(/\S*)?$|^[\w.-]+:\d{1,5}(/\S*)?$"
)


def _as_url(selector: str) -> str:
    """``: did you mean http://localhost:8001?`` for what looks like an address without scheme."""
    return f": did you mean http://{selector}?" if _HOST_PORT.match(selector) else ""


def _types(agents: Sequence[Agent]) -> str:
    return ", ".join(dict.fromkeys(a.type for a in agents)) or "none"


def _known(inv: Inventory) -> str:
    ids = ", ".join(a.id for a in inv.agents) or "none"
    return f"agents: {ids}; types: {_types(inv.agents)}"
