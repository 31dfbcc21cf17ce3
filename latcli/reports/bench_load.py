"""``latcli report FILE``: a bench report read from a JSON file or an ``.hlog``, recognised by
its content."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from latcli.core.redact import redact_url
from latcli.reports.bench import SCHEMA, BenchReport
from latcli.reports.files import ReportError
from latcli.reports.hlog import looks_like_hlog, report_from_hlog


def load_report(path: str | Path) -> BenchReport:
    """A report from a ``latcli.bench/v1`` JSON file or an ``.hlog``, recognised by content.

    Raises ReportError (one line naming the file, exit 2) on anything else.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ReportError(f"{path}: cannot read: {why}") from None
    head = text.lstrip()
    if head.startswith("{"):
        return _load_json(path, text)
    if looks_like_hlog(text):
        try:
            return report_from_hlog(path)
        except Exception as exc:  # hdrh's reader raises zlib, base64 and its own errors
            raise ReportError(f"{path}: not a readable HdrHistogram log: {exc}") from None
    raise ReportError(f"{path}: neither a {SCHEMA} JSON report nor an HdrHistogram log")


def _load_json(path: str | Path, text: str) -> BenchReport:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else None
        raise ReportError(f"{path}: not a {SCHEMA} report (schema {found!r})")
    report = BenchReport.from_json(doc, str(path))
    # written by a latcli that kept URL passwords
    return dataclasses.replace(report, target=redact_url(report.target))
