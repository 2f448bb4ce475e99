"""tau_exp/results/inference.py: intervals, paired comparisons, noise floor and planning.

Validated by simulation against known truth: results drawn from per-task success probabilities
shaped like tau-bench's (40 tasks, 4 trials, many tasks near always or never solved), tasks drawn
afresh in each simulation; and by small cases computed by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special, stats

from tau_exp.results.inference import TaskTrials, compare, interval, noise_floor, trials_needed

TASKS, TRIALS, SIMULATIONS = 40, 4, 1000
SHAPE = (0.45, 0.3)  # Beta: U-shaped (most tasks near 0 or 1), mean 0.6


def trials_of(successes: np.ndarray) -> TaskTrials:
    """A configuration from a tasks × trials array of 0/1 outcomes (reward = success)."""
    return TaskTrials({str(t): tuple((float(x), bool(x)) for x in row) for t, row in enumerate(successes)})


def run(rng: np.random.Generator, p: np.ndarray, trials: int = TRIALS) -> TaskTrials:
    return trials_of(rng.random((len(p), trials)) < p[:, None])


def shifted(p: np.ndarray, logit_shift: float) -> np.ndarray:
    return special.expit(special.logit(np.clip(p, 1e-9, 1 - 1e-9)) + logit_shift)


# --- hand-computed cases -------------------------------------------------------------------


def test_pass_hat_k_per_task_is_c_choose_k_over_n_choose_k():
    trials = trials_of(np.array([[1, 1, 0, 0], [1, 1, 1, 1]]))
    assert trials.per_task("pass^2") == {"0": 1 / 6, "1": 1.0}
    assert trials.per_task("avg_reward") == {"0": 0.5, "1": 1.0}
    assert trials.per_task("pass^5") == {}  # no task has 5 trials


def test_the_interval_matches_the_exact_bootstrap_distribution():
    """10 tasks, 3 solved: a resampled mean is Binomial(10, 0.3)/10, whose 2.5% and 97.5%
    quantiles are 0 (P(X = 0) = 0.028) and 0.6 (P(X ≤ 5) = 0.953, P(X ≤ 6) = 0.989)."""
    result = interval(trials_of(np.array([[1]] * 3 + [[0]] * 7)), "avg_reward")
    assert result is not None and result.estimate == pytest.approx(0.3)
    assert stats.binom.ppf([0.025, 0.975], 10, 0.3).tolist() == [0, 6]
    assert result.low == pytest.approx(0.0, abs=0.02) and result.high == pytest.approx(0.6, abs=0.02)
    assert result.standard_error == pytest.approx(math.sqrt(0.3 * 0.7 / 10), rel=0.1)


def test_the_sign_flip_p_value_is_the_exact_one():
    """Differences +1 ×5, −1 ×1: sign patterns with |sum| ≥ 4 are 1 + 6 + 6 + 1 of 64."""
    a = trials_of(np.array([[0]] * 5 + [[1]]))
    b = trials_of(np.array([[1]] * 5 + [[0]]))
    [difference] = compare({"a": a, "b": b}, [("a", "b")], "avg_reward")
    assert difference.p_value == pytest.approx(14 / 64)
    assert difference.difference == pytest.approx(4 / 6)
    assert (difference.a_more, difference.b_more) == (["5"], ["0", "1", "2", "3", "4"])
    assert difference.verdict == "no detectable difference"


def test_holm_multiplies_the_smallest_p_value_by_the_number_of_comparisons():
    never = trials_of(np.zeros((8, 1)))
    always = trials_of(np.ones((8, 1)))
    results = compare({"base": never, "x": always, "y": always}, [("base", "x"), ("base", "y")], "avg_reward")
    assert [r.p_value for r in results] == [2.0**-7] * 2  # every task moved alike: exact
    assert [r.p_adjusted for r in results] == [2 * 2.0**-7] * 2
    assert [r.verdict for r in results] == ["x better", "y better"]


def test_noise_floor_and_trials_needed_by_hand():
    trials = trials_of(np.array([[1, 0], [1, 1]]))  # within-task variances 0.5 and 0
    assert noise_floor(trials) == pytest.approx(stats.norm.ppf(0.975) * math.sqrt(2 * 0.5) / 2)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert trials_needed(trials, 0.1) == math.ceil(z**2 * 2 * 0.5 / (4 * 0.01))
    assert noise_floor(trials_of(np.array([[1], [0]]))) is None  # one trial per task: no spread to read


# --- calibration by simulation -------------------------------------------------------------


@pytest.fixture(scope="module")
def null_comparisons():
    """SIMULATIONS comparisons of two arms with the same per-task probabilities."""
    rng = np.random.default_rng(1)
    out = []
    for seed in range(SIMULATIONS):
        p = rng.beta(*SHAPE, TASKS)
        [difference] = compare({"a": run(rng, p), "b": run(rng, p)}, [("a", "b")], "avg_reward", seed=seed)
        out.append(difference)
    return out


def test_with_no_true_difference_a_verdict_is_rare(null_comparisons):
    wrong = sum(d.verdict != "no detectable difference" for d in null_comparisons)
    assert wrong / SIMULATIONS <= 0.06


def test_a_true_difference_of_the_reported_mde_is_detected_with_about_80_percent_power(null_comparisons):
    mde = float(np.mean([d.mde for d in null_comparisons if d.mde is not None]))
    population = np.random.default_rng(2).beta(*SHAPE, 200_000)
    # B: every task's odds raised alike, so that the population's mean gain is the MDE.
    shift = optimize.brentq(lambda s: np.mean(shifted(population, s) - population) - mde, 0, 10)
    rng = np.random.default_rng(3)
    detected = 0
    for seed in range(SIMULATIONS):
        p = rng.beta(*SHAPE, TASKS)
        arms = {"a": run(rng, p), "b": run(rng, shifted(p, shift))}
        [difference] = compare(arms, [("a", "b")], "avg_reward", seed=seed)
        detected += difference.verdict == "b better"
    assert 0.65 <= detected / SIMULATIONS <= 0.95, (mde, detected)


@pytest.mark.parametrize("k", [1, 4])
def test_the_95_percent_interval_of_pass_hat_k_covers_the_populations_value(k):
    a, b = SHAPE
    truth = math.prod((a + i) / (a + b + i) for i in range(k))  # E[p^k] for p ~ Beta(a, b)
    rng = np.random.default_rng(4 + k)
    covered = 0
    for seed in range(SIMULATIONS):
        result = interval(run(rng, rng.beta(a, b, TASKS)), f"pass^{k}", seed=seed)
        assert result is not None
        covered += result.low <= truth <= result.high
    assert 0.91 <= covered / SIMULATIONS <= 0.98, covered


def test_two_single_runs_differ_by_more_than_the_noise_floor_about_5_percent_of_the_time():
    rng = np.random.default_rng(6)
    beyond = 0
    for _ in range(SIMULATIONS):
        p = rng.beta(*SHAPE, TASKS)
        floor = noise_floor(run(rng, p))  # read from a 4-trial run of the configuration
        first, second = (rng.random(TASKS) < p).mean(), (rng.random(TASKS) < p).mean()
        beyond += abs(first - second) > floor
    assert 0.02 <= beyond / SIMULATIONS <= 0.09, beyond
