"""Error kinds, exit codes and the one user-facing error type.

Every transport maps its exceptions to an :class:`ErrorKind` in exactly one
place; every command returns an :class:`ExitCode`.
"""

from __future__ import annotations

from enum import Enum, IntEnum


class ErrorKind(str, Enum):
    """Why an attempt failed (DESIGN §6). The value is the JSON spelling."""

    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    RESET = "reset"
    TIMEOUT = "timeout"
    HTTP_4XX = "http_4xx"
    HTTP_5XX = "http_5xx"
    RPC_ERROR = "rpc_error"
    BAD_RESPONSE = "bad_response"
    TOO_LARGE = "too_large"
    BREAKER_OPEN = "breaker_open"
    TASK_FAILED = "task_failed"  # an A2A task ended failed / rejected / canceled
    RATE_LIMITED = "rate_limited"  # HTTP 429 (or 503 with Retry-After)
    OVERLOADED = "overloaded"  # the gateway shed the request

    def __str__(self) -> str:
        return self.value


class ExitCode(IntEnum):
    """Process exit codes, the one table (DESIGN §3)."""

    OK = 0
    FAILED = 1  # SLA breached, agents unhealthy, send failed
    USAGE = 2  # bad flags, bad inventory, bad expression
    INVALID_RUN = 3  # bench could not hold the asked rate
    INTERRUPTED = 130  # Ctrl-C; partial reports are still written


class LatcliError(Exception):
    """A problem the user caused or can fix: printed as one line, no traceback."""

    prefixed = True  # printed as "latcli: MESSAGE"; False when lines already name their place

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
