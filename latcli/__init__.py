"""latcli: probe, watch, benchmark and route fleets of HTTP and A2A agents.

``from latcli import Router`` gives the routing engine; it is imported on first use so that
``latcli --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Router", "__version__"]

if TYPE_CHECKING:
    from latcli.routing.router import Router


def __getattr__(name: str) -> Any:
    if name == "Router":
        from latcli.routing.router import Router

        return Router
    raise AttributeError(f"module 'latcli' has no attribute {name!r}")
