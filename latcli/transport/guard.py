"""No agent can crash a command (DESIGN §7): one agent's unexpected error is its failed call.

Engines already turn what they know (connect errors, bad framing, bad JSON) into error kinds.
Whatever still escapes a health check or a message (a RecursionError on hostile JSON, a bug
below) is caught here at the per-agent boundary, becomes that call's ``bad_response`` with the
exception's text, and is logged once per agent and exception type, so that one hostile agent
neither ends a watch loop nor prints a traceback. ``LATCLI_DEBUG=1`` logs the traceback too.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable

from latcli.core.errors import ErrorKind
from latcli.transport.base import Timings
from latcli.transport.replies import Reply

log = logging.getLogger("latcli")
DEBUG_ENV = "LATCLI_DEBUG"
MESSAGE_MAX = 200  # characters of the exception's text kept in the reply

_logged: set[tuple[str, str]] = set()  # (agent id, exception type) already logged


def debug_enabled() -> bool:
    """``LATCLI_DEBUG`` set to anything but empty or ``0``: tracebacks are shown."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


async def guarded(call: Awaitable[Reply], agent_id: str) -> Reply:
    """``await call``; an exception (not a cancellation) is this agent's ``bad_response``."""
    started = time.perf_counter()
    try:
        return await call
    except Exception as exc:  # the boundary itself: anything below is one agent's failure
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        return unexpected_reply(exc, agent_id, elapsed_ms)


def unexpected_reply(exc: Exception, agent_id: str, elapsed_ms: float) -> Reply:
    """The failed call ``exc`` stands for, logged the first time for this agent and type."""
    name = type(exc).__name__
    text = str(exc)
    message = f"unexpected {name}: {text}" if text else f"unexpected {name}"
    message = message[:MESSAGE_MAX]
    if (agent_id, name) not in _logged:
        _logged.add((agent_id, name))
        log.warning(
            "latcli: %s: %s (counted as bad_response%s)",
            agent_id,
            message,
            "" if debug_enabled() else "; LATCLI_DEBUG=1 shows the traceback",
            exc_info=exc if debug_enabled() else None,
        )
    return Reply(None, Timings(total=elapsed_ms), ErrorKind.BAD_RESPONSE, message)


__all__ = ["debug_enabled", "guarded", "unexpected_reply"]
