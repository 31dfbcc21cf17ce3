"""Real a2a-sdk 1.3.0 agents with a task lifecycle, for latcli's A2A tests (issue 11 item 8).

Every agent here is built only from the SDK's own server classes (``DefaultRequestHandler``,
``TaskUpdater``, the JSON-RPC and REST route factories); nothing on the wire is written by us.

    python tests/support/a2a_sdk_agents.py KIND --port P [--v03-compat | --v03-only] [--think-ms 200] ...

KINDs:

* ``stream``: a Task: working, ``--think-ms`` of thinking, ``--chunks`` artifact chunks
  ``--gap-ms`` apart (``append`` after the first, ``last_chunk`` on the last), completed.
  The card says ``capabilities.streaming``. The reply text is ``tok0 tok1 ... tokN-1``.
* ``fail``: working, then the task fails with the status message "model overloaded".
* ``input``: the task asks for input: input-required with "which city?".
* ``rest``: like ``stream``, but the card lists only the HTTP+JSON binding and only the REST
  routes are served (``POST /message:send``, ``POST /message:stream``, ``GET /tasks/{id}``).
* ``later``: answers a unary send at once with the task ``working`` (the handler is told to
  return immediately, as a deployment behind a queue does) and completes it after
  ``--think-ms``; ``GetTask`` then shows it completed with the text ``done later``.

The test side: :func:`run_sdk_agent` starts one as a subprocess on a free port, waits for its
card and stops it by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from processes import stop_process

SCRIPT = Path(__file__)
KINDS = ("stream", "fail", "input", "rest", "later")
CARD_PATH = "/.well-known/agent-card.json"


# ---- the agents (run in the subprocess) ------------------------------------------------------


def _build_app(kind: str, base_url: str, args: argparse.Namespace) -> Any:
    from a2a.helpers import new_task_from_user_message, new_text_part
    from a2a.server.agent_execution import AgentExecutor, RequestContext
    from a2a.server.events import EventQueue
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes import (
        create_agent_card_routes,
        create_jsonrpc_routes,
        create_rest_routes,
    )
    from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
    from a2a.types.a2a_pb2 import (
        AgentCapabilities,
        AgentCard,
        AgentInterface,
        AgentSkill,
        TaskState,
    )
    from a2a.utils.constants import PROTOCOL_VERSION_0_3, PROTOCOL_VERSION_1_0, TransportProtocol
    from starlette.applications import Starlette

    think, gap = args.think_ms / 1000.0, args.gap_ms / 1000.0

    class LifecycleExecutor(AgentExecutor):
        async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
            assert context.message is not None
            task = context.current_task or new_task_from_user_message(context.message)
            if kind == "later":  # its unary answer says working, as a queue-backed agent's does
                task.status.state = TaskState.TASK_STATE_WORKING
            await event_queue.enqueue_event(task)
            updater = TaskUpdater(event_queue, task.id, task.context_id)
            await updater.start_work()
            if kind == "later":
                await asyncio.sleep(think)
                await updater.add_artifact([new_text_part("done later")], name="answer")
                await updater.complete()
                return
            await asyncio.sleep(think)
            if kind == "fail":
                await updater.failed(updater.new_agent_message([new_text_part("model overloaded")]))
                return
            if kind == "input":
                await updater.requires_input(
                    updater.new_agent_message([new_text_part("which city?")])
                )
                return
            artifact_id = "answer"
            for i in range(args.chunks):
                if i:
                    await asyncio.sleep(gap)
                text = f"tok{i}" if i == 0 else f" tok{i}"
                await updater.add_artifact(
                    [new_text_part(text)],
                    artifact_id=artifact_id,
                    name="answer",
                    append=i > 0,
                    last_chunk=i == args.chunks - 1,
                )
            await updater.complete()

        async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
            # CancelTask succeeds only once the executor reports the task canceled
            assert context.task_id is not None and context.context_id is not None
            await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()

    binding = TransportProtocol.HTTP_JSON if kind == "rest" else TransportProtocol.JSONRPC
    interfaces = [
        AgentInterface(
            url=base_url, protocol_binding=binding.value, protocol_version=PROTOCOL_VERSION_1_0
        )
    ]
    if args.v03_only:  # a card that offers only the 0.3 wire (the SDK's compat layer serves it)
        interfaces = []
    if args.v03_compat or args.v03_only:
        interfaces.append(
            AgentInterface(
                url=base_url, protocol_binding=binding.value, protocol_version=PROTOCOL_VERSION_0_3
            )
        )
    card = AgentCard(
        name=f"sdk-{kind}",
        description=f"a2a-sdk 1.3.0 {kind} agent (latcli test peer).",
        version="1.0.0",
        supported_interfaces=interfaces,
        capabilities=AgentCapabilities(streaming=kind != "later", push_notifications=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id=kind, name=kind, description=kind, tags=["test"])],
    )

    class Handler(DefaultRequestHandler):
        async def on_message_send(self, params: Any, context: Any) -> Any:
            if kind == "later":  # a deployment that answers before the work is done
                params.configuration.return_immediately = True
            return await super().on_message_send(params, context)

    handler = Handler(
        agent_executor=LifecycleExecutor(), task_store=InMemoryTaskStore(), agent_card=card
    )
    compat = args.v03_compat or args.v03_only
    if kind == "rest":
        rpc = create_rest_routes(handler, enable_v0_3_compat=compat)
    else:
        rpc = create_jsonrpc_routes(handler, rpc_url="/", enable_v0_3_compat=compat)
    return Starlette(routes=[*create_agent_card_routes(card), *rpc])


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description="a2a-sdk lifecycle agents for latcli tests")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--v03-compat", action="store_true", help="also offer the 0.3 wire")
    parser.add_argument("--v03-only", action="store_true", help="offer only the 0.3 wire")
    parser.add_argument("--think-ms", type=float, default=200.0)
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--gap-ms", type=float, default=100.0)
    args = parser.parse_args(argv)
    logging.getLogger("a2a").setLevel(logging.CRITICAL)
    app = _build_app(args.kind, f"http://{args.host}:{args.port}/", args)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, access_log=False, log_level="warning", lifespan="off"
    )

    def _exit_cleanly(signum: int, frame: object) -> None:
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    uvicorn.Server(config).run()
    return 0


# ---- the test side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningAgent:
    url: str  # http://127.0.0.1:PORT (no trailing slash)
    pid: int


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def run_sdk_agent(kind: str, *extra: str, startup_s: float = 20.0) -> Iterator[RunningAgent]:
    """Start agent ``kind`` on a free loopback port; stop it (by its PID) on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # stderr to a file, not a pipe: a chatty agent must never block on a full pipe
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), kind, "--port", str(port), *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            _wait_ready(proc, url, kind, startup_s, err)
            yield RunningAgent(url, proc.pid)
        finally:
            stop_process(proc)


def _wait_ready(
    proc: subprocess.Popen[bytes], url: str, kind: str, startup_s: float, err: IO[bytes]
) -> None:
    import httpx

    deadline = time.monotonic() + startup_s
    while True:
        if proc.poll() is not None:
            err.seek(0)
            text = err.read().decode(errors="replace")
            raise RuntimeError(f"agent {kind} exited with {proc.returncode}: {text}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url + CARD_PATH, timeout=1.0).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"agent {kind} not ready after {startup_s}s")
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
