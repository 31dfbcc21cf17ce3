"""The consoles: data on stdout, everything else on stderr. Rich honours NO_COLOR and
drops colour and live redraws when the stream is not a terminal."""

from __future__ import annotations

import sys

from rich.console import Console


def stdout_console() -> Console:
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)
