"""What sending one bench request returns (:data:`Answer`), whatever the endpoint or target."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from latcli.core.errors import ErrorKind
from latcli.reports.bench_model import PhaseValues
from latcli.transport.guard import unexpected_reply

NO_AGENT = "-"  # the agent of a request no replica was tried for (all breakers open)

# (agent id, error kind or None, HTTP status or None, stream phases or None) of one request.
Answer = tuple[str, ErrorKind | None, int | None, PhaseValues | None]
Sender = Callable[[], Awaitable[Answer]]


def unexpected(exc: Exception, agent_id: str) -> ErrorKind:
    """A request that raised (a hostile answer: 100k-deep JSON) is that request's
    ``bad_response``, logged once; raised, it would end its loop's task, and the gathered
    exception would leave a silently short run."""
    return unexpected_reply(exc, agent_id, 0.0).error or ErrorKind.BAD_RESPONSE
