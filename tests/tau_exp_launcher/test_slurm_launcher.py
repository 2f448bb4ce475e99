"""hydra_plugins/tau_exp_launcher: sweeps through sbatch on the real single-node Slurm cluster
(scripts/local_slurm.sh), with the oracle models: job directories, Slurm logs, the sweep
summary (also with failed and killed jobs), a shared user server for the whole array and the
GPU-hours each job held, requeue on the time limit and on preemption with resume, and bad
requests refused up front. Each sweep carries as many of these as one array can: a sweep
through sbatch costs tens of seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tau_exp import slurm_client
from tau_exp.job import cost
from tau_exp.jobdir import JobDir
from tau_exp.servers.registry import Registry

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("slurm_cluster")]

# The local cluster has no accelerators and 8 advertised CPUs: ask for one CPU, no GPU.
SLURM = [
    "hydra/launcher=slurm_gaudi",
    "hydra.launcher.partition=debug",
    "hydra.launcher.gres=null",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=null",
]


@pytest.fixture(scope="session")
def sweep(launch):
    """`sweep(tmp_path, *overrides)`: a sweep through sbatch into tmp_path/sweep, as a user runs it."""

    def run(tmp_path: Path, *overrides: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
        return launch(
            ["-m", f"hydra.sweep.dir={tmp_path / 'sweep'}", *SLURM, *overrides], cwd=tmp_path, timeout_s=timeout_s
        )

    return run


def summary_rows(tmp_path: Path) -> dict[str, dict[str, str]]:
    import csv

    with open(tmp_path / "sweep" / "summary.csv") as summary:
        return {row["job"]: row for row in csv.DictReader(summary)}


def result_keys(job_dir: Path) -> list[tuple[str, int]]:
    return [(record["task_id"], record["trial"]) for record in map(json.loads, (job_dir / "results.jsonl").open())]


def test_a_sweep_runs_as_a_slurm_array_and_its_summary_lists_completed_failed_and_killed_jobs(tmp_path, sweep):
    """Four jobs of one array (error_rate × latency), each in a readable job directory named by
    what tells it apart, with its Slurm log linked. Job 0 completes. Job 1 (slow, healthy) has
    its Python process SIGKILLed while it runs, as the kernel's out-of-memory killer would: it
    dies without a result and without a word. Jobs 2 and 3 fail every request (error_rate=1):
    recorded, not raised. The summary lists all four."""
    done = threading.Event()

    def kill_the_slow_job() -> None:
        while not done.is_set():
            found = list((tmp_path / "sweep").glob("1_*/results.jsonl"))
            if found and found[0].stat().st_size > 0:
                job_id = json.loads((found[0].parent / "status.json").read_text())["slurm_job_id"]
                os.kill(_job_python(job_id), signal.SIGKILL)
                return
            time.sleep(0.3)

    killer = threading.Thread(target=kill_the_slow_job)
    killer.start()
    try:
        result = sweep(
            tmp_path,
            "model.name=acme/oracle-1",
            "tasks.end=4",
            "run.max_concurrency=1",
            "run.retry.attempts=1",
            "run.max_consecutive_errors=1",
            "model.server.oracle.faults.error_rate=0,1",
            "model.server.oracle.latency_s=0,0.5",
        )
    finally:
        done.set()
        killer.join()
    assert result.returncode == 1, result.stderr[-3000:]
    assert "3 of 4 jobs did not complete" in result.stderr
    assert "ended without a result" in result.stdout + result.stderr  # the launcher noticed, and went on

    sweep_dir = tmp_path / "sweep"
    jobs = sorted(path.name for path in sweep_dir.iterdir() if path.is_dir() and not path.name.startswith("."))
    assert jobs == [
        f"{n}_retail_tool_calling_acme_oracle-1_error_rate-{error}_latency_s-{latency}"
        for n, (error, latency) in enumerate([(0, 0), (0, 0.5), (1, 0), (1, 0.5)])
    ]
    completed = sweep_dir / jobs[0]
    status = json.loads((completed / "status.json").read_text())
    assert status["state"] == "completed" and status["slurm_job_id"]  # it really ran under Slurm
    [log] = completed.glob("slurm_*.log")  # the job's Slurm log, linked
    assert "Starting with JobEnvironment" in log.read_text()
    # Nobody watches a Slurm job's console: its log keeps every INFO line (a local job's is quiet).
    assert "[INFO] - starting assistant oracle server: " in log.read_text()

    rows = {name.split("_")[0]: row for name, row in summary_rows(tmp_path).items()}
    assert (rows["0"]["state"], rows["0"]["avg_reward"]) == ("completed", "1.0")
    assert rows["1"]["state"] == "died"  # it could not record its outcome; its row says so
    for failed in ("2", "3"):
        assert rows[failed]["state"] == "failed"
        assert "in a row ended in infra or harness errors" in rows[failed]["error"]
    assert (sweep_dir / "summary.md").read_text().count("| completed |") == 1


def _of_job(environ: list[bytes], slurm_job_id: str) -> bool:
    """Whether a process's environment is Slurm job `slurm_job_id`'s (an array task: <array>_<task>)."""
    array, _, task = slurm_job_id.partition("_")
    wanted = [f"SLURM_ARRAY_JOB_ID={array}", f"SLURM_ARRAY_TASK_ID={task}"] if task else [f"SLURM_JOB_ID={array}"]
    return all(entry.encode() in environ for entry in wanted)


def _job_python(slurm_job_id: str) -> int:
    """The pid of the Python process that runs the Slurm job (submitit's runner)."""
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        is_python = Path(cmdline[0].decode(errors="replace")).name.startswith("python")  # not the srun around it
        if is_python and b"submitit.core._submit" in cmdline and _of_job(environ, slurm_job_id):
            return int(proc.name)
    raise AssertionError(f"no Python process of Slurm job {slurm_job_id}")


def test_a_shared_user_server_serves_the_whole_array_and_a_second_sweep(tmp_path, sweep, attached):
    """Also the GPU-hours each job held, on the cluster's GPUs without devices: one per job and
    two for the shared server, whose hours are split between the jobs by the tokens each used.
    (The assistant is the session's oracle, attached: not a server of the cluster's.)"""
    registry = tmp_path / "registry"
    shared = [
        *[override for override in attached if override.startswith("model.")],
        "user.server.kind=slurm",
        "user.server.slurm.serves=oracle",
        f"user.server.slurm.registry_dir={registry}",
        "user.server.slurm.start_timeout_s=120",
        "user.server.slurm.gres=gpu:2",
        "hydra.launcher.gres=gpu:1",
    ]
    try:
        result = sweep(tmp_path, "env=retail,airline", "agent=tool_calling,act", "tasks.end=1", *shared)
        assert result.returncode == 0, result.stderr[-3000:]
        entries = Registry(registry).entries()
        assert len(entries) == 1  # one server job for the four jobs of the array
        server_job = entries[0].job.job_id
        logs = "".join(path.read_text() for path in (tmp_path / "sweep").glob("*/launch.log"))
        assert logs.count(f"shared user server ready at {entries[0].address.base_url} (Slurm job {server_job})") == 4
        assert logs.count("submitted shared user server job") == 1
        jobs = [JobDir(path.parent) for path in (tmp_path / "sweep").glob("*/metrics.json")]
        assert len(jobs) == 4
        for job in jobs:
            assert_cost_matches_slurm(job, server_job)
        assert "GPU-hours:" in result.stdout
        assert all(row["gpu_hours"] for row in summary_rows(tmp_path).values())

        (tmp_path / "second").mkdir()
        again = sweep(tmp_path / "second", "tasks.end=1", *shared)
        assert again.returncode == 0, again.stderr[-3000:]
        assert Registry(registry).entries()[0].job.job_id == server_job  # reused, not resubmitted
        # Alone on the server, the job used every token it processed: charged all its hours.
        (alone,) = [JobDir(path.parent) for path in (tmp_path / "second" / "sweep").glob("*/metrics.json")]
        assert_cost_matches_slurm(alone, server_job)
        (span,) = cost.read_spans(alone.cost)
        assert span.shared[0].share == pytest.approx(1.0)
    finally:
        for entry in Registry(registry).entries():
            slurm_client.cancel(entry.job.job_id)


def assert_cost_matches_slurm(job: JobDir, server_job: str) -> None:
    """The job's own GPU-hours are its allocation's (1 GPU from Slurm's start until the run
    ended, a few seconds before the job did); the shared server's 2 GPUs are charged by the
    share of the tokens it processed that were this job's."""
    metrics = job.read_metrics()
    (span,) = cost.read_spans(job.cost)
    allocation = slurm_client.allocation(job.read_status().slurm_job_id)
    assert allocation.gres == {"gpu": 1} and span.gres == {"gpu": 1}
    assert span.start == allocation.start  # from the allocation's start: the job's start-up counts
    assert allocation.end - 30 < span.end <= allocation.end + 1  # the job has ended: its real end
    (server,) = span.shared
    assert server.slurm_job_id == server_job and server.gres == {"gpu": 2} and server.roles == ["user"]
    used = sum(r.usage["user"].prompt_tokens + r.usage["user"].completion_tokens for r in job.read_results())
    assert server.job_tokens == used > 0
    assert server.server_tokens >= used and 0 < server.share <= 1
    assert server.share == pytest.approx(used / server.server_tokens)
    assert metrics.cost.own_gres_hours["gpu"] == pytest.approx(span.hours())
    assert metrics.cost.shared_gres_hours["gpu"] == pytest.approx(2 * (span.end - server.start) / 3600 * server.share)
    assert metrics.cost.gpu_hours == pytest.approx(
        metrics.cost.own_gres_hours["gpu"] + metrics.cost.shared_gres_hours["gpu"]
    )
    assert metrics.cost.tokens_per_gpu_hour == pytest.approx(metrics.cost.tokens / metrics.cost.gpu_hours)


def _wait_for_results(job_glob: str, sweep_dir: Path, count: int, timeout_s: float = 120) -> tuple[Path, str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for results in sweep_dir.glob(f"{job_glob}/results.jsonl"):
            if len(results.read_text().splitlines()) >= count:
                return results.parent, json.loads((results.parent / "status.json").read_text())["slurm_job_id"]
        time.sleep(0.2)
    raise AssertionError(f"no {count} results in {sweep_dir}/{job_glob} within {timeout_s} s")


def _release_when_requeued(job_id: str, *updates: str, timeout_s: float = 120) -> None:
    """Slurm holds a requeued job for a while before it may start again (fine on a cluster,
    slow in a test): once it is pending, make it eligible now."""
    deadline = time.monotonic() + timeout_s
    while slurm_client.job_state(job_id) != "PENDING" or _job_processes(job_id):
        # Released while its last run's processes are still ending, the job fails to start
        # ("Job credential revoked"); on a cluster the hold is long enough.
        assert time.monotonic() < deadline, f"job {job_id} was not requeued"
        time.sleep(0.2)
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now", *updates], check=True)


def _job_processes(slurm_job_id: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if _of_job((proc / "environ").read_bytes().split(b"\0"), slurm_job_id):
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found


# At one pair at a time, 20 pairs take ~70 s: longer than Slurm's timer takes to send the time
# limit's warning. A preemption is immediate: 8 pairs leave plenty to run after the requeue.
PAIRS = {"time_limit": 20, "preemption": 8}


def test_requeued_jobs_resume_without_redoing_finished_pairs(tmp_path, sweep, attach_to, oracle_faults):
    """One array of two jobs, run at once: job 0 reaches its time limit (Slurm's warning, then
    submitit requeues it), job 1 is preempted (SIGTERM and back in the queue). Each stops at a
    safe point and runs a second time, and every pair is run once."""
    slow = attach_to(oracle_faults(assistant={"latency_s": 0.3}, user={"latency_s": 0.3}))
    outcome: dict[str, subprocess.CompletedProcess] = {}
    ends = ",".join(str(PAIRS[how]) for how in ("time_limit", "preemption"))
    runner = threading.Thread(
        target=lambda: outcome.setdefault(
            "result",
            sweep(tmp_path, f"tasks.end={ends}", "run.max_concurrency=1", *slow, "hydra.launcher.signal_delay_s=110"),
        )
    )
    runner.start()
    jobs: dict[str, tuple[Path, str]] = {}
    try:
        # The job's time limit is moved to 2 minutes from its start, so the warning (signal_delay_s
        # = 110 s before the limit) is due now: Slurm itself sends submitit's USR2 at its next
        # timer pass (within ~30 s; the job runs longer than that), the job stops at a safe point
        # and submitit requeues it. The limit is restored for the rerun.
        jobs["time_limit"] = _wait_for_results("0_*", tmp_path / "sweep", count=3)
        subprocess.run(["scontrol", "update", f"JobId={jobs['time_limit'][1]}", "TimeLimit=2"], check=True)
        # Preemption with requeue: Slurm sends SIGTERM and puts the job back in the queue.
        jobs["preemption"] = _wait_for_results("1_*", tmp_path / "sweep", count=3)
        subprocess.run(["scontrol", "requeue", jobs["preemption"][1]], check=True)
        _release_when_requeued(jobs["preemption"][1])
        _release_when_requeued(jobs["time_limit"][1], "TimeLimit=60")
    finally:
        runner.join(timeout=600)
    result = outcome["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    for how, (job_dir, _) in jobs.items():
        keys = result_keys(job_dir)
        assert len(keys) == PAIRS[how] and len(set(keys)) == PAIRS[how], how  # none redone after the requeue
        log = next(job_dir.glob("slurm_*.log")).read_text()
        signal_name = "SIGUSR2" if how == "time_limit" else "SIGTERM"  # Slurm's warning, or preemption's TERM
        assert f"stopping ({signal_name})" in log, how  # the first run stopped at a safe point...
        assert log.count("Starting with JobEnvironment") == 2, how  # ...and the job ran a second time
        assert "already finished" in (job_dir / "launch.log").read_text()
        assert json.loads((job_dir / "status.json").read_text())["state"] == "completed"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hydra.launcher.partition=nosuch", "partition 'nosuch' does not exist on this cluster; it has: debug, gaudi"),
        ("hydra.launcher.timeout_min=0", "hydra.launcher.timeout_min=0 is not a valid time limit"),
        (
            "hydra.launcher.partition=gaudi",
            "hydra.launcher.timeout_min=240 exceeds partition gaudi's time limit of 120",
        ),
    ],
)
def test_a_bad_request_is_refused_before_anything_is_submitted(tmp_path, sweep, override, message):
    before = set(
        subprocess.run(["squeue", "--noheader", "--format", "%i"], capture_output=True, text=True).stdout.split()
    )
    result = sweep(tmp_path, "tasks.end=1", override)
    assert result.returncode == 2
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and message in last_line
    assert "Traceback" not in result.stderr
    after = set(
        subprocess.run(["squeue", "--noheader", "--format", "%i"], capture_output=True, text=True).stdout.split()
    )
    assert after - before == set()  # nothing was submitted


def test_slurm_that_does_not_answer_is_reported_in_one_line(tmp_path, sweep, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "no-such-slurm.conf"))
    result = sweep(tmp_path, "tasks.end=1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: SLURM_CONF=")
