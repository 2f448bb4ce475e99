"""metrics.py: pass^k and the counts of metrics.json, against values computed by hand."""

from __future__ import annotations

import pytest

from tau_exp.records import ConfigNames, EpisodeResult, EpisodeStatus
from tau_exp.results.metrics import compute_metrics, pass_hat_k

NAMES = ConfigNames(env="retail", agent="tool_calling", model="m", user="u", user_strategy="llm", split="test")


def result(
    task_id: str, trial: int, reward: float | None, status: EpisodeStatus = EpisodeStatus.scored
) -> EpisodeResult:
    return EpisodeResult(task_id=task_id, trial=trial, seed=0, status=status, reward=reward)


def test_pass_hat_k_matches_hand_computed_values():
    # Task a: 3 of 4 trials succeed; task b: 1 of 4; task c: 4 of 4.
    successes = {"a": (3, 4), "b": (1, 4), "c": (4, 4)}
    assert pass_hat_k(successes, 1) == pytest.approx((3 / 4 + 1 / 4 + 1) / 3)
    assert pass_hat_k(successes, 2) == pytest.approx((3 / 6 + 0 / 6 + 6 / 6) / 3)  # C(3,2)/C(4,2)=3/6
    assert pass_hat_k(successes, 3) == pytest.approx((1 / 4 + 0 + 1) / 3)  # C(3,3)/C(4,3)=1/4
    assert pass_hat_k(successes, 4) == pytest.approx((0 + 0 + 1) / 3)


def test_pass_hat_k_leaves_out_tasks_with_fewer_scored_trials_than_k():
    assert pass_hat_k({"a": (2, 2), "b": (0, 1)}, 2) == 1.0  # b has one trial: no pass^2 for it
    assert pass_hat_k({"a": (1, 1)}, 2) is None


def test_metrics_exclude_infra_errors_and_count_them():
    results = [
        result("a", 0, 1.0),
        result("a", 1, 0.0),
        result("b", 0, 1.0),
        result("b", 1, None, EpisodeStatus.infra_error),
        result("c", 0, None, EpisodeStatus.harness_error),
        result("z", 0, 0.0),  # outside the selection: ignored
    ]
    metrics = compute_metrics(results, ["a", "b", "c"], num_trials=2, names=NAMES)
    assert metrics.avg_reward == pytest.approx(2 / 3)  # the infra error is not a 0
    assert metrics.n_results == 3
    assert metrics.n_infra_errors == 1
    assert metrics.n_harness_errors == 1
    assert metrics.n_pending == 1  # c trial 1
    assert metrics.pass_hat_k == {"1": pytest.approx((1 / 2 + 1) / 2), "2": pytest.approx(0.0)}
    assert (metrics.n_tasks, metrics.n_trials, metrics.env, metrics.model) == (3, 2, "retail", "m")


def test_success_uses_the_tau_bench_tolerance():
    assert result("a", 0, 1.0 - 1e-7).success
    assert not result("a", 0, 0.999).success


def test_metrics_carry_the_task_level_interval_of_each_metric():
    """The same numbers as inference.interval over the scored results; none over a single task."""
    from tau_exp.results.inference import TaskTrials, interval

    results = [result(task, trial, float((task, trial) != ("b", 1))) for task in "abc" for trial in (0, 1)]
    metrics = compute_metrics(results, ["a", "b", "c"], num_trials=2, names=NAMES)
    assert set(metrics.intervals) == {"avg_reward", "pass^1", "pass^2"}
    assert metrics.intervals["pass^2"] == interval(TaskTrials.of(results), "pass^2")
    assert metrics.intervals["avg_reward"].estimate == metrics.avg_reward
    assert compute_metrics(results[:2], ["a"], num_trials=2, names=NAMES).intervals == {}
