"""Benchmark adapters: which tasks exist, and how one (task, trial) episode is run and scored.

`tau2.py` is the tau2-bench adapter (`bench=tau2`, the default); `tau_bench.py` runs the original
tau-bench v1 package when it is installed (`bench=tau_bench`). Both take an `EpisodeSpec` and
return an `EpisodeResult`; the reward is always the benchmark's own. This module is what the
rest of tau_exp calls (validation, the tasks, the fingerprint of a split's data, one episode
by spec), dispatching by benchmark name; `episode.py` holds what the adapters share while an
episode runs (its models, its record).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

from tau_exp.agents import AgentSettings
from tau_exp.config import BenchConfig, Benchmark, ExperimentConfig, TasksConfig
from tau_exp.endpoint import Endpoint
from tau_exp.errors import ConfigError
from tau_exp.llm.concurrency import SlotsFor
from tau_exp.llm.settings import CallSettings, Retry
from tau_exp.records import EpisodeResult, TaskData
from tau_exp.users import UserSettings


class Task(Protocol):
    id: str


@dataclass(frozen=True)
class EpisodeSpec:
    """Everything one (task, trial) needs, as plain values, and nothing from the job around it:
    no config, no file (picklable: it goes to the worker processes)."""

    domain: str
    task: Any  # the adapter's task (a tau2 Task, a v1 IndexedTask)
    trial: int
    seed: int
    agent: AgentSettings
    user_strategy: UserSettings
    assistant: Endpoint
    user: Endpoint
    assistant_calls: CallSettings
    user_calls: CallSettings
    retry: Retry
    max_steps: int
    max_errors: int
    bench: Benchmark = Benchmark.tau2
    split: str = "test"


def episode_spec(
    experiment: ExperimentConfig, task: Any, trial: int, seed: int, assistant: Endpoint, user: Endpoint
) -> EpisodeSpec:
    """The spec of one (task, trial) of `experiment`, against these endpoints: the values its
    episode uses, taken from the config."""
    return EpisodeSpec(
        domain=experiment.env.name,
        task=task,
        trial=trial,
        seed=seed,
        agent=AgentSettings.of(experiment.agent),
        user_strategy=UserSettings.of(experiment.user),
        assistant=assistant,
        user=user,
        assistant_calls=CallSettings.of(experiment.model),
        user_calls=CallSettings.of(experiment.user),
        retry=Retry.of(experiment.run.retry),
        max_steps=experiment.run.max_steps,
        max_errors=experiment.run.max_errors,
        bench=experiment.bench.name,
        split=experiment.tasks.split.value,
    )


def validate(experiment: ExperimentConfig) -> None:
    """What the benchmark needs of the config (its envs, splits and strategies; for v1, that
    it can be imported), before anything starts; ConfigError otherwise."""
    _adapter(experiment.bench.name).validate(experiment)


def domains(bench: Benchmark) -> list[str]:
    """The benchmark's domains (envs)."""
    return _adapter(bench).domains()


def load_tasks(bench: Benchmark, domain: str, split: str | None) -> list:
    """Every task of a benchmark's split (None: every task of the domain), in its order."""
    return _adapter(bench).load_tasks(domain, split)


def select_tasks(bench: BenchConfig, domain: str, tasks_cfg: TasksConfig) -> list:
    """The job's tasks (each with an `id`): the split, narrowed by ids or a range, then the shard."""
    _adapter(bench.name).prepare(bench)
    return _select(bench, domain, tasks_cfg, load_tasks(bench.name, domain, tasks_cfg.split.value))


def job_tasks(bench: BenchConfig, domain: str, tasks_cfg: TasksConfig) -> tuple[list, TaskData]:
    """The job's tasks (`select_tasks`) and which data their split is (`fingerprint`), the split's
    tasks loaded once for both."""
    adapter = _adapter(bench.name)
    adapter.prepare(bench)
    split_tasks = load_tasks(bench.name, domain, tasks_cfg.split.value)
    selected = _select(bench, domain, tasks_cfg, split_tasks)  # bad ids are refused before the fingerprint's work
    return selected, adapter.fingerprint(domain, tasks_cfg.split.value, split_tasks)


def _select(bench: BenchConfig, domain: str, tasks_cfg: TasksConfig, split_tasks: list) -> list:
    try:
        return select(split_tasks, domain, tasks_cfg)
    except ConfigError as error:
        if tasks_cfg.ids is None:
            raise
        domains = _adapter(bench.name).domains()
        raise ConfigError(f"{error}{_ids_of_another_env(bench, domain, tasks_cfg, domains)}") from None


