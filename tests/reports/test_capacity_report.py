"""The typed ``latcli.capacity/v1`` report: real runs' documents rebuilt exactly from their steps
(golden, recorded by the code before the report was typed), the JSON read back losslessly, the
view and the page unchanged, and malformed documents refused in one line naming the key."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from capacity_golden import GOLDEN, load_case, view_text
from capacity_help import check_contract
from conftest import DemoFleet
from hypothesis import given, settings
from hypothesis import strategies as st
from json_places import changed, junk, places

from latcli.cli.app import main
from latcli.core.capacity import summarize
from latcli.core.errors import ExitCode
from latcli.render.capacity_view import capacity_summary
from latcli.render.console import stdout_console
from latcli.render.html_capacity import capacity_html
from latcli.reports.capacity import CapacityReport, capacity_report
from latcli.reports.files import ReportError

CASES = sorted(p.stem for p in GOLDEN.glob("*.json"))


def _dumps(doc: Any) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)  # as `latcli capacity --json` prints


def _golden(name: str) -> tuple[dict[str, Any], CapacityReport]:
    """(the stored case, the report today's code makes of its steps)."""
    case, steps, plan = load_case(GOLDEN / f"{name}.json")
    result = summarize(plan, steps, case["replicas"], case["interrupted"])
    report = capacity_report(
        result, target=case["target"], endpoint=case["endpoint"], sla=case["sla"]
    )
    return case, report


def test_the_golden_cases_are_real_runs_of_every_kind() -> None:
    assert CASES == ["first_step_fails", "message_type", "stream"]
    docs = {name: _golden(name)[0]["document"] for name in CASES}
    assert docs["message_type"]["replicas"] == 2 and docs["message_type"]["knee"] is not None
    assert docs["stream"]["streams"] is not None and docs["first_step_fails"]["knee"] is None
    assert any(not s["pass"] for s in docs["message_type"]["steps"])


@pytest.mark.parametrize("name", CASES)
def test_a_real_runs_document_is_what_the_code_before_the_move_wrote(name: str) -> None:
    case, report = _golden(name)
    assert _dumps(report.to_json()) == _dumps(case["document"])  # key order and digits too
    check_contract(case["document"])


@pytest.mark.parametrize("name", CASES)
def test_from_json_reads_back_the_report_it_was_written_from(name: str) -> None:
    case, report = _golden(name)
    doc = case["document"]
    back = CapacityReport.from_json(doc)
    assert back == report
    assert back.to_json() == doc and _dumps(back.to_json()) == _dumps(doc)


@pytest.mark.parametrize("name", CASES)
def test_the_view_and_the_page_are_what_they_were(name: str) -> None:
    case, report = _golden(name)
    view = (GOLDEN / f"{name}.view.txt").read_text(encoding="utf-8")
    page = (GOLDEN / f"{name}.html").read_text(encoding="utf-8")
    for r in (report, CapacityReport.from_json(case["document"])):
        assert view_text(r) == view
        assert capacity_html(r) == page


def _doc() -> dict[str, Any]:
    return copy.deepcopy(_golden("stream")[0]["document"])


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    """``value`` at a dotted path (``steps.1.pass``); ``...`` deletes the key."""
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is ...:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("schema", "latcli.bench/v1", "not a latcli.capacity/v1 report (schema 'latcli.bench/v1')"),
        ("schema", ..., "(schema None)"),
        ("steps.0.latency_ms.p99", ..., "steps[0].latency_ms.p99: expected a number, got nothing"),
        ("steps.1.pass", "yes", "steps[1].pass: expected true or false, got 'yes'"),
        ("steps.2.rate", True, "steps[2].rate: expected a number, got True"),
        ("steps.0.requests", 1.5, "steps[0].requests: expected an integer, got 1.5"),
        ("steps.0.phase", "warp", "steps[0].phase: expected one of step, refine, retry"),
        ("steps.0.phases_ms", [], "steps[0].phases_ms: expected an object"),
        ("steps.0.sla.0.expr", 5, "steps[0].sla[0].expr: expected a string, got 5"),
        ("steps.0.errors_by_kind", {"timeout": "2"}, "errors_by_kind.timeout: expected an int"),
        ("steps.0.errors_by_kind", None, "steps[0].errors_by_kind: expected an object of counts"),
        ("steps.0.interval_p50_ms", ["1"], "steps[0].interval_p50_ms: expected a list of numbers"),
        ("steps", {}, "steps: expected a list, got {}"),
        ("knee.index", 99, "knee.index: 99 is not a step"),
        ("streams", ..., "streams: expected a value or null, got nothing"),
        ("streams.total_ms", None, "streams.total_ms: expected an object"),
        ("limited_by", "moon", "limited_by: expected one of target, generator, max_rate"),
        ("reasoning", "fast", "reasoning: expected a list, got 'fast'"),
        ("sla", [1], "sla: expected a list of strings"),
        ("headroom", 1.5, "the search plan: headroom must be at least 0% and under 100%"),
        ("replicas_needed", 2.5, "replicas_needed: expected an integer, got 2.5"),
    ],
)
def test_a_malformed_document_is_one_line_naming_the_key(
    path: str, value: Any, message: str
) -> None:
    doc = _doc()
    _set(doc, path, value)
    with pytest.raises(ReportError) as caught:
        CapacityReport.from_json(doc)
    text = str(caught.value)
    assert message in text and "\n" not in text
    assert caught.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize("obj", [[], "capacity", None, 3])
