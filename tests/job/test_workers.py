"""workers.py: episodes in worker processes give the same records as in the job's own process,
a worker that dies is replaced and its episodes run again, an exception inside a worker comes
back as a record (never a hang), cancel reaches the workers, and the signals a job gets do not
kill them."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tau_exp import experiment
from tau_exp.bench import EpisodeSpec, select_tasks
from tau_exp.config import to_experiment_config
from tau_exp.errors import Cancelled
from tau_exp.job.runloop import pair_seed
from tau_exp.job.workers import EpisodeWorkers
from tau_exp.jobdir import JobDir
from tau_exp.llm.concurrency import JobLimits
from tau_exp.records import EpisodeStatus
from tau_exp.servers import provide

pytestmark = pytest.mark.slow  # end to end: not in the fast tier (pytest -m "not slow")


def _comparable(job_dir):
    return sorted(
        (
            r.task_id,
            r.trial,
            r.status.value,
            r.reward,
            r.termination_reason,
            len(r.messages),
            {role: u.calls for role, u in r.usage.items()},
        )
        for r in JobDir(job_dir).read_results()
    )


def test_episodes_in_worker_processes_give_the_same_records_as_in_the_jobs_process(tmp_path, attached, compose_cfg):
    for workers in (0, 2):
        cfg = compose_cfg(
            "tasks.end=6", "run.num_trials=2", "run.max_concurrency=4", f"run.workers={workers}", *attached
        )
        experiment.run(cfg, tmp_path / f"workers{workers}")
    assert _comparable(tmp_path / "workers0") == _comparable(tmp_path / "workers2")
    assert len(_comparable(tmp_path / "workers2")) == 12


@pytest.fixture
def specs(tmp_path, oracle_model, compose_cfg):
    """`specs(n)`: episodes of the first n retail test tasks against an oracle taking 0.5 s per
    reply (as assistant and as user), so that episodes are in flight long enough to act on."""
    experiment_cfg = to_experiment_config(compose_cfg())
    tasks = select_tasks(experiment_cfg.bench, "retail", experiment_cfg.tasks)
    with provide("assistant", oracle_model(latency_s=0.5), tmp_path / "servers") as endpoint:

        def make(n: int) -> list[EpisodeSpec]:
            return [
                EpisodeSpec(
                    domain="retail",
                    task=task,
                    trial=0,
                    seed=pair_seed(10, task.id, 0),
                    agent=experiment_cfg.agent,
                    assistant=endpoint,
                    user=endpoint,
                    assistant_settings=experiment_cfg.model,
                    user_settings=experiment_cfg.user,
                    retry=experiment_cfg.run.retry,
                    max_steps=200,
                    max_errors=10,
                )
                for task in tasks[:n]
            ]

        yield make


def _run_all(workers: EpisodeWorkers, specs: list[EpisodeSpec]) -> list:
    def run(spec):
        try:
            return workers.run(spec)
        except Cancelled as cancelled:
            return cancelled

    with ThreadPoolExecutor(len(specs)) as pool:
        return list(pool.map(run, specs))


def test_a_worker_that_dies_is_replaced_and_its_episodes_run_again(specs):
    episodes = specs(6)
    with EpisodeWorkers(2, 6, threading.Event()) as workers:
        workers.start()
        victim = workers.pids[0]
        threading.Timer(2.0, os.kill, (victim, signal.SIGKILL)).start()
        results = _run_all(workers, episodes)
        assert len(workers.pids) == 2 and victim not in workers.pids  # replaced
    assert [(r.status, r.reward) for r in results] == [(EpisodeStatus.scored, 1.0)] * 6  # the lost three ran again


def test_model_calls_in_workers_keep_the_jobs_limit_and_a_dead_workers_slots_come_back(specs):
    """The job's limit (here 2 requests at once) holds across worker processes; a worker killed
    while its calls held slots does not leave them taken: every episode still ends, scored."""
    episodes = specs(4)
    with JobLimits(4, adaptive=False) as limits:
        limiter = limits.add(episodes[0].assistant.base_url, max_in_flight=2)
        episodes = [dataclasses.replace(spec, limits=limits.key) for spec in episodes]
        peak = [0]

        def watch() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], limiter.in_flight)
                time.sleep(0.01)

        done = threading.Event()
        threading.Thread(target=watch, daemon=True).start()
        with EpisodeWorkers(2, 4, threading.Event(), limits=limits) as workers:
            workers.start()
            victim = workers.pids[0]
            threading.Timer(2.0, os.kill, (victim, signal.SIGKILL)).start()
            results = _run_all(workers, episodes)
        done.set()
    assert [(r.status, r.reward) for r in results] == [(EpisodeStatus.scored, 1.0)] * 4
    assert peak[0] == 2 and limiter.in_flight == 0


def test_an_exception_inside_a_worker_comes_back_as_a_harness_error_not_a_hang(specs):
    broken = dataclasses.replace(specs(1)[0], task="not a task")  # run_episode fails before its try
    with EpisodeWorkers(1, 1, threading.Event()) as workers:
        result = workers.run(broken)
    assert result.status == EpisodeStatus.harness_error and result.error.type == "AttributeError"


def test_cancel_stops_the_episodes_in_the_workers_at_their_next_model_call(specs):
    cancel = threading.Event()
    with EpisodeWorkers(2, 4, cancel) as workers:
        threading.Timer(1.5, cancel.set).start()
        started = time.monotonic()
        results = _run_all(workers, specs(4))
    assert all(isinstance(r, Cancelled) for r in results)
    assert time.monotonic() - started < 10  # an oracle episode takes ~5 s at 0.5 s per reply


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGUSR2])
def test_workers_ignore_the_signals_that_reach_every_process_of_a_job(specs, signum):
    with EpisodeWorkers(1, 2, threading.Event()) as workers:
        workers.start()
        threading.Timer(1.0, os.kill, (workers.pids[0], signum)).start()
        results = _run_all(workers, specs(2))
    assert [r.reward for r in results] == [1.0, 1.0]
