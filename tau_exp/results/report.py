"""Reports across sweeps, jobs, and tau2's and tau-bench v1's results files: one row per
configuration (env × agent × model × user, and the benchmark data it ran), with the average
reward and its 95% interval, pass^1…pass^k, counts, tokens and time, as Markdown and CSV
(report.md/.csv); the configurations compared task by task along the sweep's axes, as
`python -m tau_exp.compare` compares them (comparisons.md/.csv: the family, the difference, its
interval, p-value, verdict and the tasks that flip, and whether both ran the same task data);
and plots as PNG, each configuration named by its label.

    python -m tau_exp.report outputs/multirun/2026-11-24/10-00-00 [more PATHs] [-o DIR] [--wandb] [--html]
        [--audit AUDIT_RUNS...]

With --html it also writes browser.html, a page to read every conversation and compare
configurations task by task; with --audit AUDIT_RUNS, failure_sides.md/.csv (whose fault each
failure is: docs/diagnosis.md). Which results make up a configuration, and how they are
pooled: docs/tracking-and-reports.md.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from tau_exp.display import argument_parser, write_table
from tau_exp.errors import TauExpError
from tau_exp.results.audit import Audit, audit_configurations
from tau_exp.results.browser import BROWSER_FILE, write_browser
from tau_exp.results.collect import (
    SOURCES,
    SOURCES_IN_FULL,
    ConfigRow,
    find_configurations,
)
from tau_exp.results.inference import Difference
from tau_exp.results.modes import RATE, ConfigurationModes, ModeRate, mode_differences, mode_rates
from tau_exp.results.pairs import data_note, paired_differences
from tau_exp.runtime import command_line

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _interval(row: ConfigRow) -> tuple[float, float, float]:
    """(mean, low, high) of a row with scored results (a row without has no interval)."""
    if row.avg_reward is None or row.ci_low is None or row.ci_high is None:
        raise ValueError(f"{row.label} has no scored result to plot")
    return row.avg_reward, row.ci_low, row.ci_high


def write_tables(rows: list[ConfigRow], out_dir: Path) -> tuple[Path, Path]:
    max_k = max((max(row.pass_hat_k, default=0) for row in rows), default=0)
    header = [
        "label",  # what sets the configuration apart from the others shown (the plots' names)
        "env",
        "agent",
        "model",
        "user",
        "user_strategy",
        "split",
        "settings",  # what sets a row apart from others of the same names
        "task_data",  # the benchmark data: package, version, the fingerprint's first 12 hex digits
        "jobs",
        "tasks",
        "avg_reward",
        "ci_low",
        "ci_high",
        *[f"pass^{k}" for k in range(1, max_k + 1)],
        "results",
        "infra_errors",
        "harness_errors",
        "prompt_tokens",
        "completion_tokens",
        "wall_time_s",
        "gpu_hours",  # held by its jobs: own Slurm allocation + token share of shared servers
        "tokens_per_gpu_hour",
        "gpu_hours_per_scored_pair",
    ]
    table = [
        [
            row.label,
            row.env,
            row.agent,
            row.model,
            row.user,
            row.user_strategy,
            row.split,
            row.settings,
            row.task_data.short if row.task_data else "unknown",
            row.jobs,
            row.tasks,
            row.avg_reward,
            row.ci_low,
            row.ci_high,
            *[row.pass_hat_k.get(k) for k in range(1, max_k + 1)],
            row.results,
            row.infra_errors,
            row.harness_errors,
            row.prompt_tokens,
            row.completion_tokens,
            round(row.wall_time_s),
            row.gpu_hours,
            row.tokens_per_gpu_hour,
            row.gpu_hours_per_scored_pair,
        ]
        for row in rows
    ]
    csv_path, md_path = out_dir / "report.csv", out_dir / "report.md"
    write_table(header, table, csv_path, md_path)
    return csv_path, md_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pass_hat_k(rows: list[ConfigRow], path: Path) -> Path:
    return _save(pass_hat_k_figure(rows), path)


def plot_rewards(rows: list[ConfigRow], path: Path) -> Path:
    return _save(rewards_figure(rows), path)


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


def pass_hat_k_figure(rows: list[ConfigRow]) -> Figure:
    """pass^k against k, one line per configuration (its label in the legend, beside the plot),
    with its 95% interval as a band; k runs over whole trials only."""
    plt = _pyplot()
    drawn = [row for row in rows if row.pass_hat_k]
    legend_width = 0.075 * max((len(row.label) for row in drawn), default=10)  # inches, at small type
    fig, ax = plt.subplots(figsize=(6 + legend_width, max(4.5, 0.22 * len(drawn))), layout="constrained")
    for row in drawn:
        ks = sorted(row.pass_hat_k)
        [line] = ax.plot(ks, [row.pass_hat_k[k] for k in ks], marker="o", label=row.label)
        banded = [k for k in ks if k in row.pass_hat_k_ci]
        if banded:  # the 95% task-level interval of each pass^k
            lows, highs = zip(*(row.pass_hat_k_ci[k] for k in banded), strict=True)
            ax.fill_between(banded, lows, highs, color=line.get_color(), alpha=0.15, linewidth=0)
    max_k = max((max(row.pass_hat_k) for row in drawn), default=1)
    ax.set(
        xlabel="k (trials that must all succeed)",
        ylabel="pass^k",
        ylim=(-0.02, 1.02),
        xlim=(0.7, max_k + 0.3),
        xticks=range(1, max_k + 1),
        title="pass^k per configuration",
    )
    ax.grid(alpha=0.3)
    fig.legend(fontsize="small", loc="outside right upper")  # constrained layout makes room for it
    return fig


def rewards_figure(rows: list[ConfigRow]) -> Figure:
    """Average reward with its 95% interval: one panel per env, a bar per configuration, named
    by its label (configurations that differ only in a setting are bars of their own)."""
    plt = _pyplot()
    envs = sorted({row.env for row in rows})
    panels = [[row for row in rows if row.env == env and row.avg_reward is not None] for env in envs]
    widest = max((len(panel) for panel in panels), default=1)
    longest = max((len(row.label) for row in rows), default=10)
    fig, axes = plt.subplots(
        1,
        len(envs),
        figsize=(max(6.0, len(envs) * max(4.0, 0.45 * widest)), 3.5 + 0.07 * longest),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    for ax, env, panel in zip(axes[0], envs, panels, strict=True):
        intervals = [_interval(row) for row in panel]
        means = [mean for mean, _, _ in intervals]
        # Rounding can put a bound a hair inside the mean (1e-17): an error bar is never negative.
        errors = [
            [max(0.0, mean - low) for mean, low, _ in intervals],
            [max(0.0, high - mean) for mean, _, high in intervals],
        ]
        ax.bar(range(len(panel)), means, 0.7, yerr=errors, capsize=3, color=[f"C{i % 10}" for i in range(len(panel))])
        ax.set_xticks(range(len(panel)), [row.label for row in panel], rotation=60, ha="right", fontsize="small")
        ax.set(title=env, ylim=(0, 1.05))
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("average reward (95% interval)")
    return fig


def plot_failure_modes(rates: list[ModeRate], path: Path) -> Path | None:
    """Failure modes per configuration: a horizontal bar per configuration (its label), stacked
    by category, each segment that category's share of the configuration's pairs (None: no
    configuration failed)."""
    if not rates:
        return None
    return _save(failure_modes_figure(rates), path)


def failure_modes_figure(rates: list[ModeRate]) -> Figure:
    plt = _pyplot()
    labels = list(dict.fromkeys(rate.label for rate in rates))
    categories = list(dict.fromkeys(rate.category for rate in rates))
    longest = max(len(label) for label in labels)
    fig, ax = plt.subplots(figsize=(7 + 0.07 * longest, max(3.0, 0.35 * len(labels) + 1.5)), layout="constrained")
    left = [0.0] * len(labels)
    for index, category in enumerate(categories):
        share = {rate.label: rate.rate for rate in rates if rate.category == category}
        widths = [share.get(label, 0.0) for label in labels]
        ax.barh(range(len(labels)), widths, left=left, color=f"C{index % 10}", label=category.replace("_", " "))
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_yticks(range(len(labels)), labels, fontsize="small")
    ax.invert_yaxis()  # the report's order, top to bottom
    ax.set(
        xlabel="share of the configuration's (task, trial) pairs", xlim=(0, 1), title="failure modes per configuration"
    )
    ax.grid(axis="x", alpha=0.3)
    fig.legend(fontsize="small", loc="outside right upper")
    return fig


def write_comparisons(differences: list[Difference], out_dir: Path) -> list[Path]:
    """`comparisons.md` and `.csv`: the comparisons of `pairs.paired_differences`, per family and
    metric (the methods: inference.py; the same numbers as `python -m tau_exp.compare`)."""
    if not differences:
        return []
    header = [
        "family",  # the Holm family: the factor the pair differs in, "<factor>, pooled", "all pairs"
        "metric",
        "A",
        "B",
        "B − A",
        "ci_low",
        "ci_high",
        "p_holm",
        "verdict",
        "mde_80",
        "tasks",
        "A_more",
        "B_more",
        "task_data",  # same, DIFFERENT (not like for like: the arms ran different data) or unknown
    ]
    table = [
        [
            d.family,
            d.metric,
            d.a,
            d.b,
            d.difference,
            d.low,
            d.high,
            d.p_adjusted,
            d.verdict,
            d.mde,
            d.tasks,
            " ".join(d.a_more),
            " ".join(d.b_more),
            data_note(d.same_data),
        ]
        for d in differences
    ]
    paths = out_dir / "comparisons.csv", out_dir / "comparisons.md"
    write_table(header, table, *paths)
    return list(paths)


def write_failure_modes(
    modes: list[ConfigurationModes], rates: list[ModeRate], differences: list[Difference], out_dir: Path
) -> list[Path]:
    """`failure_modes.md`/`.csv`: per configuration and failure category (diagnosis.py, computed
    on read: older job directories and imported files too) the pairs in it and their rate with
    its 95% task-level interval; `failure_mode_differences.md`/`.csv`: for each compared pair,
    which modes account for the difference (modes.py). `rates`: mode_rates(modes)."""
    if not rates:
        return []
    header = ["configuration", "category", "count", "pairs", "rate", "ci_low", "ci_high"]
    table: list[list[object]] = [[r.label, r.category, r.count, r.pairs, r.rate, r.low, r.high] for r in rates]
    paths = [out_dir / "failure_modes.csv", out_dir / "failure_modes.md"]
    write_table(header, table, paths[0], paths[1])
    by_mode = mode_differences(modes, differences)
    if by_mode:
        header = ["A", "B", "mode", "A_rate", "B_rate", "B − A", "ci_low", "ci_high", "p_holm", "verdict"]
        table = [
            [
                d.a,
                d.b,
                d.metric.removeprefix(RATE),
                d.a_value,
                d.b_value,
                d.difference,
                d.low,
                d.high,
                d.p_adjusted,
                d.verdict,
            ]
            for d in by_mode
        ]
        paths += [out_dir / "failure_mode_differences.csv", out_dir / "failure_mode_differences.md"]
        write_table(header, table, paths[2], paths[3])
    return paths


def write_failure_sides(audit: Audit, out_dir: Path) -> list[Path]:
    """`failure_sides.md`/`.csv`: per configuration, its failures by side with their shares of its
    pairs and task-level intervals, and pass^1 over all its tasks beside pass^1 over the tasks its
    user's audit found sound (audit.py)."""
    header = ["configuration", "side", "count", "pairs", "rate", "ci_low", "ci_high", "pass^1", "pass^1_user_sound"]
    table: list[list[object]] = [
        [
            c.label,
            share.side.value,
            share.count,
            c.pairs,
            share.rate,
            share.low,
            share.high,
            c.pass_hat_k.get(1),
            c.pass_hat_k_user_sound.get(1),
        ]
        for c in audit.configurations
        for share in c.sides
    ]
    paths = [out_dir / "failure_sides.csv", out_dir / "failure_sides.md"]
    write_table(header, table, paths[0], paths[1], drop_empty_in_markdown=True)
    return paths


