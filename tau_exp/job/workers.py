"""`EpisodeWorkers`: episodes run in worker processes, many at a time in each, so that a job uses
the cores it is given.

An episode's CPU time goes to tau2 (building environments, replaying and hashing databases to
score) and holds the GIL: in one process a job would use about one core whatever its
concurrency. Each worker process runs its share of the episodes at once in threads (they mostly
wait on HTTP); the job's process only hands out `EpisodeSpec`s and appends results.

- Workers are forked from a forkserver that imports tau2 once (a clean, single-threaded process:
  forking the job itself, with its HTTP and tracking threads, is not safe). The forkserver starts
  as soon as the job's config is read (`start_forkserver`; else when the pool is made) and
  imports while the job validates its config and its model servers start; the workers are
  forked when the first episode is handed out.
- They ignore SIGINT, SIGTERM and SIGUSR2 (Ctrl-C, scancel and Slurm's time-limit warning reach
  every process of a job): the job decides when to stop. A stop is a message on each worker's
  pipe (no lock shared between processes, which a killed worker could leave held); the results
  in flight are delivered. A worker whose job has died sees its pipe close and exits.
- A worker that dies (e.g. the OOM killer) is replaced; its episodes in flight run again once on
  another worker, and become harness errors (not scored, rerun on resume) if that one dies too.
- Whatever goes wrong inside a worker comes back as a record: the job never waits forever.
- The job's in-flight limits to its servers live in the job (`llm/concurrency.py`): a worker's
  model call asks the job for a slot on the same pipe, and the job grants it; the slots of a
  worker that died are given back by the job.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
import threading
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from tau_exp.bench import EpisodeSpec, run_episode
from tau_exp.config import RunConfig
from tau_exp.errors import Cancelled, ConfigError
from tau_exp.llm import concurrency
from tau_exp.records import EpisodeResult, EpisodeStatus, ErrorInfo
from tau_exp.runtime import prepare_process, quiet_litellm, route_tau2_logs, tune_gc

log = logging.getLogger(__name__)

_CANCELLED = "cancelled"  # a worker's answer for an episode stopped by a stop; and the stop message
_CLOSE = None  # the message that ends a worker once its episodes ended
# Imported once by the forkserver, so that every worker starts warm (tau2 takes seconds to import).
_PRELOAD = [
    "tau_exp.job.workers",
    "litellm",
    "tau2.orchestrator.orchestrator",
    "tau2.evaluator.evaluator",
    "tau2.registry",
    "tau_exp.agents.tool_calling",
    "tau_exp.agents.react",
    "tau_exp.users.llm",
]
_CLOSE_TIMEOUT_S = 60.0


def usable_cpus() -> int:
    """The CPUs this process may run on (a Slurm allocation's, not the node's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_processes(max_concurrency: int) -> int:
    """Worker processes when `run.workers` is null: one per usable CPU, no more than episodes
    run at once; none on a single CPU, where a worker only adds overhead."""
    cpus = usable_cpus()
    return min(cpus, max_concurrency) if cpus > 1 else 0


def start_forkserver(run: RunConfig) -> None:
    """Start the forkserver the workers are forked from, if the job will have workers (`run.workers`,
    or one per CPU) and it is not running yet. Returns at once; it imports tau2 meanwhile (seconds)."""
    if (default_processes(run.max_concurrency) if run.workers is None else run.workers) > 0:
        multiprocessing.get_context("forkserver").set_forkserver_preload(_PRELOAD)
        multiprocessing.forkserver.ensure_running()


MAX_WORKERS_PER_CPU = 4


def validate(run: RunConfig) -> None:
    """run.workers is not far beyond the CPUs the job may use (each worker is a process of its own)."""
    cpus = usable_cpus()
    if run.workers is not None and run.workers > MAX_WORKERS_PER_CPU * cpus:
        raise ConfigError(
            f"run.workers={run.workers} is far more than the {cpus} CPU(s) this job may use: at most "
            f"{MAX_WORKERS_PER_CPU * cpus}, or null (one per CPU)"
        )


@dataclass
class _Pending:
    future: Future
    spec: EpisodeSpec
    worker: _Worker
    attempt: int  # 1, or 2 when it runs again after its first worker died


class EpisodeWorkers:
    """`processes` worker processes sharing `max_concurrency` episodes; a context manager.

    `cancel` is the run loop's: once it is set, every worker is told to stop its episodes at
    their next model call."""

    def __init__(
        self,
        processes: int,
        max_concurrency: int,
        cancel: threading.Event,
        tau2_log: Path | None = None,
        limits: concurrency.JobLimits | None = None,
    ) -> None:
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(_PRELOAD)
        multiprocessing.forkserver.ensure_running()  # returns at once; the imports go on meanwhile
        self._processes = processes
        self._threads = math.ceil(max_concurrency / processes)
        self._tau2_log = tau2_log
        self._cancel = cancel
        self._limits = limits
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._next_id = 0
        self._workers: list[_Worker] = []
        self._affinity: dict[tuple, _Worker] = {}  # (bench, domain, task id) → the worker that ran it first
        self._closing = False
        self._collector = threading.Thread(target=self._collect, name="episode-results", daemon=True)
        threading.Thread(target=self._forward_cancel, name="episode-cancel", daemon=True).start()

    @property
    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self._workers if worker.alive]

    def start(self) -> None:
        """Fork the workers (once; the first `run` does it when nobody did)."""
        with self._lock:
            if not self._workers:
                self._workers = [self._start_worker() for _ in range(self._processes)]
                self._collector.start()

    def run(self, spec: EpisodeSpec) -> EpisodeResult:
        """Run one episode in the least busy worker and wait for its result (raises Cancelled
        like `run_episode`)."""
        self.start()
        future: Future = Future()
        with self._lock:
            self._dispatch(future, spec, attempt=1)
        return future.result()

    def _start_worker(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(theirs, self._threads, self._tau2_log, sys.path), daemon=True, name="tau_exp-episodes"
        )
        process.start()
        theirs.close()
        worker = _Worker(process, ours)
        if self._cancel.is_set():
            worker.send(_CANCELLED)
        return worker

    def _dispatch(self, future: Future, spec: EpisodeSpec, attempt: int) -> None:
        """Hand `spec` to the least busy live worker, or to the worker that ran its task before
        (which holds the task's gold environment from its first trial: bench/tau2_scoring.py)
        if that one has a thread free and at most one episode more (the caller holds the lock)."""
        worker = min((w for w in self._workers if w.alive), key=lambda w: w.in_flight, default=None)
        if worker is None:
            future.set_result(_harness_error(spec, "WorkerDied", "no episode worker process is alive"))
            return
        task = (spec.bench, spec.domain, str(getattr(spec.task, "id", "")))
        before = self._affinity.get(task)
        if before is None or not before.alive:
            self._affinity[task] = worker
        elif before.in_flight < self._threads and before.in_flight <= worker.in_flight + 1:
            worker = before
        episode_id, self._next_id = self._next_id, self._next_id + 1
        self._pending[episode_id] = _Pending(future, spec, worker, attempt)
        worker.in_flight += 1
        worker.send((episode_id, spec))

    def _collect(self) -> None:
        """Deliver results as workers send them; replace a worker that died."""
        try:
            while True:
                with self._lock:
                    live = {w.connection: w for w in self._workers if w.alive}
                if not live:
                    return
                for connection in wait(list(live)):
                    worker = live[connection]  # type: ignore[index]  # wait() returns what it was given
                    try:
                        message = worker.connection.recv()
                    except (EOFError, OSError):
                        self._lose(worker)
                        continue
                    if isinstance(message[0], str):
                        self._slot_message(worker, message)
                        continue
                    episode_id, outcome = message
                    with self._lock:
                        pending = self._pending.pop(episode_id)
                        worker.in_flight -= 1
                    if outcome == _CANCELLED:
                        pending.future.set_exception(Cancelled())
                    else:
                        pending.future.set_result(outcome)
        except Exception as error:  # a bug here must not leave the run loop waiting forever
            log.exception("the episode result collector failed")
            with self._lock:
                lost, self._pending = list(self._pending.values()), {}
            for pending in lost:
                pending.future.set_result(
                    _harness_error(pending.spec, type(error).__name__, f"the episode result collector failed: {error}")
                )

    def _slot_message(self, worker: _Worker, message: tuple) -> None:
        """A worker's model call asks for a slot of the job's limit, gives it back, or gives up waiting."""
        kind, request = message[0], message[1]
        if kind == "slot":
            limiter = self._limits.limiters.get(message[2]) if self._limits else None
            if limiter is None:  # no limit on that server
                worker.send(("granted", request))
                return
            worker.slots[request] = (limiter, limiter.request(lambda: worker.send(("granted", request))))
            return
        held = worker.slots.pop(request, None)
        if held is None:
            return
        limiter, ticket = held
        if kind == "free":
            limiter.release(ticket, latency_s=message[2], overloaded=message[3])
        else:  # "withdraw"
            limiter.withdraw(ticket)

    def _lose(self, worker: _Worker) -> None:
        for limiter, ticket in worker.slots.values():  # its calls will never give them back
            limiter.withdraw(ticket)
        worker.slots.clear()
        worker.process.join(timeout=5)
        with self._lock:
            worker.alive = False
            lost = [(i, p) for i, p in self._pending.items() if p.worker is worker]
            for episode_id, _ in lost:
                del self._pending[episode_id]
            if self._closing:
                for _, pending in lost:
                    pending.future.set_exception(Cancelled())
                return
            cause = f"episode worker process {worker.process.pid} died (exit code {worker.process.exitcode}; out of memory?)"
            log.error("%s; starting another; its %d episodes in flight run again", cause, len(lost))
            try:
                self._workers.append(self._start_worker())
            except Exception as error:  # e.g. the forkserver is gone too: the other workers go on
                log.error("could not start another episode worker: %s", error)
            for _, pending in lost:
                if pending.attempt == 1:
                    self._dispatch(pending.future, pending.spec, attempt=2)
                else:
                    pending.future.set_result(
                        _harness_error(pending.spec, "WorkerDied", f"{cause}, for the second time")
                    )

    def _forward_cancel(self) -> None:
        self._cancel.wait()
        with self._lock:
            for worker in self._workers:
                if worker.alive:
                    worker.send(_CANCELLED)

    def close(self) -> None:
        """Stop the workers after their episodes in flight ended (killed after a minute)."""
        with self._lock:
            self._closing = True
            for worker in self._workers:
                if worker.alive:
                    worker.send(_CLOSE)
        for worker in self._workers:
            worker.process.join(timeout=_CLOSE_TIMEOUT_S)
            if worker.process.exitcode is None:
                log.warning("episode worker process %s did not stop; killing it", worker.process.pid)
                worker.process.kill()
                worker.process.join(timeout=5)
        if self._collector.is_alive():
            self._collector.join(timeout=10)

    def __enter__(self) -> EpisodeWorkers:
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
        self.slots: dict[int, tuple[concurrency.Limiter, int]] = {}  # its calls' slots, by its request id
        self._send_lock = threading.Lock()  # grants are sent from the threads that free slots

    def send(self, message: object) -> None:
        try:
            with self._send_lock:
                self.connection.send(message)
        except OSError:  # the worker died: the collector sees its pipe close
            pass


