"""Is one configuration better than another, or is the difference noise? For every configuration
of the given runs (tau_exp's job and sweep directories, tau2's and tau-bench v1's results files):
average reward and pass^k with 95% intervals and the noise floor; then paired comparisons along
the sweep's axes: the configurations on one env that differ in exactly one factor (agent,
model, a setting...), p-values Holm-corrected per factor, and per factor a pooled answer over
the values of the others. Each comparison has the paired difference with its interval, a
verdict, the minimum detectable effect, the tasks that flip, and whether both ran the same
benchmark data (a pair on different task data is marked: not like for like).

    python -m tau_exp.compare PATH... [--baseline LABEL | --all-pairs] [--plan POINTS] [--json]

Configurations are named by what sets them apart (their labels). --baseline compares every
other configuration on its env with that one (a label, or a unique part of it, e.g. `react`);
--all-pairs, every pair on an env (as runs that are no sweep's grid are compared anyway).
--plan 5: trials per arm needed to detect 5 points of average reward at 80% power. Methods:
tau_exp/results/inference.py and pairs.py, explained in docs/statistics.md. Prints only;
writes nothing.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from pydantic import BaseModel
from rich import box
from rich.table import Table

from tau_exp.display import argument_parser, print_result
from tau_exp.errors import TauExpError
from tau_exp.records import Interval
from tau_exp.results.collect import SOURCES, SOURCES_IN_FULL, find_configurations
from tau_exp.results.inference import Difference, TaskTrials, interval, noise_floor, trials_needed
from tau_exp.results.modes import RATE, ConfigurationModes, mode_differences
from tau_exp.results.pairs import ALL_PAIRS, BASELINE, POOLED, data_note, paired_differences
from tau_exp.runtime import command_line


class ArmSummary(BaseModel):
    """One configuration: its metrics with intervals, and what chance alone does to it."""

    label: str
    env: str
    tasks: int
    trials: int  # the fewest scored trials of any of its tasks: pass^k goes up to it
    left_out: int  # infra and harness errors: not trials
    metrics: list[Interval]
    noise_floor: float | None  # None: one trial per task
    trials_needed: int | None = None  # with --plan


class Comparison(BaseModel):
    arms: list[ArmSummary]
    differences: list[Difference]
    # Per compared pair, each failure mode's rate B − A (modes.py; metric "rate of <category>").
    mode_differences: list[Difference] = []


def run_comparison(
    paths: list[Path], baseline: str | None = None, plan: float | None = None, all_pairs: bool = False
) -> Comparison:
    """Everything `compare` prints, from these runs (TauExpError on input it cannot use)."""
    if plan is not None and not 0 < plan < 100:
        raise TauExpError(f"--plan {plan:g} must be a difference in points between 0 and 100, e.g. --plan 5")
    configurations = find_configurations(paths)
    arms = {c.row.label: TaskTrials.of(c.records) for c in configurations}
    summaries = []
    for c in configurations:
        trials = arms[c.row.label]
        metrics = ["avg_reward", *(f"pass^{k}" for k in range(1, trials.max_trials + 1))]
        summaries.append(
            ArmSummary(
                label=c.row.label,
                env=c.row.env,
                tasks=len(trials.trials),
                trials=trials.max_trials,
                left_out=c.row.infra_errors + c.row.harness_errors,
                metrics=[i for metric in metrics if (i := interval(trials, metric)) is not None],
                noise_floor=noise_floor(trials),
                trials_needed=None if plan is None else trials_needed(trials, plan / 100),
            )
        )
    if plan is not None and all(s.trials_needed is None for s in summaries):
        raise TauExpError(
            "--plan needs the spread of trials within a task: run a configuration with run.num_trials=2 or more"
        )
    differences = paired_differences(configurations, baseline, all_pairs=all_pairs)
    modes = [ConfigurationModes(c) for c in configurations] if differences else []
    return Comparison(arms=summaries, differences=differences, mode_differences=mode_differences(modes, differences))


def render(comparison: Comparison) -> list[Table | str]:
    """The tables `compare` prints, made to read at 80 columns: few columns, numbers and each
    part of a label kept whole, other cells wrapped rather than cut; the tasks that flip as lines
    below. Rows name the arms; the verdict says A or B."""
    label_width = max((len(part) for arm in comparison.arms for part in arm.label.split(" · ")), default=10)
    arms = Table(
        title="configurations (95% intervals over tasks: Wilson at the effective number of tasks)", box=box.SIMPLE_HEAD
    )
    arms.add_column("configuration", overflow="fold", min_width=min(label_width, 32))
    arms.add_column("tasks × trials", overflow="fold", max_width=10)
    arms.add_column("metric", overflow="fold", min_width=10)
    arms.add_column("estimate (95% interval)", overflow="fold", min_width=11)
    arms.add_column("noise floor", overflow="fold", min_width=7)
    if any(arm.trials_needed is not None for arm in comparison.arms):
        arms.add_column("trials needed per arm", overflow="fold")
    for arm in comparison.arms:
        for i, metric in enumerate(arm.metrics):
            first = i == 0
            arms.add_row(
                arm.label if first else "",
                (f"{arm.tasks} × {arm.trials}" + (f"\n{arm.left_out} left out" if arm.left_out else ""))
                if first
                else "",
                metric.metric,
                f"{metric.estimate:.3f}\n{metric.low:.3f}–{metric.high:.3f}",
                ("± " + f"{arm.noise_floor:.3f}" if arm.noise_floor is not None else "needs ≥ 2 trials")
                if first
                else "",
                *([str(arm.trials_needed or "")] if first and arm.trials_needed is not None else []),
            )
    if not comparison.differences:
        return [arms]
    family_order = list(dict.fromkeys(d.family for d in comparison.differences))
    tables: list[Table | str] = [arms]
    flips = []
    for family, differences in itertools.groupby(
        sorted(comparison.differences, key=lambda d: family_order.index(d.family)), key=lambda d: d.family
    ):
        pairs = _pairs_table(_family_title(family), label_width, "metric", "p")
        for d in differences:
            pairs.add_row(_arms(d), d.metric, _interval(d), f"{d.p_adjusted:.3g}", _verdict(d))
            if d.metric == "avg_reward" and (d.a_more or d.b_more) and not family.endswith(POOLED):
                flips.append(
                    f"A {d.a}, B {d.b}: A solves more: {', '.join(d.a_more) or 'none'}; "
                    f"B solves more: {', '.join(d.b_more) or 'none'}"
                )
        tables.append(pairs)
    if comparison.mode_differences:
        tables.append(_modes_table(comparison.mode_differences, label_width))
    return [*tables, *(["tasks that flip (solved more often by one arm):", *flips] if flips else [])]


def _modes_table(differences: list[Difference], label_width: int) -> Table:
    """Which failure modes account for each difference: every mode's rate, B − A."""
    title = "failure modes behind each difference (rate B − A per task; p Holm-corrected over the modes)"
    modes = _pairs_table(title, label_width, "mode", "rate A → B")
    for d in differences:
        modes.add_row(
            _arms(d), d.metric.removeprefix(RATE), _interval(d), f"{d.a_value:.3f} → {d.b_value:.3f}", d.verdict
        )
    return modes


