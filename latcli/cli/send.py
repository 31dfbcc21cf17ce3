"""``latcli send``: route one message to the best replica of one or more types."""

from __future__ import annotations

from typing import Annotated

import typer

from latcli.cli.options import (
    CaCertOpt,
    HeaderOpt,
    InsecureOpt,
    InventoryOpt,
    JsonOpt,
    NoStateOpt,
    StateOpt,
    request_shape_of,
    tls_verify,
)


def send(
    types: Annotated[str, typer.Argument(help="Agent type, or several: weather,calendar.")],
    message: Annotated[str, typer.Argument(help="The message text.")],
    strategy: Annotated[
        str | None,
        typer.Option(
            help="p2c, fastest, round_robin, least_loaded or weighted. Default: inventory."
        ),
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Retries: other replicas first, the same one when no other is admissible."
            " Default: inventory.",
        ),
    ] = None,
    timeout: Annotated[
        str | None, typer.Option(help="Bound on the whole send, failovers included, e.g. 3s.")
    ] = None,
    hedge: Annotated[
        bool, typer.Option(help="After the type's p95, also ask a second replica; first wins.")
    ] = False,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Write the reply exactly as the agent sent it, even to a terminal (by default "
            "control characters such as escape sequences are shown escaped on a terminal; "
            "piped output is always as sent).",
        ),
    ] = False,
    state: StateOpt = None,
    no_state: NoStateOpt = False,
    inventory: InventoryOpt = None,
    json_out: JsonOpt = False,
    cacert: CaCertOpt = None,
    insecure: InsecureOpt = False,
    header: HeaderOpt = None,
) -> int:
    """Send MESSAGE to the fastest healthy replica of TYPE, failing over behind circuit breakers.

    The reply goes to stdout, the decision to stderr (→ weather-2 · p2c · 41 ms). Several types
    fan out at once. Routing state (EWMA, breakers) is kept between runs. On a terminal the
    reply's control characters (escape sequences, bare CR) are shown escaped;
    piped, it is written as sent; --raw writes it as sent to a terminal too.
    Example: `latcli send weather "will it rain?"`
    """
    import asyncio
    import sys

    from latcli.cli.runtime import parse_seconds
    from latcli.engine import run_send
    from latcli.errors import ExitCode
    from latcli.inventory import load_inventory
    from latcli.render.send_view import decision_lines, reply_text, send_json
    from latcli.render.text import escape_controls, terminal_reply

    wanted = [t.strip() for t in types.split(",") if t.strip()]
    if not wanted:
        raise typer.BadParameter("give at least one type", param_hint="TYPES")
    limit = parse_seconds(timeout, "--timeout")
    verify = tls_verify(cacert, insecure)
    inv = request_shape_of(header).apply_inventory(load_inventory(inventory))
    fan = asyncio.run(
        run_send(inv, wanted, message, strategy, retries, limit, hedge, state, no_state, verify)
    )
    if json_out:
        print(send_json(fan))
    else:
        text = reply_text(fan)
        if text:
            _write(terminal_reply(text, terminal=sys.stdout.isatty(), raw=raw) + "\n")
    for line in decision_lines(fan) if not json_out else []:
        print(escape_controls(line) if sys.stderr.isatty() else line, file=sys.stderr)
    return ExitCode.OK if fan.ok else ExitCode.FAILED


def _write(text: str) -> None:
    """Reply text to stdout as UTF-8; a lone surrogate (valid JSON, not valid UTF-8) is
    written as U+FFFD instead of ending the command."""
    import sys

    sys.stdout.flush()
    out = getattr(sys.stdout, "buffer", None)
    if out is None:  # a text-only stream (tests): let it encode
        sys.stdout.write(text)
        return
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "replace")
    out.write(data)
    out.flush()
