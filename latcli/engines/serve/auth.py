"""Who may call the gateway: the client token it asks for, and when it must not start without one.

The token is checked per request by :meth:`latcli.engines.serve.gateway.Gateway.authorized`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from latcli.core.errors import LatcliError
from latcli.engines.serve.options import ServeOptions


def client_token(opts: ServeOptions, warn: Callable[[str], None]) -> str | None:
    """The token clients must send, or None; LatcliError when the gateway must not start.

    Bound beyond loopback, a gateway without a token lets anyone on the network spend the
    agents' credentials: it needs ``LATCLI_SERVE_TOKEN`` or an explicit ``--no-auth``.
    """
    if opts.no_auth:
        if opts.token:
            warn("latcli serve: --no-auth: LATCLI_SERVE_TOKEN is set but not checked")
        return None
    if opts.token:
        return opts.token
    if is_loopback(opts.host) is False:
        raise LatcliError(
            f"--host {opts.host} is reachable beyond this machine and no client token is set: "
            "set LATCLI_SERVE_TOKEN (clients send Authorization: Bearer TOKEN) or pass --no-auth"
        )
    return None


def is_loopback(host: str) -> bool | None:
    """Every address ``host`` names is a loopback one (``localhost``, 127.0.0.0/8, ::1);
    None when it names none (bind() will say what is wrong with it)."""
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return None
    addresses = {str(info[4][0]) for info in found}
    return all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


__all__ = ["client_token", "is_loopback"]
