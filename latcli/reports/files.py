"""Report files: created user-only, since they may hold URLs or tokens (DESIGN §7), and each
failure to write one a single line naming it (:class:`ReportError`, exit 2)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal, TextIO

from latcli.core.errors import ExitCode, LatcliError

PRIVATE_FILE = 0o600


def open_private(path: str | Path, mode: Literal["w", "a"] = "w") -> TextIO:
    """``path`` opened for text, created 0600 if it is new (an existing file keeps its mode:
    the user chose it). ``"w"`` truncates, ``"a"`` appends. Raises OSError."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        return os.fdopen(fd, mode, encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


class ReportError(LatcliError):
    """A report file that cannot be read, written or merged; one line naming it (exit 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)


def write_text(path: str | Path, text: str) -> None:
    """Write a report file; ReportError (exit 2) naming it if it cannot be written."""
    try:
        with open_private(path) as out:
            out.write(text)
    except OSError as exc:
        raise ReportError(f"{path}: cannot write: {exc.strerror or exc}") from None


def check_writable(path: str | Path) -> None:
    """ReportError (exit 2) now if ``path`` could not be written after the run: a missing or
    read-only directory, or a directory in the file's place. Nothing is created."""
    p = Path(path)
    if p.is_dir():
        raise ReportError(f"{path}: cannot write: is a directory")
    parent = p.parent
    if not parent.is_dir():
        raise ReportError(f"{path}: cannot write: no directory {str(parent)!r}")
    target = p if p.exists() else parent
    if not os.access(target, os.W_OK):
        raise ReportError(f"{path}: cannot write: permission denied")


def write_all(writes: Iterable[tuple[Path | None, Callable[[Path], None]]]) -> list[str]:
    """Write every asked file (``None`` paths skipped), each whatever the others did; the
    failures are printed on stderr, one line each, and returned."""
    failed = []
    for path, write in writes:
        if path is None:
            continue
        try:
            write(path)
        except ReportError as exc:
            failed.append(str(exc))
            print(f"latcli: {exc}", file=sys.stderr)
    return failed
