"""experiment.py end to end: real tau2 episodes over real HTTP (litellm) against oracle model
servers, scored by tau2's own evaluation; outputs as DESIGN.md's contract says."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tau_exp import bench, experiment
from tau_exp.config import BenchConfig
from tau_exp.errors import IncompleteRun, TauExpError
from tau_exp.records import EpisodeResult, EpisodeStatus, FaultCounts, Manifest, Metrics, ModelUsage
from tau_exp.servers import provide
from tests.support.oracle_chat import stats
from tests.support.records import job_metrics


def results(job_dir: Path) -> list[EpisodeResult]:
    return [EpisodeResult.model_validate_json(line) for line in (job_dir / "results.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_default_command_runs_the_retail_test_split_with_the_oracle(tmp_path, launch):
    """`python launch.py` with nothing else: retail test split, oracle models, results printed."""
    done = launch([], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    job_dir = Path(done.stdout.split("results: ")[1].splitlines()[0])
    assert job_dir.is_relative_to(tmp_path / "outputs")
    assert "avg_reward=1.0000 · pass^1=1.0000" in done.stdout
    metrics = json.loads((job_dir / "metrics.json").read_text())
    assert {
        k: metrics[k] for k in ("avg_reward", "pass_hat_k", "n_tasks", "n_trials", "n_results", "n_infra_errors")
    } == {
        "avg_reward": 1.0,
        "pass_hat_k": {"1": 1.0},
        "n_tasks": 40,
        "n_trials": 1,
        "n_results": 40,
        "n_infra_errors": 0,
    }
    assert (metrics["env"], metrics["agent"], metrics["model"], metrics["user"]) == (
        "retail",
        "tool_calling",
        "oracle",
        "oracle",
    )
    assert (job_dir / ".hydra" / "config.yaml").exists()
    assert sorted(p.name.split("_")[0] for p in (job_dir / "servers").glob("*.log")) == ["assistant", "user"]


@pytest.mark.slow
def test_oracle_scores_one_on_every_telecom_workflow_test_task(tmp_path, compose_cfg, attached):
    """tau2's own evaluation gives the oracle 1.0 on every test task of a whole domain run as a job
    (workers, the gold cache): telecom-workflow here, where the oracle plays the user's gold
    actions on the user's device too under tau2's step-by-step policy. Retail's, airline's and
    telecom's test tasks get the same proof in tests/bench/test_tau2_scoring.py, where each reward
    is also checked against tau2's unmodified evaluation (tau2's leaderboard reports the test
    splits; telecom's 2,285 tasks in all would take minutes)."""
    metrics = experiment.run(
        compose_cfg("env=telecom-workflow", "tasks.split=test", "run.max_concurrency=4", *attached), tmp_path
    )
    failed = [(r.task_id, r.reward, r.termination_reason) for r in results(tmp_path) if r.reward != 1.0]
    assert failed == []
    assert (metrics.n_results, metrics.avg_reward, metrics.n_infra_errors) == (40, 1.0, 0)


@pytest.mark.parametrize("domain", ["retail", "airline"])
def test_several_trials_with_concurrency_give_one_record_per_pair(tmp_path, compose_cfg, attached, domain):
    cfg = compose_cfg(f"env={domain}", "tasks.end=4", "run.num_trials=3", "run.max_concurrency=6", *attached)
    metrics = experiment.run(cfg, tmp_path)
    records = results(tmp_path)
    assert Counter(r.key for r in records) == {(t, k): 1 for t in {r.task_id for r in records} for k in range(3)}
    assert len(records) == 12 and all(r.reward == 1.0 for r in records)
    assert metrics.pass_hat_k == {"1": 1.0, "2": 1.0, "3": 1.0}
    assert len({r.seed for r in records}) == 12  # a seed per (task, trial)


def test_rerun_resumes_and_runs_only_what_is_missing(tmp_path, compose_cfg, attached, oracle_servers):
    """A rerun runs only the pairs not yet scored, and a wider range resumes: the task data
    recorded (the split's, not the range's) stays the same, in manifest.json and metrics.json."""
    experiment.run(compose_cfg("tasks.end=2", *attached), tmp_path)
    task_data = bench.fingerprint(BenchConfig(), "retail", "test")
    assert Manifest.model_validate_json((tmp_path / "manifest.json").read_text()).task_data == task_data
    stats_url = oracle_servers["user"].base_url.removesuffix("/v1") + "/oracle/stats"
    before = httpx.get(stats_url).json()["requests"]
    metrics = experiment.run(compose_cfg("tasks.end=3", *attached), tmp_path)  # one more task
    assert httpx.get(stats_url).json()["requests"] - before == 2  # one conversation: opening + stop
    assert sorted(r.task_id for r in results(tmp_path)) == ["12", "5", "9"]  # each once
    assert (metrics.n_results, metrics.avg_reward) == (3, 1.0)
    assert (
        metrics.task_data == task_data == Metrics.model_validate_json((tmp_path / "metrics.json").read_text()).task_data
    )
    experiment.run(compose_cfg("tasks.end=3", *attached), tmp_path)  # nothing left: no server needed
    assert httpx.get(stats_url).json()["requests"] - before == 2
    assert len(results(tmp_path)) == 3


