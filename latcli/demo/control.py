"""Switch a running demo agent's faults (latency, errors, down) over its admin endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from latcli.core.errors import ExitCode, LatcliError
from latcli.core.units import format_duration

FAULT_PATH = "/admin/fault"


async def set_fault(
    url: str,
    *,
    latency: str | None,
    errors: float | str | None,
    down: bool | None,
    timeout: float = 2.0,
    agent_id: str | None = None,
    concurrency_limit: int | None = None,
    extra: Mapping[str, object] | None = None,
    rate_limit: int | None = None,
) -> dict[str, object]:
    """Change the faults of the demo agent at ``url``; None leaves a setting unchanged.

    ``latency`` is a distribution (``"300ms"``, ``"lognormal 20ms 0.6"``), ``errors``
    a fraction or ``"20%"``, ``concurrency_limit`` messages served at once (0: no limit),
    ``rate_limit`` the Retry-After seconds of a 429 every message gets (0: none).
    Returns the agent's fault state after the change.
    Raises LatcliError: unreachable agent (exit 1), a value the agent refused (exit 2).
    """
    change: dict[str, object] = {
        "latency": latency,
        "errors": errors,
        "down": down,
        "concurrency_limit": concurrency_limit,
        "rate_limit": rate_limit,
    }
    change.update(extra or {})  # more keys, e.g. an assistant's (latcli.demo.assistant)
    body = {k: v for k, v in change.items() if v is not None}
    return await _call("POST", url, body, timeout, agent_id)


async def get_fault(
    url: str, *, timeout: float = 2.0, agent_id: str | None = None
) -> dict[str, object]:
    """The current fault state of the demo agent at ``url``. Raises LatcliError as set_fault."""
    return await _call("GET", url, None, timeout, agent_id)


async def _call(
    method: str, url: str, body: dict[str, Any] | None, timeout: float, agent_id: str | None
) -> dict[str, object]:
    target = url.rstrip("/") + FAULT_PATH
    name = f"{agent_id} at {url}" if agent_id else url
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=timeout) as client:
            response = await client.request(method, target, json=body)
    except httpx.HTTPError as exc:
        raise LatcliError(
            f"cannot reach {name}: {_reason(exc, timeout)}", ExitCode.FAILED
        ) from None
    return _fault_state(response, name)


def _fault_state(response: httpx.Response, name: str) -> dict[str, object]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code == 400 and isinstance(data, dict):
        raise LatcliError(f"{name} refused the fault: {data.get('error')}")
    if response.status_code != 200 or not isinstance(data, dict):
        raise LatcliError(
            f"{name} is not a latcli demo agent (HTTP {response.status_code} from {FAULT_PATH})",
            ExitCode.FAILED,
        )
    return data


def _reason(exc: httpx.HTTPError, timeout: float) -> str:
    """A short human reason for a failed admin call."""
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {format_duration(timeout)}"
    if isinstance(exc, httpx.ConnectError) and _caused_by(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """True when ``kind`` is in the exception's cause/context chain (anyio wraps OSErrors)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
