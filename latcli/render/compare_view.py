"""``latcli compare`` output: the rich table (benchstat's one row) and JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from latcli.core.stats_compare import Change, median
from latcli.reports.compare import CompareReport, Side

_STYLE = {Change.SLOWER: "bold red", Change.FASTER: "bold green", Change.SAME: "bold"}


def _value(report: CompareReport, value: float) -> str:
    """The number alone: the metric cell names the unit."""
    unit = report.metric.unit
    if unit == "fraction":
        return f"{value * 100:.3g}"
    if unit == "req/s":
        return f"{value:,.1f}"
    return f"{value:.3f}" if value < 10 else f"{value:,.2f}"


def _metric(report: CompareReport) -> str:
    unit = {"fraction": "%"}.get(report.metric.unit, report.metric.unit)
    return f"{report.metric.name} ({unit})"


def _side(report: CompareReport, side: Side) -> str:
    return _value(report, median(side.samples)) if side.samples else "–"


def _sources(name: str, side: Side) -> Text:
    files = side.files[0] if len(side.files) == 1 else f"{len(side.files)} runs"
    text = Text(f"{name:<9}  ", style="bold")
    text.append(f"{files} · {side.n} intervals")
    return text


def _change(ratio: float | None) -> str:
    return "–" if ratio is None else f"{(ratio - 1.0) * 100:+.2f}%"


def _ci(report: CompareReport) -> str:
    if report.ci is None:
        return "–"
    return f"{_change(report.ci[0])} … {_change(report.ci[1])}"


def _p(report: CompareReport) -> str:
    if report.test is None:
        return "–"
    p = report.test.p_value
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def _verdict(report: CompareReport) -> Text:
    if report.verdict is None:
        return Text("undecided", style="bold yellow")
    return Text(report.verdict.value, style=_STYLE[report.verdict])


def _explain(report: CompareReport) -> Text:
    """One line: why the verdict (the test, its method, the threshold)."""
    if report.reason is not None:
        return Text(report.reason, style="yellow")
    assert report.test is not None
    method = report.test.method + (", ties corrected" if report.test.ties else "")
    why = f"Mann–Whitney U ({method}) at alpha {report.alpha:g}"
    significant = report.test.p_value <= report.alpha
    if report.verdict is Change.SAME and significant:
        why += f"; significant, but under the {report.threshold * 100:g} % noise threshold"
    elif report.verdict is Change.SAME:
        why += ": not significant (the difference may be noise)"
    else:
        why += f"; change over the {report.threshold * 100:g} % noise threshold"
    return Text(why, style="dim")


def compare_summary(report: CompareReport) -> RenderableType:
    """The human view: one row per metric (benchstat's layout) and why the verdict."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    level = f"{report.confidence * 100:g}% CI"
    for header in ("metric", "baseline", "candidate", "change", level, "p", "verdict"):
        table.add_column(header, justify="left" if header == "metric" else "right", no_wrap=True)
    table.add_row(
        _metric(report),
        _side(report, report.baseline),
        _side(report, report.candidate),
        _change(report.ratio),
        _ci(report),
        _p(report),
        _verdict(report),
    )
    lines: list[RenderableType] = [
        _sources("baseline", report.baseline),
        _sources("candidate", report.candidate),
        table,
        _explain(report),
    ]
    lines += [Text(f"note: {n}", style="dim") for n in report.notes]
    return Group(*lines)


def compare_junit(report: CompareReport) -> str:
    """JUnit XML: one test case ``compare.METRIC``; a failure when slower, an error when the
    data cannot decide."""
    suite = ET.Element("testsuite", name="latcli compare", tests="1")
    name = f"compare.{_metric(report)}: {', '.join(report.candidate.files)}"
    case = ET.SubElement(suite, "testcase", name=name, classname="latcli.compare", time="0")
    detail = (
        f"baseline {_side(report, report.baseline)} (n={report.baseline.n}) · candidate "
        f"{_side(report, report.candidate)} (n={report.candidate.n}) · change "
        f"{_change(report.ratio)} ({_ci(report)}) · p {_p(report)}"
    )
    if report.verdict is None:
        ET.SubElement(case, "error", message=report.reason or "undecided", type="undecided")
        suite.set("errors", "1")
    elif report.verdict is Change.SLOWER:
        failure = ET.SubElement(case, "failure", message=f"slower: {detail}", type="slower")
        failure.text = _explain(report).plain
        suite.set("failures", "1")
    else:
        ET.SubElement(case, "system-out").text = f"{report.verdict.value}: {detail}"
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
