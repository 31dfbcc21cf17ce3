"""One demo assistant as a process:
``python -m latcli.demo.assistant --id assistant-1 --port 8006``."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import latcli.demo.assistant as package
from latcli.demo.assistant.app import make_app


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m latcli.demo.assistant", description=package.__doc__)
    p.add_argument("--id", required=True, help="agent id, used in answers and the card")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--fault",
        type=json.loads,
        default={},
        help='starting behaviour as JSON, the /admin/fault keys: {"ttft": "lognormal 400ms 0.5"}',
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--parent-pid", type=int, default=None, help="exit when this process dies")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve one assistant until SIGTERM/SIGINT. Logs only warnings; nothing per request."""
    import uvicorn

    from latcli.demo.agent import _exit_with_parent  # the fleet's children all die with it

    args = _parse_args(argv)
    try:
        app = make_app(args.id, args.fault, args.seed)
    except ValueError as exc:
        raise SystemExit(f"latcli.demo.assistant: bad --fault: {exc}") from None
    if args.parent_pid is not None:
        _exit_with_parent(args.parent_pid)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
