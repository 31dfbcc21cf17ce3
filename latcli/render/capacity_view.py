"""The human capacity summary: one renderable from a ``latcli.capacity/v1`` document
(fits 80 columns: why a step failed is a line under the table, not a column)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from latcli.core.units import (
    format_duration,
    format_ms_value,
    format_number,
    format_percent,
    format_sig,
    plural,
)
from latcli.render.layout import fit


def _rate(value: float) -> str:
    return format_number(value)


def _ms(value: float) -> str:
    return format_ms_value(value)


def _header(doc: Mapping[str, Any]) -> Text:
    text = Text("capacity ", style="bold")
    parts = [str(doc["target"]), str(doc["endpoint"])]
    steps = plural(len(doc["steps"]), "step")
    parts.append(f"{steps} of {format_duration(float(doc['step_duration_s']))}")
    parts.append("sla " + (", ".join(doc["sla"]) if doc["sla"] else "none"))
    text.append(" · ".join(parts))
    return text


def _knee_index(doc: Mapping[str, Any]) -> int | None:
    knee = doc.get("knee")
    return int(knee["index"]) if knee else None


def _verdict(step: Mapping[str, Any], is_knee: bool) -> Text:
    if is_knee:
        return Text("pass ← knee", style="bold green")
    if step["pass"]:
        return Text("pass", style="green")
    if step.get("interrupted"):
        return Text("interrupted", style="yellow")
    return Text("FAIL", style="bold red")


def _steps(doc: Mapping[str, Any]) -> Table:
    """Steps in the order they ran; the knee row is marked and bold."""
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, collapse_padding=True)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("phase", no_wrap=True)
    for name in ("req/s", "sent/s", "p50 ms", "p99 ms", "errors", "in flight"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    knee = _knee_index(doc)
    for i, step in enumerate(doc["steps"]):
        lat = step["latency_ms"]
        has = int(step.get("requests", 1)) > 0
        table.add_row(
            str(i + 1),
            str(step.get("phase", "")),
            _rate(float(step["rate"])),
            format_sig(float(step["achieved_rps"])),
            _ms(float(lat["p50"])) if has else "-",
            _ms(float(lat["p99"])) if has else "-",
            format_percent(float(step["error_rate"])),
            f"{float(step['in_flight']):.1f}",
            _verdict(step, i == knee),
            style="bold" if i == knee else None,
        )
    return table


def _reasons(doc: Mapping[str, Any]) -> list[Text]:
    lines = []
    for i, step in enumerate(doc["steps"]):
        if step.get("reason"):
            text = Text(f"#{i + 1} {_rate(float(step['rate']))} req/s: ", style="bold")
            lines.append(text.append(str(step["reason"]), style="not bold"))
    return lines


def _outcome(doc: Mapping[str, Any]) -> Text:
    if doc.get("sustainable_rps") is None:
        return Text("no sustainable rate found", style="bold red")
    text = Text("sustainable ", style="bold")
    text.append(f"{_rate(float(doc['sustainable_rps']))} req/s", style="bold green")
    replicas = int(doc["replicas"])
    if replicas > 1:
        text.append(f" in total · {_rate(float(doc['per_replica_rps']))} req/s per replica")
        text.append(f" ({replicas} replicas)")
    if doc.get("replicas_needed") is not None:
        needed = plural(int(doc["replicas_needed"]), "replica")
        text.append(f" · {needed} for {_rate(float(doc['target_rps']))}")
        text.append(f" req/s at {format_percent(float(doc['headroom']))} headroom")
    return text


def capacity_summary(doc: Mapping[str, Any]) -> RenderableType:
    """Header, the step table (the knee marked), why each failing step failed, the outcome
    and the reasoning in words."""
    parts: list[RenderableType] = [_header(doc)]
    if doc.get("interrupted"):
        parts.append(Text("interrupted: the steps measured so far", style="bold yellow"))
    parts += [fit(_steps(doc)), *_reasons(doc), Text(), _outcome(doc)]
    parts += [Text(f"· {line}") for line in doc["reasoning"]]
    return Group(*parts)
