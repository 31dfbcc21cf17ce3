"""``latcli capacity``: the sustainable rate of an agent or a type by open-model step load."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from latcli.cli.options import (
    BodyFileOpt,
    BodyOpt,
    CaCertOpt,
    HeaderOpt,
    InsecureOpt,
    InventoryOpt,
    JsonOpt,
    MethodOpt,
    StrategyOpt,
    TimeoutOpt,
    request_shape_of,
    tls_verify,
)

if TYPE_CHECKING:
    from latcli.config.model import Inventory
    from latcli.core.capacity import Capacity, CapacityPlan, Step
    from latcli.core.sla import Threshold
    from latcli.engines.bench.targets import Target
    from latcli.reports.bench_model import Endpoint


def capacity(
    target: Annotated[str, typer.Argument(help="Agent id, type (routed) or URL.")],
    sla: Annotated[
        list[str] | None,
        typer.Option(
            help="What a step must hold: 'p99<100ms', 'error_rate<0.1%' (repeat), or an endpoint "
            "name (message, health, ...) for the inventory's targets of it. Default: the "
            "inventory's sla for --endpoint."
        ),
    ] = None,
    endpoint: Annotated[
        str,
        typer.Option(
            help="health, discovery, message, or stream (A2A agents whose card says "
            "capabilities.streaming: steps judged on the phase SLAs, e.g. "
            "'first_artifact.p95<1s', and on failed tasks)."
        ),
    ] = "message",
    message: Annotated[
        str, typer.Option(help="Message text for --endpoint message and stream.")
    ] = "ping",
    target_rps: Annotated[
        float | None, typer.Option(help="Plan replicas for this total rate (req/s).")
    ] = None,
    headroom: Annotated[
        str, typer.Option(help="Spare capacity each replica keeps at --target-rps.")
    ] = "30%",
    start_rate: Annotated[float, typer.Option(help="First step's rate (req/s).")] = 10.0,
    max_rate: Annotated[float | None, typer.Option(help="Never step above this rate.")] = None,
    step_duration: Annotated[
        str, typer.Option(help="Measured time per step (plus a 20% warm-up, 0.5-2s).")
    ] = "5s",
    strategy: StrategyOpt = None,
    header: HeaderOpt = None,
    method: MethodOpt = None,
    body: BodyOpt = None,
    body_file: BodyFileOpt = None,
    timeout: TimeoutOpt = None,
    json_out: JsonOpt = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the JSON report here.")
    ] = None,
    html: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No step lines on stderr.")] = False,
    inventory: InventoryOpt = None,
    cacert: CaCertOpt = None,
    insecure: InsecureOpt = False,
) -> int:
    """Find TARGET's sustainable rate: open-model steps (×1.5 from --start-rate, then bisection
    to ~5 %) until the SLA breaks, errors rise, latency stops settling or the generator falls
    behind. Reports the knee, the rate per replica and in total, Little's law at the knee and,
    with --target-rps, the replicas needed so that each runs at most at (1 - headroom).

    --endpoint stream: every request is a streamed A2A message; a step also fails when the
    time to first token (first_artifact p50) more than doubles or climbs within the step, a
    failed task is an error (task_failed), and the report adds the concurrent streams at the
    knee: Little's law on the mean total time (arrival rate × mean; the mean, as a p50
    undercounts long answers).
    `latcli capacity assistant --endpoint stream --sla 'first_artifact.p95<1s' --target-rps 50`

    Exit 0 when a sustainable rate was found (the target is advice: see target_met in the
    JSON), 1 when even the first step failed, 2 on bad options, 130 on Ctrl-C (what was
    measured is still reported). Report paths are checked before any load is sent. A URL with
    a path or a query is requested as given; a bare origin gets the health path. Example:
    `latcli capacity weather --target-rps 500 --headroom 30% --sla 'p99<200ms'`
    """
    from latcli.config.loading import load_inventory
    from latcli.core.capacity import summarize
    from latcli.core.redact import redact_url
    from latcli.engines.bench.targets import shaped_target
    from latcli.engines.capacity import run_capacity
    from latcli.reports.bench_model import BenchPlan
    from latcli.reports.files import check_writable

    plan = _plan(target_rps, headroom, start_rate, max_rate, step_duration)
    point = _endpoint(endpoint)
    verify = tls_verify(cacert, insecure)
    shape = request_shape_of(header, method, body, body_file, timeout)
    if point != "health" and (shape.method is not None or shape.body is not None):
        raise typer.BadParameter("-m/--body shape the health request", param_hint="--method")
    for path in (output, html):
        if path is not None:
            check_writable(path)
    inv = load_inventory(inventory)
    resolved = shaped_target(inv, target, shape, strategy)
    if point == "stream":
        resolved = _streaming(resolved, verify)
    thresholds = _thresholds(sla, inv, endpoint)
    shown = redact_url(target)  # reports show it: never a URL's password
    template = BenchPlan(shown, resolved.kind, point, rate=1.0, message=message, verify=verify)
    run = run_capacity(plan, template, resolved, thresholds, None if quiet else _step_line)
    result = summarize(plan, run.steps, len(resolved.agents), run.interrupted)
    return _report(result, shown, endpoint, thresholds, json_out, output, html)


def _streaming(resolved: Target, verify: bool | str) -> Target:
    """``resolved`` as stream targets, or the usage error bench gives (before any load)."""
    from latcli.engines.bench.stream import stream_refusal, streaming_target

    resolved = streaming_target(resolved)
    refusal = stream_refusal(resolved, verify)
    if refusal is not None:
        raise typer.BadParameter(refusal, param_hint="--endpoint")
    return resolved


def _endpoint(value: str) -> Endpoint:
    from latcli.reports.bench_model import ENDPOINTS

    for known in ENDPOINTS:
        if known == value:
            return known
    raise typer.BadParameter(f"choose one of: {', '.join(ENDPOINTS)}", param_hint="--endpoint")


def _plan(
    target_rps: float | None, headroom: str, start: float, top: float | None, step: str
) -> CapacityPlan:
    """The options as a plan; every bad value is a usage error (exit 2)."""
    from latcli.cli.runtime import parse_seconds
    from latcli.core.capacity import CapacityPlan
    from latcli.core.units import parse_percent

    seconds = parse_seconds(step, "--step-duration") or 5.0
    if seconds < 0.5:
        raise typer.BadParameter("must be at least 0.5s", param_hint="--step-duration")
    try:
        room = parse_percent(headroom if "%" in headroom else _fraction(headroom))
    except ValueError as exc:
        raise typer.BadParameter(f"{exc} (try 30%)", param_hint="--headroom") from None
    checks = [
        (start > 0, "--start-rate", "must be more than zero"),
        (top is None or top >= start, "--max-rate", "must be at least --start-rate"),
        (target_rps is None or target_rps > 0, "--target-rps", "must be more than zero"),
        (room < 1.0, "--headroom", "must be under 100%"),
    ]
    for ok, hint, why in checks:
        if not ok:
            raise typer.BadParameter(why, param_hint=hint)
    warmup = min(2.0, max(0.5, 0.2 * seconds))
    return CapacityPlan(start, top, step_duration_s=seconds, warmup_s=warmup,
                        target_rps=target_rps, headroom=room)  # fmt: skip


def _fraction(text: str) -> float:
    """A bare headroom such as ``0.3``; anything else is not a percentage."""
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a percentage: {text!r}") from None


def _thresholds(exprs: list[str] | None, inv: Inventory, endpoint: str) -> list[Threshold]:
    """Endpoint names (or 'inventory') for the inventory's targets, else inline expressions."""
    from latcli.core.sla import ENDPOINTS, parse_threshold, thresholds_from_args

    for text in exprs or []:
        inline = text.strip().lower() not in (*ENDPOINTS, "inventory", "")
        if inline and parse_threshold(text).metric == "rps":
            raise typer.BadParameter(
                "rps is what capacity searches; plan for a rate with --target-rps",
                param_hint="--sla",
            )
    out = thresholds_from_args(exprs or ["inventory"], inv.sla, endpoint)
    # An inventory's rps floor would fail every low step: the search itself finds the rate.
    unique = {(t.name, t.expr): t for t in out if t.metric != "rps"}  # message + health: once
    return list(unique.values())


