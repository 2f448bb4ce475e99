"""Experiment tracking (`conf/tracking/`): every job is a W&B run — offline unless asked
otherwise — with the config (no secrets) and the benchmark data it ran, running metrics, the
final metrics in the summary, a per-episode table and the trajectories as an artifact.
`tracking=none` turns it off.

A job keeps its run id in `<job dir>/wandb_run_id`, so a resumed job continues its run instead
of starting a second one. Offline runs are under `<job dir>/wandb/`; `wandb sync` uploads them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from omegaconf import DictConfig, OmegaConf

from tau_exp.config import SECRET_NAME, ExperimentConfig
from tau_exp.errors import ConfigError
from tau_exp.jobdir import JobDir, SweepDir
from tau_exp.records import ConfigNames, EpisodeResult, Metrics, TaskData
from tau_exp.results.diagnosis import Diagnosis
from tau_exp.runtime import console_shows

log = logging.getLogger(__name__)

EPISODE_COLUMNS = [
    "task_id",
    "trial",
    "status",
    "reward",
    "termination_reason",
    "num_turns",
    "prompt_tokens",
    "completion_tokens",
    "duration_s",
]


class Tracker(Protocol):
    def progress(self, done: int, avg_reward: float | None) -> None: ...

    def finish(
        self, metrics: Metrics, results: list[EpisodeResult], results_file: Path, diagnoses: list[Diagnosis]
    ) -> None: ...


class NoTracker:
    """`tracking=none`."""

    def progress(self, done: int, avg_reward: float | None) -> None:
        pass

    def finish(
        self, metrics: Metrics, results: list[EpisodeResult], results_file: Path, diagnoses: list[Diagnosis]
    ) -> None:
        pass


class WandbTracker:
    def __init__(self, run: Any) -> None:
        self.run = run

    def progress(self, done: int, avg_reward: float | None) -> None:
        self.run.log({"progress/done": done, **({"progress/avg_reward": avg_reward} if avg_reward is not None else {})})

    def finish(
        self, metrics: Metrics, results: list[EpisodeResult], results_file: Path, diagnoses: list[Diagnosis]
    ) -> None:
        import wandb

        self.run.summary.update(summary_of(metrics))
        table = wandb.Table(columns=EPISODE_COLUMNS, data=[episode_row(r) for r in results])  # type: ignore[arg-type]
        failures = wandb.Table(columns=FAILURE_COLUMNS, data=[failure_row(d) for d in diagnoses])  # type: ignore[arg-type]
        self.run.log({"episodes": table, "failures": failures})
        if results_file.exists():
            artifact = wandb.Artifact(
                f"trajectories-{self.run.id}",
                type="trajectories",
                description="results.jsonl: one tau2 conversation and its scoring per line",
            )
            artifact.add_file(str(results_file))
            self.run.log_artifact(artifact)


@contextmanager
def tracking_run(
    experiment: ExperimentConfig, cfg: DictConfig, job: JobDir, task_data: TaskData | None = None
) -> Iterator[Tracker]:
    """The job's tracker: a W&B run (started or resumed) or nothing; finished on the way out. Its
    config is the job's (no secrets) with the benchmark data it runs (`task_data`: package,
    version, fingerprint), so that runs on different data can be told apart and grouped."""
    settings = experiment.tracking
    if settings.name == "none" or settings.mode == "disabled":
        yield NoTracker()
        return
    import wandb

    run_id_file = job.wandb_run_id
    run_id = run_id_file.read_text().strip() if run_id_file.exists() else uuid.uuid4().hex[:12]
    if not console_shows(logging.INFO):
        # W&B's banner, tips and run summary are INFO: on the console only when the job's INFO
        # lines are (hydra/job_logging=verbose); its warnings and errors always. Its run files
        # (output.log, logs/debug.log) are the same either way. Once per process (a local sweep's
        # jobs share it).
        wandb.setup(settings=wandb.Settings(show_info=False))
    try:
        run = wandb.init(
            id=run_id,
            resume="allow",
            dir=str(job.path),
            mode=settings.mode,  # type: ignore[arg-type]  # checked by config.validate
            project=settings.project,
            entity=settings.entity,
            group=settings.group or sweep_group(job),
            name=job.path.name,
            job_type="experiment",
            tags=tags_of(experiment),
            config={**public_config(cfg), **({"task_data": task_data.model_dump()} if task_data else {})},
        )
    except Exception as error:  # wandb's own error types; online without a key is the usual one
        raise ConfigError(
            f"W&B could not start a run in mode {settings.mode!r}: {str(error).splitlines()[0]} — "
            "run `wandb login` or export WANDB_API_KEY, or use tracking.mode=offline"
        ) from None
    run_id_file.write_text(run_id)
    if settings.mode == "offline":
        log.info("W&B run %s (offline) in %s; upload it with: wandb sync %s", run.id, run.dir, Path(run.dir).parent)
    else:
        log.info("W&B run %s (%s) at %s", run.id, settings.mode, run.url)
    try:
        yield WandbTracker(run)
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()


def sweep_group(job: JobDir) -> str | None:
    """For a sweep's jobs: the sweep directory as `<date>/<time>` (Hydra writes multirun.yaml there)."""
    sweep = SweepDir(job.path.parent)
    return f"{sweep.path.parent.name}/{sweep.path.name}" if sweep.multirun_yaml.exists() else None


