"""A real A2A echo agent built only from a2a-sdk 1.3.0's own server classes.

Used by the test suite as a reference peer for latcli's A2A client code:

    python tests/support/a2a_sdk_agent.py --port P [--host 127.0.0.1] [--v03-compat]

* ``GET /.well-known/agent-card.json`` -> the agent card (name ``sdk-echo``,
  one skill, one ``JSONRPC`` interface at ``http://HOST:P/`` with
  ``protocolVersion`` ``1.0``).
* ``POST /`` -> JSON-RPC 2.0, A2A 1.0 methods (``SendMessage``, ...).  The SDK
  requires the ``A2A-Version: 1.0`` header; without it the request is treated
  as version 0.3 and rejected.  Every message is answered with a single text
  ``Message`` ``"echo: <user text>"`` (no task is created).
* ``--v03-compat`` additionally advertises a 0.3 interface at the same URL and
  turns on the SDK's 0.3 compatibility layer (``message/send`` etc.).

Logging is quiet (uvicorn access log off, SDK loggers at ERROR) and the process
exits cleanly (status 0) on SIGTERM / SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

import uvicorn
from a2a.helpers import new_text_message
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, AgentSkill
from a2a.utils.constants import (
    PROTOCOL_VERSION_0_3,
    PROTOCOL_VERSION_1_0,
    TransportProtocol,
)
from starlette.applications import Starlette


class EchoAgentExecutor(AgentExecutor):
    """Replies to every message with one text Message ``echo: <user text>``."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        text = context.get_user_input()
        await event_queue.enqueue_event(
            new_text_message(
                f"echo: {text}",
                context_id=context.context_id,
                task_id=None,
            )
        )

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        # Messages are answered immediately; there is never a task to cancel.
        return None


def build_agent_card(base_url: str, *, v03_compat: bool = False) -> AgentCard:
    interfaces = [
        AgentInterface(
            url=base_url,
            protocol_binding=TransportProtocol.JSONRPC.value,
            protocol_version=PROTOCOL_VERSION_1_0,
        )
    ]
    if v03_compat:
        interfaces.append(
            AgentInterface(
                url=base_url,
                protocol_binding=TransportProtocol.JSONRPC.value,
                protocol_version=PROTOCOL_VERSION_0_3,
            )
        )
    return AgentCard(
        name="sdk-echo",
        description="Echo agent built with a2a-sdk 1.3.0 (latcli test peer).",
        version="1.0.0",
        supported_interfaces=interfaces,
        capabilities=AgentCapabilities(streaming=False, push_notifications=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(
                id="echo",
                name="Echo",
                description='Replies with "echo: <your text>".',
                tags=["echo", "test"],
                examples=["hello"],
            )
        ],
    )


def build_app(base_url: str, *, v03_compat: bool = False) -> Starlette:
    card = build_agent_card(base_url, v03_compat=v03_compat)
    handler = DefaultRequestHandler(
        agent_executor=EchoAgentExecutor(),
        task_store=InMemoryTaskStore(),
        agent_card=card,
    )
    routes = [
        *create_agent_card_routes(card),
        *create_jsonrpc_routes(handler, rpc_url="/", enable_v0_3_compat=v03_compat),
    ]
    return Starlette(routes=routes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--v03-compat",
        action="store_true",
        help="also advertise/serve A2A 0.3 (message/send) on the same endpoint",
    )
    args = parser.parse_args(argv)

    # The SDK logs warnings for every rejected request (e.g. a missing
    # A2A-Version header); keep the test peer silent unless something breaks.
    logging.getLogger("a2a").setLevel(logging.ERROR)

    base_url = f"http://{args.host}:{args.port}/"
    app = build_app(base_url, v03_compat=args.v03_compat)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        access_log=False,
        log_level="warning",
        lifespan="off",
    )

    # uvicorn installs its own SIGTERM/SIGINT handlers, shuts down gracefully,
    # then restores the previous handlers and re-raises the signal.  With the
    # default handlers that would end the process with status -15; install
    # handlers that exit with status 0 instead (this also covers a signal that
    # arrives before uvicorn has taken over).
    def _exit_cleanly(signum: int, frame: object) -> None:
        raise SystemExit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
