"""``latcli bench --endpoint stream`` against real streaming agents on loopback: the phases'
histograms against the agent's own schedule, task_failed, SLA on a phase, every output, report
merges, workers and routed types (issue 11 item 6).

Two agents: tests/support/stream_agent.py (lean, an exact schedule: first artifact at 200 ms, then
chunks 20 ms apart, 5 in all) and the real a2a-sdk 1.3.0 agents of tests/support/a2a_sdk_agents.py.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from a2a_sdk_agents import RunningAgent, run_sdk_agent
from stream_agent import RunningStreamAgent, run_stream_agent

from latcli.cli.app import main
from latcli.reports.bench_model import PHASES
from latcli.reports.histogram import SUMMARY_KEYS, LatencyHistogram, read_hlog

pytestmark = pytest.mark.timeout(120)

FIRST_MS, CHUNKS, GAP_MS = 200.0, 5, 20.0
TOTAL_MS = FIRST_MS + (CHUNKS - 1) * GAP_MS  # the completed status right after the last chunk
SLACK_MS = 60.0  # upper tolerance on a shared 2-core machine; lower bounds are the schedule's


@pytest.fixture(scope="module")
def agent() -> Iterator[RunningStreamAgent]:
    with run_stream_agent() as running:
        yield running


@pytest.fixture(scope="module")
def sdk_agent() -> Iterator[RunningAgent]:
    schedule = ("--think-ms", str(FIRST_MS), "--chunks", str(CHUNKS), "--gap-ms", str(GAP_MS))
    with run_sdk_agent("stream", *schedule) as running:
        yield running


def bench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["bench", *args, "--endpoint", "stream", "--json", "-q"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def inventory(tmp_path: Path, urls: list[str], extra: str = "") -> str:
    agents = "".join(
        f"  - {{id: llm-{i}, type: llm, url: '{u}', protocol: a2a}}\n" for i, u in enumerate(urls)
    )
    path = tmp_path / "agents.yaml"
    path.write_text(f"version: 1\nagents:\n{agents}{extra}")
    return str(path)


def within(value: float, low: float, high: float) -> bool:
    return low <= value <= high


def check_schedule(phases: dict[str, dict[str, float]], slack: float = SLACK_MS) -> None:
    first, gap, total = phases["first_artifact"], phases["gap"], phases["total"]
    assert within(first["min"], FIRST_MS, FIRST_MS + slack), first
    assert within(first["p50"], FIRST_MS, FIRST_MS + slack), first
    # each message's longest gap: never under the schedule's gap (timer rounding: -1 ms)
    assert within(gap["p50"], GAP_MS - 1.0, GAP_MS + slack), gap
    assert within(total["p50"], TOTAL_MS - 1.0, TOTAL_MS + slack), total
    assert phases["first_event"]["p50"] < first["p50"]
    assert total["min"] >= first["min"]


def test_the_phases_follow_the_agents_schedule(
    agent: RunningStreamAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = bench(capsys, agent.url, "-c", "10", "-n", "60")
    assert code == 0
    assert doc["endpoint"] == "stream" and doc["ok"] == 60 and not doc["errors"]
    assert set(doc["phases_ms"]) == set(PHASES)
    for values in doc["phases_ms"].values():
        assert set(values) == set(doc["latency_ms"]) == set(SUMMARY_KEYS)
    check_schedule(doc["phases_ms"])
    # every phase histogram holds one value per answered stream
    counts = {p: h["count"] for p, h in doc["histograms"]["phases"].items()}
    assert counts == dict.fromkeys(PHASES, 60)
    (only,) = doc["agents"].values()
    assert only["phases_ms"] == doc["phases_ms"]


def test_phases_of_the_a2a_sdk_agent(
    sdk_agent: RunningAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = bench(capsys, sdk_agent.url, "-c", "4", "-n", "20")
    assert code == 0 and doc["ok"] == 20
    check_schedule(doc["phases_ms"], slack=150.0)


def test_a_failing_stream_is_task_failed(
    agent: RunningStreamAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = bench(capsys, agent.url, "-c", "4", "-n", "12", "--message", "please fail")
    assert code == 1  # nothing answered: the run fails
    assert doc["errors"] == {"task_failed": 12} and doc["ok"] == 0
    assert all(h["count"] == 0 for h in doc["histograms"]["phases"].values())


def test_the_sdk_agents_failed_task_is_task_failed(capsys: pytest.CaptureFixture[str]) -> None:
    with run_sdk_agent("fail", "--think-ms", "20") as failing:
        code, doc = bench(capsys, failing.url, "-c", "2", "-n", "4")
    assert code == 1 and doc["errors"] == {"task_failed": 4}


def test_some_failures_leave_the_answered_streams_phases(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with run_stream_agent("--fail-every", "4") as flaky:
        code, doc = bench(capsys, flaky.url, "-c", "4", "-n", "40")
    assert code == 0
    assert doc["errors"] == {"task_failed": 10} and doc["ok"] == 30
    assert doc["histograms"]["phases"]["first_artifact"]["count"] == 30
    assert doc["histograms"]["latency"]["count"] == 30


@pytest.mark.parametrize(
    ("sla", "code", "passed"),
    [
        (["first_artifact.p95<500ms", "total.p50 < 1s"], 0, [True, True]),
        (["first_artifact.p50<100ms"], 1, [False]),
        (["gap.max<1ms", "p99<10s"], 1, [False, True]),
    ],
)
def test_sla_on_a_phase(
    agent: RunningStreamAgent,
    capsys: pytest.CaptureFixture[str],
    sla: list[str],
    code: int,
    passed: list[bool],
) -> None:
    args = [a for expr in sla for a in ("--sla", expr)]
    got, doc = bench(capsys, agent.url, "-c", "5", "-n", "20", *args)
    assert got == code
    assert [v["pass"] for v in doc["sla"]] == passed
    first = doc["sla"][0]
    phase = first["expr"].split(".", 1)[0]
    metric = first["expr"].split(".", 1)[1].split(" ")[0]
    assert first["observed"] == pytest.approx(doc["phases_ms"][phase][metric], abs=0.01)


def test_the_inventorys_stream_sla_with_a_bare_sla(
    agent: RunningStreamAgent, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = "sla:\n  message: 'p99 < 1ms'\n  stream:\n    first_artifact: 'p95 < 1s'\n" \
            "    total: 'p95 < 10ms'\n"  # fmt: skip
    inv = inventory(tmp_path, [agent.url], extra)
    code, doc = bench(capsys, "llm-0", "-c", "2", "-n", "6", "--sla", "-i", inv)
    assert code == 1
    got = [(v["name"], v["expr"], v["pass"]) for v in doc["sla"]]
    assert got == [
        ("stream.first_artifact", "first_artifact.p95 < 1s", True),
        ("stream.total", "total.p95 < 10ms", False),
    ]


def test_a_bad_phase_sla_in_the_inventory_exits_2(
    agent: RunningStreamAgent, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = inventory(tmp_path, [agent.url], "sla:\n  stream:\n    first_token: 'p95 < 1s'\n")
    assert main(["bench", "llm-0", "--endpoint", "stream", "-n", "1", "-q", "-i", inv]) == 2
    assert "first_token" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--sla", "first_token.p95<1s"], "unknown stream phase"),
        (["--sla", "gap.error_rate<1%"], "latency metric"),
    ],
)
def test_bad_phase_expressions_exit_2(
    agent: RunningStreamAgent, args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", agent.url, "--endpoint", "stream", "-n", "1", "-q", *args]) == 2
    assert needle in capsys.readouterr().err


def test_agents_that_cannot_stream_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with run_stream_agent("--no-streaming") as plain_card:
        assert main(["bench", plain_card.url, "--endpoint", "stream", "-n", "1", "-q"]) == 2
        assert "capabilities.streaming" in capsys.readouterr().err
        path = tmp_path / "http.yaml"
        path.write_text(
            f"version: 1\nagents:\n  - {{id: web, type: web, url: '{plain_card.url}'}}\n"
        )
        assert main(["bench", "web", "--endpoint", "stream", "-n", "1", "-q", "-i", str(path)]) == 2
        assert "plain HTTP" in capsys.readouterr().err


def test_every_output_carries_the_phases(
    agent: RunningStreamAgent, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, hlog, junit, html = (tmp_path / f"r.{x}" for x in ("json", "hlog", "xml", "html"))
    code, doc = bench(
        capsys, agent.url, "-c", "5", "-d", "2.5s", "-o", str(out), "--hlog", str(hlog),
        "--junit", str(junit), "--html", str(html), "--sla", "first_artifact.p99<2s",
    )  # fmt: skip
    assert code == 0 and json.loads(out.read_text()) == doc
    # hlog: untagged latency lines plus one tagged line per phase and interval, read by hdrh
    logged = read_hlog(hlog)
    by_tag: dict[str | None, int] = {}
    for iv in logged:
        by_tag[iv.tag] = by_tag.get(iv.tag, 0) + iv.histogram.count
    assert by_tag == {None: doc["ok"], **dict.fromkeys(PHASES, doc["ok"])}
    # the report read back from the hlog: latency and phases as the run had them
    assert main(["report", str(hlog), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["ok"] == doc["ok"]
    assert again["phases_ms"]["first_artifact"]["p99"] == pytest.approx(
        doc["phases_ms"]["first_artifact"]["p99"], rel=2e-3
    )
    # junit: the phase gate is a test case, the phases' percentiles are properties
    root = ET.fromstring(junit.read_text())
    names = [c.get("name") for c in root.iter("testcase")]
    assert names == ["sla.first_artifact.p99: first_artifact.p99 < 2s"]
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert float(props["first_artifact.p50_ms"] or 0) >= FIRST_MS
    # html: a spectrum per phase
    page = html.read_text()
    assert "Stream phases" in page
    for title in ("First event", "First artifact", "Gap (longest per message)", "Total"):
        assert f"{title} by percentile" in page
    # timeline: every point carries the phases with the percentile keys compare reads
    assert doc["timeline"]
    for point in doc["timeline"]:
        assert set(point["phases_ms"]) == set(PHASES)
        assert point["phases_ms"]["first_artifact"]["p95"] >= FIRST_MS - 1


def test_human_summary_has_a_phase_table(
    agent: RunningStreamAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", agent.url, "--endpoint", "stream", "-c", "2", "-n", "6", "-q"]) == 0
    out = capsys.readouterr().out
    for label in ("stream ms", "first event", "first artifact", "gap (max/msg)", "total"):
        assert label in out


def _hist(doc: dict[str, Any], phase: str) -> LatencyHistogram:
    entry = doc["histograms"]["phases"][phase]
    return LatencyHistogram.decode(entry["encoded"], entry["sum_us"])


def test_report_merge_adds_the_phase_histograms(
    agent: RunningStreamAgent, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, merged = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "m.json"
    bench(capsys, agent.url, "-c", "3", "-n", "15", "-o", str(a))
    bench(capsys, agent.url, "-c", "3", "-n", "25", "-o", str(b))
    assert main(["report", str(a), str(b), "-o", str(merged), "--json", "--sla",
                 "total.p99<5s"]) == 0  # fmt: skip
    capsys.readouterr()
    docs = [json.loads(p.read_text()) for p in (a, b, merged)]
    m = docs[2]
    assert m["ok"] == 40 and m["sla"][0]["pass"] is True
    for phase in PHASES:
        both = _hist(docs[0], phase)
        both.merge(_hist(docs[1], phase))
        assert m["histograms"]["phases"][phase]["count"] == 40
        assert _hist(m, phase).recorded() == both.recorded()  # added, never averaged
        # the exact extremes travel beside each encoding: percentiles stay inside them
        ends = [d["histograms"]["phases"][phase] for d in docs[:2]]
        low = min(e["min_us"] for e in ends) / 1000
        high = max(e["max_us"] for e in ends) / 1000
        for key in ("p50", "p99", "p99.9"):
            value = min(max(both.percentile_ms(float(key[1:])) or 0.0, low), high)
            assert m["phases_ms"][phase][key] == pytest.approx(value, abs=0.002)
    (agent_id,) = m["agents"]
    assert m["agents"][agent_id]["phases_ms"] == m["phases_ms"]


def test_workers_merge_the_phases(
    agent: RunningStreamAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = bench(capsys, agent.url, "-c", "6", "-n", "30", "--workers", "2")
    assert code == 0 and doc["ok"] == 30
    assert all(h["count"] == 30 for h in doc["histograms"]["phases"].values())
    check_schedule(doc["phases_ms"])


def test_a_routed_type_has_phases_per_agent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with run_stream_agent() as one, run_stream_agent("--first-ms", "300") as two:
        inv = inventory(tmp_path, [one.url, two.url])
        code, doc = bench(capsys, "llm", "-c", "4", "-n", "40", "-i", inv,
                          "--strategy", "round_robin")  # fmt: skip
    assert code == 0 and doc["ok"] == 40
    fast, slow = doc["agents"]["llm-0"], doc["agents"]["llm-1"]
    assert fast["requests"] + slow["requests"] == 40
    assert within(fast["phases_ms"]["first_artifact"]["p50"], FIRST_MS, 300.0)
    assert slow["phases_ms"]["first_artifact"]["p50"] >= 300.0
    assert doc["histograms"]["phases"]["first_artifact"]["count"] == 40


def test_compare_reads_a_phase_from_the_timeline(
    agent: RunningStreamAgent, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for path in (a, b):
        bench(capsys, agent.url, "-c", "4", "-d", "3.5s", "-o", str(path))
    code = main(["compare", str(a), str(b), "--metric", "first_artifact.p95", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    assert doc["metric"] == "first_artifact.p95"
    assert doc["baseline"]["median"] >= FIRST_MS - 1


def test_the_httpx_engine_streams_too(
    agent: RunningStreamAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = bench(capsys, agent.url, "-c", "4", "-n", "16", "--engine", "httpx")
    assert code == 0 and doc["ok"] == 16
    check_schedule(doc["phases_ms"])


def test_other_endpoints_have_no_phases(
    agent: RunningStreamAgent, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["bench", agent.url + "/.well-known/agent-card.json", "-n", "5", "--json", "-q"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["phases_ms"] is None and doc["histograms"]["phases"] is None
    assert all(p.get("phases_ms") is None for p in doc["timeline"])