def test_a_document_that_is_not_an_object_is_refused(obj: object) -> None:
    with pytest.raises(ReportError, match="the document: expected an object"):
        CapacityReport.from_json(obj)


def test_a_long_bad_value_is_cut_short_in_the_message() -> None:
    doc = _doc()
    doc["target"] = ["x" * 500]
    with pytest.raises(ReportError) as caught:
        CapacityReport.from_json(doc)
    assert len(str(caught.value)) < 120


def test_null_optionals_and_whole_numbers_read_as_written() -> None:
    """A hand-edited or foreign document may write 100 for 100.0: read, and written back as it
    was (the JSON text too: the reader keeps a number as the document states it)."""
    doc = _doc()
    doc["steps"][0]["rate"] = 8
    doc["max_rate"] = None
    back = CapacityReport.from_json(doc)
    assert back.steps[0].rate == 8.0
    assert json.dumps(back.to_json()) == json.dumps(doc)


def test_a_real_runs_saved_file_renders_what_the_run_printed_and_wrote(
    demo_fleet: DemoFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``-o``, ``--html`` and the summary of one real run: all three are the document's."""
    out, page = tmp_path / "cap.json", tmp_path / "cap.html"
    code = main(["capacity", "weather-1", "-i", str(demo_fleet.inventory_path), "-q",
                 "--start-rate", "20", "--max-rate", "30", "--step-duration", "0.5s",
                 "-o", str(out), "--html", str(page)])  # fmt: skip
    printed = capsys.readouterr().out
    doc = json.loads(out.read_text(encoding="utf-8"))
    check_contract(doc)
    assert code == (0 if doc["pass"] else 1) and len(doc["steps"]) >= 1
    saved = CapacityReport.from_json(doc)
    assert capacity_html(saved) == page.read_text(encoding="utf-8")
    stdout_console().print(capacity_summary(saved))
    assert capsys.readouterr().out == printed and "weather-1" in printed


def test_a_named_source_heads_the_message() -> None:
    doc = _doc()
    doc["steps"][1]["pass"] = "yes"
    with pytest.raises(
        ReportError, match=r"^c\.json: not a latcli\.capacity/v1 report: steps\[1\]"
    ):
        CapacityReport.from_json(doc, "c.json")
    with pytest.raises(ReportError, match=r"^c\.json: not a latcli\.capacity/v1 report \(schema"):
        CapacityReport.from_json({**doc, "schema": "x"}, "c.json")


JUNK = junk(["x"])


@settings(max_examples=300, deadline=None)
@given(where=st.sampled_from(places(_doc(), items=2)), junk=JUNK, drop=st.booleans())
def test_no_change_to_a_document_gets_past_from_json_as_a_traceback(
    where: tuple[Any, ...], junk: Any, drop: bool
) -> None:
    """Any one field of a real document replaced by junk, or dropped: a report that writes,
    or one ReportError line (DESIGN §7: a file is untrusted input)."""
    try:
        report = CapacityReport.from_json(changed(_doc(), where, junk, drop), "c.json")
    except ReportError as exc:
        assert str(exc).startswith("c.json: not a latcli.capacity/v1 report") and "\n" not in str(
            exc
        )
        return
    report.to_json()
