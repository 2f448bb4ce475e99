"""The registry of shared model servers: one directory per distinct served model, on a
filesystem that every node sees, through which the `slurm` server kind finds, reuses and
replaces shared server jobs.

    <registry>/<key>.lock           flock held while an entry is checked or a job submitted
    <registry>/<key>/job.json       the Slurm job serving it (written by the submitter)
    <registry>/<key>/endpoint.json  its address, once it is ready (written by the server job)
    <registry>/<key>/api_key        the server's key (mode 0600; never in the JSON files)
    <registry>/<key>/users/<id>.json  a job using the server, from when it finds it until it ends
    <registry>/<key>/ended.json     the server job ended itself (idle): the next job submits another
    <registry>/<key>/logs/          the server job's Slurm log, the server's own log

Every file is written to a temporary sibling and renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from tau_exp.files import write_atomically

KEY_FILE = "api_key"


class ServerJob(BaseModel):
    """What the submitter records: which Slurm job serves which model."""

    key: str
    model: str  # the served model name
    job_id: str
    submitted_at: str


class ServerAddress(BaseModel):
    """What the server job records once its server answers."""

    base_url: str
    job_id: str
    ready_at: str


class ServerEnd(BaseModel):
    """What a server job that ended itself records (before it stops serving)."""

    job_id: str
    ended_at: str
    reason: str


class ServerUser(BaseModel):
    """A job using a shared server: how the server job tells whether it still lives."""

    host: str
    pid: int
    slurm_job_id: str | None  # None: not in Slurm (checked by pid on the same host)
    registered_at: str

    @property
    def name(self) -> str:
        return f"{self.host}-{self.pid}"


class SharedServer(BaseModel):
    """One registry entry as read back: its job and, once ready, its address."""

    job: ServerJob
    address: ServerAddress | None = None
    end: ServerEnd | None = None

    @property
    def ready(self) -> bool:
        # An address left by an earlier job of the same entry does not count.
        return self.address is not None and self.address.job_id == self.job.job_id and not self.ended

    @property
    def ended(self) -> bool:
        """The entry's job ended itself: gone, whatever Slurm still says while it shuts down."""
        return self.end is not None and self.end.job_id == self.job.job_id


class Registry:
    """Entries of shared servers under one directory (created 0700: it holds API keys)."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser()

    def entry_dir(self, key: str) -> Path:
        return self.root / key

    @contextmanager
    def locked(self, key: str) -> Iterator[None]:
        """Hold the entry's lock: one process at a time decides whether to submit a job."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self.root / f"{key}.lock", "a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes, even on a crash
            yield

    def read(self, key: str) -> SharedServer | None:
        directory = self.entry_dir(key)
        try:
            job = ServerJob.model_validate_json((directory / "job.json").read_text())
        except FileNotFoundError:
            return None
        try:
            address = ServerAddress.model_validate_json((directory / "endpoint.json").read_text())
        except FileNotFoundError:
            address = None
        try:
            end = ServerEnd.model_validate_json((directory / "ended.json").read_text())
        except FileNotFoundError:
            end = None
        return SharedServer(job=job, address=address, end=end)

    def entries(self) -> list[SharedServer]:
        keys = sorted(path.parent.name for path in self.root.glob("*/job.json"))
        return [entry for entry in map(self.read, keys) if entry is not None]

    def record_job(self, job: ServerJob) -> None:
        directory = self.entry_dir(job.key)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # An address left by an earlier job stays until replaced; `ready` ignores it. (Removing
        # it here could remove the new job's own, if that job came up before this write.)
        write_atomically(directory / "job.json", job.model_dump_json(indent=2))

    def record_address(self, key: str, address: ServerAddress, api_key: str | None) -> None:
        """Publish a ready server: its key first (0600), then the address readers wait for."""
        directory = self.entry_dir(key)
        if api_key is not None:
            write_atomically(directory / KEY_FILE, api_key, mode=0o600)
        write_atomically(directory / "endpoint.json", address.model_dump_json(indent=2))

    def withdraw_address(self, key: str, job_id: str) -> None:
        """The server job is ending: remove its address (not a newer job's)."""
        entry = self.read(key)
        if entry is not None and entry.address is not None and entry.address.job_id == job_id:
            (self.entry_dir(key) / "endpoint.json").unlink(missing_ok=True)

    def record_end(self, key: str, end: ServerEnd) -> None:
        """The server job is ending itself: mark the entry gone and withdraw its address.
        (Called under the entry's lock, so no job registers in between.)"""
        write_atomically(self.entry_dir(key) / "ended.json", end.model_dump_json(indent=2))
        self.withdraw_address(key, end.job_id)

    def register_user(self, key: str, user: ServerUser) -> Path:
        """Record a job that uses the server; returns its file, which `unregister` removes."""
        directory = self.entry_dir(key) / "users"
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = directory / f"{user.name}.json"
        write_atomically(path, user.model_dump_json(indent=2))
        return path

    def users(self, key: str) -> dict[Path, ServerUser]:
        found = {}
        for path in sorted((self.entry_dir(key) / "users").glob("*.json")):
            try:
                found[path] = ServerUser.model_validate_json(path.read_text())
            except (FileNotFoundError, ValueError):  # unregistered meanwhile
                continue
        return found

    def api_key(self, key: str) -> str | None:
        try:
            return (self.entry_dir(key) / KEY_FILE).read_text()
        except FileNotFoundError:
            return None

    def remove(self, key: str) -> None:
        """Forget an entry, logs and all (after its job was stopped on purpose)."""
        shutil.rmtree(self.entry_dir(key), ignore_errors=True)
