"""What an http(s) URL is to latcli: one parser for inventory URLs, origins and ad-hoc agents."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

_DEFAULT_PORT = {"http": 80, "https": 443}


def http_url(text: str) -> SplitResult | None:
    """``text`` split as an http(s) URL with a host and a valid port, else None."""
    if not text or not text.isprintable() or any(c.isspace() for c in text):
        return None  # spaces, tabs, line breaks, ESC and other controls never belong in a URL
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts


def port_of(parts: SplitResult) -> int:
    """The port of a URL :func:`http_url` accepted, the scheme's default filled in."""
    return parts.port or _DEFAULT_PORT[parts.scheme]


def host_of(parts: SplitResult) -> str:
    """The host as a URL writes it: an IPv6 address in brackets."""
    host = parts.hostname or ""
    return f"[{host}]" if ":" in host else host
