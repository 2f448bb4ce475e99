"""The run loop: which (task, trial) pairs to run, in what order and with what seed, run
`max_concurrency` at a time, each result appended to the store the moment it is finished.

What the old tau-bench `run.py` got wrong, done right here: results are appended (never the
whole file rewritten), finished pairs are skipped on resume, infra errors are recorded as such
(never as reward 0) and stop the job when they keep coming, and Ctrl-C leaves nothing
half-written (in-flight pairs are abandoned at their next model call and rerun on resume).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import random
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from tqdm import tqdm

from tau_exp.errors import Cancelled, ConfigError, Interrupted, TauExpError
from tau_exp.job.checkpoint import ResultStore
from tau_exp.records import EpisodeResult, EpisodeStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pair:
    task_id: str
    trial: int
    seed: int


def pair_seed(run_seed: int, task_id: str, trial: int) -> int:
    """A seed per (task, trial), stable across runs, machines and Python versions."""
    digest = hashlib.sha256(f"{run_seed}:{task_id}:{trial}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


MAX_PAIRS = 100_000
RESULT_KB = 20  # a conversation's record in results.jsonl, roughly (retail, tau2)


def schedule(task_ids: list[str], num_trials: int, seed: int, shuffle: bool) -> list[Pair]:
    """Trial by trial (every task's first trial before any second trial), tasks in split order
    or shuffled with `seed`, so a stopped run has covered as many tasks as possible. More than
    MAX_PAIRS pairs is refused (ConfigError), with what they would cost."""
    if len(task_ids) * num_trials > MAX_PAIRS:
        pairs = len(task_ids) * num_trials
        raise ConfigError(
            f"{len(task_ids)} tasks × {num_trials} trials is {pairs:,} conversations, more than one job runs "
            f"({MAX_PAIRS:,}; about {pairs * RESULT_KB / 1e6:.1f} GB of results): split it over a sweep's jobs "
            "(tasks.num_shards) or run fewer trials"
        )
    order = list(task_ids)
    if shuffle:
        random.Random(seed).shuffle(order)
    return [Pair(task_id, trial, pair_seed(seed, task_id, trial)) for trial in range(num_trials) for task_id in order]


class TooManyErrors(TauExpError):
    pass


def run_pairs(
    pairs: list[Pair],
    run_one: Callable[[Pair, threading.Event], EpisodeResult],
    store: ResultStore,
    max_concurrency: int,
    max_consecutive_errors: int,
    progress: bool = True,
    on_progress: Callable[[int, float | None], None] | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Run every pair not yet finished in `store`; append each result as it arrives.

    Raises TooManyErrors when `max_consecutive_errors` pairs in a row ended in infra or harness
    errors, and Interrupted on Ctrl-C or SIGTERM; either way after the pairs in flight ended and
    everything finished was appended (rerun to resume). `on_progress(done, avg_reward)` runs after
    each append (e.g. to log running metrics). `cancel` is set to stop the episodes in flight
    (pass the one the worker processes watch; a new one by default)."""
    finished = store.finished()
    todo = [pair for pair in pairs if (pair.task_id, pair.trial) not in finished]
    selected = {(pair.task_id, pair.trial) for pair in pairs}
    cancel = cancel if cancel is not None else threading.Event()
    consecutive_errors = 0
    scored = [
        r.reward
        for r in store.results()
        if r.key in selected and r.status == EpisodeStatus.scored and r.reward is not None
    ]
    bar = tqdm(total=len(pairs), initial=len(pairs) - len(todo), disable=not progress, unit="pair", dynamic_ncols=True)
    _show_reward(bar, scored)
    pending = iter(todo)
    executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="episode")
    in_flight: set[Future] = set()
    with _InterruptAtSafePoint(store.job.resume_command()) as interrupt:
        try:
            # Submit lazily (at most max_concurrency in flight): a stop leaves the rest untouched.
            for pair in itertools.islice(pending, max_concurrency):
                in_flight.add(executor.submit(run_one, pair, cancel))
            while in_flight:
                done, in_flight = wait(in_flight, timeout=0.5, return_when=FIRST_COMPLETED)
                if interrupt.signum is not None:
                    cancel.set()  # here, not in the signal handler: Event.set takes a lock
                for future in done:
                    try:
                        result = future.result()
                    except Cancelled:
                        continue
                    store.append(result)  # also while stopping: a finished episode is kept
                    bar.update(1)
                    if result.status == EpisodeStatus.scored:
                        consecutive_errors = 0
                        if result.reward is not None:
                            scored.append(result.reward)
                            _show_reward(bar, scored)
                    else:
                        consecutive_errors += 1
                        bar.write(
                            f"{result.status.value}, task {result.task_id} trial {result.trial}: {_message(result)}"
                        )
                        if consecutive_errors >= max_consecutive_errors:
                            cancel.set()
                    if on_progress is not None:
                        on_progress(
                            len(pairs) - len(todo) + store.appended, sum(scored) / len(scored) if scored else None
                        )
                    if not cancel.is_set() and (following := next(pending, None)) is not None:
                        in_flight.add(executor.submit(run_one, following, cancel))
        finally:
            cancel.set()  # on any exit, episodes still in flight stop at their next model call
            executor.shutdown(wait=True, cancel_futures=True)
            bar.close()
        if interrupt.signum is not None:
            interrupt.pass_on()
            raise Interrupted(interrupt.signum, interrupt.resume_command)
        if consecutive_errors >= max_consecutive_errors:
            raise TooManyErrors(
                f"{consecutive_errors} (task, trial) pairs in a row ended in infra or harness errors "
                f"(last: {_message(result)}); stopped. Results so far are saved in {store.path}: "
                f"fix the server and resume with: {store.job.resume_command()}"
            )


class _InterruptAtSafePoint:
    """While active, Ctrl-C or SIGTERM (scancel, preemption, time limit) or SIGUSR2 (Slurm's
    warning before the time limit, submitit's requeue signal) asks the run loop to stop at a
    safe point: no exception lands in the middle of an append, the model calls in flight finish
    and their results are kept. A second signal exits at once; what is appended is complete,
    and started servers die with the process (PR_SET_PDEATHSIG)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)

    def __init__(self, resume_command: str) -> None:
        self.signum: int | None = None
        self.resume_command = resume_command
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.signum is not None:
            print(f"stopped at once; resume with: {self.resume_command}", file=sys.stderr, flush=True)
            os._exit(128 + signum)
        self.signum = signum  # the run loop sets `cancel` within half a second
        log.warning(
            "stopping (%s): finishing the model calls in flight; signal again to stop at once",
            signal.Signals(signum).name,
        )

    def __enter__(self) -> _InterruptAtSafePoint:
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        self._previous = {}  # restored once (pass_on may restore them early)

    def pass_on(self) -> None:
        """After the safe stop, hand SIGUSR2 to the handler it interrupted: in a submitit job,
        that one requeues the job (which then resumes from its results) and exits."""
        previous = self._previous.get(signal.SIGUSR2)
        if self.signum == signal.SIGUSR2 and callable(previous):
            # The safe stop is over: from here on the signals that come with the requeue (Slurm
            # cancels the step with SIGTERM) are submitit's to handle, not a "second signal".
            self.__exit__()
            previous(self.signum, None)


def _message(result: EpisodeResult) -> str:
    return result.error.message if result.error else "?"


def _show_reward(bar: tqdm, rewards: list[float]) -> None:
    if rewards:
        bar.set_postfix(avg_reward=f"{sum(rewards) / len(rewards):.3f}", refresh=False)
