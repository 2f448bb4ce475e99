"""pairs.py: comparisons follow the sweep's axes — pairs that differ in one key, Holm per factor,
a pooled answer per factor over its cells — and runs that are no grid are compared pair by pair."""

from __future__ import annotations

from pathlib import Path

import pytest

from tau_exp.results.collect import find_configurations
from tau_exp.results.inference import compare
from tau_exp.results.pairs import ALL_PAIRS, paired_differences
from tests.results.test_collect import CONFIG, job

TASKS = 20


def grid(tmp_path: Path, agents=("act", "react"), models=("org/m", "org/n")) -> None:
    """One env, agents × models; react solves 4 more tasks than act, model n 2 fewer than m."""
    for agent in agents:
        for model in models:
            solved = 10 + (4 if agent == "react" else 0) - (2 if model == "org/n" else 0)
            rewards = {str(t): [1.0 if t < solved else 0.0] for t in range(TASKS)}
            config = CONFIG.format(extra="").replace("act", agent).replace("org/m", model)
            job(tmp_path / f"{agent}_{model.replace('/', '_')}", config, rewards)


def test_a_grid_is_compared_along_its_axes_with_holm_per_factor(tmp_path):
    grid(tmp_path)
    configurations = find_configurations([tmp_path])
    differences = [d for d in paired_differences(configurations) if d.metric == "avg_reward"]
    single = [d for d in differences if not d.family.endswith("pooled")]
    # 4 pairs that differ in one factor (not the 6 of all pairs), each in its factor's family.
    assert sorted((d.family, d.a, d.b) for d in single) == [
        ("agent", "act · m", "react · m"),
        ("agent", "act · n", "react · n"),
        ("model", "act · m", "act · n"),
        ("model", "react · m", "react · n"),
    ]
    # Holm within a family: the agent family's two p-values corrected together, not with the model's.
    arms = {d.a for d in single} | {d.b for d in single}
    assert len(arms) == 4
    by_label = {c.row.label: c for c in configurations}
    from tau_exp.results.inference import TaskTrials

    trials = {label: TaskTrials.of(r for s in by_label[label].sources for r in s.results) for label in arms}
    agent_pairs = [(d.a, d.b) for d in single if d.family == "agent"]
    expected = {(d.a, d.b): d.p_adjusted for d in compare(trials, agent_pairs, "avg_reward")}
    assert {(d.a, d.b): d.p_adjusted for d in single if d.family == "agent"} == expected


def test_each_factor_has_a_pooled_answer_the_mean_over_its_cells(tmp_path):
    grid(tmp_path)
    differences = [d for d in paired_differences(find_configurations([tmp_path])) if d.metric == "avg_reward"]
    pooled = {d.family: d for d in differences if d.family.endswith("pooled")}
    assert set(pooled) == {"agent, pooled", "model, pooled"}
    agent = pooled["agent, pooled"]
    assert (agent.a, agent.b) == ("act (pooled over 2 cells)", "react (pooled over 2 cells)")
    assert agent.difference == pytest.approx(4 / TASKS) and agent.tasks == TASKS  # a task counts once
    assert pooled["model, pooled"].difference == pytest.approx(-2 / TASKS)
    single = {(d.a, d.b): d.difference for d in differences if d.family == "agent"}
    assert agent.difference == pytest.approx(sum(single.values()) / len(single))


def test_runs_that_are_no_grid_and_all_pairs_compare_every_pair(tmp_path):
    """A configuration that differs from every other in two keys: no axis to follow, so every
    pair on the env, as for runs passed together; --all-pairs asks for that on a grid too."""
    grid(tmp_path, agents=("act",), models=("org/m",))
    grid(tmp_path, agents=("react",), models=("org/n",))
    differences = [d for d in paired_differences(find_configurations([tmp_path])) if d.metric == "avg_reward"]
    assert [(d.family, d.a, d.b) for d in differences] == [(ALL_PAIRS, "act · m", "react · n")]
    grid(tmp_path / "grid")
    everything = paired_differences(find_configurations([tmp_path / "grid"]), all_pairs=True)
    assert len([d for d in everything if d.metric == "avg_reward"]) == 6
    assert {d.family for d in everything} == {ALL_PAIRS}


def test_a_factor_whose_values_are_lists_is_pooled_too(tmp_path):
    """A swept setting may hold a list (stop sequences, say): its levels still key the cells."""
    for agent in ("act", "react"):
        for stop in (["a"], ["b"]):
            rewards = {str(t): [1.0 if t < 10 + len(agent) else 0.0] for t in range(TASKS)}
            identity = {"model": {"name": "org/m", "stop": stop}}
            job(tmp_path / f"{agent}_{stop[0]}", CONFIG.format(extra="").replace("act", agent), rewards, identity)
    differences = paired_differences(find_configurations([tmp_path]))
    pooled = {d.family for d in differences if d.family.endswith("pooled")}
    assert pooled == {"agent, pooled", "model.stop, pooled"}
