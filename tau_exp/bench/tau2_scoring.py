"""tau2's reward for a finished conversation, with the gold half of tau2's database check done
once per task instead of once per trial.

What tau2 does. `tau2.evaluator.evaluator.evaluate_simulation` (reward basis DB, ENV_ASSERTION,
ACTION, COMMUNICATE) hands `registry.get_env_constructor(domain)` to
`EnvironmentEvaluator.calculate_reward`, which builds two environments: the *predicted* one,
`constructor(solo_mode=...)`, into which the conversation's tool calls are replayed, and the
*gold* one, `constructor()`: the task's initial state set, the task's gold actions replayed
(`make_tool_call`, errors logged and ignored), then `get_db_hash()` and `get_user_db_hash()`
(the user's device in telecom). The gold environment depends only on the task, yet it is about
half of the evaluation's CPU time (a build, the gold actions, two hashes), paid again for every
trial.

What `evaluate` does. It runs tau2's own `evaluate_simulation` — its code object, unchanged, not
a copy of its logic — with one name of its module globals, `registry`, bound (in a copy of the
globals made for this call; tau2's module is not touched, so other threads and callers are
unaffected) to a stand-in whose `get_env_constructor(domain)` returns a memoizing constructor.
That constructor builds every environment with tau2's constructor exactly as before, except one
built with no arguments (tau2's gold environment):

- The first time for a task (per process: a worker process is long-lived and sees every trial
  of the tasks it is given), it hands back tau2's real environment behind a recorder: each
  method call goes through to it and is recorded with its arguments (deep-copied) and what it
  returned or raised. When `evaluate_simulation` returns, that call sequence — tau2's own
  computation of the gold hashes — is kept as the task's transcript. Reading anything other than
  a method (an attribute) spoils the recording: it is not kept.
- Later, it hands back a replayer. A call that is the transcript's next one — same method, and
  arguments strictly equal (same types, equal values, recursively) — is answered from the
  transcript (a copy of the recorded result, or the recorded exception raised again). At the
  first call that is not — another method, other arguments, a call past the transcript's end, an
  attribute read — the replayer builds tau2's real environment, replays onto it the calls
  answered so far, and from then on passes everything through to it. So if tau2 calls things in
  another order, with other arguments, or calls more, the answer is tau2's own computation, never
  a recorded one (this is logged as a warning, since it means tau2 no longer evaluates as it did).

Why the reward is exactly tau2's: the gold environment is a function of the task alone — the
constructor with no arguments loads the domain's database file, and tau2's gold actions,
initial state and hashes involve no clock or randomness, with one exception: a telecom tool
that creates a draft bill names it with `uuid4`, so tau2's own gold hash then differs on every
call and never equals the predicted one; a recorded hash never equals it either, so `db_match`
is False both ways. (A database file edited on disk while a job runs would reach tau2's later
builds and not a recording.) Entries are keyed by (domain, task id, SHA-256 of the task's JSON), so a
changed task is a different entry. `tests/bench/test_tau2_scoring.py` compares every reward and
reward breakdown with tau2's unmodified `evaluate_simulation` on all retail, airline and telecom
test tasks: oracle runs (the recordings), runs with injected model faults and trajectories cut
before their last tool call (failed ones, scored from the recordings).

When the cache does nothing: tau2's function is not the plain function reading the name
`registry` that this relies on (then it is called as it is), or `TAU_EXP_GOLD_CACHE=0` in the
environment (the unmodified path, for measuring and for ruling the cache out).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

_Key = tuple[str, str, str]  # (domain, task id, SHA-256 of the task's JSON)


@dataclass(frozen=True)
class _Call:
    """One method call on the gold environment: its arguments and what it returned or raised."""

    name: str
    args: tuple
    kwargs: dict
    result: Any = None
    error: BaseException | None = None


@dataclass
class GoldCacheStats:
    """Gold environments per process: recorded (tau2 computed them, kept), answered from a
    transcript (`hits`), and `fallbacks` (a replayer met a call it had no answer for)."""

    recorded: int = 0
    hits: int = 0
    fallbacks: int = 0


@dataclass
class _GoldCache:
    transcripts: dict[_Key, list[_Call]] = field(default_factory=dict)
    stats: GoldCacheStats = field(default_factory=GoldCacheStats)
    lock: threading.Lock = field(default_factory=threading.Lock)


_cache = _GoldCache()


def evaluate(simulation, task, domain: str):
    """tau2's `RewardInfo` for `simulation` of `task` (evaluation type ALL, not solo), as
    `evaluate_simulation` gives it, with the task's gold environment answered from its
    transcript after the first time (module docstring)."""
    from tau2.evaluator.evaluator import EvaluationType

    arguments = dict(
        simulation=simulation, task=task, evaluation_type=EvaluationType.ALL, solo_mode=False, domain=domain
    )
    tau2_evaluate = _tau2_evaluate_simulation()
    if os.environ.get("TAU_EXP_GOLD_CACHE", "1") == "0" or not _injectable(tau2_evaluate):
        return tau2_evaluate(**arguments)
    registry = _Registry(tau2_evaluate.__globals__["registry"], (domain, str(task.id), _task_hash(task)))
    evaluate_here = types.FunctionType(
        tau2_evaluate.__code__,
        {**tau2_evaluate.__globals__, "registry": registry},
        tau2_evaluate.__name__,
        tau2_evaluate.__defaults__,
        tau2_evaluate.__closure__,
    )
    evaluate_here.__kwdefaults__ = tau2_evaluate.__kwdefaults__
    reward_info = evaluate_here(**arguments)
    registry.commit()
    return reward_info


def gold_cache_stats() -> GoldCacheStats:
    """A copy of this process's counts."""
    with _cache.lock:
        return copy.copy(_cache.stats)


