"""Request shaping from the command line (``-H``, ``-m``, ``--body``, ``--timeout``), as hey,
oha, vegeta and curl users expect: parsed and checked here, applied to agents as plain values.

Sans-I/O: reading ``--body-file`` is the caller's; this module only turns text into values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from latcli.config.model import Agent, Inventory
from latcli.core.errors import ExitCode, LatcliError

# RFC 9110 §5.6.2 token: what a header name and a method may be made of.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Field values: visible ASCII, space and tab (RFC 9110 §5.5); no CR, LF or NUL.
_VALUE = re.compile(r"^[\t\x20-\x7e]*$")


class ShapeError(LatcliError):
    """A bad ``-H``, ``-m`` or body option; one line naming it (exit 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)


@dataclass(frozen=True)
class RequestShape:
    """What the command line changes in every request a command sends.

    ``headers`` are added to (and override) the inventory's; ``method`` and ``body`` shape the
    health request of http agents (the request a URL target means); ``timeout`` bounds each
    attempt, connect included.
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    method: str | None = None
    body: bytes | None = None
    timeout: float | None = None

    @property
    def empty(self) -> bool:
        return not self.headers and self.method is None and self.body is None and not self.timeout

    def apply(self, agent: Agent) -> Agent:
        """``agent`` with this shape; an empty shape returns it unchanged."""
        if self.empty:
            return agent
        health = agent.health
        if self.method is not None:
            health = replace(health, method=self.method)
        if self.body is not None:
            health = replace(health, body=self.body)
        shaped = replace(agent, headers={**agent.headers, **self.headers}, health=health)
        if self.timeout is None:
            return shaped
        t = self.timeout
        return replace(
            shaped,
            timeout=t,
            connect_timeout=min(agent.connect_timeout, t),
            health=replace(shaped.health, timeout=t),
        )

    def apply_all(self, agents: Iterable[Agent]) -> list[Agent]:
        return [self.apply(a) for a in agents]

    def apply_inventory(self, inv: Inventory) -> Inventory:
        """Every agent of ``inv`` (and its defaults, which ad-hoc URLs start from) shaped."""
        if self.empty:
            return inv
        defaults = self.apply(inv.defaults) if inv.defaults is not None else None
        return replace(inv, agents=tuple(self.apply_all(inv.agents)), defaults=defaults)


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` (curl's form) as a pair; ShapeError on anything else."""
    name, sep, value = text.partition(":")
    if not sep or not name:
        raise ShapeError(f"-H {text!r}: expected 'Name: value'")
    if not _TOKEN.match(name):
        raise ShapeError(f"-H {text!r}: {name!r} is not a header name (letters, digits, -)")
    value = value.strip(" \t")
    if not _VALUE.match(value):
        raise ShapeError(f"-H {text!r}: the value must be printable ASCII")
    return name, value


def parse_method(text: str) -> str:
    """An HTTP method, upper-cased as curl and hey send it (``-m post`` sends POST)."""
    if not _TOKEN.match(text):
        raise ShapeError(f"-m {text!r}: not an HTTP method (e.g. GET, POST, HEAD)")
    return text.upper()


def request_shape(
    headers: Sequence[str] = (),
    method: str | None = None,
    body: bytes | None = None,
    timeout: float | None = None,
) -> RequestShape:
    """The shape of the options as given; a later ``-H`` of the same name wins."""
    pairs: dict[str, str] = {}
    for text in headers:
        name, value = parse_header(text)
        for known in [k for k in pairs if k.lower() == name.lower()]:
            del pairs[known]
        pairs[name] = value
    return RequestShape(pairs, None if method is None else parse_method(method), body, timeout)
