"""The table of scripts/bench_peers.sh: every figure read from one run's directory.

Usage: python scripts/bench_peers_table.py RUNDIR — prints the table (tool, test, figures,
ratio, criterion, result) and exits 1 if any criterion failed, else 0. A test whose files
are missing (skipped with --only/--quick, or a tool that could not be installed) shows as
skipped or n/a, never as a pass.

Files read (all written by bench_peers.sh in the same run):
  tools.txt          ``name status`` lines (``hey unavailable`` -> hey ratios are n/a)
  a_hey.txt a_locust_stats.csv a_latcli.json a_latcli_w1.json      test a
  b_wrk.txt b_latcli.json                                           test b
  c_latcli.json c_over.json c_over.rc                               test c
  d_latcli.json d_hey.txt                                           test d
  e_latcli.json e_rss.tsv                                           test e
"""

from __future__ import annotations

import csv
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The acceptance criteria (issue 5, item 7).
A_VS_LOCUST = 1.5  # one process each
A_VS_HEY = 0.2  # latcli in one process
A_DEFAULT_VS_HEY = 0.9  # latcli as it runs by default, every core (issue 14 item 4)
B_P50_MS = 0.5
B_P99_MS = 1.5
C_RATE = 2000.0
C_ACHIEVED = 0.99
C_LAG_MS = 2.0
D_P90_MS, D_P90_TOL = 300.0, 0.15
D_P99_MS, D_P99_TOL = 480.0, 0.10
E_GROWTH = 0.10
E_BASE_S = 60.0


@dataclass
class Row:
    tool: str
    test: str
    figures: str
    ratio: str = ""
    criterion: str = ""
    result: str = ""


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def _json(path: Path) -> dict[str, Any] | None:
    text = _read(path)
    if not text or not text.strip():
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk_figures(text: str) -> dict[str, float]:
    """Requests/sec and the --latency distribution's 50/75/90/99 % in ms."""
    out: dict[str, float] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    for pct, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        out[f"p{pct}"] = float(value) * _UNIT_MS[unit]
    return out


def hey_figures(text: str) -> dict[str, float]:
    """Requests/sec and the latency distribution's percentiles in ms."""
    out: dict[str, float] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    for pct, secs in re.findall(r"^\s+(\d+)%+ in ([\d.]+) secs", text, re.M):
        out[f"p{pct}"] = float(secs) * 1000.0
    m = re.search(r"\[200\]\s+(\d+) responses", text)
    if m:
        out["ok"] = float(m.group(1))
    return out


def locust_figures(path: Path) -> dict[str, float]:
    """The Aggregated row of locust's --csv stats: requests/s, failures, request count."""
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row.get("Name") == "Aggregated":
                return {
                    "rps": float(row["Requests/s"]),
                    "requests": float(row["Request Count"]),
                    "failures": float(row["Failure Count"]),
                }
    return {}


def _errors(doc: dict[str, Any]) -> int:
    return int(sum(doc.get("errors", {}).values()))


