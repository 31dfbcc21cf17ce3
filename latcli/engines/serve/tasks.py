"""Background tasks of ``latcli serve`` that must outlive their own bugs.

A task that dies (an exception no check was meant to raise) is logged in one line and
started again after a back-off, so the gateway keeps answering with what it has: the
router's breakers and EWMA go on learning from routed calls while the checks are down.
The back-off doubles from ``first`` to ``most`` (Erlang/OTP supervisors restart at once
but give up past an intensity; a gateway must not give up, so it slows down instead) and
starts over once a run has lasted ``settled`` seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

FIRST_DELAY = 0.5  # seconds before the first restart
MOST_DELAY = 30.0  # the back-off's ceiling
SETTLED = 60.0  # a run this long resets the back-off


def backoff(delay: float, ran: float, *, first: float, most: float, settled: float) -> float:
    """The next restart delay after a run of ``ran`` seconds that followed ``delay``."""
    if ran >= settled:
        return first
    return min(most, delay * 2)


async def supervise(
    name: str,
    start: Callable[[], Awaitable[Any]],
    warn: Callable[[str], None],
    *,
    on_restart: Callable[[], None] | None = None,
    first: float = FIRST_DELAY,
    most: float = MOST_DELAY,
    settled: float = SETTLED,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``start()`` until cancelled, restarting it whenever it ends (raised or returned)."""
    delay = first
    restarts = 0
    while True:
        began = clock()
        try:
            await start()
            why = "ended"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the point: whatever it was, the gateway stays up
            why = f"died ({type(exc).__name__}: {_one_line(exc)})"
        ran = clock() - began
        delay = backoff(delay, ran, first=first, most=most, settled=settled) if restarts else first
        restarts += 1
        warn(f"latcli serve: {name} {why}; restarting in {delay:g}s (restart {restarts})")
        if on_restart is not None:
            on_restart()
        await asyncio.sleep(delay)


def _one_line(exc: BaseException) -> str:
    text = printable(" ".join(str(exc).split()))
    return text if len(text) <= 200 else text[:199] + "…"


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``): it may come from a client or an
    agent, and goes to a terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


__all__ = ["backoff", "printable", "supervise"]
