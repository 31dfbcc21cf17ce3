"""Where the demo fleet listens."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table


def fleet_table(rows: Sequence[tuple[str, str, str, str]]) -> Table:
    """Rows of (id, type, protocol, url)."""
    table = Table(title="demo fleet", header_style="bold")
    for name in ("agent", "type", "protocol", "listens on"):
        table.add_column(name)
    for row in rows:
        table.add_row(*row)
    return table
