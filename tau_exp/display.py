"""Tables for people: one console setup for every command-line tool."""

from __future__ import annotations

import sys

from rich.console import Console


def console(stderr: bool = False) -> Console:
    """A rich Console; piped output is 200 columns wide, so keys and paths are not cut for scripts."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 200)
