"""Live progress of a sweep, or of a single job, from its job directories: per job its state,
pairs done of all, running average reward, infra and harness errors, and when it last wrote a
result; a sweep's finished, running, failed and pending jobs at a glance.

    python -m tau_exp.status outputs/multirun/2026-11-24/10-00-00 [--watch [SECONDS]]
    python -m tau_exp.status outputs/runs/2026-11-24/10-00-00     # one job: its row alone

Reads only what jobs write anyway (below), so it works from a login node while the jobs run on
the cluster, and never loads the benchmark: a job's pairs of all are those its status.json records (`?` for jobs written
before tau_exp recorded them). The table goes to stdout; with --watch into a pipe or a file, it
is printed whole once per refresh (in a terminal, redrawn in place).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Collection
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel
from rich.live import Live
from rich.table import Table

from tau_exp.display import argument_parser, cell, console
from tau_exp.errors import CheckpointError, TauExpError
from tau_exp.jobdir import JobDir, SweepDir
from tau_exp.records import EpisodeStatus, ResultHead
from tau_exp.runtime import command_line
from tau_exp.tracking.sweep import job_row


class JobProgress(BaseModel):
    """One job of a running sweep."""

    job: str
    swept: str = ""  # the job's overrides of the keys its sweep varies ("model.temperature=0.7")
    state: str  # running | completed | incomplete | failed | interrupted | died | unknown
    done: int  # (task, trial) pairs with a scored result
    total: int | None  # pairs the job runs, as its status.json records them (None: not yet, or an older job)
    avg_reward: float | None
    infra_errors: int
    harness_errors: int
    last_result: str | None  # when it last appended a result (UTC, to the second)
    error: str = ""


class SweepProgress(BaseModel):
    """The jobs of the directory given: a sweep's, or one job's."""

    kind: str = "sweep"  # sweep | job: what the directory given is
    jobs: list[JobProgress]
    pending: int | None  # jobs of the sweep that have not started (None: unknown, or a single job)

    def counts(self) -> Counter[str]:
        return Counter(job.state for job in self.jobs)


DIRECTORIES = (
    "a sweep directory such as outputs/multirun/<date>/<time>, or a job directory such as outputs/runs/<date>/<time>"
)


def progress_of(directory: Path) -> SweepProgress:
    """The progress of a sweep directory's jobs, or of a job directory's one job (single jobs are
    the first workflow: `python launch.py`, then follow it)."""
    if not directory.is_dir():
        raise TauExpError(f"{directory} is not a directory: give {DIRECTORIES}")
    job = JobDir(directory)
    if job.hydra_config.exists():  # Hydra writes it into a job directory as the job starts; a sweep has none
        # A job of a sweep, given alone, still shows its values of what the sweep varies.
        swept_keys = SweepDir(directory.parent).swept_keys()
        return SweepProgress(kind="job", jobs=[job_progress(job, swept_keys)], pending=None)
    return sweep_progress(directory)


def sweep_progress(sweep_dir: Path) -> SweepProgress:
    if not sweep_dir.is_dir():
        raise TauExpError(f"{sweep_dir} is not a directory: give {DIRECTORIES}")
    sweep = SweepDir(sweep_dir)
    swept_keys = sweep.swept_keys()
    jobs = [job_progress(job, swept_keys) for job in sweep.jobs()]
    expected = expected_jobs(sweep)
    if not jobs and expected is None:
        raise TauExpError(
            f"{sweep_dir} holds no job directories, no multirun.yaml and no .hydra/config.yaml: give {DIRECTORIES}"
        )
    return SweepProgress(jobs=jobs, pending=None if expected is None else max(0, expected - len(jobs)))


def job_progress(job: JobDir, swept_keys: Collection[str] = ()) -> JobProgress:
    row = job_row(job, swept_keys=swept_keys)  # state (a running job whose Slurm job is gone is "died"), error
    try:
        # The few fields a progress view needs: reading whole conversations would be too slow to
        # refresh a 120-job sweep every few seconds.
        latest = job.read_results(ResultHead)
    except CheckpointError as error:  # a malformed line: this job's problem, not the view's
        latest, row.error = [], str(error)
    statuses = Counter(record.status for record in latest)
    rewards = [r.reward for r in latest if r.status == EpisodeStatus.scored and r.reward is not None]
    results = job.results
    return JobProgress(
        job=job.path.name,
        swept=row.swept,
        state=row.state,
        done=statuses[EpisodeStatus.scored],
        total=status.pairs if (status := job.read_status()) else None,
        avg_reward=sum(rewards) / len(rewards) if rewards else None,
        infra_errors=statuses[EpisodeStatus.infra_error],
        harness_errors=statuses[EpisodeStatus.harness_error],
        error=row.error,
        last_result=(
            datetime.fromtimestamp(results.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
            if results.exists()
            else None
        ),
    )


def expected_jobs(sweep: SweepDir) -> int | None:
    """How many jobs the sweep launches: its overrides and sweeper params, expanded as Hydra's
    basic sweeper does — the product of each key's values, a key given twice counting once, as
    its last value (None without multirun.yaml)."""
    overrides = sweep.overrides()
    if overrides is None:
        return None
    values_per_key = {
        override.get_key_element(): len(list(override.sweep_string_iterator())) if override.is_sweep_override() else 1
        for override in overrides
    }
    return math.prod(values_per_key.values())


def render(directory: Path, progress: SweepProgress) -> Table:
    counts = progress.counts()
    summary = ", ".join(f"{counts[state]} {state}" for state in sorted(counts))
    if progress.pending is not None:
        summary += f", {progress.pending} pending"
    table = Table(title=f"{progress.kind} {directory}: {summary}")
    for column in ("job", "swept", "state", "done", "avg_reward", "infra", "harness", "last result (UTC)"):
        table.add_column(column, justify="left" if column in ("job", "swept", "state") else "right")
    table.add_column("error", overflow="ellipsis", no_wrap=True, max_width=50)
    for job in progress.jobs:
        done = f"{job.done}/{job.total if job.total is not None else '?'}"
        table.add_row(
            job.job,
            job.swept,
            job.state,
            done,
            cell(job.avg_reward),
            cell(job.infra_errors or None),
            cell(job.harness_errors or None),
            (job.last_result or "")[11:19],
            job.error,
        )
    return table


@command_line
def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(
        "python -m tau_exp.status",
        __doc__,
        reads="a sweep directory (its multirun.yaml: how many jobs the sweep launches) or a single job's directory; "
        "each job directory's status.json, results.jsonl (the first fields of each record), metrics.json, "
        ".hydra/config.yaml and .hydra/overrides.yaml; and, for a job that says it is running on Slurm, whether "
        "squeue still knows it.",
        docs="docs/jobs-and-sweeps.md (its Sweeps section)",
    )
    parser.add_argument(
        "directory",
        type=Path,
        help="a sweep directory, e.g. outputs/multirun/<date>/<time>, or one job's, e.g. outputs/runs/<date>/<time>",
    )
    parser.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=5.0,
        metavar="SECONDS",
        help="refresh every SECONDS (default 5) until Ctrl-C (piped: the table once per refresh)",
    )
    parser.add_argument("--json", action="store_true", help="print the progress as JSON (for scripts)")
    args = parser.parse_args(argv)
    if args.json:
        print(progress_of(args.directory).model_dump_json(indent=2))
        return
    out = console()
    if args.watch is None:
        out.print(render(args.directory, progress_of(args.directory)))
        return
    try:
        if out.is_terminal:  # one table, redrawn in place
            with Live(render(args.directory, progress_of(args.directory)), console=out, auto_refresh=False) as live:
                while True:
                    time.sleep(args.watch)
                    live.update(render(args.directory, progress_of(args.directory)), refresh=True)
        else:  # piped or redirected (Live would print nothing): the plain table, once per refresh
            while True:
                out.print(render(args.directory, progress_of(args.directory)))
                out.file.flush()
                time.sleep(args.watch)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
