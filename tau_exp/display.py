"""Tables for people and scripts: the argument parser and console of every command-line tool,
and one writer of a table as CSV and Markdown (the sweep summary, the report)."""

from __future__ import annotations

import argparse
import csv
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel
from rich.console import Console


def argument_parser(prog: str, doc: str | None, *, reads: str, docs: str) -> argparse.ArgumentParser:
    """The parser of a command-line tool: its module docstring, whole, is the --help text, which
    ends with every kind of input the tool reads (`reads`) and the docs page that explains it
    (`docs`, a path from the repository's root: docs/<page>.md)."""
    epilog = "\n".join(
        [
            textwrap.fill(
                reads, HELP_WIDTH, initial_indent="reads: ", subsequent_indent="       ", break_long_words=False
            ),
            f"docs:  {docs}",
        ]
    )
    return argparse.ArgumentParser(
        prog=prog, description=doc, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )


HELP_WIDTH = 96  # the docstrings' width


def console(stderr: bool = False) -> Console:
    """A rich Console; piped output is 200 columns wide, so keys and paths are not cut for scripts.
    Text prints verbatim: no console markup (a telecom task id `[mobile_data_issue]…` is data,
    not a style) and no highlighting."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 200, markup=False, highlight=False)


def print_result(result: BaseModel, parts: Sequence[object], as_json: bool) -> None:
    """A tool's answer on stdout: `result` as JSON for scripts, or its rendered `parts` (tables,
    lines) for people."""
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    out = console()
    for part in parts:
        out.print(part)


def cell(value: object) -> str:
    """A value as people read it: floats to 4 places, nothing for None."""
    if value is None:
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_table(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    csv_path: Path,
    markdown_path: Path,
    drop_empty_in_markdown: bool = False,
) -> None:
    """The same table twice: CSV with the values as they are (for scripts: every column, always),
    Markdown for people (without the columns no row has a value in, if asked)."""
    with open(csv_path, "w", newline="") as csv_file:
        writer = csv.writer(csv_file)
        writer.writerow(header)
        writer.writerows(["" if value is None else value for value in row] for row in rows)
    if drop_empty_in_markdown:
        kept = [i for i in range(len(header)) if any(cell(row[i]) for row in rows)]
        header, rows = [header[i] for i in kept], [[row[i] for i in kept] for row in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell(value).replace("|", "\\|") for value in row) + " |" for row in rows]
    markdown_path.write_text("\n".join(lines) + "\n")
