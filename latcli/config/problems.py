"""Inventory problems: one ``FILE:LINE key.path: message`` line each, raised together.

A :class:`Report` collects the problems of one file, each located through the key-path ->
line map the YAML reader fills; :class:`InventoryError` carries them to the CLI's one error
boundary (exit code 2). Messages never contain a header value (a secret).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from latcli.core.errors import LatcliError

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an inventory file; ``str()`` is the line the user sees."""

    file: str
    line: int | None  # 1-based; None when the problem has no place in the file
    path: str  # ``agents[2].url``; empty for the whole file
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class InventoryError(LatcliError):
    """A bad inventory: ``str()`` has one line per problem; exit code 2."""

    prefixed = False  # each line starts with FILE:LINE

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems: tuple[Problem, ...] = tuple(problems)


def format_path(path: KeyPath) -> str:
    """``("agents", 2, "url")`` -> ``agents[2].url``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class Report:
    """Problems found so far in one file, each located through the key-path -> line map."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[KeyPath, int] = {}
        self.problems: list[Problem] = []

    def line(self, path: KeyPath) -> int | None:
        """The line of ``path``, else of its nearest ancestor that has one."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None

    def add(self, path: KeyPath, message: str) -> None:
        self.problems.append(Problem(self.file, self.line(path), format_path(path), message))

    def add_at(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.file, line, "", message))

    def raise_if_any(self) -> None:
        # Sorted by line so the output reads top to bottom like the file.
        if self.problems:
            raise InventoryError(sorted(self.problems, key=lambda p: p.line or 0))


def unknown_key(key: str, known: Sequence[str]) -> str:
    """The message for a key the section does not take, with a did-you-mean when one is close."""
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown key (did you mean '{close[0]}'?)"
    return f"unknown key (expected one of: {', '.join(known)})" if known else "unknown key"
