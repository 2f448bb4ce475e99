"""sweep.py and job.py with the local launcher: every job records its outcome in status.json,
a failed job does not stop the sweep, and the sweep summary lists every job with its state and
metrics (the Slurm tier is in tests/tau_exp_launcher/). The old 120-job array preset expands to
120 jobs whose shards partition the split."""

from __future__ import annotations

import csv
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from tau_exp.bench import select_tasks
from tau_exp.bench.tau2 import load_tasks
from tau_exp.config import BenchConfig, TasksConfig
from tau_exp.tracking.sweep import main as sweep_cli


@pytest.mark.slow
def test_a_failed_job_is_recorded_the_sweep_goes_on_to_its_summary_and_its_advice_resumes_it(
    tmp_path, launch, project_root
):
    """A sweep of two jobs whose second fails every request: both run and are listed, the
    console says so, and the command the error message advises resumes the same sweep, running
    only what is unfinished."""
    first = launch(
        [
            "-m",
            "tasks.end=2",
            "tracking=none",
            "run.retry.attempts=1",
            "run.max_consecutive_errors=1",
            "model.server.oracle.faults.error_rate=0,1",
        ],
        cwd=tmp_path,
    )
    assert first.returncode == 1  # the sweep says that not every job completed...
    assert "1 of 2 jobs did not complete" in first.stderr
    # The table is the sweep's result: on stdout (logs and errors on stderr).
    assert "(1 of 2 completed)" in first.stdout and "(1 of 2 completed)" not in first.stderr
    [sweep_dir] = (tmp_path / "outputs" / "multirun").glob("*/*")
    with open(sweep_dir / "summary.csv") as summary:  # ...and every job ran and is listed
        rows = list(csv.DictReader(summary))
    # Jobs in Hydra's order, named by the value that tells them apart (env is in the name already).
    assert [row["job"] for row in rows] == [
        "0_retail_tool_calling_oracle_error_rate-0",
        "1_retail_tool_calling_oracle_error_rate-1",
    ]
    assert rows[1]["swept"] == "model.server.oracle.faults.error_rate=1"
    assert [row["state"] for row in rows] == ["completed", "failed"]
    assert [row["avg_reward"] for row in rows] == ["1.0", ""]
    assert "ended in infra or harness errors" in rows[1]["error"]
    status = json.loads((sweep_dir / rows[1]["job"] / "status.json").read_text())
    assert status["state"] == "failed" and status["exit_code"] == 2 and status["finished_at"]

    completed = (sweep_dir / rows[0]["job"] / "results.jsonl").read_bytes()
    again = subprocess.run(_advice(first.stderr, project_root), cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 1, again.stderr[-2000:]  # error_rate=1 still fails: the same sweep, resumed
    assert list((tmp_path / "outputs" / "multirun").glob("*/*")) == [sweep_dir]
    assert (sweep_dir / rows[0]["job"] / "results.jsonl").read_bytes() == completed  # nothing run again
    assert len(list((sweep_dir / rows[1]["job"] / ".hydra" / "invocations").iterdir())) == 2


@pytest.mark.slow
def test_a_single_job_records_its_status_and_bad_input_keeps_the_earlier_one(tmp_path, launch, attached):
    job_dir = tmp_path / "job"
    assert launch([f"hydra.run.dir={job_dir}", "tasks.end=1", *attached], cwd=tmp_path).returncode == 0
    status = (job_dir / "status.json").read_text()
    assert json.loads(status)["state"] == "completed"
    refused = launch([f"hydra.run.dir={job_dir}", "tasks.end=1", "run.seed=99", *attached], cwd=tmp_path)
    assert refused.returncode == 2
    assert (job_dir / "status.json").read_text() == status


@pytest.mark.slow
def test_the_summary_command_rereads_a_sweep_and_names_a_wrong_directory(tmp_path, launch, attached, capsys):
    sweep_dir = tmp_path / "sweep"
    assert (
        launch(
            ["-m", f"hydra.sweep.dir={sweep_dir}", "hydra/launcher=local", "tasks.end=1", "agent=act,react", *attached],
            cwd=tmp_path,
        ).returncode
        == 0
    )
    (sweep_dir / "summary.md").unlink()
    capsys.readouterr()
    sweep_cli([str(sweep_dir)])
    table = (sweep_dir / "summary.md").read_text()
    assert table.count("| completed |") == 2 and "0_retail_act_oracle" in table
    printed = capsys.readouterr()
    assert "(2 of 2 completed)" in printed.out and "0_retail_act_oracle" in printed.out and not printed.err
    try:
        sweep_cli([str(tmp_path / "nowhere")])
    except SystemExit as exit_info:
        assert exit_info.code == 2
    assert "is not a directory: give a sweep directory" in capsys.readouterr().err


@pytest.mark.slow
def test_jobs_of_a_sweep_over_plain_keys_are_named_and_listed_by_their_values(tmp_path, launch, attached):
    sweep_dir = tmp_path / "sweep"
    done = launch(
        ["-m", f"hydra.sweep.dir={sweep_dir}", "tasks.end=1", "tracking=none", "model.temperature=0.0,0.7", *attached],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = ["0_retail_tool_calling_oracle_temperature-0.0", "1_retail_tool_calling_oracle_temperature-0.7"]
    assert sorted(path.name for path in sweep_dir.iterdir() if path.is_dir()) == names
    with open(sweep_dir / "summary.csv") as summary:
        rows = list(csv.DictReader(summary))
    assert [(row["job"], row["swept"]) for row in rows] == list(
        zip(names, ["model.temperature=0.0", "model.temperature=0.7"], strict=True)
    )
    assert "| model.temperature=0.7 |" in (sweep_dir / "summary.md").read_text()

    # status, as from a login node: it never loads the benchmark or the model client to count pairs.
    status = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tau_exp.status", str(sweep_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in status.stderr.splitlines()}
    assert "omegaconf" in imported and not imported & {"tau2", "litellm"}
    lines = [line for line in status.stdout.splitlines() if "_temperature-" in line]
    assert len(lines) == 2 and all("1/1" in line for line in lines)
    assert "model.temperature=0.0" in lines[0] and "model.temperature=0.7" in lines[1]

    # A sweep begun by an older version (names without the values) resumes in its own directories.
    old_names = ["0_retail_tool_calling_oracle", "1_retail_tool_calling_oracle"]
    for name, old_name in zip(names, old_names, strict=True):
        (sweep_dir / name).rename(sweep_dir / old_name)
    results = {name: (sweep_dir / name / "results.jsonl").read_bytes() for name in old_names}
    again = launch(
        ["-m", f"hydra.sweep.dir={sweep_dir}", "tasks.end=1", "tracking=none", "model.temperature=0.0,0.7", *attached],
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert sorted(path.name for path in sweep_dir.iterdir() if path.is_dir()) == old_names
    assert {name: (sweep_dir / name / "results.jsonl").read_bytes() for name in old_names} == results


def test_the_old_120_job_array_preset_expands_to_120_jobs(conf_dir):
    with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir)):
        cfg = compose("config", overrides=["experiment=tau_bench_120"], return_hydra_config=True)
    overrides = [f"{key}={value}" for key, value in cfg.hydra.sweeper.params.items()]
    jobs = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(overrides), None)[0]
    assert len(jobs) == 120 and len({tuple(job) for job in jobs}) == 120
    assert cfg.model.server.kind == "vllm" and cfg.user.server.kind == "slurm"  # one shared user server
    # Its shards are its own: before conf/config.yaml stopped restating the schema's defaults, its
    # `tasks.num_shards: 1` overrode the preset's 5, and shards 1..4 were refused.
    assert cfg.tasks.num_shards == 5


