"""Every ``latcli.bench/v1`` JSON file the test suite makes (``bench -o``, ``report -o``, the
tests' own writes, in-process or from a subprocess) reads back into the typed report that
writes it again key for key: ``BenchReport.from_json(d).to_json() == d``, in the keys' order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from latcli.reports.bench import SCHEMA, BenchReport
from latcli.reports.files import ReportError


def bench_documents(root: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The bench JSON documents under ``root`` (files that are not JSON are skipped)."""
    for path in sorted(root.rglob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(doc, dict) and doc.get("schema") == SCHEMA:
            yield path, doc


def _order(value: Any) -> Any:
    """``value`` with every object's keys listed in order (== ignores the order)."""
    if isinstance(value, dict):
        return [(k, _order(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_order(v) for v in value]
    return value


def round_trip_problem(doc: dict[str, Any], source: str) -> str | None:
    """Why ``doc`` does not round-trip through the typed report; None when it does."""
    try:
        again = BenchReport.from_json(doc, source).to_json()
    except ReportError as exc:
        return str(exc)
    if _order(again) != _order(doc):
        differ = [k for k in {**doc, **again} if doc.get(k) != again.get(k)] or ["key order"]
        return f"{source}: to_json(from_json(d)) differs in {', '.join(differ)}"
    return None


def check_tree(root: Path) -> tuple[int, list[str]]:
    """(bench documents found under ``root``, the problems of those that do not round-trip)."""
    found, problems = 0, []
    for path, doc in bench_documents(root):
        found += 1
        problem = round_trip_problem(doc, str(path))
        if problem is not None:
            problems.append(problem)
    return found, problems
