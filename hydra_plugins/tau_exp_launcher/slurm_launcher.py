"""The Slurm launcher of `hydra/launcher=slurm_gaudi|slurm_cuda`: hydra-submitit-launcher's, with
the changes that a long sweep needs.

1. Before anything is submitted, the cluster is asked whether the request can work: Slurm
   answers, the partition exists, the time limit is positive and within the partition's.
2. A job that dies without a result (killed, out of memory, requeued too often) is logged and
   the sweep goes on, so Hydra still calls the end-of-sweep callbacks and the sweep summary
   lists it as died. (A job's own errors never get that far: `tau_exp.job.outcome`
   records them and returns.)
3. A job's console is its Slurm log, which nobody watches: it gets every INFO line, as with
   `hydra/job_logging=verbose` (a local job's console keeps only what a user acts on).

Jobs that hit their time limit or are preempted are requeued by submitit (`max_num_timeout`)
and resume from their `results.jsonl`: the launcher's `checkpoint` resubmits the same job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf

from hydra_plugins.hydra_submitit_launcher import submitit_launcher
from tau_exp import runtime, slurm_client
from tau_exp.errors import SlurmError, exit_on_user_error

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 2.0
RESULT_GRACE_S = 30.0  # a shared filesystem may show a finished job's result file late
QUIET_LOGGING, SLURM_JOB_LOGGING = "quiet", "verbose"  # conf/hydra/job_logging/


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    def __call__(self, sweep_overrides: list[str], *args: Any, **kwargs: Any) -> JobReturn:
        # In the Slurm job: the process set-up that launch.py does for a local run (the job
        # runs the pickled task function, not launch.py's module code).
        runtime.prepare_process()
        # Nobody watches a Slurm job's console: its Slurm log (slurm_<job id>.log in the job
        # directory) keeps every INFO line and W&B's messages, unless the sweep chose its own
        # hydra/job_logging. A Hydra override: the job's task overrides (its resume command) are unchanged.
        assert self.config is not None
        if self.config.hydra.runtime.choices.get("hydra/job_logging") == QUIET_LOGGING:
            sweep_overrides = [*sweep_overrides, f"hydra/job_logging={SLURM_JOB_LOGGING}"]
        return super().__call__(sweep_overrides, *args, **kwargs)

    @exit_on_user_error  # a refused request is one line and exit 2, not Hydra's traceback
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        # The body of the plugin's launch (hydra-submitit-launcher 1.2.0, its last release),
        # with the checks before submitting and the per-job failure handling at the end.
        import submitit

        assert self.config is not None
        slurm_client.check_request(self.params.get("partition"), self.params.get("timeout_min"), "hydra.launcher")
        executor = submitit.AutoExecutor(
            cluster="slurm", folder=self.params["submitit_folder"], slurm_max_num_timeout=self.params["max_num_timeout"]
        )
        base_keys = set(OmegaConf.structured(submitit_launcher.BaseQueueConf).keys())
        executor.update_parameters(
            **{
                key if key in base_keys else f"slurm_{key}": value
                for key, value in self.params.items()
                if key not in ("submitit_folder", "max_num_timeout")
            }
        )
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info("Slurm sweep of %d jobs, output in %s", len(job_overrides), sweep_dir)
        job_params = []
        for index, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", index, " ".join(filter_overrides(overrides)))
            job_params.append((list(overrides), "hydra.sweep.dir", index, f"job_id_for_{index}", Singleton.get_state()))
        try:
            jobs = executor.map_array(self, *zip(*job_params, strict=True))
        except Exception as error:  # sbatch's refusal, as one line
            raise SlurmError(
                f"sbatch refused the sweep: {slurm_client.last_line(str(error), type(error).__name__)}"
            ) from None
        log.info("submitted Slurm job array %s", jobs[0].job_id.split("_")[0] if jobs else "-")
        return [collect(job, overrides) for job, overrides in zip(jobs, job_overrides, strict=True)]


def collect(job: Any, overrides: Sequence[str]) -> JobReturn:
    """Wait for the job's JobReturn; a job that leaves the queue without one becomes a failed one.

    Watches the result file and squeue itself: submitit asks sacct, which lags, and which
    clusters without accounting lack (submitit then waits forever for a job that was killed)."""
    gone_since: float | None = None
    while not job.paths.result_pickle.exists():
        if slurm_client.job_state(job.job_id) is not None:
            gone_since = None
        elif gone_since is None:
            gone_since = time.monotonic()
        elif time.monotonic() - gone_since > RESULT_GRACE_S:
            return _failed(job, overrides, "it ended without a result (killed, out of memory, or requeued too often)")
        time.sleep(POLL_INTERVAL_S)
    try:
        return job.results()[0]
    except Exception as error:
        return _failed(job, overrides, slurm_client.last_line(str(error), type(error).__name__))


def _failed(job: Any, overrides: Sequence[str], cause: str) -> JobReturn:
    log.error("Slurm job %s (%s): %s; see %s", job.job_id, " ".join(overrides), cause, job.paths.stdout)
    # Hydra's sweeper raises on a FAILED return and skips the end-of-sweep callbacks; the job's
    # failure is told by the sweep summary (its row says "died"), so the sweep goes on.
    return JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED, _return_value=None)
