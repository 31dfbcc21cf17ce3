"""Locust peer for scripts/bench_stream.py: FastHttpUser streaming A2A ``SendStreamingMessage``
answers (SSE), the way the agent-starter-pack's A2A load test reads them, plus the time to the
first artifact event as its own request type (locust records only whole requests otherwise).

Exact samples go to $LOCUST_STREAM_OUT (JSON lines) at the end, so percentiles are not locust's
two-significant-digit buckets. Run with locust beside the project, never in it:
``uv run --with locust locust -f scripts/locust_stream.py --headless -u 100 -r 100 -t 10s -H URL``.
"""

from __future__ import annotations

import json
import os
import time
import uuid

from locust import constant, events, task  # type: ignore[import-not-found]
from locust.contrib.fasthttp import FastHttpUser  # type: ignore[import-not-found]

SAMPLES: list[tuple[float, float]] = []  # (first artifact ms, total ms)
EVENTS = [0]


class StreamUser(FastHttpUser):  # type: ignore[misc]
    wait_time = constant(0)

    @task
    def stream(self) -> None:
        mid = str(uuid.uuid4())
        body = {"jsonrpc": "2.0", "id": mid, "method": "SendStreamingMessage",
                "params": {"message": {"role": "ROLE_USER", "messageId": mid,
                                       "parts": [{"text": "ping"}]}}}  # fmt: skip
        headers = {"A2A-Version": "1.0", "Accept": "text/event-stream"}
        start = time.perf_counter()
        first = None
        with self.client.post("/", json=body, headers=headers, stream=True,
                              catch_response=True) as response:  # fmt: skip
            while True:  # one SSE event a read: iterating the stream fills whole blocks
                raw = response.stream.readline(b"\n\n")
                if not raw.strip():
                    break
                doc = json.loads(raw.decode().strip().removeprefix("data: "))
                EVENTS[0] += 1
                if first is None and "artifactUpdate" in (doc.get("result") or {}):
                    first = time.perf_counter()
            response.success()
        end = time.perf_counter()
        if first is not None:
            SAMPLES.append(((first - start) * 1000.0, (end - start) * 1000.0))


@events.quitting.add_listener  # type: ignore[misc]
def _write(environment: object, **kwargs: object) -> None:
    out = os.environ.get("LOCUST_STREAM_OUT")
    if out:
        with open(out, "w", encoding="utf-8") as f:
            json.dump({"samples": SAMPLES, "events": EVENTS[0], "cpu_s": time.process_time()}, f)
