"""Rate limits: how long a replica that answered 429 (or 503 + ``Retry-After``) is set aside.

A rate-limited replica is not unhealthy: it told us when to come back (RFC 9110 §10.2.3). It
"cools" for the stated time, capped, and neither its breaker nor its EWMA hears about it (unlike
Linkerd's load biaser, which folds a 429 into the latency; LiteLLM users ask to wait cooldowns
out instead). Sans-I/O: ``wall`` (epoch seconds, for an HTTP-date) is an argument.
"""

from __future__ import annotations

import math
from datetime import timezone
from email.utils import parsedate_to_datetime

__all__ = ["COOLING_DEFAULT_S", "COOLING_MAX_S", "cooldown", "parse_retry_after"]

# A constant, not an inventory key: an agent that asks for longer is retried after a minute
# anyway (the next 429 sets it aside again), so nobody has needed to tune it.
COOLING_MAX_S = 60.0
# 429 without Retry-After: 1 s moves the next calls elsewhere without idling a replica that only
# shed one burst (Envoy's and gRPC's retry backoffs start below a second too).
COOLING_DEFAULT_S = 1.0


def parse_retry_after(value: str | None, wall: float) -> float | None:
    """``Retry-After`` as seconds from ``wall``: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).

    None when absent or unreadable (an agent's header is untrusted input, DESIGN §7); a date in
    the past is 0. Never raises.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(min(int(text[:12]), 10**9))  # a huge number is only "long": capped later
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # asctime dates carry no zone: HTTP-dates are GMT by definition
        when = when.replace(tzinfo=timezone.utc)
    seconds = when.timestamp() - wall
    return max(0.0, seconds) if math.isfinite(seconds) else None


def cooldown(
    status: int | None,
    retry_after: str | None,
    wall: float,
    cap: float = COOLING_MAX_S,
    default: float = COOLING_DEFAULT_S,
) -> float | None:
    """Seconds to set a replica aside after an answer, or None when it is not rate-limited.

    429: the stated time, else ``default`` (a missing or unreadable header). 503: only with a
    readable ``Retry-After`` (without one it is an outage, the breaker's business). Capped at
    ``cap``.
    """
    if status not in (429, 503):
        return None
    stated = parse_retry_after(retry_after, wall)
    if stated is None:
        return default if status == 429 else None
    return min(stated, cap)
