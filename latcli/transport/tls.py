"""One TLS context per process, shared by every engine and every per-agent client.

Loading CA certificates costs ~25 ms per context; a fresh context per client would put that in
every agent's first request. Built lazily, so plain-http runs never pay it.
"""

from __future__ import annotations

import functools
import os
import ssl


def shared_ssl_context(verify: bool | str = True) -> ssl.SSLContext:
    """The context for ``verify``: True (``$SSL_CERT_FILE`` when set, else certifi's CA
    bundle, as httpx does), False (no verification: ``--insecure``), or a CA file or directory.
    """
    if verify is True:
        verify = os.environ.get("SSL_CERT_FILE") or True
    return _context(verify)


@functools.cache
def _context(verify: bool | str) -> ssl.SSLContext:
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    import certifi

    return ssl.create_default_context(cafile=certifi.where())