@command_line
def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(
        "python -m tau_exp.report",
        __doc__,
        reads=f"{SOURCES_IN_FULL}. With --html also tau2's own tasks (what each user was asked); with --wandb "
        "W&B's settings from the environment (WANDB_MODE, and what `wandb login` stored).",
        docs="docs/tracking-and-reports.md (--html: docs/browser.md)",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help=SOURCES)
    parser.add_argument("-o", "--output", type=Path, help="where to write the report (default: the first path)")
    parser.add_argument(
        "--wandb",
        action="store_true",
        help="also log the table and plots as a W&B run of job type 'report' (mode from WANDB_MODE, "
        "default offline; project from --project)",
    )
    parser.add_argument("--project", default="tau_exp", help="W&B project for --wandb (default: %(default)s)")
    parser.add_argument(
        "--html",
        action="store_true",
        help=f"also write {BROWSER_FILE}: one self-contained page to browse every configuration, task "
        "and conversation, and to compare configurations task by task (opens from disk)",
    )
    parser.add_argument(
        "--audit",
        nargs="+",
        type=Path,
        metavar="AUDIT",
        help="also write failure_sides.md/.csv: each configuration's failures by side (agent, user simulator, "
        "undetermined) from these audit runs of the oracle assistant (python -m tau_exp.audit)",
    )
    args = parser.parse_args(argv)
    groups = find_configurations(args.paths)
    rows = [group.row for group in groups]
    out_dir = args.output or args.paths[0]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TauExpError(
            f"the report cannot be written to {out_dir}: {error.strerror or error}; give -o a directory you can write"
        ) from None
    differences = paired_differences(groups, require_shared_tasks=False)  # costly: once, for tables and page
    modes = [ConfigurationModes(group) for group in groups]  # each failure diagnosed once: tables, plot, page
    rates = mode_rates(modes)
    tables = [
        *write_tables(rows, out_dir),
        *write_comparisons(differences, out_dir),
        *write_failure_modes(modes, rates, differences, out_dir),
        *(write_failure_sides(audit_configurations(groups, args.audit), out_dir) if args.audit else []),
    ]
    plots = [plot_pass_hat_k(rows, out_dir / "pass_hat_k.png"), plot_rewards(rows, out_dir / "avg_reward.png")]
    if modes_plot := plot_failure_modes(rates, out_dir / "failure_modes.png"):
        plots.append(modes_plot)
    written = [*tables, *plots]
    if args.wandb:
        log_to_wandb([path for path in tables if path.suffix == ".csv"], plots, out_dir, args.project)
    if args.html:
        written.append(write_browser(groups, args.paths, out_dir / BROWSER_FILE, differences, modes))
    print((out_dir / "report.md").read_text())
    for path in written:
        print(path)


def log_to_wandb(tables: list[Path], plots: list[Path], out_dir: Path, project: str) -> None:
    """The report as a W&B run: its CSV tables (report, comparisons) and the plots as images."""
    import os

    import wandb

    logged: dict[str, object] = {}
    for csv_path in tables:
        with open(csv_path) as csv_file:
            header, *lines = list(csv.reader(csv_file))
        logged[csv_path.stem] = wandb.Table(columns=header, data=lines)  # type: ignore[arg-type]  # wandb hints list[str | int]
    mode = os.environ.get("WANDB_MODE", "offline")
    run = wandb.init(project=project, job_type="report", dir=str(out_dir), name=f"report {out_dir.name}", mode=mode)  # type: ignore[arg-type]  # wandb checks it
    run.log({**logged, **{plot.stem: wandb.Image(str(plot)) for plot in plots}})
    run.finish()


if __name__ == "__main__":
    main()
