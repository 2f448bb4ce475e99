"""Results gathered by configuration, from job directories, sweeps and tau-bench v1's own
results files: what the report's tables and plots and the sweep browser show.

A configuration is everything that changes what a result means: the names (env, split, agent,
model, user, user strategy), the identity the job's manifest records (sampling settings, seed,
limits, few-shot settings — what a resume may not change), the benchmark data it ran (package,
version, fingerprint: jobs on different data are never pooled, and comparisons across them say
so) and the oracle's fault settings. Jobs
of the same configuration (e.g. the shards of a sweep) are pooled: their results are scored
together, as one run over all their tasks; a job given twice (as a sweep and as itself) counts
once. Rows that share their names show the settings that set them apart. Rewards and successes are the benchmark's, as recorded
in each job's results.jsonl; nothing is re-scored. The results files of tau-bench v1's run.py
(`<strategy>-<model>-..._user-....json`, or a folder of them) and tau2's own results files
(tau2's CLI, `run_tasks`, leaderboard trajectories, `python -m tau_exp.export tau2`) are read too;
they do not say which data they ran (their task data is unknown).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from statistics import fmean
from typing import Any, NamedTuple

from omegaconf import OmegaConf
from pydantic import BaseModel

from tau_exp.bench.tau2_results import is_tau2_results_file, read_tau2_results, wall_time_s
from tau_exp.bench.tau_bench_results import is_v1_results_file, read_v1_results, v1_settings
from tau_exp.errors import TauExpError
from tau_exp.jobdir import JobDir, SweepDir
from tau_exp.records import ConfigNames, Cost, EpisodeResult, EpisodeStatus, TaskData
from tau_exp.results.inference import TaskTrials, interval
from tau_exp.results.labels import labels, varying_keys
from tau_exp.results.metrics import pass_hat_ks, task_successes

log = logging.getLogger(__name__)


class ConfigRow(BaseModel):
    """One configuration of the report: its names and what its pooled results add up to."""

    label: str  # unique among the configurations shown together (labels.py)
    env: str  # ConfigNames.env_label: tau-bench v1's envs are marked
    split: str | None = None
    settings: str = ""  # what sets it apart from rows of the same names, e.g. "seed=11"
    task_data: TaskData | None = None  # the benchmark data its jobs ran (None: not known)
    agent: str
    model: str
    user: str
    user_strategy: str
    jobs: int  # job directories (or v1 or tau2 results files) pooled
    tasks: int  # tasks with at least one scored trial
    avg_reward: float | None
    ci_low: float | None  # 95% interval of avg_reward over tasks (inference.interval)
    ci_high: float | None
    pass_hat_k: dict[int, float]
    # k → its 95% task-level interval (over two or more tasks)
    pass_hat_k_ci: dict[int, tuple[float, float]] = {}
    results: int  # scored (task, trial) pairs
    infra_errors: int
    harness_errors: int
    prompt_tokens: int
    completion_tokens: int
    wall_time_s: float  # summed over the jobs' last invocations
    # GPU-hours its jobs held (metrics.json "cost": own allocation + share of shared servers),
    # summed over the jobs that recorded them; None when none did (outside Slurm, results files).
    gpu_hours: float | None = None
    tokens_per_gpu_hour: float | None = None
    gpu_hours_per_scored_pair: float | None = None


class Source(NamedTuple):
    """The results of one job directory or one v1 or tau2 results file, with its names."""

    names: ConfigNames
    results: list[EpisodeResult]
    wall_time_s: float  # the job's last invocation (0 for v1 files: they do not say; tau2 files: their span)
    settings: dict[str, Any]  # the identity beyond the names, flat ("model.temperature": 0.0)
    path: Path
    task_data: TaskData | None = None  # what the source says of its benchmark data (None: nothing)
    cost: Cost | None = None  # the job's GPU-hours (job directories in Slurm or with shared servers)


class Configuration(NamedTuple):
    """One row of the report and the sources pooled into it."""

    row: ConfigRow
    sources: list[Source]
    identity: dict[str, Any]  # what tells it apart from other configurations (`identity`)

    @property
    def records(self) -> list[EpisodeResult]:
        """Every record of its sources, pooled (each (task, trial) once: `_distinct_pairs`)."""
        return [r for source in self.sources for r in source.results]


def find_configurations(paths: list[Path]) -> list[Configuration]:
    """The configurations of these paths, pooled and in the table's order, each labelled by what
    sets it apart from the others (labels.py). Sources on different benchmark data (or whose data
    is unknown) are never pooled; shards never give the same (task, trial) twice."""
    by_config: dict[tuple[ConfigNames, str, TaskData | None], list[Source]] = defaultdict(list)
    for source in find_sources(paths):
        settings_json = json.dumps(source.settings, sort_keys=True, default=str)
        by_config[source.names, settings_json, source.task_data].append(source)
    keys = sorted(by_config, key=lambda key: (*_sort_key(key[0]), key[1]))
    identities = [identity(*key) for key in keys]
    # Of the rows that share their names, the settings in which they differ (split and data included).
    same_names: dict[ConfigNames, list[dict[str, Any]]] = defaultdict(list)
    for (names, _, _), settings in zip(keys, identities, strict=True):
        same_names[_unsplit(names)].append(settings)
    rows = []
    for key, label, settings in zip(keys, labels(identities), identities, strict=True):
        names, sources = key[0], _distinct_pairs(by_config[key], label)
        differing = sorted(k for k in varying_keys(same_names[_unsplit(names)]) if k not in _NAMES)
        shown = ", ".join(f"{k}={settings.get(k)}" for k in differing)
        rows.append(Configuration(config_row(names, sources, label, shown), sources, settings))
    return rows


_NAMES = frozenset({"env", "agent", "model", "user", "user_strategy"})


def _unsplit(names: ConfigNames) -> ConfigNames:
    return names.model_copy(update={"split": None})


def identity(names: ConfigNames, settings_json: str, task_data: TaskData | None) -> dict[str, Any]:
    """Everything that tells a configuration apart, flat: its names, its benchmark data (as
    `TaskData.short`) and its settings."""
    return {
        "env": names.env_label,
        "split": names.split,
        "agent": names.agent,
        "model": names.model,
        "user": names.user,
        "user_strategy": names.user_strategy,
        "data": task_data.short if task_data else "unknown",
        **json.loads(settings_json),
    }


def _distinct_pairs(sources: list[Source], label: str) -> list[Source]:
    """The sources of one configuration, each (task, trial) from one of them only: a record that
    another source holds byte for byte (a copied job directory) is counted once, with a warning;
    a different record of the same pair is refused, naming both files."""
    owner: dict[tuple[str, int], tuple[Source, EpisodeResult]] = {}
    kept: list[Source] = []
    for source in sources:
        fresh, repeated = [], 0
        for record in source.results:
            if (first := owner.get(record.key)) is None:
                owner[record.key] = (source, record)
                fresh.append(record)
            elif first[1].model_dump_json() == record.model_dump_json():
                repeated += 1
            else:
                raise TauExpError(
                    f"{first[0].path} and {source.path} both hold task {record.task_id} trial {record.trial} of "
                    f"{label}, with different results: they are two runs of one configuration that cannot be "
                    "pooled; give one of them (or run the other with another run.seed)"
                )
        if repeated:
            log.warning(
                "%s: %d of its results are already in %s (the same records): counted once",
                source.path,
                repeated,
                ", ".join(sorted({str(owner_source.path) for owner_source, _ in owner.values()} - {str(source.path)})),
            )
        kept.append(source._replace(results=fresh))
    return kept


# What `find_sources` reads, said once for the tools that read results (report, compare).
SOURCES = "job directories, sweep directories, tau2 or tau-bench v1 results files, or folders of such files"
SOURCES_IN_FULL = (
    "each path a tau_exp job directory (its results.jsonl, manifest.json, metrics.json, status.json and "
    ".hydra/config.yaml), a sweep directory of them, a tau2 results file (what `tau2 run`, tau2's "
    "run_tasks(save_to=...), the leaderboard's trajectories and `python -m tau_exp.export tau2` write; also "
    "a results.json with its simulations/ folder beside it), a tau-bench v1 results file (run.py's "
    "<strategy>-<model>-<temperature>_range_<start>-<end>_user-<user_model>-<user_strategy>_<time>.json), "
    "or a folder of such results files"
)


def find_sources(paths: list[Path]) -> list[Source]:
    """Each path is a job directory, a sweep directory of them, a v1 or tau2 results file, or a
    folder of such files."""
    found: dict[Path, Source] = {}
    for source in _sources(paths):
        found.setdefault(source.path.resolve(), source)  # a job given twice counts once
    return list(found.values())


def _sources(paths: list[Path]) -> list[Source]:
    found: list[Source] = []
    for path in paths:
        if is_v1_results_file(path):
            found.append(_v1_source(path))
        elif path.is_file() and path.suffix == ".json":  # named: read as tau2's, or told why not
            found.append(_tau2_source(path))
        elif JobDir(path).results.exists():
            found.append(_job_source(JobDir(path)))
        elif path.is_dir() and (jobs := [job for job in SweepDir(path).jobs() if job.results.exists()]):
            found.extend(_job_source(job) for job in jobs)
        elif path.is_dir() and (files := sorted(file for file in path.glob("*.json") if _is_results_file(file))):
            found.extend(_v1_source(file) if is_v1_results_file(file) else _tau2_source(file) for file in files)
        else:
            raise TauExpError(
                f"{path} holds no results (no {JobDir(path).results.name} in it or in its job directories, "
                "and no tau-bench v1 or tau2 results file): give sweep directories "
                "(outputs/multirun/<date>/<time>), job directories, or v1 or tau2 results files"
            )
    return found


def _is_results_file(path: Path) -> bool:
    return is_v1_results_file(path) or is_tau2_results_file(path)


def _job_source(job: JobDir) -> Source:
    config = job.read_config()  # once: the names and the oracle's faults both come from it
    manifest = job.read_manifest()
    settings = _flat(manifest.identity) if manifest else {}
    for name in ("env", "agent", "bench"):  # already in the names
        settings.pop(name, None)
    for role in ("model", "user"):
        for key in ("name", "strategy"):
            settings.pop(f"{role}.{key}", None)
        # The oracle's faults change what its results mean; a resume may change them, so the
        # manifest does not hold them: the job's config does.
        server = OmegaConf.select(config, f"{role}.server", default=None)
        if server is not None and server.get("kind") == "oracle" and "oracle" in server:
            faults = OmegaConf.to_container(server.oracle.get("faults", {}), resolve=True)
            settings.update(_flat({f"{role}.server.oracle.faults": faults}))
    return Source(
        ConfigNames.of_job_config(config),
        job.read_results(),
        _wall_time(job),
        settings,
        job.path,
        manifest.task_data if manifest else None,  # earlier versions did not record it: unknown
        metrics.cost if (metrics := job.read_metrics()) else None,
    )


def _v1_source(path: Path) -> Source:
    names, results = read_v1_results(path)
    return Source(names, results, 0.0, v1_settings(path), path)


def _tau2_source(path: Path) -> Source:
    names, results, settings, task_data = read_tau2_results(path)
    return Source(names, results, wall_time_s(results), settings, path, task_data)


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_row(names: ConfigNames, sources: list[Source], label: str, settings: str = "") -> ConfigRow:
    results: list[EpisodeResult] = [r for source in sources for r in source.results]
    scored = [r for r in results if r.status == EpisodeStatus.scored and r.reward is not None]
    successes = task_successes(scored)
    max_trials = max((n for _, n in successes.values()), default=0)
    # The task-level interval (inference.py); one task is a point, not an interval.
    trials = TaskTrials.of(scored)
    ci = interval(trials, "avg_reward")
    low, high = (None, None) if ci is None else (ci.estimate, ci.estimate) if ci.tasks < 2 else (ci.low, ci.high)
    pass_cis = {k: interval(trials, f"pass^{k}") for k in range(1, max_trials + 1)}
    return ConfigRow(
        label=label,
        env=names.env_label,
        split=names.split,
        settings=settings,
        task_data=sources[0].task_data if sources else None,  # one configuration: one data (find_configurations)
        agent=names.agent,
        model=names.model,
        user=names.user,
        user_strategy=names.user_strategy,
        jobs=len(sources),
        tasks=len(trials.trials),
        avg_reward=fmean(r.reward for r in scored) if scored else None,  # type: ignore[misc]
        ci_low=low,
        ci_high=high,
        pass_hat_k=pass_hat_ks(successes, max_trials),
        pass_hat_k_ci={k: (c.low, c.high) for k, c in pass_cis.items() if c is not None and c.tasks > 1},
        results=len(scored),
        infra_errors=sum(r.status == EpisodeStatus.infra_error for r in results),
        harness_errors=sum(r.status == EpisodeStatus.harness_error for r in results),
        prompt_tokens=sum(u.prompt_tokens for r in results for u in r.usage.values()),
        completion_tokens=sum(u.completion_tokens for r in results for u in r.usage.values()),
        wall_time_s=sum(source.wall_time_s for source in sources),
        **_cost_columns([source.cost for source in sources if source.cost is not None]),
    )


def _cost_columns(costs: list[Cost]) -> dict[str, float | None]:
    """GPU-hours over the jobs that recorded them, and what they bought (of those jobs' results)."""
    hours = sum(cost.gpu_hours for cost in costs)
    if not hours:
        return {}
    tokens = sum(cost.tokens for cost in costs)
    scored = sum(cost.scored_pairs for cost in costs)
    return {
        "gpu_hours": hours,
        "tokens_per_gpu_hour": tokens / hours,
        "gpu_hours_per_scored_pair": hours / scored if scored else None,
    }


def _sort_key(names: ConfigNames) -> tuple[str, ...]:
    return (names.env_label, names.agent, names.model, names.user, names.user_strategy)


def _wall_time(job: JobDir) -> float:
    status = job.read_status()
    if status is None or status.finished_at is None:
        return 0.0
    return (datetime.fromisoformat(status.finished_at) - datetime.fromisoformat(status.started_at)).total_seconds()
