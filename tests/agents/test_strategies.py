"""Every assistant strategy, end to end over HTTP against the oracle (which speaks native tool
calls and the text action format), scored by tau2: 1.0 on retail and airline samples; and a
text reply that cannot be read is a counted error of the conversation, never a crash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tau_exp import experiment
from tau_exp.errors import ConfigError
from tau_exp.records import EpisodeResult, EpisodeStatus

# telecom test tasks 9–11: the assistant alone (reward ACTION + ENV_ASSERTION), then turns that
# alternate user, assistant, user, ... (the user acting on their phone between the assistant's steps).
SAMPLE = {"retail": "tasks.ids=[5,9,12]", "airline": "tasks.ids=[2,6,8]", "telecom": "tasks.start=9 tasks.end=12"}


def results(job_dir: Path) -> list[EpisodeResult]:
    return [EpisodeResult.model_validate_json(line) for line in (job_dir / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def examples_file(tmp_path_factory, compose_cfg, attached) -> Path:
    """A few-shot file built by `python -m tau_exp.examples build` from an oracle train-split run."""
    job_dir = tmp_path_factory.mktemp("train_run")
    experiment.run(compose_cfg("tasks.split=train", "tasks.end=4", *attached), job_dir)
    output = job_dir.parent / "examples.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "tau_exp.examples", "build", str(job_dir), "-o", str(output)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return output


@pytest.mark.slow
@pytest.mark.parametrize("domain", ["retail", "airline", "telecom"])
@pytest.mark.parametrize("agent", ["tool_calling", "react", "act", "few_shot"])
def test_every_strategy_scores_one_with_the_oracle(tmp_path, compose_cfg, attached, examples_file, agent, domain):
    few_shot = [f"agent.few_shot.path={examples_file}", "agent.few_shot.num=2"] if agent == "few_shot" else []
    metrics = experiment.run(
        compose_cfg(
            f"env={domain}", *SAMPLE[domain].split(), f"agent={agent}", *few_shot, "run.max_concurrency=3", *attached
        ),
        tmp_path,
    )
    assert (metrics.agent, metrics.n_results, metrics.avg_reward, metrics.n_infra_errors) == (agent, 3, 1.0, 0)
    calls = [m for r in results(tmp_path) for m in r.messages if m.get("tool_calls")]
    assert calls, "the tools were used"
    if domain == "telecom":  # the user acted on their phone, whatever protocol the assistant speaks
        assert {m["role"] for m in calls} == {"assistant", "user"}


@pytest.mark.slow
def test_few_shot_examples_reach_the_prompt_and_the_builder_keeps_train_tasks_only(examples_file):
    lines = [json.loads(line) for line in examples_file.read_text().splitlines()]
    assert len(lines) == 4
    assert all(line["task_id"] in {"0", "1", "2", "3"} for line in lines)  # retail train starts 0, 1, 2, 3
    assert all('assistant: {"name": ' in line["messages_display"] for line in lines)
    assert all("###STOP###" in line["messages_display"] for line in lines)


@pytest.mark.slow
def test_the_builder_refuses_a_test_split_run(tmp_path, compose_cfg, attached):
    experiment.run(compose_cfg("tasks.end=1", *attached), tmp_path / "job")
    done = subprocess.run(
        [sys.executable, "-m", "tau_exp.examples", "build", str(tmp_path / "job"), "-o", str(tmp_path / "out.jsonl")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "ran the 'test' split: few-shot examples may only come from train-split runs" in done.stderr
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["react", "act"])
def test_unreadable_text_replies_count_as_errors_of_the_conversation(
    tmp_path, compose_cfg, attach_to, oracle_faults, agent
):
    faulty = attach_to(oracle_faults(assistant={"unhelpful_rate": 1.0}))
    cfg = compose_cfg(f"agent={agent}", "tasks.end=2", *faulty, "run.max_errors=3")
    metrics = experiment.run(cfg, tmp_path)
    records = results(tmp_path)
    assert [(r.status, r.reward, r.termination_reason) for r in records] == [
        (EpisodeStatus.scored, 0.0, "too_many_errors")
    ] * 2
    assert metrics.n_infra_errors == 0
    invalid = [m for m in records[0].messages if m.get("tool_calls") and m["tool_calls"][0]["name"] == "invalid_action"]
    assert len(invalid) == 3 and "no JSON object" in invalid[0]["tool_calls"][0]["arguments"]["reason"]


@pytest.mark.slow
def test_some_unreadable_replies_are_survived(tmp_path, compose_cfg, attach_to, oracle_faults):
    faulty = attach_to(oracle_faults(assistant={"unhelpful_rate": 0.2}))
    cfg = compose_cfg("agent=react", "tasks.end=4", *faulty)
    metrics = experiment.run(cfg, tmp_path)
    assert (metrics.n_results, metrics.avg_reward) == (4, 1.0)
    assert any(m.get("error") for r in results(tmp_path) for m in r.messages)  # the errors happened


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "content, num, message",
    [
        (None, 1, "agent.few_shot.path=.* does not exist"),
        ("", 1, "holds no examples"),
        ('{"messages_display": "user: hi"}\n{not json\n', 1, r"examples.jsonl:2: not JSON"),
        ('{"messages_display": "user: hi"}\n{"messages": []}\n', 1, r'examples.jsonl:2: no "messages_display"'),
        ('{"messages_display": "user: hi"}\n', 3, "agent.few_shot.num=3 is more than the 1 examples"),
        ('{"messages_display": "user: hi"}\n', 0, "agent.few_shot.num=0 must be at least 1"),
    ],
)
def test_bad_few_shot_files_are_refused_before_anything_starts(tmp_path, compose_cfg, content, num, message):
    path = tmp_path / "examples.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        experiment.validate(compose_cfg("agent=few_shot", f"agent.few_shot.path={path}", f"agent.few_shot.num={num}"))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda path: path.mkdir(), "is a directory"),
        (lambda path: path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe"), "is not UTF-8 text"),
    ],
    ids=["a directory", "a binary file"],
)
def test_a_few_shot_path_that_is_not_a_text_file_is_named(tmp_path, compose_cfg, make, message):
    path = tmp_path / "examples.jsonl"
    make(path)
    with pytest.raises(ConfigError, match=f"agent.few_shot.path={path} {message}"):
        experiment.validate(compose_cfg("agent=few_shot", f"agent.few_shot.path={path}"))
    with pytest.raises(ConfigError, match="not a regular file"):
        experiment.validate(compose_cfg("agent=few_shot", "agent.few_shot.path=/dev/null"))


def test_few_shot_without_a_file_names_the_key(compose_cfg):
    with pytest.raises(ConfigError, match="agent=few_shot needs a file of examples: agent.few_shot.path=FILE"):
        experiment.validate(compose_cfg("agent=few_shot"))
