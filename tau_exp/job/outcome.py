"""One job's outcome, recorded: `status.json` in the job directory says whether its last
invocation is running, completed, incomplete, failed or interrupted, and why.

Alone, a job's error is raised on (launch.py turns it into one line and an exit status); a job
refused before anything ran (bad input) leaves nothing behind that this run created. In a sweep,
the error is logged and recorded and the sweep goes on: the sweep summary lists every job with
its state. An interruption always stops the job (and a local sweep); a Slurm job stopped by its
time limit or by preemption is requeued and resumes.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tau_exp import slurm_client
from tau_exp.errors import CheckpointError, ConfigError, IncompleteRun, TauExpError
from tau_exp.files import write_atomically
from tau_exp.jobdir import JobDir
from tau_exp.records import JobState, JobStatus, utc_timestamp

log = logging.getLogger(__name__)

T = TypeVar("T")

# Directories about to be created by this process for a run or a sweep (Hydra creates them before
# the job starts): what a refused run removes again. Noted by callbacks.NoteNewDirectories.
_created: dict[Path, Path] = {}


def note_new_directories(directory: Path) -> None:
    """Before `directory` is created: remember the outermost of it and its parents that does not
    exist yet, so that a run refused for bad input can leave nothing new behind."""
    missing = [path for path in (directory, *directory.parents) if not path.exists()]
    if missing:
        _created[directory.absolute()] = missing[-1]


def unusable_directory(directory: Path) -> str | None:
    """Why `directory` cannot hold a job's files (None if it can): it is a file, or it cannot be
    created or written to."""
    if directory.exists():
        if not directory.is_dir():
            return "it is a file, not a directory; give a directory"
        if not os.access(directory, os.W_OK | os.X_OK):
            return "it is not writable by this user; give a directory you can write to"
        return _try_writing(directory)
    existing = next(path for path in directory.parents if path.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"it cannot be created: {existing} is not writable by this user"
    return _try_writing(directory)


def _try_writing(directory: Path) -> str | None:
    """What the system answers when the directory is made and a file written in it (permissions
    alone do not tell: root may write everywhere, yet not under /proc or on a read-only mount).
    What the try made is removed again."""
    missing = [path for path in (directory, *directory.parents) if not path.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        done = "created" if missing else "written to"
        return f"it cannot be {done}: {error.strerror or error}; give a directory you can write to"
    finally:
        if missing:
            shutil.rmtree(missing[-1], ignore_errors=True)
    return None


def remove_if_new(directory: Path) -> bool:
    """Remove `directory` (and the new parents created with it) if this process created it."""
    outermost = _created.pop(directory.absolute(), None)
    if outermost is None:
        return False
    shutil.rmtree(outermost, ignore_errors=True)
    return True


def run_recorded(job: Callable[[], T], job_dir: Path, in_sweep: bool) -> T | None:
    """Run `job`, keeping `<job_dir>/status.json` up to date; see the module docstring."""
    previous = JobDir(job_dir).read_status()
    status = JobStatus(
        state=JobState.running,
        started_at=utc_timestamp(),
        host=socket.gethostname(),
        slurm_job_id=slurm_client.current_job_id() or None,
    )
    _write(job_dir, status)
    try:
        result = job()
    except KeyboardInterrupt as interrupt:
        signum = getattr(interrupt, "signum", signal.SIGINT)
        _finish(job_dir, status, JobState.interrupted, 128 + signum, f"stopped by {signal.Signals(signum).name}")
        raise  # stops the job (and a local sweep); a Slurm job stopped for requeueing resumes later
    except SystemExit as exit_:  # submitit exits this way once it has requeued the job
        _finish(job_dir, status, JobState.interrupted, None, f"exited ({exit_.code}); requeued jobs resume")
        raise
    except TauExpError as error:
        state = JobState.incomplete if isinstance(error, IncompleteRun) else JobState.failed
        if not in_sweep and _nothing_ran(job_dir) and remove_if_new(job_dir):
            raise  # refused before anything ran, in a directory of its own: nothing is left behind
        if previous is not None and isinstance(error, (ConfigError, CheckpointError)):
            # Refused before it did anything (bad input, a directory in use): the status of the
            # earlier invocation still describes the directory.
            _write(job_dir, previous)
        else:
            _finish(job_dir, status, state, error.exit_code, str(error).splitlines()[0])
        if not in_sweep:
            raise
        log.error("job %s: %s", state.value, error)
        return None
    except Exception as error:  # a bug: recorded, and shown with its traceback
        _finish(job_dir, status, JobState.failed, 1, f"{type(error).__name__}: {error}")
        if not in_sweep:
            raise
        log.exception("job failed")
        return None
    _finish(job_dir, status, JobState.completed, 0, None)
    return result


def record_pairs(job_dir: Path, pairs: int) -> None:
    """Add to the running job's status.json how many (task, trial) pairs it runs, so that progress
    views count done of all without loading the benchmark (nothing if no invocation is recorded)."""
    status = JobDir(job_dir).read_status()
    if status is not None:
        _write(job_dir, status.model_copy(update={"pairs": pairs}))


def _nothing_ran(job_dir: Path) -> bool:
    """No result was written and no server was started (whose log the error may point to)."""
    job = JobDir(job_dir)
    return not job.results.exists() and not any(job.servers.glob("*.log"))


def _finish(job_dir: Path, status: JobStatus, state: JobState, exit_code: int | None, error: str | None) -> None:
    recorded = JobDir(job_dir).read_status()  # this invocation's, with what the job added (record_pairs)
    pairs = recorded.pairs if recorded is not None and recorded.started_at == status.started_at else None
    _write(
        job_dir,
        status.model_copy(
            update={
                "state": state,
                "finished_at": utc_timestamp(),
                "exit_code": exit_code,
                "error": error,
                "pairs": pairs,
            }
        ),
    )


def _write(job_dir: Path, status: JobStatus) -> None:
    # Best effort: on a full disk, the error that stopped the job is the one to report.
    path = JobDir(job_dir).status
    try:
        job_dir.mkdir(parents=True, exist_ok=True)
        # No "pairs" until they are known: an earlier invocation's status, written back, keeps its bytes.
        write_atomically(path, status.model_dump_json(indent=2, exclude={"pairs"} if status.pairs is None else None))
    except OSError as error:
        log.error("could not write %s (%s)", path, error.strerror)
