"""The results files of tau-bench v1's `run.py`, read as tau_exp records (for the report).

A file is a JSON list of v1's `EnvRunResult` (`task_id`, `reward`, `info`, `traj`, `trial`),
named `{agent_strategy}-{model}-{temperature}_range_{start}-{end}_user-{user_model}-{user_strategy}_{time}.json`.
The name gives the configuration; the environment is read from the agent's policy (the first
message of each trajectory). v1's run.py scored an episode that raised as reward 0 and wrote
the error into `info`; it is read by the rule of tau_exp's own v1 jobs (bench/tau_bench.py): a
model's malformed output (what v1 raises on it: MODEL_MISTAKES) is a scored 0, the agent's
error; anything else (e.g. a server that did not answer) is not scored (a harness error: the
file does not say more).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tau_exp.config import Benchmark
from tau_exp.errors import TauExpError
from tau_exp.records import ConfigNames, EpisodeResult, EpisodeStatus, ErrorInfo

_NAME = re.compile(
    r"^(?P<agent>tool-calling|act|react|few-shot)-(?P<model>.+)-(?P<temperature>[0-9.]+)"
    r"_range_(?P<start>-?\d+)-(?P<end>-?\d+)_user-(?P<user>.+)-(?P<user_strategy>[a-z]+)_\d{10}$"
)


def is_v1_results_file(path: Path) -> bool:
    return path.is_file() and path.suffix == ".json" and bool(_NAME.match(path.stem))


def v1_settings(path: Path) -> dict[str, float]:
    """What the file's name says beyond the names: the assistant's temperature (v1 records no
    split and no seed, so files of one configuration on different splits cannot be told apart)."""
    name = _NAME.match(path.stem)
    return {"model.temperature": float(name["temperature"])} if name else {}


def read_v1_results(path: Path) -> tuple[ConfigNames, list[EpisodeResult]]:
    """The configuration and the records of one v1 results file; TauExpError if it is not one."""
    try:
        entries = json.loads(path.read_text())
        if not isinstance(entries, list):
            raise ValueError("not a list")
        results = [_record(entry) for entry in entries]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TauExpError(
            f"{path} is not a tau-bench v1 results file (a JSON list of task_id, reward, info, traj, trial): {error}"
        ) from None
    name = _NAME.match(path.stem)
    assert name is not None  # is_v1_results_file
    env = next((found for entry in entries if (found := _env(entry))), "unknown")
    names = ConfigNames(
        bench=Benchmark.tau_bench,
        env=env,
        split=None,
        agent=name["agent"].replace("-", "_"),
        model=name["model"],
        user=name["user"],
        user_strategy=name["user_strategy"],
    )
    return names, results


def _record(entry: dict[str, Any]) -> EpisodeResult:
    info = entry.get("info") or {}
    common = dict(task_id=str(entry["task_id"]), trial=int(entry["trial"]), seed=0, messages=entry.get("traj") or [])
    if "error" in info:
        raised = _raised(info)
        if raised in _MODEL_MISTAKE_NAMES:
            return EpisodeResult(
                status=EpisodeStatus.scored,
                reward=0.0,
                termination_reason="agent_error",
                error=ErrorInfo(type=raised, message=str(info["error"])[:2000], traceback=info.get("traceback")),
                ended_by=f"v1 raised {raised}: {str(info['error'])[:2000]}",
                **common,
            )
        return EpisodeResult(
            status=EpisodeStatus.harness_error,
            error=ErrorInfo(
                type="tau-bench v1 error", message=str(info["error"])[:2000], traceback=info.get("traceback")
            ),
            **common,
        )
    return EpisodeResult(
        status=EpisodeStatus.scored, reward=float(entry["reward"]), reward_info=info.get("reward_info"), **common
    )


# The names of bench.tau_bench.MODEL_MISTAKES (not imported: that needs v1 itself).
_MODEL_MISTAKE_NAMES = frozenset({"JSONDecodeError", "AssertionError", "ValidationError"})


def _raised(info: dict[str, Any]) -> str:
    """The type of the exception v1 recorded, from the last line of its traceback."""
    lines = [line for line in str(info.get("traceback") or "").splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return last.split(":", 1)[0].strip().rsplit(".", 1)[-1] if last and not last.startswith(" ") else ""


def _env(entry: dict[str, Any]) -> str | None:
    """retail or airline, from the heading of the agent's policy (v1's wiki) in the trajectory."""
    traj = entry.get("traj") or []
    policy = str(traj[0].get("content") or "")[:200].lower() if traj and isinstance(traj[0], dict) else ""
    return next((env for env in ("retail", "airline") if env in policy), None)
