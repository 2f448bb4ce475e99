"""configurations.py: job directories gathered into configurations — names from each job's
config, shards (and splits) of one configuration pooled, tau-bench v1 envs kept apart from
tau2's, pass^k and the interval from the pooled results."""

from __future__ import annotations

from pathlib import Path

import pytest

from tau_exp.configurations import find_configurations, mean_interval
from tau_exp.records import EpisodeResult, EpisodeStatus


def job(path: Path, config: str, rewards: dict[str, list[float]]) -> None:
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "config.yaml").write_text(config)
    records = [
        EpisodeResult(task_id=task, trial=trial, seed=0, status=EpisodeStatus.scored, reward=reward)
        for task, trial_rewards in rewards.items()
        for trial, reward in enumerate(trial_rewards)
    ]
    (path / "results.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in records))


CONFIG = (
    "env: {{name: retail}}\nagent: {{name: act}}\nmodel: {{name: org/m}}\nuser: {{name: u, strategy: llm}}\n{extra}"
)


def test_shards_pool_and_v1_envs_stay_apart(tmp_path: Path):
    job(tmp_path / "0_a", CONFIG.format(extra="tasks: {split: test}\n"), {"a": [1.0, 1.0]})
    job(tmp_path / "1_b", CONFIG.format(extra="tasks: {split: train}\n"), {"b": [1.0, 0.0]})
    job(tmp_path / "2_c", CONFIG.format(extra="bench: {name: tau_bench}\n"), {"a": [0.0, 0.0]})
    configurations = find_configurations([tmp_path])
    assert [(c.row.env, c.row.jobs, c.row.tasks, c.row.results) for c in configurations] == [
        ("retail", 2, 2, 4),
        ("retail (tau-bench v1)", 1, 1, 2),
    ]
    pooled = configurations[0].row
    assert pooled.pass_hat_k == {1: pytest.approx(0.75), 2: pytest.approx(0.5)}  # (1 + 1/2) / 2, (1 + 0) / 2
    assert (pooled.model, pooled.user, pooled.user_strategy, pooled.label) == (
        "org/m",
        "u",
        "llm",
        "retail · act · m · u (llm)",
    )


def test_the_mean_interval_by_hand():
    low, high = mean_interval([2 / 3, 1 / 3])  # mean 0.5, sd 0.2357, interval 0.5 ± 1.96 · 0.2357 / √2
    assert (low, high) == (pytest.approx(0.5 - 0.32667, abs=1e-4), pytest.approx(0.5 + 0.32667, abs=1e-4))
    assert mean_interval([0.5]) == (0.5, 0.5) and mean_interval([]) == (None, None)
    assert mean_interval([1.0, 1.0, 0.9])[1] == 1.0  # clipped to rewards' range