def _ok(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def _missing(tool: str, test: str, what: str) -> Row:
    return Row(tool, test, f"no result ({what} missing)", "", "", "FAIL")


def test_a(run: Path, hey_ok: bool) -> list[Row]:
    rows: list[Row] = []
    test = "a. nginx /health, c=50, 10 s"
    hey = hey_figures(_read(run / "a_hey.txt") or "") if hey_ok else {}
    if hey_ok:
        rows.append(Row("hey -c 50", test, f"{hey.get('rps', 0):,.0f} req/s", "", "reference"))
    else:
        rows.append(Row("hey", test, "unavailable", "", "reference", "n/a"))
    loc_path = run / "a_locust_stats.csv"
    loc = locust_figures(loc_path) if loc_path.exists() else {}
    if loc:
        rows.append(
            Row(
                "locust FastHttpUser, 1 proc, 50 users",
                test,
                f"{loc['rps']:,.0f} req/s, failures {loc['failures']:.0f}",
                "",
                "reference",
            )
        )
    else:
        rows.append(Row("locust FastHttpUser", test, "no result", "", "reference", "n/a"))

    default = _json(run / "a_latcli.json")
    if default is None:
        rows.append(_missing("latcli -c 50 (default)", test, "a_latcli.json"))
    else:
        rps = float(default["throughput_rps"])
        fig = f"{rps:,.0f} req/s, errors {_errors(default)}, {default.get('workers')} workers"
        tool = "latcli -c 50 (default)"
        rows.append(_vs_hey(tool, test, fig, rps, hey.get("rps"), A_DEFAULT_VS_HEY))
    one = _json(run / "a_latcli_w1.json")
    tool = "latcli -c 50 --workers 1"
    if one is None:
        rows.append(_missing(tool, test, "a_latcli_w1.json"))
        return rows
    rps = float(one["throughput_rps"])
    fig = f"{rps:,.0f} req/s, errors {_errors(one)}"
    if loc:
        r = rps / loc["rps"] if loc["rps"] else float("inf")
        crit = f">= {A_VS_LOCUST}x locust"
        rows.append(Row(tool, test, fig, f"{r:.2f}x locust", crit, _ok(r >= A_VS_LOCUST)))
    else:
        rows.append(Row(tool, test, fig, "n/a", f">= {A_VS_LOCUST}x locust", "n/a"))
    rows.append(_vs_hey(tool, test, fig, rps, hey.get("rps"), A_VS_HEY))
    return rows


def _vs_hey(tool: str, test: str, fig: str, rps: float, hey: float | None, need: float) -> Row:
    crit = f">= {need}x hey"
    if not hey:
        return Row(tool, test, fig, "n/a", crit, "n/a")
    r = rps / hey
    return Row(tool, test, fig, f"{r:.2f}x hey", crit, _ok(r >= need))


def test_b(run: Path) -> list[Row]:
    test = "b. 20 ms target, c=10, 10 s"
    wrk = wrk_figures(_read(run / "b_wrk.txt") or "")
    rows = []
    if "p50" in wrk and "p99" in wrk:
        rows.append(
            Row(
                "wrk -c10 -t1",
                test,
                f"p50 {wrk['p50']:.2f} ms, p99 {wrk['p99']:.2f} ms, {wrk.get('rps', 0):,.0f} req/s",
                "",
                "reference",
            )
        )
    else:
        rows.append(_missing("wrk -c10 -t1", test, "b_wrk.txt"))
    doc = _json(run / "b_latcli.json")
    if doc is None:
        rows.append(_missing("latcli -c 10", test, "b_latcli.json"))
        return rows
    lat = doc["latency_ms"]
    fig = (
        f"p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms, "
        f"{float(doc['throughput_rps']):,.0f} req/s, errors {_errors(doc)}"
    )
    for key, limit in (("p50", B_P50_MS), ("p99", B_P99_MS)):
        if key in wrk:
            d = lat[key] - wrk[key]
            rows.append(
                Row(
                    "latcli -c 10",
                    test,
                    fig,
                    f"{key} {d:+.2f} ms vs wrk",
                    f"{key} <= wrk + {limit} ms",
                    _ok(d <= limit),
                )
            )
        else:
            rows.append(Row("latcli -c 10", test, fig, "n/a", f"{key} <= wrk + {limit} ms", "FAIL"))
    return rows


def test_c(run: Path) -> list[Row]:
    test = "c. open model 2,000 req/s, 10 s"
    rows = []
    doc = _json(run / "c_latcli.json")
    tool = "latcli --rate 2000"
    if doc is None:
        rows.append(_missing(tool, test, "c_latcli.json"))
    else:
        gen = doc["generator"]
        achieved = float(gen["achieved_rate"])
        lag = gen.get("schedule_lag_ms_p99")
        fig = (
            f"achieved {achieved:,.1f} req/s, lag p99 {lag} ms, valid {gen['valid']}, "
            f"p99 {doc['latency_ms']['p99']:.2f} ms, errors {_errors(doc)}"
        )
        share = achieved / C_RATE
        rows.append(
            Row(
                tool,
                test,
                fig,
                f"{share:.2%} of target",
                f">= {C_ACHIEVED:.0%} of rate",
                _ok(share >= C_ACHIEVED),
            )
        )
        rows.append(
            Row(
                tool,
                test,
                fig,
                f"lag p99 {lag} ms",
                f"lag p99 < {C_LAG_MS} ms",
                _ok(lag is not None and float(lag) < C_LAG_MS),
            )
        )
    over = _json(run / "c_over.json")
    rc_text = (_read(run / "c_over.rc") or "").strip()
    tool = "latcli --rate 200000"
    test = "c. impossible rate, 10 s"
    if over is None and not rc_text:
        rows.append(_missing(tool, test, "c_over.json"))
    else:
        valid = None if over is None else over.get("generator", {}).get("valid")
        achieved = None if over is None else over.get("generator", {}).get("achieved_rate")
        ach = "?" if achieved is None else f"{float(achieved):,.0f}"
        fig = f"achieved {ach} req/s, valid {valid}, exit {rc_text or '?'}"
        rows.append(
            Row(tool, test, fig, "", "invalid, exit 3", _ok(valid is False and rc_text == "3"))
        )
    return rows


def test_d(run: Path, hey_ok: bool) -> list[Row]:
    test = "d. 500 ms stall every 2 s, 10 s"
    rows = []
    doc = _json(run / "d_latcli.json")
    tool = "latcli --rate 200 --max-in-flight 10"
    if doc is None:
        rows.append(_missing(tool, test, "d_latcli.json"))
    else:
        lat = doc["latency_ms"]
        fig = (
            f"p50 {lat['p50']:.1f} ms, p90 {lat['p90']:.1f} ms, p99 {lat['p99']:.1f} ms, "
            f"{doc['requests']:,} req, errors {_errors(doc)}"
        )
        for key, want, tol in (("p90", D_P90_MS, D_P90_TOL), ("p99", D_P99_MS, D_P99_TOL)):
            dev = lat[key] / want - 1.0
            rows.append(
                Row(
                    tool,
                    test,
                    fig,
                    f"{key} {dev:+.1%} vs {want:.0f} ms",
                    f"{key} {want:.0f} ms +/-{tol:.0%}",
                    _ok(abs(dev) <= tol),
                )
            )
    if not hey_ok:
        rows.append(Row("hey -c 10 (closed)", test, "unavailable", "", "contrast only", "n/a"))
    else:
        hey = hey_figures(_read(run / "d_hey.txt") or "")
        if "p99" in hey:
            fig = (
                f"p50 {hey.get('p50', 0):.1f} ms, p90 {hey.get('p90', 0):.1f} ms, "
                f"p99 {hey['p99']:.1f} ms, {hey.get('rps', 0):,.0f} req/s"
            )
            rows.append(Row("hey -c 10 (closed)", test, fig, "", "contrast only", "info"))
        else:
            rows.append(Row("hey -c 10 (closed)", test, "no result", "", "contrast only", "n/a"))
    return rows


def test_e(run: Path) -> list[Row]:
    test = "e. 2,000 req/s open, 600 s"
    tool = "latcli --rate 2000 -d 600s"
    text = _read(run / "e_rss.tsv")
    if text is None:
        return [_missing(tool, test, "e_rss.tsv")]
    samples = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].replace(".", "").isdigit() and int(parts[1]) > 0:
            samples.append((float(parts[0]), int(parts[1])))
    base = next(((t, kb) for t, kb in samples if t >= E_BASE_S), None)
    doc = _json(run / "e_latcli.json")
    run_fig = ""
    if doc is not None:
        gen = doc["generator"]
        run_fig = (
            f"; achieved {float(gen['achieved_rate']):,.1f} req/s, valid {gen['valid']}, "
            f"errors {_errors(doc)}"
        )
    if base is None:
        return [
            Row(tool, test, f"{len(samples)} RSS samples, none after 60 s{run_fig}", "", "", "FAIL")
        ]
    after = [kb for t, kb in samples if t >= base[0]]
    peak, last = max(after), after[-1]
    growth = peak / base[1] - 1.0
    fig = (
        f"RSS at {base[0]:.0f} s {base[1] / 1024:.1f} MiB, max after {peak / 1024:.1f} MiB, "
        f"last {last / 1024:.1f} MiB ({len(samples)} samples){run_fig}"
    )
    return [
        Row(
            tool,
            test,
            fig,
            f"{growth:+.1%} after 1 min",
            f"growth <= {E_GROWTH:.0%}",
            _ok(growth <= E_GROWTH),
        )
    ]


