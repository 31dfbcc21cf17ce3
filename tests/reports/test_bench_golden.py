"""The typed bench report against golden documents of real runs (tests/support/bench_golden.py):
today's code makes the very document the recorded runs got when they were recorded, and every
document reads back into the value that writes it again, key for key and byte for byte."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from bench_golden import (
    GOLDEN,
    HLOGS,
    MERGES,
    document_of,
    hlog_document,
    merged_document,
    plan_of,
    result_of,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from json_places import changed, junk, places

from latcli.reports.bench import BenchReport, json_text
from latcli.reports.files import ReportError

GOLDEN_DOC: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
RUNS = {r["name"]: r for r in GOLDEN_DOC["runs"]}
DOCUMENTS = {
    **{f"run:{k}": r["document"] for k, r in RUNS.items()},
    **{f"hlog:{k}": d for k, d in GOLDEN_DOC["hlogs"].items()},
    **{f"merge:{k}": d for k, d in GOLDEN_DOC["merges"].items()},
}


def _plain(doc: dict[str, Any]) -> dict[str, Any]:
    """As a file holds it (tuples are lists, keys strings)."""
    loaded: dict[str, Any] = json.loads(json.dumps(doc))
    return loaded


def test_the_golden_runs_cover_every_part_of_the_contract() -> None:
    docs = [r["document"] for r in RUNS.values()]
    assert {d["model"] for d in docs} == {"open", "closed"}
    assert any(d["errors"] for d in docs) and any(d["phases_ms"] for d in docs)
    assert any(d["shard"] for d in docs) and GOLDEN_DOC["merges"]["shards"]["shards"]
    assert any(not s["pass"] for d in docs for s in d["sla"])
    assert any(d["service_time_ms"] for d in docs)
    assert any(len(d["agents"]) > 1 for d in docs)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_run_makes_the_golden_document(name: str) -> None:
    run = RUNS[name]
    made = document_of(plan_of(run["plan"]), result_of(run["result"]), run["exprs"])
    assert _plain(made) == run["document"]
    report = BenchReport.from_json(run["document"])
    assert json_text(report) == json.dumps(run["document"], indent=2)  # byte for byte


@pytest.mark.parametrize("name", HLOGS)
def test_an_hlog_reads_back_as_the_golden_document(name: str, tmp_path: Path) -> None:
    made = hlog_document(result_of(RUNS[name]["result"]), name, tmp_path)
    assert _plain(made) == GOLDEN_DOC["hlogs"][name]


@pytest.mark.parametrize(("name", "parts", "thresholds"), MERGES)
def test_a_merge_makes_the_golden_document(
    name: str, parts: tuple[str, ...], thresholds: tuple[str, ...] | None
) -> None:
    docs = {**{k: r["document"] for k, r in RUNS.items()},
            **{f"hlog:{k}": d for k, d in GOLDEN_DOC["hlogs"].items()}}  # fmt: skip
    made = merged_document([docs[p] for p in parts], thresholds)
    assert _plain(made) == GOLDEN_DOC["merges"][name]


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_golden_document_round_trips(name: str) -> None:
    doc = DOCUMENTS[name]
    assert BenchReport.from_json(doc).to_json() == doc
    assert list(BenchReport.from_json(doc).to_json()) == list(doc)  # the keys' order too


def _broken(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(RUNS["stream"]["document"])
    *parents, last = path.split(".")
    at = doc
    for key in parents:
        at = at[int(key)] if isinstance(at, list) else at[key]
    if value is KeyError:
        del at[last]
    else:
        at[last] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("histograms", KeyError, "histograms: expected an object, got nothing"),
        ("generator.valid", KeyError, "generator.valid: expected true or false, got nothing"),
        ("generator.valid", "yes", "generator.valid: expected true or false, got 'yes'"),
        ("ok", 1.5, "ok: expected an integer, got 1.5"),
        ("errors", [], "errors: expected an object of counts, got []"),
        ("errors", {"timeout": "2"}, "errors.timeout: expected an integer, got '2'"),
        ("latency_ms.p99", "fast", "latency_ms.p99: expected a number, got 'fast'"),
        ("agents", {"ghost": {"requests": 1}}, "histograms.agents.ghost: expected an encoded"),
        ("histograms.latency.encoded", "HISTFAAAnope", "histograms.latency: not an encoded"),
        ("histograms.latency.sum_us", float("inf"), "histograms.latency: cannot convert float"),
        ("timeline.0.rps", None, "timeline[0].rps: expected a number, got None"),
        ("sla.0.kind", "speed", "sla[0].kind: expected one of latency"),
        ("sla", [{"name": "p9", "expr": "p99 <<", "pass": True}], "sla[0].expr: "),
        ("shard", {"index": 1}, "shard: its shard field is not a latcli shard block"),
        ("target", 7, "target: expected a string, got 7"),
        ("histograms.timeline.0.encoded", KeyError, "histograms.timeline[0]: missing field"),
        ("histograms.timeline_phases.0.gap", KeyError, "histograms.timeline_phases[0]: missing"),
        ("agents.assistant-1.phases_ms.gap", [], "assistant-1.phases_ms.gap: expected an obj"),
    ],
)
def test_a_malformed_document_is_one_line_naming_the_field(
    path: str, value: Any, message: str
) -> None:
    with pytest.raises(ReportError) as caught:
        BenchReport.from_json(_broken(path, value), "r.json")
    text = str(caught.value)
    assert text.startswith("r.json: not a latcli.bench/v1 report: ")
    assert message in text and "\n" not in text


@pytest.mark.parametrize("doc", [[], "text", None, 3])
def test_a_document_that_is_no_object_is_refused(doc: Any) -> None:
    with pytest.raises(ReportError, match="the document: expected an object, got "):
        BenchReport.from_json(doc, "r.json")


def test_the_suites_round_trip_check_finds_a_document_that_would_not() -> None:
    """The session check (conftest ``bench_json_round_trips``) is not vacuous: it finds the
    suite's files, and flags a value the typed report would not write back. (Outside the
    session's temporary directory: the check itself would flag these files.)"""
    with tempfile.TemporaryDirectory() as tmp:
        _check_the_check(Path(tmp))