def _harness_error(spec: EpisodeSpec, error_type: str, message: str, trace: str | None = None) -> EpisodeResult:
    return EpisodeResult(
        task_id=str(getattr(spec.task, "id", "?")),
        trial=spec.trial,
        seed=spec.seed,
        status=EpisodeStatus.harness_error,
        error=ErrorInfo(type=error_type, message=message[:2000], traceback=trace),
    )


def _serve(connection: Connection, threads: int, tau2_log: Path | None, job_sys_path: list[str]) -> None:
    """A worker process: run the episodes it is sent, `threads` at a time, and send back results."""
    # The forkserver keeps the import path of the job that started it: add what this job imports
    # from (e.g. a tau-bench checkout named by bench.path).
    sys.path[:0] = [entry for entry in job_sys_path if entry not in sys.path]
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)
    prepare_process()
    quiet_litellm()
    route_tau2_logs(tau2_log)
    tune_gc()
    stop = threading.Event()
    send_lock = threading.Lock()

    def send_message(message: object) -> None:
        with send_lock:
            try:
                connection.send(message)
            except OSError:  # the job is gone
                pass

    # Model calls ask the job for slots of its in-flight limits (llm/concurrency.py).
    remote: dict[str, concurrency.RemoteSlots] = {}
    concurrency.serve_remote(
        lambda base_url: remote.setdefault(base_url, concurrency.RemoteSlots(base_url, send_message))
    )

    def send(episode_id: int, outcome: object, spec: EpisodeSpec) -> None:
        with send_lock:
            try:
                connection.send((episode_id, outcome))
            except OSError:  # the job is gone
                pass
            except Exception as error:  # e.g. a result that does not pickle: the job must still hear of it
                connection.send(
                    (
                        episode_id,
                        _harness_error(spec, type(error).__name__, f"its result could not be sent back: {error!r}"),
                    )
                )

    def run(episode_id: int, spec: EpisodeSpec) -> None:
        try:
            outcome: object = run_episode(spec, stop)
        except Cancelled:
            outcome = _CANCELLED
        except BaseException as error:  # run_episode records what it expects; anything else is a bug
            outcome = _harness_error(spec, type(error).__name__, str(error), traceback.format_exc())
        send(episode_id, outcome, spec)

    with ThreadPoolExecutor(threads, thread_name_prefix="episode") as pool:
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):  # the job is gone: stop what runs at its next model call
                stop.set()
                break
            if message is _CLOSE:
                break
            if message == _CANCELLED:
                stop.set()
                continue
            if message[0] == "granted":
                concurrency.RemoteSlots.granted(message[1])
                continue
            pool.submit(run, *message)
