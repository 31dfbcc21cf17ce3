"""``latcli bench``: closed or open (wrk2) load on an agent, a type or a URL, with SLA gates."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from latcli.cli.options import CaCertOpt, InsecureOpt, InventoryOpt, JsonOpt, tls_verify

if TYPE_CHECKING:
    from latcli.bench.engine import Progress
    from latcli.bench.model import BenchPlan, BenchResult
    from latcli.inventory import Inventory
    from latcli.sla import Threshold, Verdict

_ENDPOINTS = ("health", "discovery", "message")
_ENGINES = ("raw", "httpx")
DEFAULT_DURATION_S = 10.0


def bench(
    target: Annotated[
        str, typer.Argument(help="Agent id, type (routed, per-agent shares) or URL.")
    ],
    duration: Annotated[
        str | None, typer.Option("--duration", "-d", help="Measured time, e.g. 30s. Default 10s.")
    ] = None,
    requests: Annotated[
        int | None, typer.Option("--requests", "-n", min=1, help="Measured requests, not time.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", "-c", min=1, help="Closed model: C loops.")
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option("--rate", "-r", help="Open model: R req/s, latency from each due time."),
    ] = None,
    max_in_flight: Annotated[
        int | None,
        typer.Option(min=1, help="Open model: outstanding requests before sends wait (1000)."),
    ] = None,
    warmup: Annotated[
        str | None, typer.Option(help="Warm-up before measuring, excluded from results (2s).")
    ] = None,
    endpoint: Annotated[str, typer.Option(help="health, discovery or message.")] = "health",
    message: Annotated[str, typer.Option(help="Message text for --endpoint message.")] = "ping",
    workers: Annotated[
        int, typer.Option(min=1, max=256, help="Processes; the rate is split across them.")
    ] = 1,
    engine: Annotated[
        str,
        typer.Option(help="raw (latcli's lean HTTP/1.1 client, fastest) or httpx (HTTP/2)."),
    ] = "raw",
    sla: Annotated[
        list[str] | None,
        typer.Option(
            help="Gate: 'p99<100ms', 'error_rate<0.1%', 'rps>=100' (repeat); alone, the "
            "inventory's sla for the endpoint (or name one: --sla message). Exit 1 on a breach."
        ),
    ] = None,
    json_out: JsonOpt = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the JSON report here.")
    ] = None,
    hlog: Annotated[Path | None, typer.Option(help="Write an HdrHistogram interval log.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Write JUnit XML, one case per SLA.")] = None,
    html: Annotated[
        Path | None,
        typer.Option(help="Write a self-contained HTML report: charts, no network needed."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress line on stderr.")
    ] = False,
    inventory: InventoryOpt = None,
    cacert: CaCertOpt = None,
    insecure: InsecureOpt = False,
) -> int:
    """Load TARGET and report latency percentiles (HDR), throughput and errors by kind.

    Closed model with --concurrency C; open model with --rate R (request i due at t0 + i/R,
    latency measured from the due time; invalid, exit 3, below 99% of R or with a schedule lag
    p99 over 10 ms). End of a run: requests already sent are awaited (within their timeout) and
    counted, unsent ones are not sent; Ctrl-C cancels outstanding requests (dropped_in_flight),
    writes every asked report and exits 130. Exit 1 on an SLA breach, 2 on bad options.
    Example: `latcli bench weather --rate 200 -d 30s --sla 'p99<100ms'`
    """
    import sys
    from dataclasses import replace

    from latcli.bench.engine import resolve_target, run_bench
    from latcli.inventory import load_inventory

    plan = _plan(
        target,
        duration,
        requests,
        concurrency,
        rate,
        max_in_flight,
        warmup,
        endpoint,
        message,
        workers,
        engine,
    )
    plan = replace(plan, verify=tls_verify(cacert, insecure))
    inv = load_inventory(inventory)
    resolved = resolve_target(inv, target)
    plan = _with_kind(plan, resolved.kind)
    thresholds = _thresholds(sla or [], inv, endpoint)
    progress = None if quiet else _progress_sink()
    result = run_bench(plan, resolved, progress)
    if progress is not None and sys.stderr.isatty():
        print(file=sys.stderr)
    return _report(plan, result, thresholds, json_out, output, hlog, junit, html)


def _plan(
    target: str,
    duration: str | None,
    requests: int | None,
    concurrency: int | None,
    rate: float | None,
    max_in_flight: int | None,
    warmup: str | None,
    endpoint: str,
    message: str,
    workers: int,
    engine: str,
) -> BenchPlan:
    """The options as a plan; every bad combination is a usage error (exit 2)."""
    from latcli.bench.model import BenchPlan
    from latcli.cli.runtime import parse_seconds
    from latcli.redact import redact_url

    if concurrency is None and rate is None:
        raise typer.BadParameter(
            "give --concurrency C (closed model) or --rate R (open model)", param_hint="--rate"
        )
    if concurrency is not None and rate is not None:
        raise typer.BadParameter("--concurrency and --rate exclude each other", param_hint="--rate")
    if rate is not None and not rate > 0:
        raise typer.BadParameter("must be more than zero", param_hint="--rate")
    if max_in_flight is not None and rate is None:
        raise typer.BadParameter("only with --rate (open model)", param_hint="--max-in-flight")
    if duration is not None and requests is not None:
        raise typer.BadParameter("--duration and --requests exclude each other", param_hint="-d")
    if endpoint not in _ENDPOINTS:
        raise typer.BadParameter(f"choose one of: {', '.join(_ENDPOINTS)}", param_hint="--endpoint")
    if engine not in _ENGINES:
        raise typer.BadParameter(f"choose one of: {', '.join(_ENGINES)}", param_hint="--engine")
    seconds = parse_seconds(duration, "--duration")
    warm = _warmup_seconds(warmup)
    return BenchPlan(
        target=redact_url(target),  # reports show it: never a URL's password
        target_kind="url",
        endpoint=endpoint,  # type: ignore[arg-type]
        concurrency=concurrency,
        rate=rate,
        duration_s=None if requests is not None else (seconds or DEFAULT_DURATION_S),
        requests=requests,
        warmup_s=warm,
        max_in_flight=max_in_flight,
        workers=workers,
        message=message,
        engine=engine,
    )


def _warmup_seconds(text: str | None) -> float:
    from latcli.units import parse_duration

    if text is None:
        return 0.0
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--warmup") from None


def _with_kind(plan: BenchPlan, kind: Any) -> BenchPlan:
    from dataclasses import replace

    return replace(plan, target_kind=kind)


def _thresholds(exprs: list[str], inv: Inventory, endpoint: str) -> list[Threshold]:
    """Inline expressions; ``inventory`` (what a bare ``--sla`` becomes) means the inventory's
    targets for the endpoint benched, an endpoint's name (``message``) that endpoint's (exit 2)."""
    from latcli.sla import thresholds_from_args

    return thresholds_from_args(exprs, inv.sla, endpoint)


def _progress_sink() -> Any:
    """Progress on stderr: redrawn in place on a terminal, one line per second otherwise."""
    import sys

    from latcli.bench.engine import format_progress

    tty = sys.stderr.isatty()

    def show(p: Progress) -> None:
        line = format_progress(p)
        if tty:
            sys.stderr.write("\r\x1b[2K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return show


def _report(
    plan: BenchPlan,
    result: BenchResult,
    thresholds: list[Threshold],
    json_out: bool,
    output: Path | None,
    hlog: Path | None,
    junit: Path | None,
    html: Path | None = None,
) -> int:
    """Judge, write every asked file, print, and choose the exit code (130 > 3 > 1 > 0)."""
    import sys

    from latcli.bench import report as reports
    from latcli.bench.model import IN_FLIGHT_POLICY
    from latcli.errors import ExitCode
    from latcli.sla import evaluate

    verdicts: list[Verdict] = evaluate(thresholds, reports.observation(result))
    lag = result.schedule_lag.percentile_ms(99.0) if result.schedule_lag else None
    doc = reports.build_report(
        plan,
        result,
        verdicts,
        valid=result.valid,
        target_rate=plan.rate,
        achieved_rate=result.achieved_rate
        if result.achieved_rate is not None
        else result.throughput_rps,
        schedule_lag_p99_ms=lag,
        policy=IN_FLIGHT_POLICY,
    )
    if output is not None:
        reports.write_json(output, doc)
    if hlog is not None:
        reports.write_hlog(hlog, result)
    if junit is not None:
        reports.write_junit(junit, doc)
    if html is not None:
        reports.write_html(html, doc)
    if json_out:
        print(reports.to_json(doc))
    else:
        from latcli.render.bench_view import bench_summary
        from latcli.render.console import stdout_console

        stdout_console().print(bench_summary(doc))
    if not result.valid and result.invalid_reason:
        print(f"latcli: invalid run: {result.invalid_reason}", file=sys.stderr)
    if result.interrupted:
        return ExitCode.INTERRUPTED
    return int(reports.exit_code(doc))