def tags_of(experiment: ExperimentConfig) -> list[str]:
    # W&B tags are at most 64 characters.
    return [*ConfigNames.of(experiment).tags(), *(tag[:64] for tag in experiment.tracking.tags)]


def public_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config with anything named like a secret left out (keys never are in configs,
    but a W&B project may be shared: belt and braces)."""

    def scrub(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: scrub(value) for key, value in node.items() if not SECRET_NAME.search(str(key))}
        if isinstance(node, list):
            return [scrub(item) for item in node]
        return node

    return scrub(OmegaConf.to_container(cfg, resolve=True))


def summary_of(metrics: Metrics) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "avg_reward": metrics.avg_reward,
        "n_results": metrics.n_results,
        "n_tasks": metrics.n_tasks,
        "n_trials": metrics.n_trials,
        "n_infra_errors": metrics.n_infra_errors,
        "n_harness_errors": metrics.n_harness_errors,
        "n_pending": metrics.n_pending,
        "avg_duration_s": metrics.avg_duration_s,
    }
    if metrics.task_data is not None:  # which data the numbers are on
        summary.update({f"task_data/{key}": value for key, value in metrics.task_data.model_dump().items()})
    summary.update({f"pass^{k}": value for k, value in metrics.pass_hat_k.items()})
    for metric, ci in metrics.intervals.items():  # 95% task-level intervals (inference.interval)
        summary.update(
            {f"{metric}/ci_low": ci.low, f"{metric}/ci_high": ci.high, f"{metric}/stderr": ci.standard_error}
        )
    for role, usage in metrics.usage.items():
        summary.update({f"{role}/{field}": getattr(usage, field) for field in type(usage).model_fields})
    # Model calls retried after transient errors (also those that recovered: no infra error, but
    # time spent), over the roles: a faulty server shows here first.
    summary["retries"] = sum(usage.retries for usage in metrics.usage.values())
    for role, counts in (metrics.injected_faults or {}).items():  # what an oracle injected, and of what
        fields = counts.model_dump(exclude={"rates"})
        summary.update({f"injected_faults/{role}/{field}": value for field, value in fields.items()})
        summary.update({f"injected_faults/{role}/{rate}": value for rate, value in counts.rates.items()})
    for role, load in metrics.servers.items():  # what its server reported (None: no /metrics)
        summary.update({f"{role}/server/{field}": value for field, value in load.model_dump().items()})
    # Failure modes (diagnosis.py): each category's count and its rate over the selected pairs.
    pairs = metrics.n_tasks * metrics.n_trials
    for category, count in metrics.failure_modes.items():
        summary.update({f"failures/{category}": count, f"failures/{category}/rate": count / pairs if pairs else None})
    if metrics.cost is not None:  # GPU-hours held (cost.py)
        summary.update({f"cost/{field}": value for field, value in metrics.cost.model_dump().items()})
    return summary


# The failures table: one row per failed or ended-early (task, trial) and why (diagnosis.py).
FAILURE_COLUMNS = ["task_id", "trial", "category", "termination_reason", "first_deviation", "gold_action"]


def failure_row(diagnosis: Diagnosis) -> list[Any]:
    """A diagnosis as a row: its first decisive deviation as `<kind> at message <turn>: <call>`."""
    deviation, call = diagnosis.deviation, diagnosis.deviation.call if diagnosis.deviation else None
    where = f" at message {deviation.turn}" if deviation is not None and deviation.turn is not None else ""
    return [
        diagnosis.task_id,
        diagnosis.trial,
        diagnosis.category.value,
        diagnosis.ending.termination_reason,
        f"{deviation.kind.value}{where}{': ' + call.name if call else ''}" if deviation is not None else "",
        deviation.gold.name if deviation is not None and deviation.gold is not None else "",
    ]


def episode_row(result: EpisodeResult) -> list[Any]:
    usage = result.usage.values()
    return [
        result.task_id,
        result.trial,
        result.status.value,
        result.reward,
        result.termination_reason,
        result.num_turns,
        sum(u.prompt_tokens for u in usage),
        sum(u.completion_tokens for u in usage),
        round(result.duration_s, 3),
    ]