def render(rows: list[Row]) -> str:
    head = Row("tool", "test", "figures", "ratio", "criterion", "result")
    cols = list(head.__dict__)
    widths = {c: max(len(getattr(r, c)) for r in [head, *rows]) for c in cols}

    def line(r: Row) -> str:
        return "| " + " | ".join(getattr(r, c).ljust(widths[c]) for c in cols) + " |"

    sep = "|" + "|".join("-" * (widths[c] + 2) for c in cols) + "|"
    return "\n".join([line(head), sep, *(line(r) for r in rows)])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    run = Path(argv[1])
    tools = dict(
        line.split(None, 1)
        for line in (_read(run / "tools.txt") or "").splitlines()
        if line.strip()
    )
    hey_ok = tools.get("hey", "ok").strip() != "unavailable"
    ran = set((_read(run / "tests.txt") or "a b c d e").split())
    rows: list[Row] = []
    builders = {
        "a": lambda: test_a(run, hey_ok),
        "b": lambda: test_b(run),
        "c": lambda: test_c(run),
        "d": lambda: test_d(run, hey_ok),
        "e": lambda: test_e(run),
    }
    for key, build in builders.items():
        if key in ran:
            rows.extend(build())
        else:
            rows.append(
                Row("-", f"{key}. (not run)", "skipped (--only/--quick)", "", "", "skipped")
            )
    print(render(rows))
    judged = [r for r in rows if r.result in ("PASS", "FAIL")]
    failed = [r for r in judged if r.result == "FAIL"]
    print(f"\n{len(judged) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
