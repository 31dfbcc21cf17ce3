"""How the fleet launches one demo assistant: its inventory ``demo:`` section as the starting
fault change, and the command line of its process."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from latcli.config.model import DemoConfig


def starting_fault(demo: DemoConfig) -> dict[str, Any]:
    """An inventory ``demo:`` section as the assistant's starting /admin/fault change."""
    fault: dict[str, Any] = {
        "ttft": demo.ttft,
        "tokens_per_s": demo.tokens_per_s,
        "chunk_tokens": demo.chunk_tokens,
        "answer_tokens": demo.answer_tokens,
        "fail_tasks": demo.fail_tasks,
        "input_required": demo.input_required,
        "errors": demo.errors,
        "latency": demo.latency,
    }
    if demo.rate_limited > 0:
        fault["rate_limited"] = demo.rate_limited
    if demo.concurrency_limit is not None:
        fault["concurrency_limit"] = demo.concurrency_limit
    return fault


def command(
    agent_id: str, host: str, port: int, demo: DemoConfig, seed: int | None, parent: int
) -> list[str]:
    """The command line the fleet launcher runs for one assistant; ``seed`` wins over
    ``demo.seed``."""
    fault = json.dumps(starting_fault(demo))
    cmd = [sys.executable, "-m", "latcli.demo.assistant", "--id", agent_id]
    cmd += ["--host", host, "--port", str(port), "--fault", fault, "--parent-pid", str(parent)]
    seed = demo.seed if seed is None else seed
    if seed is not None:
        cmd += ["--seed", str(seed)]
    return cmd
