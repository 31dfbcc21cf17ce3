"""``latcli watch --events FILE``: every event appended as one JSON line."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from latcli.core.errors import LatcliError
from latcli.core.escape import json_safe
from latcli.reports.files import open_private
from latcli.reports.watch import WatchEvent, event_dict


class EventsFile:
    """Appends each event as one JSON line and flushes, so ``tail -f`` sees it at once."""

    def __init__(self, path: Path) -> None:
        try:
            self._file: IO[str] = open_private(path, "a")
        except OSError as exc:
            raise LatcliError(f"--events {path}: {exc.strerror or exc}") from None

    def write(self, events: Iterable[WatchEvent]) -> None:
        lines = [json_safe(json.dumps(event_dict(e), ensure_ascii=False)) + "\n" for e in events]
        if lines:
            self._file.write("".join(lines))
            self._file.flush()

    def close(self) -> None:
        self._file.close()


__all__ = ["EventsFile"]
