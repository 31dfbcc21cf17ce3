"""One TLS context per process, shared by every engine and every per-agent client.

Loading CA certificates costs ~25 ms per context; a fresh context per client would put that in
every agent's first request. Built lazily, so plain-http runs never pay it.
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def shared_ssl_context(verify: bool | str = True) -> ssl.SSLContext:
    """The context for ``verify``: True (certifi's CA bundle, like httpx), False, or a CA path."""
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    import certifi

    return ssl.create_default_context(cafile=certifi.where())
