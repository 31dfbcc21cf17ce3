"""uvicorn around the gateway's app: the listening socket, its config, and the signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import socket
from collections.abc import Callable, Generator

import uvicorn

from latcli.core.errors import LatcliError
from latcli.engines.serve.access_log import refusal_line
from latcli.engines.serve.app import make_app
from latcli.engines.serve.gateway import Gateway
from latcli.engines.serve.limits import LimitHit, protocol_class
from latcli.engines.serve.options import ServeOptions


class GatewayServer(uvicorn.Server):
    """uvicorn, minus re-raising the signal after its graceful shutdown.

    uvicorn re-raises a captured SIGTERM once it has drained, which would end the process by
    the signal before the state is saved. Here the signal only starts the shutdown and is
    remembered, so :func:`run_serve` can finish its own clean-up and choose the exit code.
    """

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_started = on_started
        self.stopped_by: int | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if not self.should_exit:
            self.on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        handled = (signal.SIGINT, signal.SIGTERM)
        for sig in handled:
            loop.add_signal_handler(sig, self._stop, sig)
        try:
            yield
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)

    def _stop(self, sig: int) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True  # a second Ctrl-C: stop waiting for in-flight requests
        self.should_exit = True
        if self.stopped_by is None:
            self.stopped_by = sig


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0: any free port); LatcliError when it cannot be."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise LatcliError(f"--host {host}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise LatcliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def uvicorn_config(
    gateway: Gateway, opts: ServeOptions, warn: Callable[[str], None]
) -> uvicorn.Config:
    """uvicorn with the limited httptools protocol (:mod:`latcli.engines.serve.limits`)."""
    access = warn if opts.access_log else None

    def on_limit(hit: LimitHit) -> None:
        gateway.metrics.limit_hit(hit.limit)
        if access is not None:
            access(refusal_line(hit))

    logging.getLogger("uvicorn.error").addFilter(_drain_line)
    return uvicorn.Config(
        make_app(gateway, access),
        http=protocol_class(opts.limits, on_limit),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=math.ceil(opts.drain),
        server_header=False,
        proxy_headers=False,  # the gateway reads no client address
    )


def _drain_line(record: logging.LogRecord) -> bool:
    """Drop uvicorn's "Cancel N running task(s)" line: the final line counts them instead."""
    return not record.getMessage().startswith("Cancel ")


async def settle(server: uvicorn.Server, most: float = 2.0) -> None:
    """Let the requests uvicorn cut when the drain ran out send their 503 before the end."""
    tasks = set(server.server_state.tasks)
    if tasks:
        await asyncio.wait(tasks, timeout=most)


__all__ = ["GatewayServer", "bind", "settle", "url_of", "uvicorn_config"]
