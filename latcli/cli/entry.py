"""The console script: ``--version`` is answered before Typer and the commands are imported."""

from __future__ import annotations

import sys


def run() -> None:
    if sys.argv[1:] == ["--version"]:
        from latcli import __version__

        print(f"latcli {__version__}")
        sys.exit(0)
    from latcli.cli.app import main

    sys.exit(main())
