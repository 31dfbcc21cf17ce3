"""JUnit XML of a bench report: one test case per SLA threshold, so CI shows each gate."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from latcli.core.units import format_number, format_rate
from latcli.reports.bench import BenchReport
from latcli.reports.bench_sla import answered_none

# XML 1.0 forbids these even escaped; ElementTree would write them and the file would not parse.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _case(suite: ET.Element, name: str, classname: str, time: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", name=_text(name), classname=classname, time=time)


def _fail(case: ET.Element, message: str, kind: str, detail: str) -> None:
    failure = ET.SubElement(case, "failure", message=_text(message), type=kind)
    failure.text = _text(detail)


def _validity(report: BenchReport) -> tuple[bool, str]:
    gen = report.generator
    target = gen.target_rate
    wanted = f" of {format_number(float(target))} req/s asked" if target is not None else ""
    return gen.valid, f"achieved {format_rate(float(gen.achieved_rate))}{wanted}"


def junit_xml(report: BenchReport) -> str:
    """One ``<testsuite name="latcli bench TARGET">`` in ``<testsuites>``: a test case per SLA
    threshold, ``<failure message="observed X">`` on a breach; with no thresholds, one test
    case for the generator's validity (did the run hold its rate); a failed "requests answered"
    case when no request was answered."""
    endpoint = report.endpoint or "unknown"
    classname = _text(f"latcli.bench.{endpoint}")
    time = f"{float(report.duration_s or 0.0):.3f}"
    suite = ET.Element("testsuite", name=_text(f"latcli bench {report.target}"), time=time)
    started = float(report.started_at or 0.0)
    if started > 0:
        when = datetime.fromtimestamp(started, tz=timezone.utc).replace(tzinfo=None)
        suite.set("timestamp", when.isoformat(timespec="seconds"))
    props = ET.SubElement(suite, "properties")
    valid, rate_text = _validity(report)
    facts: dict[str, object] = {
        "requests": report.requests,
        "valid": str(valid).lower(),
        "rate": rate_text,
    }
    for phase, values in (report.phases_ms or {}).items():  # --endpoint stream
        for key in ("p50", "p95", "p99"):
            facts[f"{phase}.{key}_ms"] = values.get(key)
    for key, value in facts.items():
        ET.SubElement(props, "property", name=key, value=_text(value))
    failures = 0
    verdicts = report.sla
    for v in verdicts:
        case = _case(suite, f"sla.{v.name}: {v.expr}", classname, time)
        if not v.passed:
            failures += 1
            _fail(case, f"observed {v.format_observed()}", "sla", v.describe())
    if not verdicts:
        case = _case(suite, "generator: run valid (rate held)", classname, time)
        if not valid:
            failures += 1
            _fail(
                case,
                rate_text,
                "invalid_run",
                f"the generator could not hold the rate: {rate_text}",
            )
    cases = len(verdicts) or 1
    if answered_none(report):  # the run fails whatever the thresholds: CI must see why
        cases += 1
        failures += 1
        case = _case(suite, "requests answered", classname, time)
        errors = ", ".join(f"{k} {n}" for k, n in sorted(report.errors.items())) or "none"
        _fail(case, f"0 of {report.requests} requests answered", "no_answer",
              f"no request was answered (errors: {errors})")  # fmt: skip
    tests = str(cases)
    suite.set("tests", tests)
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    root = ET.Element("testsuites", tests=tests, failures=str(failures), errors="0", time=time)
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
