"""``latcli send``: route one message to the best replica of one or more types."""

from __future__ import annotations

from typing import Annotated

import typer

from latcli.cli.options import (
    HeaderOpt,
    InventoryOpt,
    JsonOpt,
    NoStateOpt,
    StateOpt,
    request_shape_of,
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
        int | None, typer.Option(min=0, help="Failovers to other replicas. Default: inventory.")
    ] = None,
    timeout: Annotated[
        str | None, typer.Option(help="Bound on the whole send, failovers included, e.g. 3s.")
    ] = None,
    hedge: Annotated[
        bool, typer.Option(help="After the type's p95, also ask a second replica; first wins.")
    ] = False,
    state: StateOpt = None,
    no_state: NoStateOpt = False,
    inventory: InventoryOpt = None,
    json_out: JsonOpt = False,
    header: HeaderOpt = None,
) -> int:
    """Send MESSAGE to the fastest healthy replica of TYPE, failing over behind circuit breakers.

    The reply goes to stdout, the decision to stderr (→ weather-2 · p2c · 41 ms). Several types
    fan out at once. Routing state (EWMA, breakers) is kept between runs.
    Example: `latcli send weather "will it rain?"`
    """
    import asyncio
    import sys

    from latcli.cli.runtime import parse_seconds
    from latcli.engine import run_send
    from latcli.errors import ExitCode
    from latcli.inventory import load_inventory
    from latcli.render.send_view import decision_lines, reply_text, send_json

    wanted = [t.strip() for t in types.split(",") if t.strip()]
    if not wanted:
        raise typer.BadParameter("give at least one type", param_hint="TYPES")
    limit = parse_seconds(timeout, "--timeout")
    inv = request_shape_of(header).apply_inventory(load_inventory(inventory))
    fan = asyncio.run(
        run_send(inv, wanted, message, strategy, retries, limit, hedge, state, no_state)
    )
    if json_out:
        print(send_json(fan))
    else:
        text = reply_text(fan)
        if text:
            print(text)
    for line in decision_lines(fan) if not json_out else []:
        print(line, file=sys.stderr)
    return ExitCode.OK if fan.ok else ExitCode.FAILED
