"""bench/tau_bench.py and bench/tau_bench_results.py: the tau-bench v1 adapter.

The v1 package cannot be installed here (not on any registry), so these tests run it from a
TEST DOUBLE, tests/support/tau_bench_standin/tau_bench: a small package that follows v1's API
(get_env, Env, the agents and user simulators calling litellm's `completion` as v1 does, v1's
reward, run.py's results file) with two tiny domains. Everything else is real: the oracle
server over HTTP through litellm (it replays the double's gold actions), tau_exp's run loop,
worker processes and store, and the report.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from litellm import ModelResponse

from tau_exp import bench, experiment
from tau_exp.config import BenchConfig, Benchmark
from tau_exp.errors import ConfigError, IncompleteRun
from tau_exp.jobdir import JobDir
from tau_exp.records import EpisodeStatus
from tau_exp.results.collect import find_configurations
from tau_exp.results.report import main as report_cli
from tau_exp.servers import provide
from tests.support.oracle_chat import OracleFaults

STANDIN = Path(__file__).resolve().parents[1] / "support" / "tau_bench_standin"
V1 = ("bench=tau_bench", f"bench.path={STANDIN}")


@pytest.fixture(scope="module")
def v1_oracle(tmp_path_factory, oracle_model):
    """Oracle servers that can read the double's tasks (tau_bench importable in their process)."""
    servers_dir = tmp_path_factory.mktemp("v1_oracle")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTHONPATH", str(STANDIN))
        with (
            provide("assistant", oracle_model(), servers_dir) as assistant,
            provide("user", oracle_model(), servers_dir) as user,
        ):
            yield {"assistant": assistant, "user": user}


@pytest.fixture
def v1_faults(v1_oracle) -> Iterator[OracleFaults]:
    """`v1_faults(assistant={...}, user={...})`: v1_oracle with these faults for this test."""
    faults = OracleFaults(v1_oracle)
    yield faults
    faults.clear()


@pytest.fixture(scope="session")
def run_v1(compose_cfg, attach_to):
    """`run_v1(job_dir, servers, *overrides)`: a bench=tau_bench job (the double) attached to `servers`."""

    def run(job_dir: Path, servers, *overrides: str):
        return experiment.run(compose_cfg(*V1, *attach_to(servers), "run.max_concurrency=4", *overrides), job_dir)

    return run


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["tool_calling", "act", "react", "few_shot"])
def test_every_v1_agent_strategy_scores_one_with_the_oracle_by_v1s_own_reward(tmp_path, v1_oracle, run_v1, agent):
    few_shot = tmp_path / "few_shot.jsonl"
    few_shot.write_text(
        "".join(json.dumps({"messages_display": f"user: hi {i}\nassistant: hello"}) + "\n" for i in range(5))
    )
    metrics = run_v1(tmp_path / "job", v1_oracle, f"agent={agent}", f"agent.few_shot.path={few_shot}")
    records = JobDir(tmp_path / "job").read_results()
    assert sorted(r.task_id for r in records) == ["0", "1", "2", "3"]  # the double's retail test split
    assert [(r.status, r.reward) for r in records] == [(EpisodeStatus.scored, 1.0)] * 4
    assert all(r.reward_info and r.termination_reason in ("user_stop", "agent_stop") for r in records)
    assert metrics.avg_reward == 1.0 and metrics.n_infra_errors == 0
    assert all(r.usage["assistant"].calls > 0 and r.usage["user"].calls > 0 for r in records)
    # v1's data, recorded as for tau2: in the manifest and the metrics
    manifest = JobDir(tmp_path / "job").read_manifest()
    assert manifest is not None and metrics.task_data == manifest.task_data
    assert metrics.task_data == bench.fingerprint(BenchConfig(Benchmark.tau_bench, str(STANDIN)), "retail", "test")


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["llm", "react", "verify", "reflection"])
@pytest.mark.parametrize("env, split", [("retail", "dev"), ("retail", "train"), ("airline", "test")])
def test_v1_splits_and_user_strategies(tmp_path, v1_oracle, run_v1, env, split, strategy):
    metrics = run_v1(tmp_path, v1_oracle, f"env={env}", f"tasks.split={split}", f"user.strategy={strategy}")
    assert metrics.avg_reward == 1.0 and metrics.n_results == metrics.n_tasks > 0


