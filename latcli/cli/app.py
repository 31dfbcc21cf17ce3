"""The ``latcli`` entry point and its one error boundary."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Annotated

import typer
from typer._click.core import Command, Parameter
from typer._click.types import FloatParamType, IntParamType, ParamType

from latcli import __version__
from latcli.cli.bench import bench
from latcli.cli.capacity import capacity
from latcli.cli.compare import compare
from latcli.cli.demo import demo_app
from latcli.cli.probe import probe
from latcli.cli.report import report
from latcli.cli.schema import schema
from latcli.cli.send import send
from latcli.cli.serve import serve
from latcli.cli.watch import watch

app = typer.Typer(
    name="latcli",
    help="Probe, watch, benchmark and route fleets of HTTP and A2A agents.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion; typer.completion loads anyway
    # Plain click help: rich's help renderer imports markdown-it and costs ~130 ms per --help.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"latcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Probe, watch, benchmark and route fleets of HTTP and A2A agents.

    Exit codes: 0 ok · 1 unhealthy / SLA breached / send failed · 2 usage or inventory error ·
    3 bench run invalid · 130 interrupted.
    """


# One short line each: click cuts a longer first sentence with "..." in `latcli --help`.
app.command(short_help="Check agents' health, phase timings and A2A cards.")(probe)
app.command(short_help="Load a target; latency percentiles, SLA gate for CI.")(bench)
app.command(short_help="Route one message to the best replica of a type.")(send)
app.command(short_help="Print the JSON Schema of agents.yaml.")(schema)
app.command(short_help="Live dashboard: health, latency, breakers, picks.")(watch)
app.command(short_help="Re-render or merge saved bench reports.")(report)
app.command(short_help="Run the router as an HTTP gateway.")(serve)
app.command(short_help="Find the highest rate a target sustains.")(capacity)
app.command(short_help="Is a candidate bench run slower than a baseline?")(compare)
app.add_typer(demo_app, name="demo", short_help="Run a local demo fleet and watch it.")

# Ordinary metavars (``-n N``, ``--interval DURATION``) instead of Typer's ``<int range>``,
# decided here once from an option's name or type, so every command (and every new option)
# gets them; an option that sets its own metavar keeps it.
_METAVARS_BY_NAME = {
    "duration": "DURATION",
    "interval": "DURATION",
    "timeout": "DURATION",
    "step_duration": "DURATION",
    "chaos_period": "DURATION",
    "warmup": "DURATION",
    "alert_webhook": "URL",
    "engine": "ENGINE",
    "strategy": "STRATEGY",
    "endpoint": "ENDPOINT",
    "sla": "EXPR",
    "type_": "TYPE",
    "chaos_agent": "AGENT",
    "shard": "I/N",
    "header": "NAME:VALUE",
    "method": "METHOD",
    "body": "TEXT",
    "host": "HOST",
    "port": "PORT",
    "metrics_port": "PORT",
}


def _plain_metavars(command: Command) -> None:
    for param in command.params:
        if param.param_type_name == "argument":
            param.metavar = param.metavar or _argument_metavar(param)
            # Typer's usage line wraps a required argument in braces ({TARGET}); click's does not.
            setattr(param, "make_metavar", _Fixed(param.metavar))  # noqa: B010
        elif param.metavar is None and not getattr(param, "is_flag", False):
            named = _METAVARS_BY_NAME.get(param.name or "")
            param.metavar = named or _type_metavar(param.type)
    subcommands: dict[str, Command] = getattr(command, "commands", {})
    for sub in subcommands.values():
        _plain_metavars(sub)


def _argument_metavar(param: Parameter) -> str:
    """``TARGET``, ``[AGENTS]...``: click's own spelling, in capitals."""
    name = (param.name or "arg").rstrip("_").upper()
    name += "..." if param.nargs != 1 else ""
    return name if param.required else f"[{name}]"


@dataclass(frozen=True)
class _Fixed:
    text: str

    def __call__(self, *args: object, **kwargs: object) -> str:
        return self.text


def _type_metavar(kind: ParamType) -> str:
    if isinstance(kind, IntParamType | FloatParamType):
        return "N"
    return "FILE" if kind.name == "path" else "TEXT"


def command() -> Command:
    """The click command tree behind ``app``, with plain metavars."""
    built = typer.main.get_command(app)
    _plain_metavars(built)
    return built


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line on stderr with their exit code.

    Anything else that escapes a command (a bug, or an agent's input no layer below caught) is
    one ``latcli: internal error`` line and exit 1, never a traceback; ``LATCLI_DEBUG=1``
    lets it through with its traceback.
    """
    # Typer 0.29 vendors click: its usage errors are typer._click's, not click's.
    from typer._click.exceptions import ClickException

    from latcli.cli.options import bare_sla
    from latcli.core.errors import ExitCode, LatcliError
    from latcli.transport.guard import DEBUG_ENV, debug_enabled

    _log_to_stderr()
    try:
        args = bare_sla(sys.argv[1:] if argv is None else argv)
        result = command()(args=args, prog_name="latcli", standalone_mode=False)
    except LatcliError as exc:
        _error_line(f"latcli: {exc}" if exc.prefixed else str(exc))
        return int(exc.exit_code)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except ClickException as exc:
        exc.show()
        return ExitCode.USAGE
    except (KeyboardInterrupt, typer.Abort):
        print("latcli: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:
        if debug_enabled():
            raise
        text = str(exc).splitlines()[0] if str(exc) else ""
        _error_line(
            f"latcli: internal error: {type(exc).__name__}{': ' if text else ''}{text}"
            f" ({DEBUG_ENV}=1 shows the traceback)"
        )
        return ExitCode.FAILED
    return int(result) if isinstance(result, int) else 0


def _error_line(text: str) -> None:
    """An error for stderr: URL passwords masked, an agent's control characters escaped."""
    from latcli.core.redact import redact_text
    from latcli.render.text import escape_controls

    print(escape_controls(redact_text(text)), file=sys.stderr)


class _SafeFormatter(logging.Formatter):
    """Log lines may quote agents: passwords masked, control characters escaped. Without
    ``LATCLI_DEBUG`` a record is its message's first line, no traceback."""

    def __init__(self, prefix: str) -> None:
        super().__init__("%(message)s")
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        from latcli.core.redact import redact_text
        from latcli.render.text import escape_controls
        from latcli.transport.guard import debug_enabled

        whole = debug_enabled()
        text = super().format(record) if whole else record.getMessage().partition("\n")[0]
        return escape_controls(redact_text(self.prefix + text))


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the sys.stderr of the moment (rich Live and test runners replace it)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def _log_to_stderr() -> None:
    """Warnings of the ``latcli`` logger (the per-agent guard's) and errors asyncio logs (an
    engine's protocol callback that raised: the guard reports the same failure) as one plain
    line each on stderr; ``LATCLI_DEBUG=1`` adds their tracebacks."""
    from latcli.transport.guard import debug_enabled, log

    for logger, prefix in ((log, ""), (logging.getLogger("asyncio"), "latcli: asyncio: ")):
        if not any(isinstance(h, _Stderr) for h in logger.handlers):
            handler = _Stderr()
            handler.setFormatter(_SafeFormatter(prefix))
            logger.addHandler(handler)
            logger.propagate = False
    log.setLevel(logging.DEBUG if debug_enabled() else logging.WARNING)
