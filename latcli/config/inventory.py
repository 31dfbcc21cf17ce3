"""Temporary: the old home of the inventory names that modules still under other branches'
edits import (engines/bench, transport/protocols.py, transport/a2a, cli/bench.py).

Delete this file once those branches have merged and their imports point at
:mod:`latcli.config.model`, :mod:`~latcli.config.loading`, :mod:`~latcli.config.selection` and
:mod:`~latcli.config.urls`.
"""

from latcli.config.loading import load_inventory
from latcli.config.model import A2A_BINDINGS, A2ABinding, A2AConfig, Agent, Inventory
from latcli.config.selection import adhoc_agent
from latcli.config.urls import http_url

__all__ = [
    "A2A_BINDINGS",
    "A2ABinding",
    "A2AConfig",
    "Agent",
    "Inventory",
    "adhoc_agent",
    "http_url",
    "load_inventory",
]
