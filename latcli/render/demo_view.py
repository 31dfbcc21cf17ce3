"""Where the demo fleet listens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.table import Table

from latcli.core.units import format_percent, plural


def fleet_table(rows: Sequence[tuple[str, str, str, str]]) -> Table:
    """Rows of (id, type, protocol, url)."""
    table = Table(title="demo fleet", header_style="bold")
    for name in ("agent", "type", "protocol", "listens on"):
        table.add_column(name)
    for row in rows:
        table.add_row(*row)
    return table


def fault_line(state: Mapping[str, object]) -> str:
    """A demo agent's fault state in one line: ``weather-1: latency fixed 300ms, health checks
    too · errors 20% · up``."""
    latency, health = state.get("latency"), state.get("health_latency")
    checks = "health checks too" if health in (None, latency) else f"health checks {health}"
    errors = state.get("errors")
    rate = format_percent(float(errors)) if isinstance(errors, int | float) else str(errors)
    parts = [f"latency {latency}, {checks}", f"errors {rate}"]
    parts.append("down (503 to everything)" if state.get("down") else "up")
    limit = state.get("concurrency_limit")
    if isinstance(limit, int) and limit:
        parts.append(f"at most {plural(limit, 'message')} at once")
    return f"{state.get('agent')}: " + " · ".join(parts)
