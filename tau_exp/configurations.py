"""Results gathered by configuration, from job directories, sweeps and tau-bench v1's own
results files: what the report's tables and plots and the sweep browser show.

Jobs of the same configuration (e.g. the shards of a sweep) are pooled: their results are scored
together, as one run over all their tasks. Rewards and successes are the benchmark's, as recorded
in each job's results.jsonl; nothing is re-scored. The results files of tau-bench v1's run.py
(`<strategy>-<model>-..._user-....json`, or a folder of them) are read too.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from statistics import NormalDist, fmean, stdev
from typing import NamedTuple

from pydantic import BaseModel

from tau_exp.bench.tau_bench_results import is_v1_results_file, read_v1_results
from tau_exp.errors import TauExpError
from tau_exp.jobdir import JobDir, SweepDir
from tau_exp.metrics import pass_hat_ks, task_successes
from tau_exp.records import ConfigNames, EpisodeResult, EpisodeStatus

Z_95 = NormalDist().inv_cdf(0.975)


class ConfigRow(BaseModel):
    """One configuration of the report: its names and what its pooled results add up to."""

    env: str  # ConfigNames.env_label: tau-bench v1's envs are marked
    agent: str
    model: str
    user: str
    user_strategy: str
    jobs: int  # job directories (or v1 results files) pooled
    tasks: int  # tasks with at least one scored trial
    avg_reward: float | None
    ci_low: float | None  # 95% normal interval of the mean over tasks of each task's mean reward
    ci_high: float | None
    pass_hat_k: dict[int, float]
    results: int  # scored (task, trial) pairs
    infra_errors: int
    harness_errors: int
    prompt_tokens: int
    completion_tokens: int
    wall_time_s: float  # summed over the jobs' last invocations

    @property
    def label(self) -> str:
        return f"{self.env} · {self.agent} · {short_name(self.model)} · {short_name(self.user)} ({self.user_strategy})"


class Source(NamedTuple):
    """The results of one job directory or one v1 results file, with its names."""

    names: ConfigNames
    results: list[EpisodeResult]
    wall_time_s: float  # the job's last invocation (0 for v1 files: they do not say)


class Configuration(NamedTuple):
    """One row of the report and the sources pooled into it."""

    row: ConfigRow
    sources: list[Source]


def find_configurations(paths: list[Path]) -> list[Configuration]:
    """The configurations of these paths, pooled and in the table's order."""
    by_config: dict[ConfigNames, list[Source]] = defaultdict(list)
    for source in find_sources(paths):
        # Rows pool a configuration's splits, as reports always have (the split is not a column).
        by_config[source.names.model_copy(update={"split": None})].append(source)
    ordered = sorted(by_config.items(), key=lambda item: _sort_key(item[0]))
    return [Configuration(config_row(names, sources), sources) for names, sources in ordered]


def find_sources(paths: list[Path]) -> list[Source]:
    """Each path is a job directory, a sweep directory of them, a v1 results file or a folder of them."""
    found: list[Source] = []
    for path in paths:
        if is_v1_results_file(path):
            found.append(_v1_source(path))
        elif JobDir(path).results.exists():
            found.append(_job_source(JobDir(path)))
        elif path.is_dir() and (jobs := [job for job in SweepDir(path).jobs() if job.results.exists()]):
            found.extend(_job_source(job) for job in jobs)
        elif path.is_dir() and (files := sorted(file for file in path.glob("*.json") if is_v1_results_file(file))):
            found.extend(_v1_source(file) for file in files)
        else:
            raise TauExpError(
                f"{path} holds no results (no {JobDir(path).results.name} in it or in its job directories, "
                "and no tau-bench v1 results file): give sweep directories "
                "(outputs/multirun/<date>/<time>), job directories, or v1 results files"
            )
    return found


def _job_source(job: JobDir) -> Source:
    return Source(job.names(), job.read_results(), _wall_time(job))


def _v1_source(path: Path) -> Source:
    names, results = read_v1_results(path)
    return Source(names, results, 0.0)


def config_row(names: ConfigNames, sources: list[Source]) -> ConfigRow:
    results: list[EpisodeResult] = [r for source in sources for r in source.results]
    scored = [r for r in results if r.status == EpisodeStatus.scored and r.reward is not None]
    rewards_by_task: dict[str, list[float]] = defaultdict(list)
    for result in scored:
        rewards_by_task[result.task_id].append(result.reward)  # type: ignore[arg-type]
    low, high = mean_interval([fmean(rewards) for rewards in rewards_by_task.values()])
    successes = task_successes(scored)
    max_trials = max((n for _, n in successes.values()), default=0)
    return ConfigRow(
        env=names.env_label,
        agent=names.agent,
        model=names.model,
        user=names.user,
        user_strategy=names.user_strategy,
        jobs=len(sources),
        tasks=len(rewards_by_task),
        avg_reward=fmean(r.reward for r in scored) if scored else None,  # type: ignore[misc]
        ci_low=low,
        ci_high=high,
        pass_hat_k=pass_hat_ks(successes, max_trials),
        results=len(scored),
        infra_errors=sum(r.status == EpisodeStatus.infra_error for r in results),
        harness_errors=sum(r.status == EpisodeStatus.harness_error for r in results),
        prompt_tokens=sum(u.prompt_tokens for r in results for u in r.usage.values()),
        completion_tokens=sum(u.completion_tokens for r in results for u in r.usage.values()),
        wall_time_s=sum(source.wall_time_s for source in sources),
    )


def mean_interval(values: list[float]) -> tuple[float | None, float | None]:
    """95% normal interval of the mean (None without values; a point with one value)."""
    if not values:
        return None, None
    mean = fmean(values)
    if len(values) < 2:
        return mean, mean
    half = Z_95 * stdev(values) / math.sqrt(len(values))
    return max(0.0, mean - half), min(1.0, mean + half)


def _sort_key(names: ConfigNames) -> tuple[str, ...]:
    return (names.env_label, names.agent, names.model, names.user, names.user_strategy)


def _wall_time(job: JobDir) -> float:
    status = job.read_status()
    if status is None or status.finished_at is None:
        return 0.0
    return (datetime.fromisoformat(status.finished_at) - datetime.fromisoformat(status.started_at)).total_seconds()


def short_name(model: str) -> str:
    """A model id without its organisation (Qwen/Qwen3-4B → Qwen3-4B), for labels."""
    return model.rsplit("/", 1)[-1]