def test_v1_data_is_fingerprinted_like_tau2s(monkeypatch):
    """v1's split (tasks in v1's order), data, wiki and rules: the same twice; another split, one
    edited task or an edited wiki give another fingerprint; the package is tau-bench."""
    v1 = BenchConfig(Benchmark.tau_bench, str(STANDIN))
    test = bench.fingerprint(v1, "retail", "test")
    assert test == bench.fingerprint(v1, "retail", "test") and test.package == "tau-bench"
    assert test.fingerprint != bench.fingerprint(v1, "retail", "train").fingerprint
    import tau_bench.envs.retail.tasks_test as tasks_test
    import tau_bench.envs.retail.wiki as wiki

    with monkeypatch.context() as patch:
        edited = tasks_test.TASKS_TEST[1].model_copy(update={"outputs": ["42"]})
        patch.setattr(tasks_test, "TASKS_TEST", [tasks_test.TASKS_TEST[0], edited, *tasks_test.TASKS_TEST[2:]])
        assert bench.fingerprint(v1, "retail", "test").fingerprint != test.fingerprint
    import tau_bench.envs.retail.env as retail_env

    with monkeypatch.context() as patch:
        patch.setattr(retail_env, "WIKI", wiki.WIKI + "\nNo refunds on Sundays.")
        assert bench.fingerprint(v1, "retail", "test").fingerprint != test.fingerprint
    assert bench.fingerprint(v1, "retail", "test") == test


def test_bench_tau_bench_runs_as_v1s_run_py_by_default(compose_cfg):
    """v1's agents stop after 30 steps and its user simulator sends no temperature; tau2 keeps its own."""
    v1 = compose_cfg(*V1)
    assert (v1.run.max_steps, v1.user.temperature, v1.model.temperature) == (30, None, 0.0)
    tau2 = compose_cfg()
    assert (tau2.run.max_steps, tau2.user.temperature) == (200, 0.0)
    assert compose_cfg(*V1, "run.max_steps=200", "user.temperature=0.0").user.temperature == 0.0


@pytest.mark.slow
def test_v1s_models_get_what_v1_sends_and_its_step_limit_cuts_the_conversation(
    tmp_path, v1_oracle, run_v1, monkeypatch
):
    """Over real HTTP (litellm.completion is watched, not replaced): no temperature for the user
    simulator, the assistant's temperature, no seed for either; run.max_steps reaches v1's solve."""
    import litellm

    sent: list[dict] = []
    real_completion = litellm.completion

    def watched(**kwargs):
        sent.append(kwargs)
        return real_completion(**kwargs)

    monkeypatch.setattr(litellm, "completion", watched)
    run_v1(tmp_path / "job", v1_oracle, "run.workers=0", "tasks.end=1", "run.max_steps=2")
    user_calls = [call for call in sent if call["api_base"] == v1_oracle["user"].base_url]
    assistant_calls = [call for call in sent if call["api_base"] == v1_oracle["assistant"].base_url]
    assert user_calls and all("temperature" not in call for call in user_calls)
    assert len(assistant_calls) == 2 and all(call["temperature"] == 0.0 for call in assistant_calls)
    assert not any("seed" in call for call in sent)
    [record] = JobDir(tmp_path / "job").read_results()
    assert (record.reward, record.termination_reason) == (0.0, "max_steps")


