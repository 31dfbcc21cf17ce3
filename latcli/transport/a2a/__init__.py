"""A2A as deployed (DESIGN §2): task states, bindings, the SSE decoder and stream phases.

Every module here is sans-I/O: plain functions and small state machines over values that
:mod:`latcli.transport.protocols` feeds them; only :class:`latcli.transport.protocols.ProtocolClient` awaits.
"""
