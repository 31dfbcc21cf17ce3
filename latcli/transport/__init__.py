"""The transport seam: send a request spec, get an outcome. Nothing above it imports httpx."""

from latcli.transport.base import Outcome, RequestSpec, Timings, Transport

__all__ = ["Outcome", "RequestSpec", "Timings", "Transport"]