def _step_line(index: int, step: Step) -> None:
    import sys

    from latcli.engines.capacity import format_step

    print(format_step(index, step), file=sys.stderr, flush=True)


def _report(
    result: Capacity,
    target: str,
    endpoint: str,
    thresholds: list[Threshold],
    json_out: bool,
    output: Path | None,
    html: Path | None,
) -> int:
    """Print, write every asked file, and choose the exit code (130 > 2 > 1 > 0)."""
    import json

    from latcli.core.errors import ExitCode
    from latcli.render.html_capacity import capacity_html
    from latcli.reports.capacity import capacity_report
    from latcli.reports.files import write_all, write_text

    report = capacity_report(
        result, target=target, endpoint=endpoint, sla=[t.expr for t in thresholds]
    )
    text = json.dumps(report.to_json(), indent=2, ensure_ascii=False)
    if json_out:
        print(text)
    else:
        from latcli.render.capacity_view import capacity_summary
        from latcli.render.console import stdout_console

        stdout_console().print(capacity_summary(report))
    failed = write_all(
        [
            (output, lambda p: write_text(p, text + "\n")),
            (html, lambda p: write_text(p, capacity_html(report))),
        ]
    )
    if report.interrupted:
        return ExitCode.INTERRUPTED
    if failed:
        return ExitCode.USAGE
    return ExitCode.OK if report.passed else ExitCode.FAILED
