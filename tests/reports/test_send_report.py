"""The typed ``latcli.send/v1`` report: real sends' answers (recorded from the demo fleet: one
type, a fan-out, a failover, an unreachable URL, a streamed A2A answer) give the text the code
before the move printed, and what an agent said is redacted and times are rounded once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from latcli.reports.send import SCHEMA, SendReport
from latcli.routing.results import Attempt, FanOut, RouteResult
from latcli.transport.a2a.stream import StreamPhases

# Recorded by running real sends against the demo fleet with the code of commit e4dc2a5
# (render/send_view.send_json): each case is the FanOut and the text `send --json` printed.
GOLDEN = Path(__file__).parent / "data" / "send_golden.json"


def _fan(obj: dict[str, Any]) -> FanOut:
    results = tuple(
        RouteResult(
            **{
                **r,
                "attempts": tuple(Attempt(**a) for a in r["attempts"]),
                "stream": None if r["stream"] is None else StreamPhases(**r["stream"]),
            }
        )
        for r in obj["results"]
    )
    return FanOut(results, obj["latency_ms"], obj["strategy"])


CASES = json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_a_real_sends_document_is_what_the_code_before_the_move_printed(
    case: dict[str, Any],
) -> None:
    report = SendReport.of(_fan(case["fan"]))
    assert json.dumps(report.to_json(), indent=2) == case["text"]  # as `send --json` prints


def test_the_golden_cases_cover_failures_failovers_fan_outs_and_streams() -> None:
    docs = {c["name"]: json.loads(c["text"]) for c in CASES}
    assert docs["unreachable"]["ok"] is False and docs["failover"]["results"][0]["failovers"] == 1
    assert len(docs["fan_out"]["results"]) == 2
    assert docs["stream"]["results"][0]["stream"]["events"] > 0


def test_agent_words_are_redacted_and_times_rounded_once() -> None:
    said = "upstream http://user:hunter2@10.0.0.9/x refused"
    stream = StreamPhases(1.23456, None, 2.0004, None, 9.87654, events=3, chunks=2)
    failed = Attempt("w-1", "http_5xx", 502, 10.00049, message=said)
    won = Attempt("w-2", "ok", 200, 20.1234567, hedge=True)
    result = RouteResult("weather", True, "w-2", "hi", 30.5555, (failed, won), "p2c",
                         state="completed", stream=stream)  # fmt: skip
    doc = SendReport.of(FanOut((result,), 31.0001, "p2c")).to_json()
    assert list(doc) == ["schema", "ok", "strategy", "latency_ms", "results"]
    assert doc["schema"] == SCHEMA and doc["latency_ms"] == 31.0
    (r,) = doc["results"]
    assert r["stream"] == {"first_event_ms": 1.235, "working_ms": None, "first_artifact_ms": 2.0,
                           "gap_ms_max": None, "events": 3, "total_ms": 9.877}  # fmt: skip
    assert "hunter2" not in json.dumps(doc) and "10.0.0.9" in r["attempts"][0]["message"]
    assert [a["latency_ms"] for a in r["attempts"]] == [10.0, 20.123]
    assert r["failovers"] == 0  # a hedge is not a failover
    assert r["attempts"][1]["hedge"] is True and r["state"] == "completed"


def test_a_result_without_attempts_has_no_failovers() -> None:
    empty = RouteResult("weather", False, None, None, 0.0, (), "p2c", error="no replica")
    (r,) = SendReport.of(FanOut((empty,), 0.0, "p2c")).to_json()["results"]
    assert r["failovers"] == 0 and r["attempts"] == [] and r["error"] == "no replica"
