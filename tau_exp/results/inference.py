"""What a configuration's scores can and cannot say: intervals, paired comparisons, the noise
floor and how many trials a question needs.

The unit is the task. Trials of one task are not independent (a task the model cannot solve
fails every trial), so an interval resamples tasks with all their trials (a task-level, or
cluster, bootstrap), and two configurations are compared task by task on the tasks both ran:

- `interval`: a metric (`avg_reward`, `pass^k`) with its standard error and 95% percentile
  bootstrap interval over tasks (scipy.stats.bootstrap).
- `compare`: the difference B − A of a metric, with a paired bootstrap interval (tasks resampled
  jointly for both arms), a sign-flip permutation test of the per-task differences
  (scipy.stats.permutation_test), Holm's correction across the comparisons of a metric
  (statsmodels), a verdict, and the minimum detectable effect at 80% power (statsmodels' t-test
  power for the per-task differences) when it finds none.
- `noise_floor`: how far two single runs of one configuration differ by chance (95%), from the
  spread of its trials within each task; `trials_needed`: trials per arm to detect a difference.

pass^k per task is C(c, k) / C(n, k) (c successes of n trials; arXiv 2406.12045), an unbiased
estimate of the task's p^k, so pass^k over tasks is a mean of per-task values like the average
reward, and the same machinery serves both. Every resampling is seeded: the same results give
the same numbers. `tests/results/test_inference.py` checks error rates, power and coverage by simulation.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel

from tau_exp.records import EpisodeResult, EpisodeStatus, Interval

ALPHA = 0.05  # two-sided; intervals are 95%
POWER = 0.8  # for the minimum detectable effect and planning
SEED = 20261201
RESAMPLES = 2000


@dataclass(frozen=True)
class TaskTrials:
    """One configuration's scored trials, task by task: (reward, success) per trial."""

    trials: dict[str, tuple[tuple[float, bool], ...]]

    @classmethod
    def of(cls, results: Iterable[EpisodeResult]) -> TaskTrials:
        """The scored results only: infra and harness errors are not trials."""
        per_task: dict[str, list[tuple[float, bool]]] = defaultdict(list)
        for result in results:
            if result.status == EpisodeStatus.scored and result.reward is not None:
                per_task[result.task_id].append((result.reward, result.success))
        return cls({task: tuple(trials) for task, trials in per_task.items()})

    def per_task(self, metric: str) -> dict[str, float]:
        """The per-task values whose mean over tasks is `metric`: each task's mean reward
        (`avg_reward`), or C(c, k) / C(n, k) for `pass^k` over the tasks with n ≥ k."""
        if metric == "avg_reward":
            return {task: float(np.mean([r for r, _ in trials])) for task, trials in self.trials.items()}
        k = pass_k_of(metric)
        return {
            task: math.comb(sum(s for _, s in trials), k) / math.comb(len(trials), k)
            for task, trials in self.trials.items()
            if len(trials) >= k
        }

    @property
    def max_trials(self) -> int:
        return min((len(trials) for trials in self.trials.values()), default=0)


def pass_k_of(metric: str) -> int:
    if not metric.startswith("pass^") or not metric[5:].isdigit() or int(metric[5:]) < 1:
        raise ValueError(f"not a metric: {metric!r} (avg_reward or pass^k)")
    return int(metric[5:])


def interval(trials: TaskTrials, metric: str, seed: int = SEED) -> Interval | None:
    """`metric` with a task-level bootstrap interval (None: no task has enough trials). The
    average reward weighs tasks by their trials, as metrics.json does."""
    values = trials.per_task(metric)
    if not values:
        return None
    v = np.array(list(values.values()))
    w = np.array([len(trials.trials[t]) if metric == "avg_reward" else 1 for t in values], dtype=float)

    def weighted_mean(v: np.ndarray, w: np.ndarray, axis: int = -1) -> np.ndarray:
        return (v * w).sum(axis=axis) / w.sum(axis=axis)

    estimate = float(weighted_mean(v, w))
    if len(v) < 2:
        return Interval(metric=metric, estimate=estimate, standard_error=math.nan, low=math.nan, high=math.nan, tasks=1)
    result = _bootstrap((v, w), weighted_mean, seed)
    return Interval(
        metric=metric,
        estimate=estimate,
        standard_error=float(result.standard_error),
        low=float(result.confidence_interval.low),
        high=float(result.confidence_interval.high),
        tasks=len(v),
    )


def _scipy_stats():
    # scipy.stats takes ~0.8 s to import: only a statistic needs it, not every importer of metrics.
    from scipy import stats

    return stats


def _bootstrap(data: tuple[np.ndarray, ...], statistic, seed: int):
    # Percentile intervals: defined when every task scored the same (BCa is not), and within
    # the coverage bounds the simulations check.
    return _scipy_stats().bootstrap(
        data,
        statistic,
        paired=True,
        vectorized=True,
        n_resamples=RESAMPLES,
        method="percentile",
        confidence_level=1 - ALPHA,
        rng=np.random.default_rng(seed),
    )


