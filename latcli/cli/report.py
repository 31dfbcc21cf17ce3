"""``latcli report``: re-render or merge bench reports (JSON or .hlog, several runs or machines)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from latcli.cli.options import JsonOpt


def report(
    files: Annotated[
        list[Path],
        typer.Argument(help="Bench reports: JSON (bench -o) or .hlog (bench --hlog) files."),
    ],
    json_out: JsonOpt = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write the (merged) JSON report to this file."),
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", help="Write JUnit XML: one test case per SLA threshold."),
    ] = None,
    sla: Annotated[
        list[str] | None,
        typer.Option("--sla", help="Judge by this threshold instead of the reports' own; repeat."),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Write a self-contained HTML report: charts, no network."),
    ] = None,
) -> int:
    """Re-render bench reports, merging several (workers, runs, machines) into one.

    Histograms are merged, never samples; SLA verdicts are evaluated again on the merged data.
    Exits 1 on an SLA breach or when no request was answered, 3 if a run did not hold its
    rate, 2 on a file that is not a report or a path that cannot be written.

    Examples: `latcli report run.json` · `latcli report a.json b.hlog --sla 'p99<100ms'` ·
    `latcli report a.json b.json --html report.html`
    """
    from latcli.core.errors import ExitCode
    from latcli.core.shards import warnings as shard_warnings
    from latcli.core.sla import parse_threshold
    from latcli.engines.bench.outputs import write_html, write_junit
    from latcli.reports.bench import json_text, write_json
    from latcli.reports.bench_load import load_report
    from latcli.reports.bench_merge import merge_reports
    from latcli.reports.bench_sla import exit_code
    from latcli.reports.files import check_writable, write_all

    thresholds = [parse_threshold(expr) for expr in sla] if sla else None
    for path in (output, junit, html):
        if path is not None:
            check_writable(path)
    merged = merge_reports(
        [load_report(f) for f in files], thresholds=thresholds, names=[str(f) for f in files]
    )
    for warning in shard_warnings(merged.shards):
        print(f"latcli: warning: {warning}", file=sys.stderr)
    if json_out:
        print(json_text(merged))
    else:
        from latcli.render.bench_view import bench_summary
        from latcli.render.console import stdout_console

        stdout_console().print(bench_summary(merged))
    failed = write_all(
        [
            (output, lambda p: write_json(p, merged)),
            (junit, lambda p: write_junit(p, merged)),
            (html, lambda p: write_html(p, merged)),
        ]
    )
    return ExitCode.USAGE if failed else exit_code(merged)
