"""latcli: probe, watch, benchmark and route fleets of HTTP and A2A agents."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
