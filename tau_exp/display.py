"""Tables for people and scripts: one console setup for every command-line tool, and one writer
of a table as CSV and Markdown (the sweep summary, the report)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console


def console(stderr: bool = False) -> Console:
    """A rich Console; piped output is 200 columns wide, so keys and paths are not cut for scripts."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 200)


def cell(value: object) -> str:
    """A value as people read it: floats to 4 places, nothing for None."""
    if value is None:
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_table(header: Sequence[str], rows: Sequence[Sequence[object]], csv_path: Path, markdown_path: Path) -> None:
    """The same table twice: CSV with the values as they are (for scripts), Markdown for people."""
    with open(csv_path, "w", newline="") as csv_file:
        writer = csv.writer(csv_file)
        writer.writerow(header)
        writer.writerows(["" if value is None else value for value in row] for row in rows)
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(value).replace("|", "\\|") for value in row) + " |" for row in rows]
    markdown_path.write_text("\n".join(lines) + "\n")
