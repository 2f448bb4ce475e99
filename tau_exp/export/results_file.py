"""One configuration of tau_exp job directories as tau2's own `Results` (the JSON that tau2's
CLI writes, `tau2 view` shows and the leaderboard takes as trajectories), built and validated
with tau2's pydantic models.

What goes in: every scored record of the configuration's jobs (shards pooled) as a
`SimulationRun` — its messages (recorded as tau2 messages), tau2's `RewardInfo` and
termination reason as recorded, trial, seed and times —, the tau2 `Task` of every task that
was run, from tau2's own loader, and an `Info` that says what ran: the domain's environment
info from tau2, the agent and user as `tau_exp:<strategy>` with their models and sampling
settings, seed, limits and trials. Infra and harness errors are not results: they are left out
and counted (`Exported.left_out`).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

from tau_exp import bench
from tau_exp.bench.tau2_results import TAU_EXP_BLOCK
from tau_exp.config import Benchmark
from tau_exp.errors import TauExpError
from tau_exp.jobdir import JobDir
from tau_exp.records import EpisodeResult, EpisodeStatus
from tau_exp.results.collect import Configuration

if TYPE_CHECKING:
    from tau2.data_model.simulation import Results, SimulationRun

# The namespace of the simulations' ids: the same record always gets the same id.
_IDS = uuid.UUID("6f1d2b0e-7f0a-4a8e-9a53-3c1f0b7d5e21")


@dataclass(frozen=True)
class Exported:
    """One configuration as tau2's Results, and what was left out of it."""

    configuration: Configuration
    results: Results
    left_out: Counter[str]  # status → records that are not results (infra_error, harness_error)

    @property
    def trials(self) -> int:
        """The most simulations of any task."""
        return max(Counter(s.task_id for s in self.results.simulations).values(), default=0)

    def to_json(self) -> str:
        """tau2's Results as JSON, with a `tau_exp` block that tau2 ignores and tau_exp reads back:
        the configuration's whole identity (its settings, oracle faults included), so that two
        exports that differ only in a setting are never pooled when read back."""
        results = json.loads(self.results.model_dump_json())
        block = {"settings": self.configuration.sources[0].settings}  # one configuration: one identity
        return json.dumps({**results, TAU_EXP_BLOCK: block}, indent=4, ensure_ascii=False)

    def summary(self) -> str:
        tasks = len({s.task_id for s in self.results.simulations})
        return f"{len(self.results.simulations)} simulations of {tasks} tasks ({self.configuration.row.label})"

    def left_out_note(self) -> str | None:
        """One line on what was left out, or None."""
        if not self.left_out:
            return None
        counts = ", ".join(
            f"{n} {status.replace('_', ' ')}{'s' if n > 1 else ''}" for status, n in self.left_out.items()
        )
        return (
            f"{sum(self.left_out.values())} of {self.configuration.row.label}'s records left out ({counts}): "
            "not results; resume the job to run them again"
        )


def export_configuration(configuration: Configuration) -> Exported:
    """tau2's Results of one configuration of tau_exp job directories (TauExpError when it has
    none to give: not tau2's benchmark, no scored result, tasks tau2 does not have)."""
    from tau2.data_model.simulation import AgentInfo, Info, Results, UserInfo
    from tau2.registry import registry

    names = configuration.sources[0].names
    label = configuration.row.label
    if names.bench != Benchmark.tau2:
        raise TauExpError(
            f"{label} ran tau-bench v1 (bench={names.bench.value}): its tasks are not tau2's, so it has no tau2 "
            "results file; export jobs of bench=tau2"
        )
    records = configuration.records
    scored = [r for r in records if r.status == EpisodeStatus.scored and r.reward is not None]
    if not scored:
        raise TauExpError(f"{label} has no scored result to export (only infra or harness errors): resume it first")
    tasks = _tasks(names.env, names.split, {r.task_id for r in records}, label)
    order = {task.id: position for position, task in enumerate(tasks)}
    jobs = [JobDir(source.path) for source in configuration.sources]
    identity = _identity(jobs)
    num_trials = max(_num_trials(job) for job in jobs)
    info = Info(
        git_commit=_revision(jobs),
        num_trials=max(num_trials, max(Counter(r.task_id for r in scored).values())),
        max_steps=identity["max_steps"],
        max_errors=identity["max_errors"],
        user_info=UserInfo(
            implementation=f"tau_exp:{names.user_strategy}", llm=names.user, llm_args=_llm_args(identity["user"])
        ),
        agent_info=AgentInfo(
            implementation=f"tau_exp:{names.agent}", llm=names.model, llm_args=_llm_args(identity["model"])
        ),
        environment_info=registry.get_env_constructor(names.env)().get_info(include_tool_info=False),
        seed=identity["seed"],
    )
    simulations = [_simulation(r, label) for r in sorted(scored, key=lambda r: (r.trial, order[r.task_id]))]
    left_out = Counter(r.status.value for r in records if r.status != EpisodeStatus.scored or r.reward is None)
    results = Results(info=info, tasks=tasks, simulations=simulations)
    return Exported(configuration, results, left_out)


