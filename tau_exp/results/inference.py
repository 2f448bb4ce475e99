"""What a configuration's scores can and cannot say: intervals, paired comparisons, the noise
floor and how many trials a question needs.

The unit is the task. Trials of one task are not independent (a task the model cannot solve
fails every trial), so every number treats tasks as the sampled units (clusters) and a task's
trials as one observation of it; two configurations are compared task by task on the tasks both
ran. Nothing is resampled: the same results, in any order, give the same numbers to the last bit
(tasks are read in the order of their ids, a task's trials sorted).

- `interval`: a metric (`avg_reward`, `pass^k`) with its standard error over tasks (a cluster
  standard error) and a 95% interval: the Wilson score interval at the effective number of tasks
  n_eff = m(1 − m) / SE² with Student's t quantile on n − 1 degrees of freedom (Korn and Graubard's
  effective sample size, the `wilson` method of R's survey::svyciprop). Unlike the t interval
  m ± t·SE it stays honest near 0 and 1 (pass^4 of a hard env at 10 tasks), and when every task
  scored the same (no spread: n_eff is the number of tasks) it is still an interval, not a point:
  ten tasks all solved give 0.66–1, not 1–1.
- `compare`: the difference B − A of a metric over the shared tasks, with a paired t test of the
  per-task differences and the t interval that inverts it, so the verdict and the interval never
  disagree. Across the comparisons of a family Holm's step-down decides, and each interval is
  given at the level at which its verdict was decided (α / (pairs not yet decided)):
  `confidence_level` says which. A verdict ("<b> better") is given exactly when 0 is outside
  the interval. The minimum detectable effect at 80% power is given at that level too.
- `noise_floor`: how far two single runs of one configuration differ by chance (95%), from the
  spread of its trials within each task; `trials_needed`: trials per arm to detect a difference.

pass^k per task is C(c, k) / C(n, k) (c successes of n trials; arXiv 2406.12045), an unbiased
estimate of the task's p^k, so pass^k over tasks is a mean of per-task values like the average
reward, and the same machinery serves both; a task with fewer than k scored trials (trials lost
to infra errors) has no value for pass^k, and `Interval.excluded_tasks` counts such tasks.
docs/statistics.md gives the reasons and the simulations behind these choices;
`tests/results/test_inference.py` checks coverage, error rates and power by simulation.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel

from tau_exp.records import EpisodeResult, EpisodeStatus, Interval

ALPHA = 0.05  # two-sided; intervals are 95% (a family's, see compare)
POWER = 0.8  # for the minimum detectable effect and planning


@dataclass(frozen=True)
class TaskTrials:
    """One configuration's scored trials, task by task: (reward, success) per trial. Kept in a
    canonical order (tasks by id, each task's trials sorted), so that every number computed from
    it is independent of the order the records were read in."""

    trials: dict[str, tuple[tuple[float, bool], ...]]

    def __post_init__(self) -> None:
        canonical = {task: tuple(sorted(self.trials[task])) for task in sorted(self.trials)}
        object.__setattr__(self, "trials", canonical)

    @classmethod
    def of(cls, results: Iterable[EpisodeResult]) -> TaskTrials:
        """The scored results only: infra and harness errors are not trials."""
        per_task: dict[str, list[tuple[float, bool]]] = defaultdict(list)
        for result in results:
            if result.status == EpisodeStatus.scored and result.reward is not None:
                per_task[result.task_id].append((result.reward, result.success))
        return cls({task: tuple(trials) for task, trials in per_task.items()})

    @classmethod
    def of_hits(cls, results: Iterable[EpisodeResult], hit: Callable[[EpisodeResult], bool]) -> TaskTrials:
        """Every record as a trial that scores 1 where `hit` holds (a failure mode, a fault's
        side) and 0 elsewhere, infra and harness errors included: the average is the share of
        the records it holds for, with the task-level machinery of any metric."""
        per_task: dict[str, list[tuple[float, bool]]] = defaultdict(list)
        for result in results:
            hits = hit(result)
            per_task[result.task_id].append((float(hits), hits))
        return cls({task: tuple(trials) for task, trials in per_task.items()})

    def per_task(self, metric: str) -> dict[str, float]:
        """The per-task values whose mean over tasks is `metric`, by task id: each task's mean
        reward (`avg_reward`), or C(c, k) / C(n, k) for `pass^k` over the tasks with n ≥ k."""
        if metric == "avg_reward":
            return {task: math.fsum(r for r, _ in trials) / len(trials) for task, trials in self.trials.items()}
        k = pass_k_of(metric)
        return {
            task: math.comb(sum(s for _, s in trials), k) / math.comb(len(trials), k)
            for task, trials in self.trials.items()
            if len(trials) >= k
        }

    @property
    def max_trials(self) -> int:
        """The fewest scored trials of any task: pass^k of every task goes up to it."""
        return min((len(trials) for trials in self.trials.values()), default=0)


class Share(BaseModel):
    """How many of a configuration's (task, trial) pairs something holds for (a failure mode, a
    fault's side): the count, its rate over the pairs and the rate's 95% task-level interval."""

    count: int
    pairs: int  # every record: scored, infra and harness errors
    rate: float
    low: float | None  # None: one task, no interval
    high: float | None


def share(results: Sequence[EpisodeResult], hit: Callable[[EpisodeResult], bool]) -> Share:
    """The share of `results` that `hit` holds for, with its task-level interval."""
    count = sum(1 for result in results if hit(result))
    ci = interval(TaskTrials.of_hits(results, hit), "avg_reward")
    spread = ci is not None and ci.tasks > 1
    return Share(
        count=count,
        pairs=len(results),
        rate=count / len(results) if results else 0.0,
        low=ci.low if spread and ci is not None else None,
        high=ci.high if spread and ci is not None else None,
    )


def pass_k_of(metric: str) -> int:
    if not metric.startswith("pass^") or not metric[5:].isdigit() or int(metric[5:]) < 1:
        raise ValueError(f"not a metric: {metric!r} (avg_reward or pass^k)")
    return int(metric[5:])


def interval(trials: TaskTrials, metric: str) -> Interval | None:
    """`metric` with its cluster standard error and 95% interval over tasks (None: no task has
    enough trials). The average reward weighs tasks by their trials, as metrics.json does; its
    standard error is the ratio estimator's (linearised). One task: no spread, no interval (NaN)."""
    values = trials.per_task(metric)
    if not values:
        return None
    v = np.array(list(values.values()))
    w = np.array([(len(trials.trials.get(t, ())) or 1) if metric == "avg_reward" else 1 for t in values], dtype=float)
    estimate = float((v * w).sum() / w.sum())
    excluded = max(0, len(trials.trials) - len(values))  # tasks with fewer than k scored trials
    if len(v) < 2:
        nan = math.nan
        return Interval(
            metric=metric, estimate=estimate, standard_error=nan, low=nan, high=nan, tasks=1, excluded_tasks=excluded
        )
    # Residuals of the ratio Σwv / Σw; with equal weights, the per-task values' deviations.
    residuals = w * (v - estimate) / w.mean()
    standard_error = float(np.std(residuals, ddof=1) / math.sqrt(len(v)))
    if v.min() >= 0 and v.max() <= 1:
        low, high = wilson_interval(estimate, standard_error, len(v))
    else:  # rewards outside [0, 1]: no bound to use, the plain t interval
        half = _t_quantile(len(v) - 1, ALPHA) * standard_error
        low, high = estimate - half, estimate + half
    return Interval(
        metric=metric,
        estimate=estimate,
        standard_error=standard_error,
        low=low,
        high=high,
        tasks=len(v),
        excluded_tasks=excluded,
    )


def wilson_interval(mean: float, standard_error: float, tasks: int, alpha: float = ALPHA) -> tuple[float, float]:
    """The Wilson score interval of a mean of per-task values in [0, 1], at the effective number
    of tasks n_eff = m(1 − m) / SE² (Korn and Graubard, 1998), with Student's t quantile on
    tasks − 1 degrees of freedom in place of the normal one. With no spread (every task scored
    the same, or m is 0 or 1) n_eff is the number of tasks: all tasks solved is not proof that
    every task of the population is (the upper end for m = 0 is t² / (n + t²))."""
    q = _t_quantile(tasks - 1, alpha)
    spread = mean * (1 - mean)
    n_eff = spread / standard_error**2 if standard_error > 0 and spread > 0 else float(tasks)
    shrink = 1 + q * q / n_eff
    centre = (mean + q * q / (2 * n_eff)) / shrink
    half = q / shrink * math.sqrt(spread / n_eff + q * q / (4 * n_eff * n_eff))
    return max(0.0, centre - half), min(1.0, centre + half)


def _t_quantile(df: int, alpha: float) -> float:
    """The two-sided critical value of Student's t: P(|T_df| > q) = alpha."""
    from scipy import special  # lighter than scipy.stats, which takes ~0.8 s to import

    return float(special.stdtrit(df, 1 - alpha / 2))


class Difference(BaseModel):
    """B − A for one metric, on the tasks both arms ran."""

    metric: str
    a: str
    b: str
    a_value: float  # each arm's metric over the shared tasks (unweighted mean of the per-task values)
    b_value: float
    difference: float
    low: float  # the paired t interval of the difference, at confidence_level; it contains 0
    high: float  # exactly when the verdict is "no detectable difference"
    p_value: float  # paired t test of the per-task differences (no spread: see _PairedTest)
    p_adjusted: float  # Holm, across the comparisons of this family and metric
    verdict: str  # "<b> better" | "<a> better" | "no detectable difference"
    mde: float | None  # the smallest true difference this test detects with 80% power, at its level
    tasks: int  # the shared tasks (with k or more scored trials in both arms, for pass^k)
    a_more: list[str]  # tasks A solves more often than B (flips), and the reverse
    b_more: list[str]
    # Whether both arms ran the same benchmark data (set by the caller, paired_differences;
    # False: their data differ, so this is not a like-for-like comparison; None: not known).
    same_data: bool | None = None
    # The level of [low, high]: 1 − α / (comparisons in the family not yet decided when this
    # one was), 0.95 for a comparison on its own (see `compare`).
    confidence_level: float = 1 - ALPHA
    # Tasks that either arm scored but that are not in the comparison: run by one arm only, or
    # with fewer than k scored trials in an arm (pass^k).
    excluded_tasks: int = 0
    # The comparisons Holm corrects together (set by pairs.paired_differences): the factor the
    # pair differs in (a key of the identity), "<factor>, pooled", "all pairs" or "baseline".
    family: str = ""


@dataclass(frozen=True, eq=False)
class _PairedTest:
    """A paired t test of the per-task differences, and the intervals that invert it. With no
    spread (every task moved by the same c) the t test is undefined; then a distribution-free
    test: a difference in [−1, 1] with mean μ is ≥ c with probability at most (1 + μ) / (1 + c)
    (Markov), so n tasks all at c have p = 2 (1 + |c|)^−n under μ = 0 (2^(1−n), the exact
    sign-flip p-value, when c = ±1), and inverting it gives the interval."""

    differences: np.ndarray

    @functools.cached_property
    def p_value(self) -> float:
        d = self.differences
        if np.all(d == d[0]):
            return min(1.0, 2 * (1 + abs(float(d[0]))) ** -len(d))
        from scipy import special

        t = abs(float(d.mean())) / _standard_error(d)
        return float(min(1.0, 2 * special.stdtr(len(d) - 1, -t)))

    def interval(self, alpha: float) -> tuple[float, float]:
        """The mean differences the test does not reject at `alpha`: it excludes 0 exactly when
        p < alpha."""
        d = self.differences
        if np.all(d == d[0]):
            c, u = float(d[0]), 1 - (alpha / 2) ** (1 / len(d))
            return max(-1.0, c - (1 + c) * u), min(1.0, c + (1 - c) * u)
        half = _t_quantile(len(d) - 1, alpha) * _standard_error(d)
        mean = float(d.mean())
        return max(-1.0, mean - half), min(1.0, mean + half)


def _standard_error(d: np.ndarray) -> float:
    return float(np.std(d, ddof=1) / math.sqrt(len(d)))


def compare(arms: dict[str, TaskTrials], pairs: list[tuple[str, str]], metric: str) -> list[Difference]:
    """Each (a, b) of `pairs` compared on `metric`, as one family: Holm's step-down across the
    pairs. In order of p-value, the i-th pair (from 0) of m is judged at level α / (m − i) while
    every pair before it was found different; the first that is not stops the procedure, and it
    and every pair after it are reported at that level. Each pair's interval is at the level at
    which it was judged (`confidence_level`), so a verdict is given exactly when the interval
    excludes 0. Pairs that share no task with enough trials are left out (the caller says so)."""
    tested = [found for a, b in pairs if (found := _paired(arms, a, b, metric)) is not None]
    if not tested:
        return []
    m = len(tested)
    ranked = sorted(range(m), key=lambda i: tested[i][1].p_value)
    levels, adjusted = [ALPHA] * m, [1.0] * m
    different: set[int] = set()
    stopped_at: float | None = None
    largest = 0.0
    for rank, i in enumerate(ranked):
        # Holm's adjusted p-value: the running maximum of (m − rank) · p, at most 1 (as statsmodels'
        # multipletests(method="holm"), which is not called for its gc.collect() on every call).
        largest = max(largest, (m - rank) * tested[i][1].p_value)
        adjusted[i] = min(1.0, largest)
        if stopped_at is None:
            levels[i] = ALPHA / (m - rank)
            low, high = tested[i][1].interval(levels[i])
            if low > 0 or high < 0:  # the verdict is read off the interval itself
                different.add(i)
                continue
            stopped_at = levels[i]
        levels[i] = stopped_at
    out = []
    for i, (difference, test) in enumerate(tested):
        low, high = test.interval(levels[i])
        verdict = "no detectable difference"
        if i in different:
            verdict = f"{difference.b if difference.difference > 0 else difference.a} better"
        update = {
            "low": low,
            "high": high,
            "p_adjusted": float(adjusted[i]),
            "verdict": verdict,
            "confidence_level": 1 - levels[i],
            "mde": minimum_detectable_effect(test.differences, levels[i]),
        }
        out.append(difference.model_copy(update=update))
    return out


def _paired(arms: dict[str, TaskTrials], a: str, b: str, metric: str) -> tuple[Difference, _PairedTest] | None:
    values_a, values_b = arms[a].per_task(metric), arms[b].per_task(metric)
    shared = sorted(set(values_a) & set(values_b))
    if len(shared) < 2:
        return None
    va, vb = np.array([values_a[t] for t in shared]), np.array([values_b[t] for t in shared])
    test = _PairedTest(vb - va)
    rate_a = arms[a].per_task("pass^1")
    rate_b = arms[b].per_task("pass^1")
    scored = set(arms[a].trials) | set(arms[b].trials) | set(values_a) | set(values_b)
    difference = Difference(
        metric=metric,
        a=a,
        b=b,
        a_value=float(va.mean()),
        b_value=float(vb.mean()),
        difference=float(test.differences.mean()),
        low=math.nan,  # set by compare, at the level the family's procedure judges this pair
        high=math.nan,
        p_value=test.p_value,
        p_adjusted=test.p_value,
        verdict="",
        mde=None,
        tasks=len(shared),
        a_more=[t for t in shared if rate_a.get(t, 0) > rate_b.get(t, 0)],
        b_more=[t for t in shared if rate_b.get(t, 0) > rate_a.get(t, 0)],
        excluded_tasks=len(scored) - len(shared),
    )
    return difference, test


def minimum_detectable_effect(differences: np.ndarray, alpha: float = ALPHA) -> float | None:
    """The true mean difference a two-sided paired t test at `alpha` detects with POWER, given
    the spread of these per-task differences (None when they do not spread: nothing to scale by)."""
    spread = float(np.std(differences, ddof=1))
    if spread == 0:
        return None
    return _detectable_effect_size(len(differences), alpha) * spread


@functools.cache
def _detectable_effect_size(tasks: int, alpha: float) -> float:
    """Cohen's d that a paired t-test over `tasks` detects with POWER at `alpha`."""
    from statsmodels.stats.power import TTestPower

    return float(TTestPower().solve_power(nobs=tasks, alpha=alpha, power=POWER, alternative="two-sided"))


def _within_task_variance(trials: TaskTrials) -> tuple[float, int]:
    """Σ over tasks with ≥ 2 trials of the variance of a single trial's reward (unbiased), and
    how many such tasks."""
    variances = [float(np.var([r for r, _ in t], ddof=1)) for t in trials.trials.values() if len(t) >= 2]
    return math.fsum(variances), len(variances)


def _normal_quantile(p: float) -> float:
    from scipy import special

    return float(special.ndtri(p))


def noise_floor(trials: TaskTrials) -> float | None:
    """How far the average rewards of two single runs (one trial per task) of this configuration
    differ by chance alone, 95% of the time (None without a task of two or more trials)."""
    total, tasks = _within_task_variance(trials)
    if not tasks:
        return None
    return _normal_quantile(1 - ALPHA / 2) * math.sqrt(2 * total) / tasks


def trials_needed(trials: TaskTrials, points: float) -> int | None:
    """Trials per arm (on these tasks) for a paired comparison of average reward to detect a
    difference of `points` (0.05 = 5 points) with POWER at ALPHA, if both arms spread like this one."""
    total, tasks = _within_task_variance(trials)
    if not tasks:
        return None
    z = _normal_quantile(1 - ALPHA / 2) + _normal_quantile(POWER)
    return max(1, math.ceil(z**2 * 2 * total / (tasks**2 * points**2)))