@pytest.mark.slow
def test_v1_few_shot_examples_are_drawn_from_each_pairs_seed(tmp_path, v1_oracle, run_v1):
    """The same run.seed gives every (task, trial) the same examples, run after run (v1 drew them
    from one unseeded global source); another seed, other examples."""
    few_shot = tmp_path / "few_shot.jsonl"
    few_shot.write_text(
        "".join(json.dumps({"messages_display": f"user: example {i}\nassistant: ok"}) + "\n" for i in range(30))
    )

    def prompts(job: str, *overrides: str) -> dict[tuple[str, int], str]:
        run_v1(
            tmp_path / job,
            v1_oracle,
            "agent=few_shot",
            f"agent.few_shot.path={few_shot}",
            "agent.few_shot.num=3",
            "run.num_trials=2",
            *overrides,
        )
        return {(r.task_id, r.trial): r.messages[0]["content"] for r in JobDir(tmp_path / job).read_results()}

    first, again, other = prompts("a"), prompts("b", "run.workers=0"), prompts("c", "run.seed=11")
    assert first == again and len(first) == 8
    assert len(set(first.values())) > 1  # each pair its own draw
    assert first != other


@pytest.mark.slow
def test_in_worker_processes_and_in_the_jobs_process_alike(tmp_path, v1_oracle, run_v1):
    for workers in (0, 2):
        run_v1(tmp_path / str(workers), v1_oracle, f"run.workers={workers}", "run.num_trials=2")
    records = {
        workers: sorted(
            (r.task_id, r.trial, r.reward, len(r.messages)) for r in JobDir(tmp_path / workers).read_results()
        )
        for workers in ("0", "2")
    }
    assert records["0"] == records["2"] and len(records["0"]) == 8


@pytest.mark.slow
def test_a_server_that_fails_is_an_infra_error_not_a_zero_as_in_v1s_run_py(tmp_path, v1_faults, run_v1):
    broken = v1_faults(assistant={"error_rate": 1.0})
    with pytest.raises(IncompleteRun):
        run_v1(tmp_path / "job", broken, "tasks.end=2", "run.retry.attempts=1")
    records = JobDir(tmp_path / "job").read_results()
    assert [(r.status, r.reward) for r in records] == [(EpisodeStatus.infra_error, None)] * 2


