"""Secrets in URLs, hidden wherever a URL is shown, logged or stored (DESIGN §7).

Two shapes of secret: a URL's userinfo (``http://user:pass@host``: the password, or a bare
token in the user part) and a webhook's path and query (a Slack-style incoming-webhook URL is
itself the credential). Both functions are total: any text in, never an exception.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MASK = "***"

# scheme://userinfo@ — the netloc ends at the first '/', '?', '#' or space, and the userinfo
# at its last '@' (as urlsplit reads it), so a raw '@' inside a password is covered as well.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/?#]*)@")


def _mask(m: re.Match[str]) -> str:
    user, colon, _password = m.group("userinfo").partition(":")
    # user:pass keeps the user (it tells replicas apart); a bare user part may be a token
    shown = f"{user}:{MASK}" if colon else MASK
    return f"{m.group('scheme')}{shown}@"


def redact_url(url: str) -> str:
    """``http://user:pass@host/p`` -> ``http://user:***@host/p``; ``http://token@host`` ->
    ``http://***@host``. A URL without userinfo comes back unchanged."""
    return _USERINFO.sub(_mask, url, count=1) if "@" in url else url


def redact_text(text: str) -> str:
    """Every URL's userinfo in free text (error messages, logs) masked as :func:`redact_url`."""
    return _USERINFO.sub(_mask, text) if "@" in text else text


def redact_webhook(url: str) -> str:
    """A webhook URL as it may be shown: scheme and host kept, path and query hidden
    (``https://hooks.slack.com/services/T0/B0/XYZ`` -> ``https://hooks.slack.com/***``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    host = f"[{host}]" if ":" in host else host
    shown = f"{parts.scheme}://{host}{f':{port}' if port is not None else ''}"
    hidden = parts.path not in ("", "/") or parts.query or parts.fragment
    return f"{shown}/{MASK}" if hidden else shown
