"""`EpisodeWorkers`: episodes run in worker processes, many at a time in each, so that a job uses
the cores it is given.

An episode's CPU time goes to tau2 (building environments, replaying and hashing databases to
score) and holds the GIL: in one process a job would use about one core whatever its
concurrency. Each worker process runs up to `threads` episodes at once in threads (they mostly
wait on HTTP); the job's process only hands out `EpisodeSpec`s and appends results.

- Workers are forked from a forkserver that has already imported tau2 (a clean, single-threaded
  process: forking the job itself, with its HTTP and tracking threads, is not safe).
- They ignore SIGINT, SIGTERM and SIGUSR2 (Ctrl-C, scancel and Slurm's time-limit warning reach
  every process of a job): the job decides when to stop, through the shared `cancel` event, and
  the results in flight are delivered. A worker whose job has died sees its pipe close and exits.
- A worker that dies (e.g. the OOM killer) turns its episodes in flight into harness errors
  (not scored, rerun on resume); the other workers go on.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection, wait
from pathlib import Path

from tau_exp.bench import EpisodeSpec, run_episode
from tau_exp.bench.tau2 import route_tau2_logs, tune_gc
from tau_exp.llm import Cancelled
from tau_exp.records import EpisodeResult, ErrorInfo, Status

log = logging.getLogger(__name__)

_CANCELLED = "cancelled"  # what a worker sends back for an episode stopped by `cancel`
# Imported once by the forkserver, so that every worker starts warm (tau2 takes seconds to import).
_PRELOAD = ["tau_exp.workers", "litellm", "tau2.orchestrator.orchestrator", "tau2.evaluator.evaluator",
            "tau2.registry", "tau_exp.agents.tool_calling", "tau_exp.agents.react", "tau_exp.users.llm"]


class EpisodeWorkers:
    """`processes` worker processes sharing `max_concurrency` episodes at once; a context manager."""

    def __init__(self, processes: int, max_concurrency: int, cancel: threading.Event,
                 tau2_log: Path | None = None) -> None:
        threads = math.ceil(max_concurrency / processes)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        # `cancel` set (by the run loop): episodes in flight stop at their next model call. The
        # workers watch a process-shared copy; the run loop and its signal handler keep the
        # threading.Event (a multiprocessing one takes a lock in is_set(): not signal-safe).
        self._cancel = cancel
        shared_cancel = context.Event()
        threading.Thread(target=lambda: cancel.wait() and shared_cancel.set(), name="episode-cancel",
                         daemon=True).start()
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[Future, EpisodeSpec, int]] = {}  # id → future, spec, worker
        self._next_id = 0
        self._workers: list[_Worker] = []
        for _ in range(processes):
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(theirs, shared_cancel, threads, tau2_log, sys.path),
                                      daemon=True, name="tau_exp-episodes")
            process.start()
            theirs.close()
            self._workers.append(_Worker(process, ours))
        self._collector = threading.Thread(target=self._collect, name="episode-results", daemon=True)
        self._collector.start()

    @property
    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self._workers]

    def run(self, spec: EpisodeSpec) -> EpisodeResult:
        """Run one episode in the least busy worker and wait for its result (raises Cancelled
        like `run_episode`)."""
        future: Future = Future()
        with self._lock:
            worker = min((w for w in self._workers if w.alive), key=lambda w: w.in_flight, default=None)
            if worker is None:
                return _died(spec, "every episode worker process has died")
            episode_id, self._next_id = self._next_id, self._next_id + 1
            self._pending[episode_id] = (future, spec, self._workers.index(worker))
            worker.in_flight += 1
            worker.send((episode_id, spec))
        return future.result()

    def _collect(self) -> None:
        """Deliver results as workers send them; fail the episodes of a worker that died."""
        while True:
            with self._lock:
                live = {w.connection: w for w in self._workers if w.alive}
            if not live:
                return
            for connection in wait(list(live)):
                worker = live[connection]
                try:
                    episode_id, outcome = connection.recv()
                except (EOFError, OSError):
                    self._lose(worker)
                    continue
                with self._lock:
                    future, _, _ = self._pending.pop(episode_id)
                    worker.in_flight -= 1
                if outcome == _CANCELLED:
                    future.set_exception(Cancelled())
                else:
                    future.set_result(outcome)

    def _lose(self, worker: "_Worker") -> None:
        worker.process.join(timeout=5)
        index = self._workers.index(worker)
        with self._lock:
            worker.alive = False
            lost = {i: entry for i, entry in self._pending.items() if entry[2] == index}
            for episode_id in lost:
                del self._pending[episode_id]
        if worker.closing:
            return
        cause = f"episode worker process {worker.process.pid} died (exit code {worker.process.exitcode}; out of memory?)"
        log.error("%s; its %d episodes in flight are recorded as harness errors and rerun on resume", cause, len(lost))
        for future, spec, _ in lost.values():
            future.set_result(_died(spec, cause))

    def close(self) -> None:
        """Stop the workers (after their episodes in flight ended)."""
        for worker in self._workers:
            worker.closing = True
            if worker.alive:
                worker.send(None)
        for worker in self._workers:
            worker.process.join()
        self._collector.join(timeout=10)

    def __enter__(self) -> "EpisodeWorkers":
        return self

    def __exit__(self, *exc: object) -> None:
        self._cancel.set()  # whatever is still running is abandoned (the run loop has ended)
        self.close()


class _Worker:
    def __init__(self, process, connection: Connection) -> None:
        self.process = process
        self.connection = connection
        self.in_flight = 0
        self.alive = True
        self.closing = False

    def send(self, message: object) -> None:
        try:
            self.connection.send(message)
        except OSError:  # the worker died: the collector fails its episodes
            pass


def default_processes() -> int:
    """Worker processes when `run.workers` is null: one per CPU this job may use (a Slurm
    allocation's, not the node's); none on a single CPU, where a worker only adds overhead."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cpus if cpus > 1 else 0


def _died(spec: EpisodeSpec, cause: str) -> EpisodeResult:
    return EpisodeResult(task_id=spec.task.id, trial=spec.trial, seed=spec.seed, status=Status.harness_error,
                         error=ErrorInfo(type="WorkerDied", message=cause))


def _serve(connection: Connection, cancel, threads: int, tau2_log: Path | None, job_sys_path: list[str]) -> None:
    """A worker process: run the episodes it is sent, `threads` at a time, and send back results."""
    # The forkserver keeps the import path of its first job: add what this job imports from
    # (e.g. a tau-bench checkout named by bench.path).
    sys.path[:0] = [entry for entry in job_sys_path if entry not in sys.path]
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)
    route_tau2_logs(tau2_log)
    tune_gc()
    send_lock = threading.Lock()

    def run(episode_id: int, spec: EpisodeSpec) -> None:
        try:
            outcome: object = run_episode(spec, cancel)
        except Cancelled:
            outcome = _CANCELLED
        with send_lock:
            try:
                connection.send((episode_id, outcome))
            except OSError:  # the job is gone
                pass
            except Exception as error:  # e.g. a result that does not pickle: the job must still hear of it
                connection.send((episode_id, _died(spec, f"its result could not be sent back: {error!r}")))

    with ThreadPoolExecutor(threads, thread_name_prefix="episode") as pool:
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):  # the job is gone: stop what runs at its next model call
                cancel.set()
                break
            if message is None:
                break
            pool.submit(run, *message)