@pytest.mark.slow
def test_a_reply_v1s_agent_cannot_parse_is_its_error_and_the_record_and_browser_keep_what_it_said(
    tmp_path, v1_faults, attach_to, launch, page
):
    servers = attach_to(v1_faults(assistant={"bad_arguments_rate": 1.0}))
    done = launch([*V1, *servers, "tasks.end=1", "tracking=none", "hydra.run.dir=job"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]  # the agent's mistake is scored, not an error of the job
    [record] = JobDir(tmp_path / "job").read_results()
    assert (record.status, record.reward, record.termination_reason) == (EpisodeStatus.scored, 0.0, "agent_error")
    assert record.error and record.error.type == "JSONDecodeError"
    assert record.ended_by and record.ended_by.startswith("v1 raised JSONDecodeError")
    # What the agent was shown, then the reply it could not use (its garbled tool call).
    assert record.messages[0]["role"] == "system" and record.messages[-1]["role"] == "assistant"
    assert record.messages[-1]["tool_calls"][0]["function"]["arguments"].endswith(",")  # the oracle's garbling

    report_cli([str(tmp_path / "job"), "--html"])
    page.goto(f"{(tmp_path / 'job' / 'browser.html').as_uri()}#/config/0/task/0/0")
    page.wait_for_selector("#ended-by")
    assert "v1 raised JSONDecodeError" in page.inner_text("#ended-by")
    assert "Ended by JSONDecodeError" in page.inner_text(".error-box")  # scored: not "Not scored"
    assert page.locator(".conversation > li").count() == len(record.messages)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["env=airline", "tasks.split=dev"], "tasks.split=dev does not exist in tau-bench v1's airline; choose test"),
        (["tasks.split=base"], "tasks.split=base does not exist in tau-bench v1's retail"),
        (["env=telecom"], "env.name='telecom' is not a tau-bench v1 environment (it is tau2's: bench=tau2)"),
        (["agent=few_shot", "agent.few_shot.path=/nonexistent.jsonl"], "agent.few_shot.path=/nonexistent.jsonl"),
    ],
)
def test_bad_v1_settings_are_refused_before_anything_runs(compose_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        experiment.validate(compose_cfg(*V1, *overrides))


def test_tau2_has_no_dev_split(compose_cfg):
    with pytest.raises(ConfigError, match="tasks.split=dev is a tau-bench v1 split"):
        experiment.validate(compose_cfg("tasks.split=dev"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "path, message",
    [
        (None, "needs the original tau-bench package, which cannot be imported here"),
        ("/tmp", "bench.path=/tmp is not a tau-bench checkout"),
    ],
)
def test_without_the_package_bench_tau_bench_says_how_to_install_it(tmp_path, launch, path, message):
    args = ["bench=tau_bench", *([f"bench.path={path}"] if path else []), f"hydra.run.dir={tmp_path / 'job'}"]
    done = launch(args, tmp_path, env={"PYTHONPATH": ""})
    assert done.returncode == 2
    assert message in done.stderr and "pip install -e tau-bench" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "job" / "results.jsonl").exists()


def _reply(content: str) -> ModelResponse:
    response = ModelResponse(choices=[{"message": {"role": "assistant", "content": content}}])
    response._hidden_params["response_cost"] = 0.0
    return response


def _results_of_v1_run_py(tmp_path, monkeypatch):
    """Run the test double's v1 run.py with scripted models; its results folder and results."""
    monkeypatch.syspath_prepend(str(STANDIN))
    for module in [name for name in sys.modules if name == "tau_bench" or name.startswith("tau_bench.")]:
        monkeypatch.delitem(sys.modules, module)  # fresh modules: the adapter's routing is not installed in them
    import tau_bench.agents.tool_calling_agent as agent_module
    import tau_bench.envs.user as user_module
    from tau_bench.run import run
    from tau_bench.types import RunConfig

    # Scripted models (a results file needs some): the user says its instruction, then stops;
    # the agent looks a user up (a read-only tool call), then only answers, so v1's reward is 1
    # only where nothing had to change. For the water-bottle task the agent's server fails:
    # v1's run.py scores that 0, error in `info`.
    def agent(*, messages, **kwargs):
        if "water bottle" in messages[1]["content"]:
            raise ConnectionError("server unreachable")
        if not any(m.get("role") == "tool" for m in messages):
            return _tool_call("find_user_id_by_email", {"email": "nobody@example.com"})
        return _reply("Sorry, I cannot help with that.")

    def user(*, messages, **kwargs):
        opened = any(m.get("role") == "assistant" for m in messages)
        return _reply("###STOP###" if opened else messages[0]["content"].split("Instruction:", 1)[-1].strip())

    monkeypatch.setattr(agent_module, "completion", agent)
    monkeypatch.setattr(user_module, "completion", user)
    log_dir = tmp_path / "results"
    v1_results = run(
        RunConfig(
            model_provider="openai",
            user_model_provider="openai",
            model="org/agent-model",
            user_model="user-model",
            num_trials=2,
            env="retail",
            log_dir=str(log_dir),
        )
    )
    return log_dir, v1_results


def _tool_call(name: str, arguments: dict) -> ModelResponse:
    response = ModelResponse(
        choices=[
            {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": name, "arguments": json.dumps(arguments)},
                        }
                    ],
                }
            }
        ]
    )
    response._hidden_params["response_cost"] = 0.0
    return response