def clear_gold_cache() -> None:
    """Forget every transcript and count (tests)."""
    with _cache.lock:
        _cache.transcripts.clear()
        _cache.stats = GoldCacheStats()


def _tau2_evaluate_simulation() -> Callable:
    from tau2.evaluator import evaluator

    return evaluator.evaluate_simulation


def _injectable(function: Callable) -> bool:
    """Whether `function` is a plain function that reads tau2's registry from its module globals
    (what `evaluate` swaps); otherwise it is called as it is."""
    from tau2.registry import registry

    return (
        isinstance(function, types.FunctionType)
        and not hasattr(function, "__wrapped__")
        and "registry" in function.__code__.co_names
        and function.__globals__.get("registry") is registry
    )


def _task_hash(task) -> str:
    return hashlib.sha256(task.model_dump_json().encode()).hexdigest()


class _Registry:
    """tau2's registry for one evaluation, except that the task's domain's constructor memoizes
    the gold environment."""

    def __init__(self, registry, key: _Key) -> None:
        self._registry = registry
        self._key = key
        self._recorders: list[_Recorder] = []

    def get_env_constructor(self, name: str) -> Callable:
        construct = self._registry.get_env_constructor(name)
        if name != self._key[0]:
            return construct

        def memoizing_constructor(*args, **kwargs):
            if args or kwargs:  # tau2's predicted environment (solo_mode=...), or anything else
                return construct(*args, **kwargs)
            with _cache.lock:
                transcript = _cache.transcripts.get(self._key)
            if transcript is None:
                recorder = _Recorder(construct())
                self._recorders.append(recorder)
                return recorder
            return _Replayer(transcript, construct, self._key)

        return memoizing_constructor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._registry, name)

    def commit(self) -> None:
        """Keep the recording of a gold environment built in this evaluation (called once
        tau2's evaluation has returned)."""
        for recorder in self._recorders:
            if recorder.spoilt:
                log.warning("the gold environment of %s was read, not only called: not cached", self._key[:2])
                continue
            with _cache.lock:
                if self._key not in _cache.transcripts:
                    _cache.transcripts[self._key] = list(recorder.calls)
                    _cache.stats.recorded += 1


class _Recorder:
    """tau2's real environment; records every method call on it."""

    def __init__(self, environment) -> None:
        self._environment = environment
        self.calls: list[_Call] = []
        self.spoilt = False

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._environment, name)
        if not isinstance(value, types.MethodType):
            self.spoilt = True
            return value

        def recorded(*args, **kwargs):
            recorded_args, recorded_kwargs = self._copy((args, kwargs))
            try:
                result = value(*args, **kwargs)
            except Exception as error:
                self.calls.append(_Call(name, recorded_args, recorded_kwargs, error=_copy_error(error)))
                raise
            self.calls.append(_Call(name, recorded_args, recorded_kwargs, result=self._copy(result)))
            return result

        return recorded

    def _copy(self, value: Any) -> Any:
        try:
            return copy.deepcopy(value)
        except Exception:  # what cannot be copied cannot be replayed
            self.spoilt = True
            return value


class _Replayer:
    """Answers the calls of a transcript in order; tau2's real environment from the first call
    it cannot answer on."""

    def __init__(self, transcript: list[_Call], construct: Callable, key: _Key) -> None:
        self._transcript = transcript
        self._construct = construct
        self._key = key
        self._answered = 0
        self._environment = None
        with _cache.lock:
            _cache.stats.hits += 1  # taken back by a fallback

    def __getattr__(self, name: str) -> Any:
        if self._environment is None and any(call.name == name for call in self._transcript):
            return lambda *args, **kwargs: self._call(name, args, kwargs)
        return getattr(self._real(f"reads {name}"), name)

    def _call(self, name: str, args: tuple, kwargs: dict) -> Any:
        if self._environment is None and self._answered < len(self._transcript):
            expected = self._transcript[self._answered]
            if expected.name == name and _same(expected.args, args) and _same(expected.kwargs, kwargs):
                self._answered += 1
                if expected.error is not None:
                    raise _copy_error(expected.error)
                return copy.deepcopy(expected.result)
        return getattr(self._real(f"calls {name}"), name)(*args, **kwargs)

    def _real(self, what: str):
        """tau2's real environment, brought to where the transcript's answers left it."""
        if self._environment is None:
            expected = (
                self._transcript[self._answered].name if self._answered < len(self._transcript) else "nothing more"
            )
            log.warning(
                "tau2's evaluation %s on the gold environment of %s/%s where the recorded evaluation called %s: "
                "computed by tau2 instead",
                what,
                *self._key[:2],
                expected,
            )
            with _cache.lock:
                _cache.stats.hits -= 1
                _cache.stats.fallbacks += 1
            environment = self._construct()
            for call in self._transcript[: self._answered]:
                try:
                    getattr(environment, call.name)(*copy.deepcopy(call.args), **copy.deepcopy(call.kwargs))
                except Exception:
                    pass  # raised the first time too (that is what was recorded)
            self._environment = environment
        return self._environment


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1, 1.0 and True are not the same here)."""
    from pydantic import BaseModel

    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, BaseModel):
        return _same(dict(a), dict(b))
    return bool(a == b)


def _copy_error(error: BaseException) -> BaseException:
    """The same exception without its traceback (which would keep the environment alive)."""
    try:
        error = copy.copy(error)
    except Exception:
        pass
    return error.with_traceback(None)
