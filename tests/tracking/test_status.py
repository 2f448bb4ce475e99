"""status.py: the live progress of a real sweep caught in the middle — one job finished, one
failed, one running, one not started yet; a sweep of job directories written by an older
version (no pairs in status.json: `?`, and the benchmark is never loaded to count them); a
single job's directory; and --watch into a pipe."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tau_exp.tracking.status import main as status_cli

OLD_JOB = Path(__file__).parents[1] / "fixtures" / "job_made_by_4bf382a"  # see test_compatibility.py


@pytest.fixture
def old_sweep(tmp_path: Path) -> Path:
    """A sweep directory holding one job directory written by commit 4bf382a (no `pairs`)."""
    shutil.copytree(OLD_JOB, tmp_path / "sweep" / "0_retail_tool_calling_oracle")
    return tmp_path / "sweep"


def status_process(*args: str, **popen) -> subprocess.Popen:
    """`python -m tau_exp.status ARGS`, and after it the benchmark and model-client packages it
    imported (none, the test says), as one JSON line on stderr."""
    code = (
        "import json, sys\n"
        "from tau_exp.tracking.status import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "finally:\n"
        "    heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tau2', 'litellm', 'wandb'})\n"
        "    print(json.dumps(heavy), file=sys.stderr)\n"
    )
    return subprocess.Popen([sys.executable, "-c", code, *args], text=True, **popen)


def test_status_reads_old_job_directories_without_loading_the_benchmark(old_sweep: Path):
    done = status_process(str(old_sweep), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert json.loads(err.strip().splitlines()[-1]) == []  # neither tau2 nor litellm imported
    assert "1 incomplete" in out and "4/?" in out  # 4 scored of a total it did not record


def test_status_of_a_single_job_directory_shows_that_jobs_row(tmp_path: Path, capsys):
    """Single jobs are the first workflow (`python launch.py`, outputs/runs/<date>/<time>): status
    takes a job directory as well as a sweep directory."""
    job_dir = tmp_path / "runs" / "2026-12-01" / "11-02-59"
    shutil.copytree(OLD_JOB, job_dir)
    status_cli([str(job_dir), "--json"])
    progress = json.loads(capsys.readouterr().out)
    assert progress["kind"] == "job" and progress["pending"] is None
    [job] = progress["jobs"]
    assert (job["job"], job["state"], job["done"], job["infra_errors"]) == ("11-02-59", "incomplete", 4, 2)
    status_cli([str(job_dir)])
    table = capsys.readouterr().out
    assert table.lstrip().startswith("job ") and "1 incomplete" in table and "4/?" in table  # titled as a job


def test_a_directory_that_is_neither_a_sweep_nor_a_job_is_named(tmp_path: Path, capsys):
    with pytest.raises(SystemExit):
        status_cli([str(tmp_path)])
    assert (
        "give a sweep directory such as outputs/multirun/<date>/<time>, or a job directory" in capsys.readouterr().err
    )


def read_until(pipe, text: str, count: int, timeout_s: float) -> str:
    """What `pipe` gave until `text` appeared `count` times (fails after `timeout_s`)."""
    deadline, seen = time.monotonic() + timeout_s, b""
    while seen.decode(errors="replace").count(text) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{text!r} not seen {count} times within {timeout_s} s: {seen.decode()!r}"
        if select.select([pipe], [], [], remaining)[0]:
            chunk = os.read(pipe.fileno(), 1 << 16)
            assert chunk, f"the pipe closed: {seen.decode()!r}"
            seen += chunk
    return seen.decode()


def test_watch_into_a_pipe_prints_the_plain_table_once_per_refresh(old_sweep: Path):
    watch = status_process(str(old_sweep), "--watch", "0.2", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        out = read_until(watch.stdout, "sweep ", count=2, timeout_s=60)  # two refreshes: two tables
    finally:
        watch.terminate()
        watch.wait(timeout=30)
    assert "0_retail_tool_calling_oracle" in out and "4/?" in out
    assert "\x1b[" not in out  # plain text: no cursor movement or colours


@pytest.mark.slow  # end to end: not in the fast tier (pytest -m "not slow")
def test_status_of_a_sweep_in_progress(tmp_path, capsys, launch_process, attach_to, oracle_faults):
    sweep_dir = tmp_path / "sweep"
    slow = attach_to(oracle_faults(assistant={"latency_s": 0.3}))
    # Four jobs, one after another (Hydra's basic launcher): 2 tasks, a bad range (fails at once),
    # 3 slow tasks (caught running), 4 tasks (not started when we look).
    sweep = launch_process(
        [
            "-m",
            f"hydra.sweep.dir={sweep_dir}",
            "tasks.end=2,999,3,4",
            "run.max_concurrency=1",
            *slow,
        ],
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 300
        while not list(sweep_dir.glob("2_*/results.jsonl")):
            assert sweep.poll() is None and time.monotonic() < deadline, sweep.communicate()
            time.sleep(0.2)
        status_cli([str(sweep_dir), "--json"])
        progress = json.loads(capsys.readouterr().out)
        status_cli([str(sweep_dir)])  # the table, as people see it
        table = capsys.readouterr().out
    finally:
        sweep.send_signal(signal.SIGINT)
        sweep.communicate(timeout=120)

    jobs = {job["job"].split("_")[0]: job for job in progress["jobs"]}
    assert (jobs["0"]["state"], jobs["0"]["done"], jobs["0"]["total"], jobs["0"]["avg_reward"]) == (
        "completed",
        2,
        2,
        1.0,
    )
    assert jobs["1"]["state"] == "failed" and "tasks.start=0, tasks.end=999 is out of range" in jobs["1"]["error"]
    assert jobs["2"]["state"] == "running" and jobs["2"]["total"] == 3 and 1 <= jobs["2"]["done"] < 3
    assert set(jobs) == {"0", "1", "2"} and progress["pending"] == 1
    assert "1 completed, 1 failed, 1 running, 1 pending" in table and "2/2" in table


@pytest.mark.parametrize(
    "task_overrides, sweeper_params, jobs",
    [
        (["env=retail,airline", "agent=tool_calling,react,act", "run.seed=3"], {}, 6),
        (["env=retail,airline", "env=telecom"], {}, 1),  # a key given twice: its last value
        (["model.temperature=range(0,1,0.25)"], {"run.seed": "1,2"}, 8),  # a range; the sweeper's params
        (["tasks.end=5"], {}, 1),  # no sweep: one job
    ],
)
def test_the_expected_job_count_is_what_hydras_basic_sweeper_launches(tmp_path, task_overrides, sweeper_params, jobs):
    """status counts a sweep's jobs from multirun.yaml with Hydra's public override parser; the
    count equals what Hydra's basic sweeper itself expands (its internal API, used here as the
    reference only)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from omegaconf import OmegaConf

    from tau_exp.jobdir import SweepDir
    from tau_exp.tracking.status import expected_jobs

    hydra = {"overrides": {"task": task_overrides}, "sweeper": {"params": sweeper_params}}
    OmegaConf.save(OmegaConf.create({"hydra": hydra}), tmp_path / "multirun.yaml")
    sweep = SweepDir(tmp_path)
    launched = sum(len(batch) for batch in BasicSweeper.split_arguments(sweep.overrides() or [], None))
    assert expected_jobs(sweep) == launched == jobs
