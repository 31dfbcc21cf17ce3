"""Locust peer for scripts/bench_peers.sh: FastHttpUser hammering /health, no wait time.

Run in its own throwaway venv (never the project's), one process, e.g.
``locust -f scripts/locustfile.py --headless -u 50 -r 50 -t 10s -H http://127.0.0.1:PORT``.
This file imports locust, which is not a project dependency: it is only ever run by locust.
"""

from locust import constant, task  # type: ignore[import-not-found]
from locust.contrib.fasthttp import FastHttpUser  # type: ignore[import-not-found]


class HealthUser(FastHttpUser):  # type: ignore[misc]
    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get("/health")
