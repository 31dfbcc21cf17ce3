"""Tables that never crop a number: on a narrow console their columns wrap into blocks.

A rich ``Table`` that does not fit shrinks its cells and ends them with ``…`` (``p99.…``,
``0.6…``). :func:`fit` wraps a built table so that, when the console is too narrow, its columns
are printed in several blocks one under the other, the key columns (the row labels) repeated in
each, as ``ls`` wraps a listing. Columns that may wrap (``no_wrap=False``) keep doing so inside
their cell. The width is read when rich renders, so a resized terminal is followed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

FOLD_MIN = 16  # narrowest a wrapping column is squeezed to before it moves to the next block


def fit(table: Table, keys: int = 1) -> RenderableType:
    """``table``, its columns wrapped into blocks when the console is narrower than it."""
    return Fitted(table, keys)


@dataclass(frozen=True)
class Fitted:
    """A table whose columns wrap into blocks (the first ``keys`` repeated) when too wide."""

    table: Table
    keys: int

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        naturals = [_natural(col) for col in self.table.columns]

        def width(indices: Sequence[int]) -> int:
            return _width(console, options, self.table, indices, naturals)

        every = list(range(len(self.table.columns)))
        if width(every) <= options.max_width:  # the usual case: the table as it is
            yield self.table
            return
        for i, indices in enumerate(
            blocks(len(self.table.columns), self.keys, width, options.max_width)
        ):
            if i:
                yield Text()
            yield subtable(self.table, indices)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)


def _width(
    console: Console,
    options: ConsoleOptions,
    table: Table,
    indices: Sequence[int],
    naturals: Sequence[int],
) -> int:
    """The width a table of the columns at ``indices`` needs, wrapping ones squeezed to FOLD_MIN.

    Rich measures a one-row stand-in whose cells are as wide as each column's widest: the
    table's own padding, borders and column limits apply, at the cost of one row, not all.
    """
    part = subtable(table, indices)
    part.rows = part.rows[:1]
    for col, i in zip(part.columns, indices, strict=True):
        col._cells = ["x" * (naturals[i] if col.no_wrap else min(naturals[i], FOLD_MIN))]
    return Measurement.get(console, options.update_width(1 << 20), part).maximum


def subtable(table: Table, indices: Sequence[int]) -> Table:
    """A copy of ``table`` with only the columns at ``indices`` (rows and styles kept)."""
    part = copy.copy(table)
    part.columns = [copy.copy(table.columns[i]) for i in indices]
    for n, col in enumerate(part.columns):
        col._index = n
    return part


def blocks(
    count: int, keys: int, width_of: Callable[[Sequence[int]], int], width: int
) -> Iterator[list[int]]:
    """Column indices per block: the keys first in each, then as many of the others as fit.

    ``width_of(indices)`` is the width a table of those columns needs. A column too wide for
    any block gets one of its own (rich crops it then: nothing narrower could show it).
    """
    head = list(range(min(keys, count)))
    current: list[int] = []
    given = 0
    for i in range(len(head), count):
        if current and width_of([*head, *current, i]) > width:
            yield [*head, *current]
            current, given = [], given + 1
        current.append(i)
    if current or not given:
        yield [*head, *current]


def _natural(col: Column) -> int:
    cells = [col.header, *col._cells]
    return max((_len(c) for c in cells), default=0)


def _len(cell: object) -> int:
    """Terminal cells of the widest line of ``cell`` (no split for the usual one-line cell)."""
    text = cell.plain if isinstance(cell, Text) else cell if isinstance(cell, str) else ""
    if "\n" not in text:
        return cell_len(text)
    return max(cell_len(line) for line in text.split("\n"))
