"""Hydra callbacks: job bookkeeping that belongs to Hydra's life cycle, not to the pipeline."""

from __future__ import annotations

import os
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from tau_exp.job.outcome import note_new_directories, unusable_directory
from tau_exp.jobdir import JobDir, SweepDir


class CheckOutputDirectory(Callback):
    """Before Hydra creates the job directory of a run (or the directory of a sweep): refuse one
    that cannot be used (one line, exit 2, nothing created), and note what did not exist, which
    a run refused for bad input removes again (`job.outcome.remove_if_new`)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(Path(str(config.hydra.run.dir)), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(Path(str(config.hydra.sweep.dir)), "hydra.sweep.dir")

    @staticmethod
    def _check(directory: Path, key: str) -> None:
        problem = unusable_directory(directory)
        if problem:
            print(f"error: {key}={directory} cannot be used: {problem}", file=sys.stderr, flush=True)
            sys.exit(2)
        note_new_directories(directory)


class KeepEveryInvocation(Callback):
    """Hydra rewrites `.hydra/*.yaml` each time a job directory is used again (a resume, or a
    bad command line); this copies each invocation's files to `.hydra/invocations/<time>/`
    first thing, so the configuration of every earlier run of the job is kept."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.output_subdir is None:
            return
        subdir = Path(hydra_cfg.runtime.output_dir) / hydra_cfg.output_subdir
        archive = subdir / "invocations" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
        archive.mkdir(parents=True, exist_ok=True)
        for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
            if (subdir / name).exists():
                shutil.copy2(subdir / name, archive / name)


class LinkSlurmLog(Callback):
    """In a Slurm job, link the job's Slurm log (kept by submitit under the sweep's `.submitit/`)
    into the job directory as `slurm_<job id>.log`, so a job's files are all in one place."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if "SUBMITIT_FOLDER" not in os.environ or "SLURM_JOB_ID" not in os.environ:
            return  # not a submitit Slurm job
        import submitit

        environment = submitit.JobEnvironment()
        link = JobDir(Path(HydraConfig.get().runtime.output_dir)).slurm_log(environment.job_id)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(environment.paths.stdout)


class WriteSweepSummary(Callback):
    """At the end of a sweep, write `summary.csv` and `summary.md` in the sweep directory, print
    the table on stdout (the sweep's result, as a single run prints its metrics there), and exit
    non-zero when a job did not complete (so scripts and CI notice; that line goes to stderr)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from tau_exp.tracking.sweep import print_summary, summarize

        sweep = SweepDir(Path(str(config.hydra.sweep.dir)))
        rows = summarize(sweep.path, sweep_ended=True)
        print_summary(sweep.path, rows)
        unfinished = [row for row in rows if row.state != "completed"]
        if unfinished:
            print(
                f"error: {len(unfinished)} of {len(rows)} jobs did not complete; see {sweep.summary_md}. "
                f"Resume them (completed jobs finish at once) with: {sweep.resume_command()}",
                file=sys.stderr,
                flush=True,
            )
            sys.exit(1)