def test_the_report_reads_v1_run_py_results_files(tmp_path, monkeypatch):
    log_dir, v1_results = _results_of_v1_run_py(tmp_path, monkeypatch)
    [results_file] = log_dir.glob("*.json")
    assert results_file.name.startswith("tool-calling-agent-model-0.0_range_0--1_user-user-model-llm_")

    [(row, *_)] = find_configurations([log_dir])
    errors = [r for r in v1_results if "error" in r.info]
    scored = [r.reward for r in v1_results if "error" not in r.info]
    assert (row.env, row.agent, row.model, row.user, row.user_strategy) == (
        "retail (tau-bench v1)",
        "tool_calling",
        "agent-model",
        "user-model",
        "llm",
    )
    assert (row.results, row.harness_errors) == (len(scored), len(errors)) == (6, 2)
    assert row.avg_reward == pytest.approx(sum(scored) / len(scored))
    per_task: dict[int, list[float]] = {}
    for result in v1_results:
        if "error" not in result.info:
            per_task.setdefault(result.task_id, []).append(result.reward)
    expected_pass_2 = sum(all(r == 1.0 for r in rewards) for rewards in per_task.values()) / len(per_task)
    assert row.pass_hat_k[2] == pytest.approx(expected_pass_2)
    assert find_configurations([results_file])[0][0] == row  # the file alone, or its folder
    assert row.task_data is None  # v1's files do not say which data they ran


@pytest.mark.slow
def test_the_browser_shows_v1_trajectories(tmp_path, monkeypatch, page):
    """v1's OpenAI-format trajectories (tool calls with JSON-string arguments) in the sweep
    browser: each message, each tool call by name with its arguments."""
    log_dir, v1_results = _results_of_v1_run_py(tmp_path, monkeypatch)
    report_cli([str(log_dir), "--html"])
    entry = next(r for r in v1_results if "error" not in r.info and any(m.get("tool_calls") for m in r.traj))
    page.goto(f"{(log_dir / 'browser.html').as_uri()}#/config/0/task/{entry.task_id}/{entry.trial}")
    page.wait_for_selector(".conversation > li")
    assert page.locator(".conversation > li").count() == len(entry.traj)
    assert page.locator(".tool-call .tool-name").all_inner_texts() == ["→ find_user_id_by_email"]
    assert '"email": "nobody@example.com"' in page.inner_text(".tool-call")
    assert "Error: user not found" in page.inner_text(".message.tool")


def test_errors_in_v1_results_files_follow_the_rule_of_tau_exps_own_v1_jobs(tmp_path):
    """A model's malformed output that v1 recorded as an error is a scored 0 (the agent's error),
    as in bench=tau_bench jobs; a failing server is not scored."""
    from tau_exp.bench.tau_bench import MODEL_MISTAKES
    from tau_exp.bench.tau_bench_results import _MODEL_MISTAKE_NAMES, read_v1_results

    assert {mistake.__name__ for mistake in MODEL_MISTAKES} == _MODEL_MISTAKE_NAMES  # one rule

    def raised(line: str) -> dict:
        traceback = f'Traceback (most recent call last):\n  File "run.py", line 1, in <module>\n{line}\n'
        return {"error": line.split(": ", 1)[-1], "traceback": traceback}

    entries = [
        {
            "task_id": 0,
            "trial": 0,
            "reward": 0.0,
            "traj": [],
            "info": raised("json.decoder.JSONDecodeError: Expecting value"),
        },
        {"task_id": 1, "trial": 0, "reward": 0.0, "traj": [], "info": raised("ConnectionError: server unreachable")},
        {"task_id": 2, "trial": 0, "reward": 1.0, "traj": [], "info": {"reward_info": {}}},
    ]
    path = tmp_path / "react-m-0.0_range_0--1_user-u-llm_1234567890.json"
    path.write_text(json.dumps(entries))
    _, records = read_v1_results(path)
    assert [(r.status, r.reward, r.termination_reason) for r in records] == [
        (EpisodeStatus.scored, 0.0, "agent_error"),
        (EpisodeStatus.harness_error, None, None),
        (EpisodeStatus.scored, 1.0, None),
    ]
    assert records[0].ended_by == "v1 raised JSONDecodeError: Expecting value"
