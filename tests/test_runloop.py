"""runloop.py: the schedule and seeds, and what a killed or interrupted job leaves behind:
complete records only, exactly one per (task, trial) after a resume, and no server processes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT
from tau_exp.records import EpisodeResult
from tau_exp.runloop import pair_seed, schedule


def test_schedule_runs_every_task_once_per_trial_before_the_next_trial():
    pairs = schedule(["a", "b", "c"], num_trials=2, seed=7, shuffle=False)
    assert [(p.task_id, p.trial) for p in pairs] == [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("c", 1)]


def test_shuffle_and_seeds_are_deterministic_in_run_seed():
    ids = [str(i) for i in range(20)]
    assert schedule(ids, 2, seed=1, shuffle=True) == schedule(ids, 2, seed=1, shuffle=True)
    assert [p.task_id for p in schedule(ids, 1, seed=1, shuffle=True)] != ids
    assert [p.task_id for p in schedule(ids, 1, seed=1, shuffle=True)] != [p.task_id for p in schedule(ids, 1, seed=2, shuffle=True)]
    assert pair_seed(10, "5", 0) == pair_seed(10, "5", 0) != pair_seed(10, "5", 1)
    assert pair_seed(10, "5", 0) == 283986603  # stable across Python versions and machines


def _start(job_dir: Path, *args: str, new_session: bool = False) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "launch.py"), f"hydra.run.dir={job_dir}", "run.progress=false", *args],
        cwd=job_dir.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=new_session,
    )


def _wait_for_results(job_dir: Path, count: int, process: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    path = job_dir / "results.jsonl"
    while not (path.exists() and path.read_bytes().count(b"\n") >= count):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _server_pids(job_dir: Path) -> list[int]:
    found = subprocess.run(["pgrep", "-f", f"port-file {job_dir}/"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


def _worker_pids(job_pid: int) -> list[int]:
    """The job's forkserver and the episode workers forked from it."""
    def children(pid: int) -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
        return [int(child) for child in found.stdout.split()]

    forkservers = [pid for pid in children(job_pid) if "forkserver" in Path(f"/proc/{pid}/cmdline").read_text()]
    return forkservers + [worker for pid in forkservers for worker in children(pid)]


def _wait_gone(pids: list[int], timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
                   for pid in pids):
            return True
        time.sleep(0.1)
    return False


SLOW_RUN = ("tasks.end=6", "run.num_trials=2", "run.max_concurrency=3", "model.server.oracle.latency_s=0.05",
            "run.workers=2")


def test_sigkilled_job_resumes_to_exactly_one_record_per_pair_and_the_same_metrics(tmp_path):
    job_dir = tmp_path / "job"
    for kill_after in (2, 6):  # killed twice after results, at different points
        process = _start(job_dir, *SLOW_RUN)
        _wait_for_results(job_dir, kill_after, process)
        servers, workers = _server_pids(job_dir), _worker_pids(process.pid)
        assert servers, "the oracle servers should be running"
        assert len(workers) == 3, "a forkserver and two episode workers (one per CPU) should be running"
        process.send_signal(signal.SIGKILL)
        process.communicate()
        assert _wait_gone(servers), "a SIGKILLed job left its model servers running"
        assert _wait_gone(workers), "a SIGKILLed job left its worker processes running"
    # ...and at random moments (start-up, server start, mid-append, shutdown), seeded to be replayable.
    rng = random.Random(2026)
    for delay in [rng.uniform(0.5, 9.0) for _ in range(5)]:
        process = _start(job_dir, *SLOW_RUN)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate()

    done = subprocess.run([sys.executable, str(ROOT / "launch.py"), f"hydra.run.dir={job_dir}", "run.progress=false",
                           *SLOW_RUN], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [EpisodeResult.model_validate_json(line) for line in (job_dir / "results.jsonl").read_text().splitlines()]
    assert Counter(r.key for r in records) == {(t, k): 1 for t in ("5", "9", "12", "17", "18", "26") for k in (0, 1)}

    uninterrupted = tmp_path / "uninterrupted"
    done = subprocess.run([sys.executable, str(ROOT / "launch.py"), f"hydra.run.dir={uninterrupted}",
                           "run.progress=false", *SLOW_RUN], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0
    keys = ("avg_reward", "pass_hat_k", "n_tasks", "n_trials", "n_results", "n_infra_errors")
    resumed, straight = (json.loads((d / "metrics.json").read_text()) for d in (job_dir, uninterrupted))
    assert {k: resumed[k] for k in keys} == {k: straight[k] for k in keys}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("to_group", [False, True], ids=["to the job", "to its process group"])
def test_ctrl_c_or_sigterm_stops_cleanly_saves_finished_results_and_stops_the_servers(tmp_path, signum, to_group):
    """Sent to the job alone, or as a terminal's Ctrl-C and Slurm's scancel do: to every process
    of the job (its worker processes too)."""
    job_dir = tmp_path / "job"
    process = _start(job_dir, *SLOW_RUN, new_session=to_group)
    _wait_for_results(job_dir, 2, process)
    servers, workers = _server_pids(job_dir), _worker_pids(process.pid)
    (os.killpg if to_group else os.kill)(process.pid, signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr[-2000:]
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert _wait_gone(servers) and _wait_gone(workers)
    lines = (job_dir / "results.jsonl").read_text().splitlines()
    assert all(EpisodeResult.model_validate_json(line) for line in lines)  # nothing half-written
    assert json.loads((job_dir / "metrics.json").read_text())["n_pending"] == 12 - len(lines)