def test_shards_partition_the_selection():
    tasks = [task.id for task in load_tasks("retail", "test")]
    shards = [
        [task.id for task in select_tasks(BenchConfig(), "retail", TasksConfig(num_shards=5, shard=shard))]
        for shard in range(5)
    ]
    assert sorted(sum(shards, [])) == sorted(tasks)  # every task once
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def _advice(stderr: str, project_root: Path) -> list[str]:
    """The command an error message says resumes the run, as a user would paste it."""
    command = shlex.split(stderr.split("with: ")[-1].strip().splitlines()[0])
    assert command[:2] == ["python", "launch.py"], command
    return [sys.executable, str(project_root / "launch.py"), *command[2:]]


@pytest.mark.slow
def test_the_resume_advice_of_an_incomplete_job_resumes_it(tmp_path, launch, project_root, attach_to, oracle_faults):
    faulty = attach_to(oracle_faults(assistant={"error_rate": 0.3, "seed": 1}))
    first = launch(
        ["tracking=none", "tasks.ids=[5,9,12]", *faulty, "run.retry.attempts=1"],
        cwd=tmp_path,
    )
    assert first.returncode == 3, first.stderr[-2000:]
    [job_dir] = (tmp_path / "outputs" / "runs").glob("*/*")
    before = (job_dir / "results.jsonl").read_text().splitlines()
    scored = [line for line in before if '"status":"scored"' in line]
    again = subprocess.run(_advice(first.stderr, project_root), cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode in (0, 3), again.stderr[-2000:]
    assert list((tmp_path / "outputs" / "runs").glob("*/*")) == [job_dir]  # the same directory, no new one
    after = (job_dir / "results.jsonl").read_text().splitlines()
    assert after[: len(before)] == before and len(after) == len(before) + len(before) - len(scored)  # only the rest


def test_the_summary_labels_each_job_gives_intervals_and_leaves_out_empty_columns(tmp_path, make_job, capsys):
    """The summary had no intervals, an empty `error` column and blank GPU-hours columns outside
    Slurm. Now: each job's label (as compare and the report name it), avg_reward and pass^k with
    their 95% intervals; summary.md and the printed table leave out what no job has (summary.csv
    keeps every column for scripts)."""
    from tau_exp.records import ConfigNames, EpisodeResult, EpisodeStatus
    from tau_exp.results.metrics import compute_metrics

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text("hydra:\n  overrides:\n    task: ['model.temperature=0.0,0.7']\n")
    for number, temperature in enumerate(("0.0", "0.7")):
        records = [
            EpisodeResult(task_id=str(t), trial=0, seed=0, status=EpisodeStatus.scored, reward=float(t % 3 > 0))
            for t in range(10)
        ]
        job_dir = make_job(
            sweep / f"{number}_retail_tool_calling_oracle", [f"model.temperature={temperature}"], records
        )
        (job_dir / ".hydra" / "overrides.yaml").write_text(f"- model.temperature={temperature}\n")
        names = ConfigNames(
            env="retail", split="test", agent="tool_calling", model="oracle", user="oracle", user_strategy="llm"
        )
        metrics = compute_metrics(records, [str(t) for t in range(10)], 1, names)
        (job_dir / "metrics.json").write_text(metrics.model_dump_json())
    sweep_cli([str(sweep)])
    printed = capsys.readouterr().out
    with open(sweep / "summary.csv") as summary:
        rows = list(csv.DictReader(summary))
    assert [row["label"] for row in rows] == ["temperature=0.0", "temperature=0.7"]
    interval = rows[0]["avg_reward_ci"]
    low, high = map(float, interval.split("–"))
    assert low < 0.6 < high and f"1: 0.60 ({interval})" == rows[0]["pass_hat_k"]  # 6 of 10 tasks
    assert "gpu_hours" in rows[0] and "error" in rows[0]  # the CSV keeps every column
    markdown = (sweep / "summary.md").read_text()
    assert "| temperature=0.7 |" in markdown and interval in markdown
    assert "gpu_hours" not in markdown and "| error |" not in markdown
    assert "temperature=0.7" in printed and interval in printed and "error" not in printed