class Difference(BaseModel):
    """B − A for one metric, on the tasks both arms ran."""

    metric: str
    a: str
    b: str
    a_value: float  # each arm's metric over the shared tasks
    b_value: float
    difference: float
    low: float  # paired bootstrap 95% interval of the difference
    high: float
    p_value: float  # sign-flip permutation test of the per-task differences
    p_adjusted: float  # Holm, across the comparisons of this metric
    verdict: str  # "<b> better" | "<a> better" | "no detectable difference"
    mde: float | None  # the smallest true difference this test detects with 80% power
    tasks: int
    a_more: list[str]  # tasks A solves more often than B (flips), and the reverse
    b_more: list[str]
    # Whether both arms ran the same benchmark data (set by configurations.paired_differences;
    # False: their data differ, so this is not a like-for-like comparison; None: not known).
    same_data: bool | None = None


def compare(
    arms: dict[str, TaskTrials], pairs: list[tuple[str, str]], metric: str, seed: int = SEED
) -> list[Difference]:
    """Each (a, b) of `pairs` compared on `metric`; p-values Holm-corrected across the pairs.
    Pairs that share no task with enough trials are left out (the caller says so)."""
    from statsmodels.stats.multitest import multipletests

    raw = [d for a, b in pairs if (d := _paired(arms, a, b, metric, seed)) is not None]
    if not raw:
        return []
    p_values = [d.p_value for d in raw]
    # Holm over one comparison is the p-value itself (statsmodels' call costs a gc.collect()).
    adjusted = multipletests(p_values, alpha=ALPHA, method="holm")[1] if len(raw) > 1 else p_values
    out = []
    for difference, p in zip(raw, adjusted, strict=True):
        verdict = "no detectable difference"
        if p < ALPHA:
            verdict = f"{difference.b if difference.difference > 0 else difference.a} better"
        out.append(difference.model_copy(update={"p_adjusted": float(p), "verdict": verdict}))
    return out


def _paired(arms: dict[str, TaskTrials], a: str, b: str, metric: str, seed: int) -> Difference | None:
    values_a, values_b = arms[a].per_task(metric), arms[b].per_task(metric)
    shared = sorted(set(values_a) & set(values_b))
    if len(shared) < 2:
        return None
    va, vb = np.array([values_a[t] for t in shared]), np.array([values_b[t] for t in shared])
    d = vb - va
    if np.all(d == d[0]):  # every task moved alike: no spread to resample
        low = high = float(d[0])
        p_value = 1.0 if d[0] == 0 else 2.0 ** (1 - len(d))  # the exact sign-flip p-value
    else:
        boot = _bootstrap((d,), lambda x, axis=-1: x.mean(axis=axis), seed)
        low, high = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
        p_value = float(
            _scipy_stats()
            .permutation_test(
                (d,),
                lambda x, axis=-1: x.mean(axis=axis),
                permutation_type="samples",  # one sample: the signs of the differences flip
                vectorized=True,
                n_resamples=RESAMPLES,
                rng=np.random.default_rng(seed),
            )
            .pvalue
        )
    rate_a = arms[a].per_task("pass^1")
    rate_b = arms[b].per_task("pass^1")
    return Difference(
        metric=metric,
        a=a,
        b=b,
        a_value=float(va.mean()),
        b_value=float(vb.mean()),
        difference=float(d.mean()),
        low=low,
        high=high,
        p_value=p_value,
        p_adjusted=p_value,
        verdict="",
        mde=minimum_detectable_effect(d),
        tasks=len(shared),
        a_more=[t for t in shared if rate_a.get(t, 0) > rate_b.get(t, 0)],
        b_more=[t for t in shared if rate_b.get(t, 0) > rate_a.get(t, 0)],
    )


def minimum_detectable_effect(differences: np.ndarray) -> float | None:
    """The true mean difference a two-sided test at ALPHA detects with POWER, given the spread of
    these per-task differences (None when they do not spread: nothing to scale by)."""
    spread = float(np.std(differences, ddof=1))
    if spread == 0:
        return None
    return _detectable_effect_size(len(differences)) * spread


@functools.cache
def _detectable_effect_size(tasks: int) -> float:
    """Cohen's d that a paired t-test over `tasks` detects with POWER at ALPHA."""
    from statsmodels.stats.power import TTestPower

    return float(TTestPower().solve_power(nobs=tasks, alpha=ALPHA, power=POWER, alternative="two-sided"))


def _within_task_variance(trials: TaskTrials) -> tuple[float, int]:
    """Σ over tasks with ≥ 2 trials of the variance of a single trial's reward (unbiased), and
    how many such tasks."""
    variances = [float(np.var([r for r, _ in t], ddof=1)) for t in trials.trials.values() if len(t) >= 2]
    return sum(variances), len(variances)


def noise_floor(trials: TaskTrials) -> float | None:
    """How far the average rewards of two single runs (one trial per task) of this configuration
    differ by chance alone, 95% of the time (None without a task of two or more trials)."""
    total, tasks = _within_task_variance(trials)
    if not tasks:
        return None
    return float(_scipy_stats().norm.ppf(1 - ALPHA / 2) * math.sqrt(2 * total) / tasks)


def trials_needed(trials: TaskTrials, points: float) -> int | None:
    """Trials per arm (on these tasks) for a paired comparison of average reward to detect a
    difference of `points` (0.05 = 5 points) with POWER at ALPHA, if both arms spread like this one."""
    total, tasks = _within_task_variance(trials)
    if not tasks:
        return None
    z = _scipy_stats().norm.ppf(1 - ALPHA / 2) + _scipy_stats().norm.ppf(POWER)
    return max(1, math.ceil(z**2 * 2 * total / (tasks**2 * points**2)))
