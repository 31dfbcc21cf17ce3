"""``latcli compare``: is the candidate run slower than the baseline, or is that noise?"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from latcli.cli.options import JsonOpt


def _fraction(value: str, option: str) -> float:
    from latcli.core.units import parse_percent

    try:
        return parse_percent(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def compare(
    files: Annotated[
        list[str],
        typer.Argument(
            help="BASELINE CANDIDATE, or several runs a side: BASELINE... vs CANDIDATE... "
            "(bench JSON reports from `latcli bench -o`).",
            show_default=False,
            metavar="BASELINE... [vs] CANDIDATE...",
        ),
    ],
    metric: Annotated[
        str,
        typer.Option(
            "--metric",
            help="p50, p90, p99 (any pNN), mean, rps, error_rate, or a stream phase such as "
            "first_artifact.p95.",
        ),
    ] = "p50",
    threshold: Annotated[
        str,
        typer.Option(help="Noise threshold: a significant change smaller than this is 'same'."),
    ] = "5%",
    confidence: Annotated[
        str,
        typer.Option(help="Level of the ratio's interval; the test's alpha is 1 − this."),
    ] = "95%",
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap (same input, same CI).")] = 1,
    json_out: JsonOpt = False,
    junit: Annotated[
        Path | None, typer.Option(help="Write JUnit XML: one test case, failed when slower.")
    ] = None,
) -> int:
    """Compare two bench runs (or two sets of runs): slower, faster or the same?

    Samples are the runs' per-interval values (one a second) of --metric, pooled per side.
    A two-sided Mann–Whitney U test (benchstat's default) decides whether the sides differ;
    the change is the ratio of the sides' medians with a bootstrap confidence interval. A
    significant change smaller than --threshold is 'same'. Too few intervals (4 a side at
    alpha 0.05) to decide: says how long to run. For rps, higher is faster; for latencies and
    error_rate, higher is slower.

    Exit codes: 0 same or faster · 1 slower · 2 bad input or too few intervals to decide.

    Examples: `latcli compare main.json pr.json` ·
    `latcli compare main-*.json vs pr-*.json --metric p99 --threshold 10%` ·
    `latcli compare base.json cand.json --json --junit compare.xml`
    """
    from latcli.engines.compare import compare as run_compare
    from latcli.engines.compare import parse_metric, side_of, split_sides
    from latcli.reports.files import write_text

    chosen = parse_metric(metric)
    noise, level = _fraction(threshold, "--threshold"), _fraction(confidence, "--confidence")
    base_files, cand_files = split_sides(files)
    report = run_compare(
        side_of(base_files, chosen),
        side_of(cand_files, chosen),
        chosen,
        confidence=level,
        threshold=noise,
        seed=seed,
    )
    if junit is not None:
        from latcli.render.compare_view import compare_junit

        write_text(junit, compare_junit(report))
    if json_out:
        import json

        print(json.dumps(report.as_json(), indent=2))
    else:
        from latcli.render.compare_view import compare_summary
        from latcli.render.console import stdout_console

        stdout_console().print(compare_summary(report))
    if json_out and report.reason is not None:
        print(f"latcli: {report.reason}", file=sys.stderr)
    return int(report.exit_code())
