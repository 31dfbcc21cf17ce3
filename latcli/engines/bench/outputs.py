"""Bench reports as files rendered by ``render/`` (JUnit XML, the HTML page): the rendering sits
above the report layer, so writing them does too (the JSON and .hlog writers are in
:mod:`latcli.reports.bench` and :mod:`latcli.reports.hlog`)."""

from __future__ import annotations

from pathlib import Path

from latcli.reports.bench import BenchReport
from latcli.reports.files import write_text


def write_junit(path: str | Path, report: BenchReport) -> None:
    """Write JUnit XML: one test case per SLA threshold (see :func:`latcli.render.junit`)."""
    from latcli.render.junit import junit_xml

    write_text(path, junit_xml(report))


def write_html(path: str | Path, report: BenchReport) -> None:
    """The report as one self-contained HTML page (see :func:`latcli.render.html_bench`)."""
    from latcli.render.html_bench import bench_html

    write_text(path, bench_html(report))