@pytest.mark.slow
def test_persistent_infra_errors_stop_the_job_are_not_scored_and_are_rerun_on_resume(
    tmp_path, compose_cfg, attached, attach_to, oracle_faults
):
    broken = compose_cfg(
        "tasks.end=6",
        *attach_to(oracle_faults(user={"error_rate": 1.0})),
        "run.retry.attempts=2",
        "run.retry.initial_backoff_s=0.01",
        "run.max_consecutive_errors=3",
        "run.max_concurrency=1",
    )
    with pytest.raises(TauExpError, match="3 .* pairs in a row ended in infra or harness errors"):
        experiment.run(broken, tmp_path)
    records = results(tmp_path)
    assert [r.status for r in records] == [EpisodeStatus.infra_error] * 3
    assert all(r.reward is None and "after 2 attempts" in r.error.message for r in records)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (metrics["avg_reward"], metrics["n_infra_errors"], metrics["n_results"], metrics["n_pending"]) == (
        None,
        3,
        0,
        3,
    )

    # The server is back (here: the healthy shared oracle): the same job finishes everything.
    metrics = experiment.run(compose_cfg("tasks.end=6", *attached), tmp_path)
    assert (metrics.n_results, metrics.avg_reward, metrics.n_infra_errors) == (6, 1.0, 0)


@pytest.mark.slow
def test_intermittent_faults_are_retried_and_every_pair_is_scored(tmp_path, compose_cfg, attach_to, oracle_faults):
    faulty = oracle_faults(assistant={"error_rate": 0.2, "timeout_rate": 0.1, "hang_s": 3}, user={"drop_rate": 0.3})
    cfg = compose_cfg(
        "tasks.end=4",
        *attach_to(faulty),
        "model.timeout_s=1",
        "run.retry.attempts=10",
        "run.retry.initial_backoff_s=0.01",
        "run.retry.max_backoff_s=0.05",
    )
    metrics = experiment.run(cfg, tmp_path)
    assert (metrics.n_results, metrics.avg_reward, metrics.n_infra_errors) == (4, 1.0, 0)
    assert metrics.usage["assistant"].retries > 0 and metrics.usage["user"].retries > 0


@pytest.mark.slow
def test_injected_faults_and_the_retries_they_cause_are_in_metrics_and_the_headline(
    tmp_path, compose_cfg, attach_to, oracle_faults, capsys
):
    """What an oracle injects is the job's to report, not only its server log's last line: each
    kind's count and the requests its rate is a share of, equal to the oracle's own counts; and
    the retries the 5xx caused, although every pair was scored (no infra error)."""
    faulty = oracle_faults(assistant={"error_rate": 0.1, "unhelpful_rate": 0.3, "seed": 1})
    cfg = compose_cfg(
        "tasks.end=2", *attach_to(faulty), "run.retry.initial_backoff_s=0.01", "run.retry.max_backoff_s=0.05"
    )
    metrics = experiment.run(cfg, tmp_path)
    served = stats(faulty["assistant"])  # the oracle's own counts, started again for this test by oracle_faults
    injected = Metrics.model_validate_json((tmp_path / "metrics.json").read_text()).injected_faults
    assert injected is not None and set(injected) == {"assistant"}  # the user's oracle has no faults
    counts = injected["assistant"]
    assert counts.rates == {"error_rate": 0.1, "unhelpful_rate": 0.3} and counts.shared  # attached: not the job's own
    assert (counts.requests, counts.error, counts.text_replies, counts.unhelpful) == (
        served["requests"],
        served["fault_error"],
        served["text_replies"],
        served.get("fault_unhelpful", 0),
    )
    assert counts.error > 0 and counts.text_replies < counts.requests / 2  # unhelpful_rate: of text replies only
    assert metrics.n_infra_errors == 0 and metrics.usage["assistant"].retries == counts.error  # each retried once
    headline = capsys.readouterr().out
    assert f"retries {counts.error} (transient errors, recovered: assistant {counts.error})" in headline
    assert f"injected faults (assistant, the server's counts: its other clients' too): {counts.describe()}" in headline


