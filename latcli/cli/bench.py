"""``latcli bench``: closed or open (wrk2) load on an agent, a type or a URL, with SLA gates."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    from latcli.config.shaping import RequestShape
    from latcli.core.sla import Threshold, Verdict
    from latcli.engines.bench.targets import Target
    from latcli.reports.bench_model import BenchPlan, BenchResult, Progress

DEFAULT_DURATION_S = 10.0
# hey's and oha's default (-c 50); wrk's is 10. A closed model needs no rate guess.
DEFAULT_CONCURRENCY = 50
MAX_WORKERS = 256


def bench(
    target: Annotated[
        str | None,
        typer.Argument(
            help="Agent id, type (routed, per-agent shares) or URL. Or --targets FILE.",
            show_default=False,
        ),
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", "-d", help="Measured time, e.g. 30s. Default 10s.")
    ] = None,
    requests: Annotated[
        int | None,
        typer.Option("--requests", "-n", min=1, help="Number of measured requests, not time."),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-c", min=1, help="Closed model: C connections. Default 50."),
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
        str | None,
        typer.Option(
            help="Warm-up before measuring, excluded from results, e.g. 2s (connections opened "
            "at once, caches filled); none by default."
        ),
    ] = None,
    endpoint: Annotated[
        str,
        typer.Option(
            help="health, discovery, message, or stream (A2A agents whose card says "
            "capabilities.streaming: HDR histograms of the phases first_event, first_artifact, "
            "gap = each message's longest wait between chunks, and total)."
        ),
    ] = "health",
    message: Annotated[
        str, typer.Option(help="Message text for --endpoint message and stream.")
    ] = "ping",
    workers: Annotated[
        str | None,
        typer.Option(
            metavar="N|auto",
            help="Processes, each with its own event loop; the rate and the connections are "
            "split across them. auto: one per usable core (CPU affinity, capped by a container's "
            "CPU quota). Default: auto for a closed-model run of a URL, an agent or --targets "
            "(at least 2 connections per worker; -n runs from 50,000 requests), else 1.",
            show_default=False,
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            metavar="I/N",
            help="Run shard I of N (I from 0) of the run: open model rate/N, request k of this "
            "shard due at t0 + (kN + I)/rate so the shards interleave; closed model this "
            "shard's share of -c (and -n). Merge the shards' -o files with latcli report.",
            show_default=False,
        ),
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="As --shard I/N, I read from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).",
            show_default=False,
        ),
    ] = None,
    start_at: Annotated[
        str | None,
        typer.Option(
            metavar="TIME",
            envvar="LATCLI_START_AT",
            help="Start the schedule at this wall-clock time, so that shards on several machines "
            "start together: ISO-8601 (2026-12-03T15:00:00Z; no offset: local time; a time "
            "alone is today's) or +30s (from this process's start: not for shards). A time "
            "already past is an error (exit 2).",
            show_default=False,
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(help="raw (latcli's lean HTTP/1.1 client, fastest) or httpx (HTTP/2)."),
    ] = "raw",
    targets: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="A mix of requests instead of TARGET, sent in turn (vegeta's http format: "
            "'METHOD URL', then 'Name: value' headers, then '@FILE' body; blank line between).",
            show_default=False,
        ),
    ] = None,
    strategy: StrategyOpt = None,
    header: HeaderOpt = None,
    method: MethodOpt = None,
    body: BodyOpt = None,
    body_file: BodyFileOpt = None,
    timeout: TimeoutOpt = None,
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
        bool, typer.Option("--quiet", "-q", help="No live view or progress line on stderr.")
    ] = False,
    inventory: InventoryOpt = None,
    cacert: CaCertOpt = None,
    insecure: InsecureOpt = False,
) -> int:
    """Load TARGET and report latency percentiles (HDR) of answered requests, throughput, and
    failures by error kind and HTTP status.

    \b
    Defaults: closed model, 50 connections (as hey and oha), for 10 s; GET of the health
    path; each request bounded by the inventory's health.timeout (--endpoint message: its
    timeout; --timeout sets both). A URL with a path or a query is requested as given
    (http://h/health GETs /health); a bare origin (http://h:8001) gets the health path.
    On a terminal a live view on stderr, else one progress line a second.

    \b
    Closed model with --concurrency C; open model with --rate R (request i due at t0 + i/R,
    latency measured from the due time; invalid, exit 3, below 99% of R or with a schedule
    lag p99 over 10 ms). Percentiles are over answered requests; an `rps` SLA is goodput
    (answered requests per second). A run with no answered request fails (exit 1), whatever
    the thresholds. Report paths are checked before any load is sent (exit 2). End of a run:
    requests already sent are awaited and counted, unsent ones are not sent; Ctrl-C cancels
    outstanding requests (dropped_in_flight), writes every asked report and exits 130.
    Exit 1 on an SLA breach, 2 on bad options.

    \b
    --endpoint stream (A2A agents whose card says capabilities.streaming): per answered
    stream, HDR histograms of first_event, first_artifact (time to first token), gap (that
    message's longest wait between two chunks: one value per message, so a long answer
    weighs as much as a short one) and total, timed from the message's send; a stream that
    ends `failed` is an error of kind task_failed. SLA on a phase: 'first_artifact.p95<500ms';
    a bare --sla uses the inventory's sla.stream.

    \b
    Sharded: `--shard I/N` (or `--shards N` in a Kubernetes Indexed Job) runs one part of the
    run; with `--start-at` on every shard they start together; `latcli report shard-*.json`
    adds their histograms and judges the SLA once, on the whole run (a shard's own exit code
    leaves SLA breaches to that merge). Each shard may have its own --workers.

    \b
    Examples: `latcli bench http://127.0.0.1:8001/health -n 1000`
              `latcli bench --targets mix.txt -c 20 -d 30s`
              `latcli bench weather --rate 200 -d 30s --sla 'p99<100ms' --sla 'rps>=190'`
              `latcli bench "http://h/api?q=1" -m POST -H "X-Token: t" --body "{}"`
              `latcli bench assistant --endpoint stream -c 100 --sla 'first_artifact.p95<500ms'`
              `latcli bench weather -r 400 -d 60s --shard 1/4 --start-at 15:00:00Z -o s1.json`
    """
    from dataclasses import replace

    from latcli.config.loading import load_inventory
    from latcli.engines.bench.workers import run_bench
    from latcli.reports.files import check_writable

    if (target is None) == (targets is None):
        raise typer.BadParameter(
            "give a TARGET or --targets FILE (one of them)", param_hint="TARGET"
        )
    plan = _plan(
        target or str(targets),
        duration,
        requests,
        concurrency,
        rate,
        max_in_flight,
        warmup,
        endpoint,
        message,
        engine,
    )
    plan = replace(plan, verify=tls_verify(cacert, insecure), **_sharding(shard, shards, start_at))
    shape = _shape(header, method, body, body_file, timeout, endpoint, targets is not None)
    for path in (output, hlog, junit, html):
        if path is not None:
            check_writable(path)  # before any load: a lost run is worse than a refused one
    inv = load_inventory(inventory)
    resolved = _resolve(inv, target, targets, shape, strategy)
    plan = _with_workers(_with_kind(plan, resolved.kind), workers)
    if endpoint == "stream":
        from latcli.engines.bench.stream import stream_refusal, streaming_target

        resolved = streaming_target(resolved)
        refusal = stream_refusal(resolved, plan.verify)
        if refusal is not None:
            raise typer.BadParameter(refusal, param_hint="--endpoint")
    thresholds = _thresholds(sla or [], inv, endpoint)
    if plan.start_at is not None and not quiet:
        _say_waiting(plan)
    if quiet:
        result = run_bench(plan, resolved)
    else:
        with _progress(plan) as progress:
            result = run_bench(plan, resolved, progress)
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
    engine: str,
) -> BenchPlan:
    """The options as a plan; every bad combination is a usage error (exit 2)."""
    from latcli.cli.runtime import parse_seconds
    from latcli.core.redact import redact_url
    from latcli.reports.bench_model import BenchPlan

    if concurrency is None and rate is None:
        concurrency = DEFAULT_CONCURRENCY
    if concurrency is not None and rate is not None:
        raise typer.BadParameter("--concurrency and --rate exclude each other", param_hint="--rate")
    if rate is not None and not rate > 0:
        raise typer.BadParameter("must be more than zero", param_hint="--rate")
    if max_in_flight is not None and rate is None:
        raise typer.BadParameter("only with --rate (open model)", param_hint="--max-in-flight")
    if duration is not None and requests is not None:
        raise typer.BadParameter("--duration and --requests exclude each other", param_hint="-d")
    from latcli.reports.bench_model import ENDPOINTS
    from latcli.transport.factory import NAMED_ENGINES

    if endpoint not in ENDPOINTS:
        raise typer.BadParameter(f"choose one of: {', '.join(ENDPOINTS)}", param_hint="--endpoint")
    if engine not in NAMED_ENGINES:
        raise typer.BadParameter(
            f"choose one of: {', '.join(NAMED_ENGINES)}", param_hint="--engine"
        )
    seconds = parse_seconds(duration, "--duration")
    warm = _warmup_seconds(warmup)
    return BenchPlan(
        target=redact_url(target),  # reports show it: never a URL's password
        target_kind="url",
        endpoint=endpoint,
        concurrency=concurrency,
        rate=rate,
        duration_s=None if requests is not None else (seconds or DEFAULT_DURATION_S),
        requests=requests,
        warmup_s=warm,
        max_in_flight=max_in_flight,
        message=message,
        engine=engine,
    )


def _sharding(shard: str | None, shards: int | None, start_at: str | None) -> dict[str, Any]:
    """``--shard`` / ``--shards`` / ``--start-at`` as BenchPlan fields (exit 2 when bad)."""
    import os
    import time

    from latcli.core.shards import ShardError, parse_shard, parse_start_at, shard_from_env

    if shard is not None and shards is not None:
        raise typer.BadParameter(
            "--shard I/N and --shards N exclude each other", param_hint="--shards"
        )
    out: dict[str, Any] = {}
    try:
        if shard is not None:
            out["shard"], out["shards"] = parse_shard(shard)
        elif shards is not None:
            out["shard"], out["shards"] = shard_from_env(shards, os.environ), shards
    except ShardError as exc:
        raise typer.BadParameter(str(exc), param_hint="--shard" if shard else "--shards") from None
    if start_at:  # LATCLI_START_AT="" (a manifest's default) means: start now
        try:
            out["start_at"] = parse_start_at(start_at, time.time())
        except ShardError as exc:
            raise typer.BadParameter(str(exc), param_hint="--start-at") from None
    return out


def _with_workers(plan: BenchPlan, text: str | None) -> BenchPlan:
    """``--workers N``, ``auto`` (one per usable core), or the default rule (cores.py)."""
    from dataclasses import replace

    from latcli.engines.bench.cores import default_workers, usable_cores

    if text is None:
        return replace(plan, workers=default_workers(plan, usable_cores()))
    if text.strip().lower() == "auto":
        return replace(plan, workers=usable_cores())
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise typer.BadParameter(
            f"{text!r}: give a number of processes (1 to {MAX_WORKERS}) or auto",
            param_hint="--workers",
        )
    return replace(plan, workers=int(text))


def _say_waiting(plan: BenchPlan) -> None:
    import sys
    import time

    from latcli.core.shards import iso_utc

    assert plan.start_at is not None
    who = f"shard {plan.shard}/{plan.shards}: " if plan.shards > 1 else ""
    wait = max(0.0, plan.start_at - time.time())
    print(f"latcli: {who}starting at {iso_utc(plan.start_at)} (in {wait:.1f} s)", file=sys.stderr)


def _warmup_seconds(text: str | None) -> float:
    from latcli.core.units import parse_duration

    if text is None:
        return 0.0
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--warmup") from None


def _shape(
    header: list[str] | None,
    method: str | None,
    body: str | None,
    body_file: Path | None,
    timeout: str | None,
    endpoint: str,
    mix: bool,
) -> RequestShape:
    shape = request_shape_of(header, method, body, body_file, timeout)
    shaped = shape.method is not None or shape.body is not None
    if mix and (shaped or endpoint != "health"):
        raise typer.BadParameter(
            "each line of the file says its method, URL and body", param_hint="--targets"
        )
    if endpoint != "health" and shaped:
        raise typer.BadParameter(
            f"-m/--body shape the health request; --endpoint {endpoint} sends --message",
            param_hint="--method",
        )
    return shape


def _resolve(
    inv: Inventory,
    target: str | None,
    targets: Path | None,
    shape: RequestShape,
    strategy: str | None,
) -> Target:
    """TARGET resolved and shaped, or the --targets file read (its body files relative to it)."""
    from latcli.engines.bench.targets import TargetsError, mix_target, parse_targets, shaped_target

    if targets is None:
        assert target is not None
        return shaped_target(inv, target, shape, strategy)
    try:
        text = targets.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise TargetsError(f"{targets}: cannot read: {why}") from None
    lines = parse_targets(text, str(targets), lambda p: (targets.parent / p).read_bytes())
    return mix_target(inv, str(targets), lines, shape)


def _with_kind(plan: BenchPlan, kind: Any) -> BenchPlan:
    from dataclasses import replace

    return replace(plan, target_kind=kind)


def _thresholds(exprs: list[str], inv: Inventory, endpoint: str) -> list[Threshold]:
    """Inline expressions; ``inventory`` (what a bare ``--sla`` becomes) means the inventory's
    targets for the endpoint benched, an endpoint's name (``message``) that endpoint's (exit 2)."""
    from latcli.core.sla import thresholds_from_args

    return thresholds_from_args(exprs, inv.sla, endpoint)


@contextlib.contextmanager
def _progress(plan: BenchPlan) -> Iterator[Callable[[Progress], None]]:
    """A live view on stderr when it is a terminal (redrawn 4 times a second at most, gone at
    the end); one line per second otherwise."""
    import sys

    if sys.stderr.isatty():
        from latcli.render.bench_live import LiveBench

        title = f"{plan.target} · {_model_text(plan)}"
        live = LiveBench(
            title=title,
            duration_s=plan.duration_s,
            requests=plan.requests,
            warmup_s=plan.warmup_s,
        )
        with live:
            yield live.show
        return
    from latcli.reports.bench_model import format_progress

    def show(p: Progress) -> None:
        sys.stderr.write(format_progress(p) + "\n")
        sys.stderr.flush()

    yield show


def _model_text(plan: BenchPlan) -> str:
    if plan.model == "open":
        return f"open model {plan.rate:g} req/s"
    return f"closed model ×{plan.concurrency}"


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

    from latcli.core.errors import ExitCode
    from latcli.core.sla import evaluate
    from latcli.engines.bench import outputs
    from latcli.engines.bench.run import LATE_START_S
    from latcli.reports.bench import json_text, write_json
    from latcli.reports.bench_build import run_report
    from latcli.reports.bench_sla import answered_none, exit_code, observation
    from latcli.reports.files import write_all
    from latcli.reports.hlog import write_hlog

    verdicts: list[Verdict] = evaluate(thresholds, observation(result))
    report = run_report(plan, result, verdicts)
    if json_out:
        print(json_text(report))
    else:
        from latcli.render.bench_view import bench_summary
        from latcli.render.console import stdout_console

        stdout_console().print(bench_summary(report))
    writes: list[tuple[Path | None, Callable[[Path], None]]] = [
        (output, lambda p: write_json(p, report)),
        (hlog, lambda p: write_hlog(p, result)),
        (junit, lambda p: outputs.write_junit(p, report)),
        (html, lambda p: outputs.write_html(p, report)),
    ]
    failed = write_all(writes)  # after the summary: a failed write loses no result
    if not result.valid and result.invalid_reason:
        print(f"latcli: invalid run: {result.invalid_reason}", file=sys.stderr)
    if answered_none(report) and result.requests:
        print("latcli: no request was answered: the run fails", file=sys.stderr)
    if plan.start_at is not None and result.start_late_s > LATE_START_S:
        print(
            f"latcli: warning: the schedule began {result.start_late_s:.2f} s after --start-at "
            "(the workers or this process started too late for it)",
            file=sys.stderr,
        )
    if result.interrupted:
        return ExitCode.INTERRUPTED
    # A shard judges only its part: the SLA is judged once, by latcli report on every shard.
    return ExitCode.USAGE if failed else int(exit_code(report, judge_sla=plan.shards == 1))
