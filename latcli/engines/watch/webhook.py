"""``latcli watch --webhook URL``: each tick's events posted as one ``latcli.watch.alert/v1``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from typing import TYPE_CHECKING

from latcli.core.redact import redact_webhook
from latcli.reports.watch import WatchSnapshot, alert_dict
from latcli.transport.base import RequestSpec, Transport

if TYPE_CHECKING:
    from latcli.engines.watch.loop import Watch

WEBHOOK_QUEUE = 100  # ticks with events waiting to be posted; beyond that new ones are dropped
WEBHOOK_ATTEMPTS = 3  # posts per payload before the webhook is declared unreachable
WEBHOOK_BACKOFF = 0.5  # seconds before the first retry, doubled each time (+0-50 % jitter)
WEBHOOK_TIMEOUT = 5.0


class Webhook:
    """Posts each tick's events as one JSON object, from a bounded queue, off the tick loop.

    A payload is tried ``attempts`` times with backoff. When one fails them all, the webhook is
    reported unreachable once (an event and a note through ``report``) and later payloads are
    tried once each and dropped quietly, until one goes through (reported once as well).
    """

    def __init__(
        self,
        url: str,
        transport: Transport,
        report: Watch,
        *,
        attempts: int | None = None,
        backoff: float | None = None,
        timeout: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.shown_url = redact_webhook(url)  # the URL is the secret: never in events or notes
        self._transport, self._watch = transport, report
        self._attempts = WEBHOOK_ATTEMPTS if attempts is None else attempts
        self._backoff = WEBHOOK_BACKOFF if backoff is None else backoff
        self._timeout = WEBHOOK_TIMEOUT if timeout is None else timeout
        self._rng = rng or random.Random()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(WEBHOOK_QUEUE)
        self._worker: asyncio.Task[None] | None = None
        self.unreachable = False
        self.posted = 0
        self.dropped = 0

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run())

    def push(self, snapshot: WatchSnapshot) -> None:
        """Queue the tick's events (never blocks; a full queue drops the newest)."""
        events = [e for e in snapshot.events if e.kind != "webhook"]
        if not events:
            return
        body = json.dumps(alert_dict(snapshot, events), ensure_ascii=False).encode()
        try:
            self._queue.put_nowait(body)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _run(self) -> None:
        while True:
            body = await self._queue.get()
            try:
                ok, why = await self._deliver(body, 1 if self.unreachable else self._attempts)
            finally:
                self._queue.task_done()
            if ok:
                self.posted += 1
            if ok and self.unreachable:
                self.unreachable = False
                self._watch.notes.pop("webhook", None)
                self._watch.post("webhook", None, f"webhook {self.shown_url} reachable again")
            elif not ok and not self.unreachable:
                self.unreachable = True
                shown = self.shown_url
                text = f"webhook {shown} unreachable ({why}); dropping alerts until it answers"
                self._watch.notes["webhook"] = text
                self._watch.post("webhook", None, text)
            if not ok:
                self.dropped += 1

    async def _deliver(self, body: bytes, attempts: int) -> tuple[bool, str]:
        spec = RequestSpec(
            "POST",
            self.url,
            {"content-type": "application/json"},
            body,
            timeout=self._timeout,
            connect_timeout=min(1.0, self._timeout),
        )
        why = ""
        for attempt in range(attempts):
            if attempt:
                pause = self._backoff * 2 ** (attempt - 1) * self._rng.uniform(1.0, 1.5)
                await asyncio.sleep(pause)
            outcome = await self._transport.send("latcli-webhook", spec)
            if outcome.error is None and outcome.status is not None and outcome.status < 300:
                return True, ""
            why = outcome.error.value if outcome.error else f"HTTP {outcome.status}"
        return False, why

    async def aclose(self, grace: float = 2.0) -> None:
        """Give queued alerts ``grace`` seconds to go out, then stop the worker."""
        if self._worker is None:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace)
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker


__all__ = ["WEBHOOK_ATTEMPTS", "WEBHOOK_BACKOFF", "Webhook"]
