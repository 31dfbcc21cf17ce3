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

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

FOLD_MIN = 16  # narrowest a wrapping column is squeezed to before it moves to the next block


def fit(table: Table, keys: int = 1) -> RenderableType:
    """``table``, its columns wrapped into blocks when the console is narrower than it."""
    return _Fitted(table, keys)


@dataclass(frozen=True)
class _Fitted:
    table: Table
    keys: int

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        def width(indices: Sequence[int]) -> int:
            return self._width(console, options, indices)

        for i, indices in enumerate(
            blocks(len(self.table.columns), self.keys, width, options.max_width)
        ):
            if i:
                yield Text()
            yield subtable(self.table, indices)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)

    def _width(self, console: Console, options: ConsoleOptions, indices: Sequence[int]) -> int:
        """The width the table of ``indices`` needs, wrapping columns squeezed to FOLD_MIN."""
        wide = options.update_width(1 << 20)
        natural = Measurement.get(console, wide, subtable(self.table, indices)).maximum
        cols = [self.table.columns[i] for i in indices]
        return natural - sum(max(0, _natural(c) - FOLD_MIN) for c in cols if not c.no_wrap)


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
    if isinstance(cell, Text):
        return max((line.cell_len for line in cell.split()), default=0)
    if isinstance(cell, str):
        return max((len(line) for line in cell.split("\n")), default=0)
    return 0
