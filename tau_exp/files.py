"""Writing files so that a reader never sees half of one, and reading the append-only JSON-lines
logs whose last line a killed writer may have left half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_atomically(path: Path, text: str, mode: int | None = None) -> None:
    """Write `text` to a temporary sibling, then rename it over `path` (atomic on POSIX).

    With `mode` (e.g. 0o600 for a key), the file has that mode from its creation on."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        if mode is None:
            tmp.write_text(text)
        else:
            tmp.unlink(missing_ok=True)  # O_EXCL: never write into a file someone else prepared
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "w") as file:
                file.write(text)
        tmp.replace(path)
    except OSError as error:
        tmp.unlink(missing_ok=True)  # e.g. a full disk: no half-written temporary left behind
        # Named by the path the caller gave, not by the temporary no user has heard of.
        raise OSError(error.errno, error.strerror, str(path)) from None


def read_json_lines(path: Path) -> list[Any]:
    """The values of an appended JSON-lines file, [] if there is none; a line that is not JSON
    (the torn last line of a writer killed mid-write) is left out."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    values = []
    for line in lines:
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return values