def fingerprint(bench: BenchConfig, domain: str, split: str) -> TaskData:
    """Which data a job of this split runs: the benchmark's package and version, and the
    fingerprint of every task of the split (not the job's narrowed selection: the shards and
    ranges of one split share it) with the domain's database and policy, as the benchmark loads them."""
    adapter = _adapter(bench.name)
    adapter.prepare(bench)
    return adapter.fingerprint(domain, split)


def fingerprint_of(data: Any) -> str:
    """sha256 (hex) of `data` as canonical JSON (keys sorted, no whitespace, sets sorted): the same
    data gives the same fingerprint on any machine and in any process. Anything else that is not
    JSON is a TypeError, never a `str()` that might differ between processes."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=_canonical_set)
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical_set(value: Any) -> list[Any]:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=lambda item: json.dumps(item, sort_keys=True, default=_canonical_set))
    raise TypeError(f"cannot fingerprint a {type(value).__name__}: benchmark data must be JSON data")


def _ids_of_another_env(bench: BenchConfig, domain: str, tasks_cfg: TasksConfig, domains: list[str]) -> str:
    """Where ids refused in `domain` are another env's (a sweep over envs with one tasks.ids): say
    so, and how to narrow every env of a sweep alike."""
    wanted = {str(task_id) for task_id in tasks_cfg.ids or ()}
    for other in domains:
        if other == domain:
            continue
        try:
            ids = {task.id for task in load_tasks(bench.name, other, tasks_cfg.split.value)}
        except Exception:  # no such split there: not the env they came from
            continue
        if wanted <= ids:
            return (
                f"; they are task ids of {other}/{tasks_cfg.split.value}: task ids differ per env, so to narrow "
                f"a sweep over several envs use a range instead, e.g. tasks.end=5 (the first 5 tasks of each)"
            )
    return ""


def run_episode(
    spec: EpisodeSpec, cancel: threading.Event | None = None, slots: SlotsFor | None = None
) -> EpisodeResult:
    """Run and score one episode with its benchmark's adapter; its model calls take their slots
    of the job's in-flight limits from `slots` (None: no limit)."""
    return _adapter(spec.bench).run_episode(spec, cancel, slots)


def _adapter(bench: Benchmark) -> ModuleType:
    # Each benchmark is the module of its name. Imported when used: tau2 and tau-bench are slow
    # to import, and v1 may not be installed.
    return importlib.import_module(f"tau_exp.bench.{Benchmark(bench).value}")


def select(tasks: Sequence[Task], domain: str, tasks_cfg: TasksConfig) -> list:
    """Apply `tasks.ids` or `tasks.start`/`tasks.end`, then the shard, to a split's tasks;
    ConfigError names the valid range."""
    split = tasks_cfg.split.value
    if tasks_cfg.ids is not None:
        by_id = {task.id: task for task in tasks}
        unknown = [task_id for task_id in tasks_cfg.ids if str(task_id) not in by_id]
        if unknown:
            raise ConfigError(
                f"task id(s) {', '.join(map(str, unknown))} not in {domain}/{split}, which has "
                f"{len(tasks)} tasks with ids {_describe_ids(list(by_id))}"
            )
        selected = [by_id[str(task_id)] for task_id in dict.fromkeys(tasks_cfg.ids)]
    else:
        end = len(tasks) if tasks_cfg.end is None else tasks_cfg.end
        if tasks_cfg.start >= len(tasks) or end > len(tasks):
            raise ConfigError(
                f"tasks.start={tasks_cfg.start}, tasks.end={tasks_cfg.end} is out of range: {domain}/{split} "
                f"has {len(tasks)} tasks, so start must be in 0..{len(tasks) - 1} and end in 1..{len(tasks)}"
            )
        selected = list(tasks[tasks_cfg.start : end])
    shard = selected[tasks_cfg.shard :: tasks_cfg.num_shards]
    if not shard:
        raise ConfigError(
            f"tasks.shard={tasks_cfg.shard} of tasks.num_shards={tasks_cfg.num_shards} is empty: the "
            f"selection has only {len(selected)} tasks"
        )
    return shard


def _describe_ids(ids: list[str]) -> str:
    if all(i.isdigit() for i in ids):
        numbers = sorted(int(i) for i in ids)
        if numbers == list(range(numbers[0], numbers[-1] + 1)):
            return f"{numbers[0]}..{numbers[-1]}"
        return ", ".join(map(str, numbers))
    return ", ".join(ids[:20]) + (" ..." if len(ids) > 20 else "")
