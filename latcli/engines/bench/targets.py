"""``bench --targets FILE``: a mix of requests in vegeta's http format, parsed sans-I/O.

One target per block, blocks separated by blank lines, ``#`` starts a comment line::

    GET http://127.0.0.1:8001/health?verbose=1
    X-Token: abc

    POST http://127.0.0.1:8001/message/send
    Content-Type: application/json
    @body.json

The first line is ``METHOD URL``; then ``Name: value`` headers; an ``@FILE`` line (last)
names the body, relative to the targets file. Requests are sent in turn, round robin
(vegeta's default order). Reading the body files is the caller's (``read_body``).

Also what the TARGET argument names (:class:`Target`): an agent id, a type, a URL, or such a
file's mix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from latcli.config.model import Agent, Inventory
from latcli.config.selection import adhoc_agent
from latcli.config.shaping import RequestShape, ShapeError, parse_header, parse_method
from latcli.config.urls import http_url
from latcli.core.errors import ExitCode, LatcliError
from latcli.reports.bench_model import TargetKind


class TargetsError(LatcliError):
    """A targets file that does not parse: ``FILE:LINE: problem`` (exit 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)


@dataclass(frozen=True)
class TargetLine:
    """One request of the mix, and the line it was declared on (its name in the report)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    line: int = 0

    @property
    def name(self) -> str:
        return f"{self.method} {self.url}"


def parse_targets(
    text: str, source: str, read_body: Callable[[str], bytes]
) -> tuple[TargetLine, ...]:
    """Every target of ``text`` (``source`` names the file in errors); at least one."""
    targets: list[TargetLine] = []
    block: list[tuple[int, str]] = []
    for number, raw in enumerate([*text.splitlines(), ""], start=1):
        line = raw.strip()
        if line.startswith("#"):
            continue
        if line:
            block.append((number, line))
        elif block:
            targets.append(_target(block, source, read_body))
            block = []
    if not targets:
        raise TargetsError(f"{source}: no target (expected lines like 'GET http://host/path')")
    return tuple(targets)


def _target(
    block: list[tuple[int, str]], source: str, read_body: Callable[[str], bytes]
) -> TargetLine:
    first, request = block[0]
    method, _, url = request.partition(" ")
    url = url.strip()
    where = f"{source}:{first}"
    try:
        method = parse_method(method)
    except ShapeError:
        raise TargetsError(f"{where}: expected 'METHOD URL', got {request!r}") from None
    if http_url(url) is None or "#" in url:
        raise TargetsError(f"{where}: not an http(s) URL: {url!r}")
    headers: dict[str, str] = {}
    body: bytes | None = None
    for number, line in block[1:]:
        if body is not None:
            raise TargetsError(f"{source}:{number}: the @FILE body line must be the last")
        if line.startswith("@"):
            body = _body(line[1:].strip(), f"{source}:{number}", read_body)
            continue
        try:
            name, value = parse_header(line)
        except ShapeError as exc:
            raise TargetsError(f"{source}:{number}: {exc}".replace("-H ", "header ")) from None
        headers[name] = value
    return TargetLine(method, url, headers, body, first)


def _body(path: str, where: str, read_body: Callable[[str], bytes]) -> bytes:
    if not path:
        raise TargetsError(f"{where}: '@' needs a file name")
    try:
        return read_body(path)
    except OSError as exc:
        raise TargetsError(f"{where}: body file {path}: {exc.strerror or exc}") from None


# ---- what TARGET names -----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What TARGET named: one agent (an id or a URL) or every replica of a type."""

    kind: TargetKind
    name: str
    agents: tuple[Agent, ...]
    inventory: Inventory
    mix: tuple[TargetLine, ...] = ()  # kind "mix": the --targets file's requests, in turn


def mix_target(
    inv: Inventory, source: str, lines: tuple[TargetLine, ...], shape: RequestShape
) -> Target:
    """A --targets file as a target: each line's URL an ad-hoc agent (timeouts and headers from
    the inventory's defaults, then the command line's shape, then the line's own headers)."""
    agents = tuple(shape.apply(adhoc_agent(line.url, inv.defaults)) for line in lines)
    return Target("mix", source, agents, inv, lines)


def resolve_target(inv: Inventory, text: str) -> Target:
    """An inventory id, a type, or an http(s) URL (ad-hoc agent). Unknown names: LatcliError.

    A URL with a path or a query (``http://host/health``) is requested exactly as given for
    ``health``; a bare ``http://host:port`` gets the inventory's health path
    (:func:`~latcli.config.selection.adhoc_agent`, the rule of every command).
    """
    if "://" in text:
        return Target("url", text, (adhoc_agent(text, inv.defaults),), inv)
    by_id = [a for a in inv.agents if a.id == text]
    if by_id:
        return Target("agent", text, (by_id[0],), inv)
    by_type = tuple(a for a in inv.agents if a.type == text)
    if by_type:
        return Target("type", text, by_type, inv)
    ids = ", ".join(a.id for a in inv.agents)
    types = ", ".join(dict.fromkeys(a.type for a in inv.agents))
    raise LatcliError(f"unknown target {text!r} (agents: {ids}; types: {types}; or a URL)")


def shaped_target(
    inv: Inventory, text: str, shape: RequestShape, strategy: str | None = None
) -> Target:
    """:func:`resolve_target` with the command line's request shape on every agent it may
    send to, and a type's replicas picked by ``strategy`` (checked) when one is given."""
    if strategy is not None:
        inv = replace(inv, routing=replace(inv.routing, strategy=strategy))
    target = resolve_target(inv, text)
    return replace(
        target,
        agents=tuple(shape.apply_all(target.agents)),
        inventory=shape.apply_inventory(target.inventory),
    )