def test_the_headline_says_what_was_retried_and_what_the_oracles_injected(tmp_path):
    clean = job_metrics(n_tasks=40, n_results=40)
    # Nothing retried, nothing injected, nothing failed: the five lines the README shows.
    assert experiment.summary_lines(clean, tmp_path)[1:] == [
        "retail/test · agent=tool_calling · model=oracle · user=oracle",
        "avg_reward=1.0000 · pass^1=1.0000",
        "40 scored of 40 tasks × 1 trials · infra errors 0 · harness errors 0 · pending 0",
        "failures: none (every scored conversation passed)",
    ]
    # Failures: one line, the commonest mode first.
    failed = clean.model_copy(update={"failure_modes": {"missed_required_action": 2, "communication_missed": 3}})
    assert (
        experiment.summary_lines(failed, tmp_path)[-1]
        == "failures 5: communication_missed 3 · missed_required_action 2"
    )
    injected = FaultCounts(
        rates={"error_rate": 0.1, "unhelpful_rate": 0.3},
        shared=False,
        requests=144,
        answered=130,
        text_replies=10,
        tool_call_replies=120,
        error=14,
        unhelpful=3,
    )
    faulty = clean.model_copy(
        update={
            "usage": {"assistant": ModelUsage(calls=144, retries=14), "user": ModelUsage(calls=50)},
            "injected_faults": {"assistant": injected},
        }
    )
    assert experiment.summary_lines(faulty, tmp_path)[5:] == [
        "retries 14 (transient errors, recovered: assistant 14)",
        "injected faults (assistant): error 14 of 144 requests (rate 0.1) · unhelpful 3 of 10 text replies (rate 0.3)",
    ]
    # Some pairs lost to infra errors: not every retried call recovered.
    lost = faulty.model_copy(update={"n_infra_errors": 2, "n_results": 38})
    assert "retries 14 (transient errors, retried: assistant 14)" in experiment.summary_lines(lost, tmp_path)


def test_api_keys_never_reach_the_job_directory(tmp_path, compose_cfg, attached, oracle_servers):
    experiment.run(compose_cfg("tasks.end=1", *attached), tmp_path)
    keys = [oracle_servers[role].api_key for role in ("assistant", "user")]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not any(key in text for key in keys), path


