"""``latcli watch``: the live dashboard, or one JSON object per tick when piped."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from latcli.cli.options import (
    CaCertOpt,
    HeaderOpt,
    InsecureOpt,
    InventoryOpt,
    JsonOpt,
    NoStateOpt,
    SelectorsArg,
    StateOpt,
    TimeoutOpt,
    request_shape_of,
    tls_verify,
)


def watch(
    agents: SelectorsArg = None,
    interval: Annotated[
        str | None,
        typer.Option(help="Time between checks and ticks, e.g. 2s. Default: health.interval."),
    ] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Only agents of this type.")] = None,
    count: Annotated[int | None, typer.Option("--count", min=1, help="Stop after N ticks.")] = None,
    events: Annotated[
        Path | None, typer.Option(help="Append every event to this file as JSON lines.")
    ] = None,
    alert_webhook: Annotated[
        str | None,
        typer.Option(
            help="POST each tick's events as JSON to this URL (shown as scheme and host only:"
            " a webhook URL is a secret)."
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=0, max=65535, help="Serve Prometheus metrics on 127.0.0.1:PORT."),
    ] = None,
    strategy: Annotated[
        str | None, typer.Option(help="Strategy behind the per-type picks. Default: inventory.")
    ] = None,
    state: StateOpt = None,
    no_state: NoStateOpt = False,
    inventory: InventoryOpt = None,
    json_out: JsonOpt = False,
    cacert: CaCertOpt = None,
    insecure: InsecureOpt = False,
    header: HeaderOpt = None,
    timeout: TimeoutOpt = None,
) -> int:
    """Check every agent each interval and show state, EWMA, p50/p99, success, breakers, SLA
    and the replica `send` would pick, live. Piped: one JSON object per tick.

    The latencies are health checks (an A2A agent's card GET). An agent with `health.canary` in
    the inventory is also sent a real message on its own schedule; a failed task, a timeout or an
    answer not matching `expect` is a failed check, and `ttft` shows its time to first token.
    Marks: ! an SLA breached, ? an SLA with no data yet, * an EWMA held up by failure penalties
    (each failure counts as the timeout). Checks feed the routing state, so `latcli send`
    elsewhere benefits. With --count, exits 1 if the last tick had an agent down or an SLA
    breached.
    Example: `latcli watch weather --interval 1s --events events.jsonl --metrics-port 9464`
    """
    import asyncio
    import sys

    from latcli.cli.runtime import parse_seconds
    from latcli.config.loading import load_inventory
    from latcli.config.selection import select_agents
    from latcli.config.urls import http_url
    from latcli.core.errors import ExitCode
    from latcli.engines.watch.run import WatchOptions, run_watch, unhealthy
    from latcli.reports.watch import WatchSnapshot, watch_json

    if alert_webhook is not None and http_url(alert_webhook) is None:
        hint = "try http://127.0.0.1:9000/hook"
        raise typer.BadParameter(f"not an http(s) URL ({hint})", param_hint="--alert-webhook")
    opts = WatchOptions(
        parse_seconds(interval, "--interval"), count, strategy, events, alert_webhook,
        metrics_port, state, no_state, tls_verify(cacert, insecure),
    )  # fmt: skip
    shape = request_shape_of(header, timeout=timeout)
    inv = shape.apply_inventory(load_inventory(inventory))
    chosen = shape.apply_all(select_agents(inv, agents or [], type_))

    def warn(text: str) -> None:
        print(text, file=sys.stderr)

    if json_out or not sys.stdout.isatty():

        def emit(snapshot: WatchSnapshot) -> None:
            print(watch_json(snapshot), flush=True)

        last = asyncio.run(run_watch(inv, chosen, opts, emit, warn))
    else:
        from latcli.cli.runtime import is_demo_fleet, with_demo_hint
        from latcli.render.watch_live import LiveWatch

        demo = is_demo_fleet(inv)

        with LiveWatch() as live:

            def show(snapshot: WatchSnapshot) -> None:
                live.show(with_demo_hint(snapshot) if demo else snapshot)

            last = asyncio.run(run_watch(inv, chosen, opts, show, warn))
    return ExitCode.FAILED if unhealthy(last) else ExitCode.OK
