"""bench/tau2.py: task selection over tau2's real splits, and single episodes run through
tau2's Orchestrator and scored by tau2's own evaluation, over HTTP against oracle servers."""

from __future__ import annotations

import pytest

from tau_exp.bench import EpisodeSpec, select_tasks
from tau_exp.bench.tau2 import load_tasks, run_episode
from tau_exp.config import BenchConfig, RetryConfig, Split, TasksConfig, to_experiment_config
from tau_exp.endpoint import Endpoint
from tau_exp.errors import ConfigError
from tau_exp.records import EpisodeStatus


def test_splits_have_tau2s_sizes():
    assert [len(load_tasks("retail", s)) for s in ("train", "test", "base")] == [74, 40, 114]
    assert [len(load_tasks("airline", s)) for s in ("train", "test", "base")] == [30, 20, 50]


def test_select_by_range_and_by_ids():
    assert [t.id for t in select_tasks(BenchConfig(), "retail", TasksConfig(split=Split.base, start=3, end=6))] == [
        "3",
        "4",
        "5",
    ]
    assert [t.id for t in select_tasks(BenchConfig(), "retail", TasksConfig(split=Split.test, ids=["12", "5"]))] == [
        "12",
        "5",
    ]


@pytest.mark.parametrize(
    "tasks, message",
    [
        (
            TasksConfig(split=Split.base, start=114),
            r"retail/base has 114 tasks, so start must be in 0..113 and end in 1..114",
        ),
        (TasksConfig(split=Split.base, end=200), r"end in 1..114"),
        (
            TasksConfig(split=Split.base, ids=["0", "114"]),
            r"task id\(s\) 114 not in retail/base, which has 114 tasks with ids 0..113",
        ),
        (
            TasksConfig(split=Split.test, ids=["0"]),
            r"task id\(s\) 0 not in retail/test, which has 40 tasks with ids 5, 9, 12",
        ),
    ],
)
def test_out_of_range_selection_names_the_valid_range(tasks, message):
    with pytest.raises(ConfigError, match=message):
        select_tasks(BenchConfig(), "retail", tasks)


@pytest.fixture
def spec(oracle_servers, compose_cfg):
    """`spec(domain, task_id, **changes)`: one episode against the session's oracle servers."""
    experiment = to_experiment_config(compose_cfg())

    def make(domain: str, task_id: str, **changes) -> EpisodeSpec:
        task = {t.id: t for t in load_tasks(domain, "base")}[task_id]
        fields = dict(
            domain=domain,
            task=task,
            trial=0,
            seed=1,
            agent=experiment.agent,
            assistant=oracle_servers["assistant"],
            user=oracle_servers["user"],
            assistant_settings=experiment.model,
            user_settings=experiment.user,
            retry=RetryConfig(attempts=2, initial_backoff_s=0.01),
            max_steps=200,
            max_errors=10,
        )
        return EpisodeSpec(**{**fields, **changes})

    return make


@pytest.mark.parametrize("domain, task_id", [("retail", "0"), ("airline", "13")])
def test_oracle_episode_scores_one_with_taus_own_reward_breakdown(spec, domain, task_id):
    result = run_episode(spec(domain, task_id))
    assert result.status == EpisodeStatus.scored
    assert result.reward == 1.0
    assert result.termination_reason == "user_stop"
    assert result.reward_info["db_check"]["db_match"] is True
    assert set(result.reward_info["reward_breakdown"]) == {"DB", "COMMUNICATE"}
    assert result.messages[0]["role"] == "assistant" and result.messages[-1]["content"].endswith("###STOP###")
    assert any(m.get("tool_calls") for m in result.messages)
    assert result.usage["assistant"].calls > 1 and result.usage["user"].calls == 2


def test_a_dead_assistant_server_is_an_infra_error_not_a_zero(spec):
    dead = Endpoint("http://127.0.0.1:9/v1", "oracle")
    result = run_episode(spec("retail", "0", assistant=dead))
    assert result.status == EpisodeStatus.infra_error
    assert result.reward is None
    assert "127.0.0.1:9" in result.error.message and "after 2 attempts" in result.error.message
