"""Files latcli writes that may hold URLs or tokens are created user-only (DESIGN §7)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, TextIO

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