@pytest.mark.slow
def test_infra_errors_below_the_stop_threshold_end_the_job_as_incomplete(
    tmp_path, compose_cfg, attach_to, oracle_faults
):
    faulty = attach_to(oracle_faults(user={"error_rate": 1.0}))
    cfg = compose_cfg("tasks.end=2", *faulty, "run.retry.attempts=1")
    with pytest.raises(IncompleteRun, match="2 .* pairs were not scored \\(2 infra errors, 0 harness errors"):
        experiment.run(cfg, tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["n_infra_errors"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("role, reason", [("assistant", "agent_error"), ("user", "user_error")])
def test_an_empty_reply_ends_the_conversation_as_that_roles_error_and_is_scored(
    tmp_path, compose_cfg, attach_to, oracle_faults, role, reason
):
    faulty = attach_to(oracle_faults(**{role: {"empty_rate": 1.0}}))
    metrics = experiment.run(compose_cfg("tasks.end=2", *faulty), tmp_path)
    assert [(r.status, r.reward, r.termination_reason) for r in results(tmp_path)] == [
        (EpisodeStatus.scored, 0.0, reason)
    ] * 2
    assert (metrics.n_results, metrics.avg_reward, metrics.n_infra_errors) == (2, 0.0, 0)
    # The record says why: the browser shows it in the task view.
    assert all("sent an empty reply" in (r.ended_by or "") for r in results(tmp_path))


@pytest.mark.slow
def test_a_conversation_cut_by_the_step_limit_says_so_in_its_record(tmp_path, compose_cfg, attached):
    experiment.run(compose_cfg("tasks.end=1", "run.max_steps=3", *attached), tmp_path)
    [record] = results(tmp_path)
    assert (record.status, record.termination_reason) == (EpisodeStatus.scored, "max_steps")
    assert record.ended_by == "the conversation reached 3 steps (run.max_steps)"


@pytest.mark.slow
def test_malformed_tool_arguments_are_scored_as_the_agents_mistakes(tmp_path, compose_cfg, attach_to, oracle_faults):
    faulty = attach_to(oracle_faults(assistant={"bad_arguments_rate": 1.0}))
    metrics = experiment.run(compose_cfg("tasks.end=2", *faulty), tmp_path)
    assert (metrics.n_results, metrics.avg_reward, metrics.n_infra_errors) == (2, 0.0, 0)
    tool_errors = [m for r in results(tmp_path) for m in r.messages if m["role"] == "tool" and m["error"]]
    assert tool_errors and "__unparsed_arguments__" in tool_errors[0]["content"]
    # Both failures diagnosed, in metrics.json, as the agent's malformed calls (diagnosis.py).
    assert metrics.failure_modes == {"tool_call_schema_error": 2}


@pytest.mark.slow
def test_a_model_server_killed_mid_run_leaves_infra_errors_never_zeros_and_resume_completes(
    tmp_path, compose_cfg, attached, oracle_model, monkeypatch, wait_until
):
    model = oracle_model(latency_s=0.2)
    job_dir = tmp_path / "job"
    outcome: dict[str, BaseException] = {}
    with provide("assistant", model, tmp_path / "servers") as server:
        overrides = [
            *attached,
            "model.server.kind=attach",
            f"model.server.base_url={server.base_url}",
            "model.server.api_key_env=KILLED_SERVER_KEY",
            "tasks.end=10",
            "run.max_concurrency=2",
            "run.retry.attempts=2",
            "run.retry.initial_backoff_s=0.05",
            "run.max_consecutive_errors=2",
        ]
        monkeypatch.setenv("KILLED_SERVER_KEY", server.api_key or "")

        def run() -> None:
            try:
                experiment.run(compose_cfg(*overrides), job_dir)
            except BaseException as error:  # noqa: BLE001 — the test inspects it
                outcome["error"] = error

        runner = threading.Thread(target=run)
        runner.start()

        def three_results() -> bool:
            assert runner.is_alive(), outcome
            path = job_dir / "results.jsonl"
            return path.exists() and len(path.read_text().splitlines()) >= 3

        wait_until(three_results, 300, "three results")
    # Leaving the block stopped the assistant's server in the middle of the run.
    runner.join(timeout=120)
    assert isinstance(outcome.get("error"), TauExpError)
    records = results(job_dir)
    assert {r.status for r in records} == {EpisodeStatus.scored, EpisodeStatus.infra_error}
    assert all(r.reward == 1.0 for r in records if r.status == EpisodeStatus.scored)  # no failure was scored as 0
    assert all(r.reward is None for r in records if r.status == EpisodeStatus.infra_error)

    # A restarted server (another port: the URL may change on resume) completes the job.
    metrics = experiment.run(compose_cfg(*attached, "tasks.end=10", "run.max_concurrency=2"), job_dir)
    assert (metrics.n_results, metrics.avg_reward, metrics.n_infra_errors) == (10, 1.0, 0)


@pytest.mark.slow
def test_faults_at_thirty_percent_are_told_apart_and_the_run_finishes(tmp_path, compose_cfg, attach_to, oracle_faults):
    # 30% of the assistant's replies are faulty: infra faults (5xx, hangs, dropped connections,
    # non-JSON bodies) are retried away; malformed tool arguments are the model's mistakes, scored.
    rates = ("error_rate", "timeout_rate", "drop_rate", "malformed_rate", "bad_arguments_rate")
    faulty = oracle_faults(assistant={"latency_s": 0.05, "hang_s": 3, **dict.fromkeys(rates, 0.06)})
    cfg = compose_cfg(
        "tasks.end=6",
        *attach_to(faulty),
        "model.timeout_s=1",
        "run.retry.attempts=12",
        "run.retry.initial_backoff_s=0.01",
        "run.retry.max_backoff_s=0.05",
    )
    metrics = experiment.run(cfg, tmp_path)
    assert (metrics.n_results, metrics.n_infra_errors, metrics.n_harness_errors) == (6, 0, 0)  # all scored
    assert metrics.usage["assistant"].retries > 0  # the infra faults happened, and were retried
    # The model faults reached the conversations as failed tool calls (the fault seed is fixed).
    tool_errors = [m for r in results(tmp_path) for m in r.messages if m["role"] == "tool" and m["error"]]
    assert any("__unparsed_arguments__" in m["content"] for m in tool_errors)


@pytest.mark.slow
def test_a_failed_job_of_a_sweep_says_why_on_the_console_and_in_its_log(tmp_path, launch):
    """The console is quiet by default, but a job's error in a sweep (logged, and the sweep goes on) reaches it."""
    sweep_dir = tmp_path / "sweep"
    result = launch(["-m", f"hydra.sweep.dir={sweep_dir}", "tasks.ids=[nosuch]"], cwd=tmp_path)
    assert result.returncode == 1
    assert "[tau_exp.job.outcome][ERROR] - job failed: task id(s) nosuch not in retail/test" in result.stdout
    [job_log] = sweep_dir.glob("*/launch.log")
    assert "job failed: task id(s) nosuch not in retail/test" in job_log.read_text()