def _tasks(domain: str, split: str | None, task_ids: set[str], label: str) -> list:
    """tau2's Task of each of these ids, in tau2's order: from the split the job ran (every task
    of the domain when that is not enough: telecom has 2,285)."""
    tasks = [task for task in bench.load_tasks(Benchmark.tau2, domain, split) if task.id in task_ids]
    if len(tasks) < len(task_ids) and split is not None:
        tasks = [task for task in bench.load_tasks(Benchmark.tau2, domain, None) if task.id in task_ids]
    missing = task_ids - {task.id for task in tasks}
    if missing:
        raise TauExpError(
            f"{label} ran task(s) {', '.join(sorted(missing)[:5])} that this tau2's {domain} does not have: "
            "its results were made with other task data; export them where that tau2 is installed"
        )
    return tasks


def _identity(jobs: list[JobDir]) -> dict[str, Any]:
    """What the results mean, from the first job's manifest (the same for every job of a
    configuration); from its config for a job without one."""
    for job in jobs:
        if (manifest := job.read_manifest()) is not None:
            return manifest.identity
    config = jobs[0].read_config()

    def role(key: str) -> dict[str, Any]:
        values = OmegaConf.to_container(OmegaConf.select(config, key), resolve=True)
        return {str(name): value for name, value in values.items()} if isinstance(values, dict) else {}

    return {
        "model": role("model"),
        "user": role("user"),
        "seed": OmegaConf.select(config, "run.seed", default=None),
        "max_steps": OmegaConf.select(config, "run.max_steps", default=200),
        "max_errors": OmegaConf.select(config, "run.max_errors", default=10),
    }


def _num_trials(job: JobDir) -> int:
    return int(OmegaConf.select(job.read_config(), "run.num_trials", default=1))


def _revision(jobs: list[JobDir]) -> str:
    """tau_exp's git revision that ran the jobs (tau2's Info wants a commit)."""
    for job in jobs:
        manifest = job.read_manifest()
        if manifest is not None and manifest.tau_exp_revision:
            return manifest.tau_exp_revision
    return "unknown"


def _llm_args(model: dict[str, Any]) -> dict[str, Any]:
    """The sampling settings sent with each call (no endpoint, no key: a manifest has neither)."""
    args = {"temperature": model.get("temperature")}
    if model.get("max_tokens") is not None:
        args["max_tokens"] = model["max_tokens"]
    return {**args, **(model.get("llm_args") or {})}


def _simulation(record: EpisodeResult, label: str) -> SimulationRun:
    """The record as tau2's SimulationRun (its messages and reward info validated by tau2's models)."""
    from pydantic import ValidationError
    from tau2.data_model.simulation import SimulationRun

    start = datetime.fromisoformat(record.started_at) if record.started_at else datetime.fromtimestamp(0)
    fields = {
        "id": str(uuid.uuid5(_IDS, f"{record.task_id}:{record.trial}:{record.seed}:{record.started_at}")),
        "task_id": record.task_id,
        "timestamp": start.isoformat(),
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(seconds=record.duration_s)).isoformat(),
        "duration": record.duration_s,
        "termination_reason": record.termination_reason,
        "reward_info": record.reward_info if record.reward_info is not None else {"reward": record.reward},
        "messages": record.messages,
        "trial": record.trial,
        "seed": record.seed,
    }
    try:
        return SimulationRun.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        raise TauExpError(
            f"{label}: task {record.task_id} trial {record.trial} is not a tau2 simulation "
            f"({'.'.join(map(str, first['loc']))}: {first['msg']})"
        ) from None
