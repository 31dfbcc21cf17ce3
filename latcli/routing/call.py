"""One call in flight on one replica: counted from entry, its outcome recorded on exit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType

from latcli.core.breaker import Permit
from latcli.routing.recorder import Recorder
from latcli.routing.relay import SinkFailed
from latcli.routing.replica import Replica
from latcli.transport.guard import unexpected_reply
from latcli.transport.replies import Reply

__all__ = ["Call"]


class Call:
    """One call in flight on one replica (tower's ``Handle``): counted from entry; the exit
    records the answer :meth:`answer` got, or without one (cancelled, or anything raised)
    settles the permit with no verdict. The one place attempts start and finish."""

    __slots__ = ("_recorder", "_reply", "message", "permit", "replica", "sample")

    def __init__(
        self,
        recorder: Recorder,
        replica: Replica,
        permit: Permit | None,
        *,
        message: bool = True,
        sample: bool = True,
    ) -> None:
        self._recorder, self.replica, self.permit = recorder, replica, permit
        self.message = message  # False: a health check (no type latency sample)
        self.sample = sample  # False: a verdict without an EWMA sample (a canary)
        self._reply: Reply | None = None

    def __enter__(self) -> Call:
        self.replica.stats.start()
        return self

    async def answer(
        self, ask: Awaitable[Reply], judge: Callable[[Reply], Reply] | None = None
    ) -> Reply:
        """Await ``ask`` (the agent's reply) and keep it, judged by ``judge``, as the call's
        outcome. What ``ask`` raises is the agent's failed call (a hostile answer or a bug
        below), except the caller's own sink failing: no verdict then. Returns the unjudged
        reply."""
        begun = self._recorder.clock()
        try:
            reply = await ask
        except SinkFailed:
            raise
        except Exception as exc:
            elapsed_ms = (self._recorder.clock() - begun) * 1000.0
            reply = unexpected_reply(exc, self.replica.agent.id, elapsed_ms)
        self._reply = reply if judge is None else judge(reply)
        return reply

    @property
    def reply(self) -> Reply:
        """The outcome recorded (the judged reply)."""
        assert self._reply is not None, "answer() was not awaited"
        return self._reply

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        reply = self._reply if exc_type is None else None
        if reply is not None and self._recorder.record(
            self.replica, self.permit, reply, self.message, self.sample
        ):
            return
        self.replica.stats.cancel()
        if self.permit is not None:
            self.replica.breaker.release(self.permit)