def _pairs_table(title: str, label_width: int, what: str, beside: str) -> Table:
    """A table of paired comparisons: the arms, `what` is compared, B − A with its interval,
    `beside` it, the verdict; numbers and label parts kept whole at 80 columns."""
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("A, B", overflow="fold", min_width=min(label_width + 3, 35))
    table.add_column(what, overflow="fold", min_width=10)
    table.add_column("B − A (interval)", overflow="fold", min_width=15)
    table.add_column(beside, overflow="fold", min_width=5)
    table.add_column("verdict", overflow="fold")
    return table


def _arms(d: Difference) -> str:
    return f"A: {d.a}\nB: {d.b}"


def _interval(d: Difference) -> str:
    return f"{d.difference:+.3f}\n{d.low:+.3f}–{d.high:+.3f}" + _level(d.confidence_level)


def _level(confidence: float) -> str:
    """An interval's level where Holm set it above 95% (its verdict was decided at it)."""
    return "" if abs(confidence - 0.95) < 1e-9 else f" ({confidence:.2%})".replace(".00%", "%")


def _family_title(family: str) -> str:
    """What a family of comparisons asks (its p-values are Holm-corrected together)."""
    if family == ALL_PAIRS:
        return "paired comparisons, every pair on an env (B − A on the tasks both ran; p Holm-corrected over them)"
    if family == BASELINE:
        return "paired comparisons with the baseline (B − A on the tasks both ran; p Holm-corrected over them)"
    if family.endswith(POOLED):
        factor = family.removesuffix(POOLED)
        return f"{factor}, pooled over the other factors' values (B − A per task, averaged over the cells; Holm)"
    return f"{family}: pairs that differ only in it (B − A on the tasks both ran; p Holm-corrected over them)"


def _verdict(d: Difference) -> str:
    """The verdict as the table says it: A or B better, or what the test could have detected; and
    the task data when it is not known to be the same."""
    if d.verdict == "no detectable difference":
        verdict = d.verdict + (f" (MDE 80%: {d.mde:.3f})" if d.mde is not None else "")
    else:
        verdict = f"{'B' if d.difference > 0 else 'A'} better"
    return verdict if d.same_data else f"{verdict}; task data {data_note(d.same_data)}"


@command_line
def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(
        "python -m tau_exp.compare", __doc__, reads=f"{SOURCES_IN_FULL}.", docs="docs/statistics.md"
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help=SOURCES)
    parser.add_argument("--baseline", help="compare every configuration with this one (a label or part of it)")
    parser.add_argument(
        "--all-pairs", action="store_true", help="compare every pair on an env (default: along the sweep's axes)"
    )
    parser.add_argument("--plan", type=float, metavar="POINTS", help="trials needed to detect POINTS of avg reward")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON (for scripts)")
    args = parser.parse_args(argv)
    comparison = run_comparison(args.paths, args.baseline, args.plan, args.all_pairs)
    print_result(comparison, [] if args.json else render(comparison), args.json)


if __name__ == "__main__":
    main()
