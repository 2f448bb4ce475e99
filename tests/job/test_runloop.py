"""runloop.py: the schedule and seeds; `run_pairs` on its own (a stand-in episode function in
place of a benchmark episode, and a real ResultStore): appends, skips, concurrency, the error
circuit breaker, cancellation; and, end to end, what a killed or interrupted job leaves behind:
complete records only, exactly one per (task, trial) after a resume, and no server processes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tau_exp.errors import Cancelled
from tau_exp.job.checkpoint import ResultStore
from tau_exp.job.runloop import Pair, TooManyErrors, pair_seed, run_pairs, schedule
from tau_exp.records import EpisodeResult, EpisodeStatus, Manifest


def test_schedule_runs_every_task_once_per_trial_before_the_next_trial():
    pairs = schedule(["a", "b", "c"], num_trials=2, seed=7, shuffle=False)
    assert [(p.task_id, p.trial) for p in pairs] == [("a", 0), ("b", 0), ("c", 0), ("a", 1), ("b", 1), ("c", 1)]


def test_shuffle_and_seeds_are_deterministic_in_run_seed():
    ids = [str(i) for i in range(20)]
    assert schedule(ids, 2, seed=1, shuffle=True) == schedule(ids, 2, seed=1, shuffle=True)
    assert [p.task_id for p in schedule(ids, 1, seed=1, shuffle=True)] != ids
    assert [p.task_id for p in schedule(ids, 1, seed=1, shuffle=True)] != [
        p.task_id for p in schedule(ids, 1, seed=2, shuffle=True)
    ]
    assert pair_seed(10, "5", 0) == pair_seed(10, "5", 0) != pair_seed(10, "5", 1)
    assert pair_seed(10, "5", 0) == 283986603  # stable across Python versions and machines


def _wait_for_results(job_dir: Path, count: int, process: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    path = job_dir / "results.jsonl"
    while not (path.exists() and path.read_bytes().count(b"\n") >= count):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


class Episodes:
    """A stand-in for a benchmark's episode function: returns a record of the status that
    `outcomes` names for the pair (scored with reward 1 by default), and counts what it ran."""

    def __init__(self, outcomes: dict[tuple[str, int], EpisodeStatus] | None = None, delay_s: float = 0.0) -> None:
        self.outcomes = outcomes or {}
        self.delay_s = delay_s
        self.ran: list[tuple[str, int]] = []
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()

    def __call__(self, pair: Pair, cancel: threading.Event) -> EpisodeResult:
        with self._lock:
            self.ran.append((pair.task_id, pair.trial))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if cancel.wait(self.delay_s):
                raise Cancelled()
            status = self.outcomes.get((pair.task_id, pair.trial), EpisodeStatus.scored)
            return EpisodeResult(
                task_id=pair.task_id,
                trial=pair.trial,
                seed=pair.seed,
                status=status,
                reward=1.0 if status == EpisodeStatus.scored else None,
            )
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.fixture
def store(tmp_path):
    with ResultStore.open(tmp_path, Manifest(identity={"env": "retail"})) as opened:
        yield opened


def test_run_pairs_appends_every_result_and_reports_progress(store):
    pairs = schedule(["a", "b", "c"], num_trials=2, seed=1, shuffle=False)
    progress: list[tuple[int, float | None]] = []
    episodes = Episodes(delay_s=0.01)
    run_pairs(
        pairs,
        episodes,
        store,
        max_concurrency=2,
        max_consecutive_errors=3,
        progress=False,
        on_progress=lambda done, reward: progress.append((done, reward)),
    )
    assert sorted(episodes.ran) == sorted((p.task_id, p.trial) for p in pairs)
    assert store.finished() == {(p.task_id, p.trial) for p in pairs} and store.appended == 6
    assert [done for done, _ in progress] == [1, 2, 3, 4, 5, 6] and progress[-1][1] == 1.0
    assert 1 <= episodes.most_in_flight <= 2  # never more than max_concurrency at once


def test_run_pairs_skips_finished_pairs_and_reruns_errors(store):
    pairs = schedule(["a", "b"], num_trials=1, seed=1, shuffle=False)
    run_pairs(pairs, Episodes({("b", 0): EpisodeStatus.infra_error}), store, 2, 5, progress=False)
    assert store.finished() == {("a", 0)}
    again = Episodes()
    run_pairs(pairs, again, store, 2, 5, progress=False)
    assert again.ran == [("b", 0)]  # the scored pair is not run again; the infra error is
    assert store.finished() == {("a", 0), ("b", 0)}


def test_errors_in_a_row_stop_the_run_with_what_finished_saved(store):
    pairs = schedule([str(i) for i in range(10)], num_trials=1, seed=1, shuffle=False)
    failing = {(str(i), 0): EpisodeStatus.harness_error for i in range(2, 10)}
    episodes = Episodes(failing)
    with pytest.raises(TooManyErrors, match="3 \\(task, trial\\) pairs in a row ended in infra or harness errors"):
        run_pairs(pairs, episodes, store, max_concurrency=1, max_consecutive_errors=3, progress=False)
    assert len(episodes.ran) == 5  # two scored, then three errors: the rest never started
    assert store.finished() == {("0", 0), ("1", 0)} and len(store.results()) == 5


def test_an_error_between_successes_does_not_trip_the_breaker(store):
    pairs = schedule([str(i) for i in range(6)], num_trials=1, seed=1, shuffle=False)
    every_other = {(str(i), 0): EpisodeStatus.infra_error for i in (1, 3, 5)}
    run_pairs(pairs, Episodes(every_other), store, max_concurrency=1, max_consecutive_errors=2, progress=False)
    assert len(store.results()) == 6 and len(store.finished()) == 3


def test_cancelled_episodes_leave_their_pairs_pending(store):
    pairs = schedule(["a", "b", "c", "d"], num_trials=1, seed=1, shuffle=False)
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    run_pairs(
        pairs, Episodes(delay_s=30), store, max_concurrency=2, max_consecutive_errors=3, progress=False, cancel=cancel
    )
    assert store.results() == []  # nothing recorded for the abandoned episodes: a resume runs them


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
        if not any(
            Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
            for pid in pids
        ):
            return True
        time.sleep(0.1)
    return False


SLOW_RUN = (
    "tasks.end=6",
    "run.num_trials=2",
    "run.max_concurrency=3",
    "model.server.oracle.latency_s=0.05",
    "run.workers=2",
)


@pytest.mark.slow
def test_sigkilled_job_resumes_to_exactly_one_record_per_pair_and_the_same_metrics(
    tmp_path, launch, launch_process, attached
):
    job_dir = tmp_path / "job"
    for kill_after in (2, 6):  # killed twice after results, at different points
        process = launch_process([f"hydra.run.dir={job_dir}", *SLOW_RUN], job_dir.parent)
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
        process = launch_process([f"hydra.run.dir={job_dir}", *SLOW_RUN], job_dir.parent)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate()

    done = launch([f"hydra.run.dir={job_dir}", *SLOW_RUN], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [EpisodeResult.model_validate_json(line) for line in (job_dir / "results.jsonl").read_text().splitlines()]
    assert Counter(r.key for r in records) == {(t, k): 1 for t in ("5", "9", "12", "17", "18", "26") for k in (0, 1)}

    uninterrupted = tmp_path / "uninterrupted"  # the same pairs against the session's oracles
    done = launch([f"hydra.run.dir={uninterrupted}", *SLOW_RUN, *attached], cwd=tmp_path)
    assert done.returncode == 0
    keys = ("avg_reward", "pass_hat_k", "n_tasks", "n_trials", "n_results", "n_infra_errors")
    resumed, straight = (json.loads((d / "metrics.json").read_text()) for d in (job_dir, uninterrupted))
    assert {k: resumed[k] for k in keys} == {k: straight[k] for k in keys}


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("to_group", [False, True], ids=["to the job", "to its process group"])
def test_ctrl_c_or_sigterm_stops_cleanly_saves_finished_results_and_stops_the_servers(
    tmp_path, signum, to_group, launch_process
):
    """Sent to the job alone, or as a terminal's Ctrl-C and Slurm's scancel do: to every process
    of the job (its worker processes too)."""
    job_dir = tmp_path / "job"
    process = launch_process([f"hydra.run.dir={job_dir}", *SLOW_RUN], job_dir.parent, new_session=to_group)
    _wait_for_results(job_dir, 2, process)
    servers, workers = _server_pids(job_dir), _worker_pids(process.pid)
    (os.killpg if to_group else os.kill)(process.pid, signum)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, stderr[-2000:]
    assert "interrupted" in stderr and "Traceback" not in stderr
    resume = stderr.split("resume with: ", 1)[1].splitlines()[0]  # this job's command, in its own directory
    assert resume.startswith("python launch.py tasks.end=6") and resume.endswith(f"hydra.run.dir={job_dir}")
    assert _wait_gone(servers) and _wait_gone(workers)
    lines = (job_dir / "results.jsonl").read_text().splitlines()
    assert all(EpisodeResult.model_validate_json(line) for line in lines)  # nothing half-written
    assert json.loads((job_dir / "metrics.json").read_text())["n_pending"] == 12 - len(lines)