def _check_the_check(tmp_path: Path) -> None:
    from bench_round_trip import check_tree

    good = RUNS["closed_message"]["document"]
    (tmp_path / "good.json").write_text(json.dumps(good))
    assert check_tree(tmp_path) == (1, [])
    bad = {**good, "pass": not good["pass"]}
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.json").write_text(json.dumps(bad))
    reordered = dict(reversed(list(good.items())))
    (tmp_path / "sub" / "order.json").write_text(json.dumps(reordered))
    found, problems = check_tree(tmp_path)
    assert found == 3 and len(problems) == 2
    assert "bad.json: to_json(from_json(d)) differs in pass" in problems[0]
    assert "order.json: to_json(from_json(d)) differs in key order" in problems[1]


def test_a_document_from_before_the_newer_fields_reads_with_them_derived() -> None:
    """A report written before goodput_rps, status_codes, agents' answered and the verdicts'
    kind: each comes from what the document does hold, as the writer would have made it."""
    doc = copy.deepcopy(RUNS["open_flaky"]["document"])
    for key in ("goodput_rps", "status_codes", "workers", "shard", "shards", "timeline"):
        del doc[key]
    del doc["histograms"]["timeline"], doc["histograms"]["timeline_phases"]
    for row in doc["agents"].values():
        del row["answered"]
    for item in doc["sla"]:
        del item["kind"]
    report = BenchReport.from_json(doc)
    full = RUNS["open_flaky"]["document"]
    # from the rounded duration: within its rounding of the writer's own
    assert report.goodput_rps == pytest.approx(full["goodput_rps"], rel=1e-3)
    assert report.status_codes == {}
    assert [a.answered for a in report.agents.values()] == [
        a["answered"] for a in full["agents"].values()
    ]
    assert [v.kind.value for v in report.sla] == [s["kind"] for s in full["sla"]]
    assert report.timeline == () and report.to_json()["sla"] == full["sla"]


def test_latcli_report_of_a_malformed_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from latcli.cli.app import main

    bad = _broken("generator.valid", "yes")
    with tempfile.TemporaryDirectory() as tmp:  # outside the session's round-trip check
        path = Path(tmp) / "bad.json"
        path.write_text(json.dumps(bad))
        code = main(["report", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert f"{path}: not a latcli.bench/v1 report: generator.valid: expected true or" in err


def test_a_kept_encoding_is_dropped_when_the_histogram_changes() -> None:
    """A histogram read from a report writes its encoding back as read, until a merge changes
    it: then the new counts are encoded."""
    from latcli.reports.bounded_histogram import BoundedHistogram
    from latcli.reports.histogram import LatencyHistogram

    entry = RUNS["closed_message"]["document"]["histograms"]["latency"]
    read = BoundedHistogram.from_json(entry)
    assert read.as_json() == entry
    other = LatencyHistogram()
    other.record_us(123_456)
    read.merge(BoundedHistogram.of(other))
    merged = read.as_json()
    assert merged["count"] == entry["count"] + 1 and merged["encoded"] != entry["encoded"]
    assert LatencyHistogram.decode(merged["encoded"]).count == entry["count"] + 1


STREAM_DOC = RUNS["stream"]["document"]
STREAM_PATHS = places(STREAM_DOC, items=3)
JUNK = junk({"encoded": "HISTF", "count": 1})


@settings(max_examples=300, deadline=None)
@given(where=st.sampled_from(STREAM_PATHS), junk=JUNK, drop=st.booleans())
def test_no_change_to_a_document_gets_past_from_json_as_a_traceback(
    where: tuple[Any, ...], junk: Any, drop: bool
) -> None:
    """Any one field of a real document replaced by junk, or dropped: from_json gives a report
    or a ReportError, never another exception (DESIGN §7: a file is untrusted input)."""
    try:
        report = BenchReport.from_json(changed(STREAM_DOC, where, junk, drop), "r.json")
    except ReportError as exc:
        assert str(exc).startswith("r.json: not a latcli.bench/v1 report: ")
        return
    report.to_json()  # what was read can be written
