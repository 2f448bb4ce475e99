"""Start and stop a model server as a child process of this job, with no orphans left behind."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None
try:  # resolved here, not in the forked child, where loading a library could deadlock
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the process group is still stopped on a clean exit
    _prctl = None


def _die_with_parent() -> None:
    # Runs in the child before exec: the kernel sends SIGTERM to the server when this job's
    # process dies, even by SIGKILL, so a killed job never leaves a server holding a port.
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def start_process(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `command` in its own process group, stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: stopped as a whole
            preexec_fn=_die_with_parent if _prctl is not None else None,
        )


def stop_process(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the whole process group, then SIGKILL what is left after `grace_s`."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        log.warning("server pid %d ignored SIGTERM for %g s; killing it", process.pid, grace_s)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        process.wait()
