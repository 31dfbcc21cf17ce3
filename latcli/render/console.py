"""The consoles: data on stdout, everything else on stderr. Rich honours NO_COLOR and
drops colour and live redraws when the stream is not a terminal."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from rich.console import Console

# Off a terminal (a CI log, a pipe) nothing is to be fitted: rich would assume 80 columns and
# crop or wrap tables, so lines get the room they need. $COLUMNS still wins when set.
NATURAL_WIDTH = 1000


def _width(stream: TextIO) -> int | None:
    if "COLUMNS" in os.environ or stream.isatty():
        return None
    return NATURAL_WIDTH


def stdout_console() -> Console:
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=_width(sys.stdout))


def stderr_console() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=True, width=_width(sys.stderr))
