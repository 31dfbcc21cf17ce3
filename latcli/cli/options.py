"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from latcli.config.shaping import RequestShape
    from latcli.transport.factory import Engine


def _note_demo_fleet(ctx: typer.Context, value: Path | None) -> Path | None:
    """Say on stderr (once) when no inventory is found and the built-in demo fleet stands in:
    run outside a project, `latcli probe` would otherwise report on agents the user never
    named. `latcli demo` itself is about that fleet: it says nothing."""
    import os
    import sys

    if value is None and ctx.info_name != "demo" and not ctx.meta.get("latcli.noted"):
        if _only_urls(ctx) or ctx.resilient_parsing:  # resilient: completing, not running
            return value
        from latcli.config.loading import DEMO_INVENTORY, find_inventory

        if find_inventory(None, os.environ) == DEMO_INVENTORY:
            ctx.meta["latcli.noted"] = True
            print(
                "latcli: no agents.yaml here and no $LATCLI_INVENTORY: using the built-in demo"
                " fleet (`latcli demo` starts it; -i FILE names another)",
                file=sys.stderr,
            )
    return value


def _only_urls(ctx: typer.Context) -> bool:
    """True when the command names only URLs (``bench http://...``): no demo agent is used.

    An option left out is processed after every parameter the command line gave, so the
    targets are already in ``ctx.params`` when the inventory's callback runs.
    """
    named: list[str] = []
    for key in ("agents", "target", "targets"):
        value = ctx.params.get(key)
        items = value if isinstance(value, list | tuple) else [value] if value else []
        named += [part for item in items for part in str(item).split(",") if part.strip()]
    return bool(named) and all("://" in part for part in named)


def _complete_agents(incomplete: str) -> list[str]:
    """Shell completion of agent ids and types from the inventory the command would load."""
    import os

    from latcli.config.loading import load_inventory
    from latcli.core.errors import LatcliError

    try:
        inv = load_inventory(None, os.environ)
    except LatcliError:
        return []
    names = [*dict.fromkeys(a.type for a in inv.agents), *(a.id for a in inv.agents)]
    return [n for n in names if n.startswith(incomplete)]


InventoryOpt = Annotated[
    Path | None,
    typer.Option(
        "--inventory",
        "-i",
        help="Inventory file. Default: $LATCLI_INVENTORY, else ./agents.yaml, else the demo fleet.",
        show_default=False,
        callback=_note_demo_fleet,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Machine output on stdout (versioned by its 'schema' field).")
]
SelectorsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Agent ids, types or URLs (ad-hoc agents: a URL with a path or a query is "
        "requested as given, a bare origin gets the health path). Default: every agent.",
        show_default=False,
        autocompletion=_complete_agents,
    ),
]
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="HTTP engine: auto (raw from 100 agents on, else httpx), httpx or raw.",
    ),
]


def check_engine(value: str) -> Engine:
    """``--engine`` text, checked against the engines there are (usage error otherwise)."""
    from latcli.transport.factory import ENGINES

    for engine in ENGINES:
        if engine == value:
            return engine
    raise typer.BadParameter(f"choose one of: {', '.join(ENGINES)}", param_hint="--engine")


StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state",
        help="Routing state file. Default: $LATCLI_STATE, else $XDG_STATE_HOME/latcli/state.db,"
        " else ~/.local/state/latcli/state.db. Created user-only (0600; its directory 0700).",
        show_default=False,
    ),
]
NoStateOpt = Annotated[
    bool, typer.Option("--no-state", help="Neither read nor save routing state.")
]


# What may follow --sla as its value: an expression has a comparator; a word names the
# inventory's targets (all of them, or one endpoint's).
SLA_WORDS = frozenset({"inventory", "health", "discovery", "message", "coordination", "stream"})


def bare_sla(argv: list[str]) -> list[str]:
    """``--sla`` given without a value means ``--sla inventory`` (DESIGN §5).

    Click options take exactly one value, so a bare ``--sla`` (last, before another option,
    or before the TARGET) gets the word filled in here: a token is ``--sla``'s value only
    when it is an expression (it has ``<``, ``>`` or ``=``) or one of :data:`SLA_WORDS`.
    """
    out: list[str] = []
    for i, token in enumerate(argv):
        out.append(token)
        if token == "--":
            return out + argv[i + 1 :]
        if token == "--sla":
            following = argv[i + 1] if i + 1 < len(argv) else None
            if following is None or not _sla_value(following):
                out.append("inventory")
    return out


def _sla_value(token: str) -> bool:
    if token.startswith("-"):
        return False
    return any(c in token for c in "<>=") or token.strip().lower() in SLA_WORDS


