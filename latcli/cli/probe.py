"""``latcli probe``: health, phase timings and discovery of every (or the named) agent."""

from __future__ import annotations

from typing import Annotated

import typer

from latcli.cli.options import (
    BodyFileOpt,
    BodyOpt,
    CaCertOpt,
    EngineOpt,
    HeaderOpt,
    InsecureOpt,
    InventoryOpt,
    JsonOpt,
    MethodOpt,
    SelectorsArg,
    TimeoutOpt,
    check_engine,
    request_shape_of,
    tls_verify,
)


def probe(
    agents: SelectorsArg = None,
    count: Annotated[
        int,
        typer.Option(
            "--requests",
            "-n",
            "--count",
            min=1,
            max=10000,
            help="Health checks (requests) per agent; from 2 on, p50/p99/min/max.",
        ),
    ] = 1,
    inventory: InventoryOpt = None,
    json_out: JsonOpt = False,
    engine: EngineOpt = "auto",
    cacert: CaCertOpt = None,
    insecure: InsecureOpt = False,
    header: HeaderOpt = None,
    method: MethodOpt = None,
    body: BodyOpt = None,
    body_file: BodyFileOpt = None,
    timeout: TimeoutOpt = None,
    message: Annotated[
        str | None,
        typer.Option(
            "--message",
            metavar="TEXT",
            help="Also send TEXT as a real message to each agent whose checks passed (streamed "
            "when its card says so) and show its first token and total time: a failed task or "
            "no answer within the agent's timeout makes it unhealthy.",
        ),
    ] = None,
) -> int:
    """Probe agents concurrently: health latency by phase (connect, TLS, first byte, total),
    A2A card discovery, error kind. Exits 1 if any probed agent is unhealthy.
    A URL with a path or a query is requested as given (http://h/health GETs /health); a bare
    origin (http://h:8001) gets the health path. The detail of an A2A agent is its card: the
    spec version, the bindings unless JSON-RPC alone (http+json), "streams" when it streams.

    Examples: `latcli probe` · `latcli probe weather -n 20` · `latcli probe http://127.0.0.1:8001`
    · `latcli probe llm --message ping`
    """
    import asyncio

    from latcli.cli.runtime import is_demo_fleet
    from latcli.config.loading import load_inventory
    from latcli.config.selection import select_agents
    from latcli.core.errors import ExitCode
    from latcli.engines.send import run_probe

    kind = check_engine(engine)
    if message is not None and not message.strip():
        raise typer.BadParameter("give some text to send", param_hint="--message")
    verify = tls_verify(cacert, insecure)
    shape = request_shape_of(header, method, body, body_file, timeout)
    inv = load_inventory(inventory)
    chosen = shape.apply_all(select_agents(inv, agents or []))
    report = asyncio.run(run_probe(chosen, count, kind, verify, message))
    if json_out:
        from latcli.reports.probe import probe_json

        print(probe_json(report))
    else:
        from latcli.render.console import stdout_console
        from latcli.render.probe_view import probe_summary, probe_table

        console = stdout_console()
        console.print(probe_table(report, count))
        console.print(probe_summary(report, is_demo_fleet(inv)))
    return ExitCode.OK if report.ok else ExitCode.FAILED
