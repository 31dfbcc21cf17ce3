"""A keep-alive HTTP/1.1 server answering every request with a function of it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import fault_servers as fs

Respond = Callable[[fs.Request], bytes]


def scripted(respond: Respond) -> contextlib.AbstractContextManager[fs.RunningServer]:
    """A keep-alive HTTP/1.1 server answering every request with ``respond(request)``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await fs.read_request(reader)) is not None:
            writer.write(respond(request))
            await writer.drain()

    return fs.serve(handler)