# ---- TLS to the agents (every command that sends) -------------------------------------------

CaCertOpt = Annotated[
    Path | None,
    typer.Option(
        "--cacert",
        help="Verify agents' TLS certificates against this CA bundle (PEM), e.g. a lab CA."
        " Default: certifi's bundle, or $SSL_CERT_FILE when set.",
        show_default=False,
    ),
]
InsecureOpt = Annotated[
    bool,
    typer.Option(
        "--insecure",
        help="Do not verify agents' TLS certificates (self-signed lab agents only: anyone on"
        " the path can then read and change the traffic, tokens included).",
    ),
]
INSECURE_WARNING = (
    "latcli: WARNING: --insecure: TLS certificates are NOT verified; "
    "anyone on the path can read and change this traffic, tokens included"
)


def tls_verify(cacert: Path | None, insecure: bool) -> bool | str:
    """``--cacert`` / ``--insecure`` as an engine's ``verify``: True (the default trust store),
    a CA file's path, or False (after one loud warning on stderr). A missing or unreadable CA
    file is a usage error (exit 2), before anything is sent."""
    import ssl
    import sys

    from latcli.core.errors import LatcliError

    if cacert is not None and insecure:
        raise LatcliError("--cacert and --insecure exclude each other")
    if insecure:
        print(INSECURE_WARNING, file=sys.stderr, flush=True)
        return False
    if cacert is None:
        return True
    if not cacert.is_file():
        why = "is a directory, not a file" if cacert.is_dir() else "file not found"
        raise LatcliError(f"--cacert {cacert}: {why}")
    try:  # the engines would fail on it at the first https request, once per agent
        ssl.create_default_context(cafile=str(cacert))
    except (ssl.SSLError, OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise LatcliError(f"--cacert {cacert}: not a usable PEM CA file ({why})") from None
    return str(cacert)


# ---- request shaping (bench, capacity, probe, send, watch) ----------------------------------

HeaderOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--header",
        "-H",
        metavar="'NAME: VALUE'",
        help="Add a header to every request (repeat); overrides the inventory's.",
        show_default=False,
    ),
]
MethodOpt = Annotated[
    str | None,
    typer.Option(
        "--method",
        "-m",
        metavar="METHOD",
        help="HTTP method of the health request (a URL's request). Default: GET.",
        show_default=False,
    ),
]
BodyOpt = Annotated[
    str | None,
    typer.Option(
        "--body", metavar="TEXT", help="Body of the health request (a URL's request).",
        show_default=False,
    ),
]  # fmt: skip
BodyFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--body-file", metavar="FILE", help="Body of the health request, read from FILE.",
        show_default=False,
    ),
]  # fmt: skip
TimeoutOpt = Annotated[
    str | None,
    typer.Option(
        "--timeout",
        metavar="DURATION",
        help="Bound on each request, connect included, e.g. 3s. Default: the inventory's "
        "timeout (health.timeout for health checks).",
        show_default=False,
    ),
]
URL_RULE = (
    "A URL with a path or a query is requested as given (http://h/health GETs /health); a "
    "bare origin (http://h:8001) gets the inventory's health path."
)


def request_shape_of(
    headers: list[str] | None,
    method: str | None = None,
    body: str | None = None,
    body_file: Path | None = None,
    timeout: str | None = None,
) -> RequestShape:
    """The request options as one value; bad text or an unreadable file is exit 2."""
    from latcli.cli.runtime import parse_seconds
    from latcli.config.shaping import ShapeError, request_shape

    if body is not None and body_file is not None:
        raise typer.BadParameter("--body and --body-file exclude each other", param_hint="--body")
    data = body.encode("utf-8") if body is not None else None
    if body_file is not None:
        try:
            data = body_file.read_bytes()
        except OSError as exc:
            raise ShapeError(f"--body-file {body_file}: {exc.strerror or exc}") from None
    seconds = parse_seconds(timeout, "--timeout")
    return request_shape(headers or (), method, data, seconds)


def _check_strategy(value: str | None) -> str | None:
    from latcli.config.model import STRATEGIES

    if value is None or value in STRATEGIES:
        return value
    raise typer.BadParameter(f"choose one of: {', '.join(STRATEGIES)}")


StrategyOpt = Annotated[
    str | None,
    typer.Option(
        "--strategy",
        metavar="STRATEGY",
        callback=_check_strategy,
        help="How a type's requests pick a replica: p2c, fastest, round_robin, least_loaded or "
        "weighted. Default: the inventory's routing.strategy.",
        show_default=False,
    ),
]
