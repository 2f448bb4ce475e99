"""Reports across sweeps: one row per configuration (env × agent × model × user), with the
average reward and its 95% interval, pass^1…pass^k, counts, tokens and time, as Markdown and
CSV, and plots as PNG.

    python -m tau_exp.report outputs/multirun/2026-11-24/10-00-00 [more sweeps or job dirs] [-o DIR] [--html]

With --html it also writes browser.html, a page to read every conversation and compare
configurations task by task (tau_exp/browser/).

Jobs of the same configuration (e.g. the shards of a sweep) are pooled: their results are
scored together, as one run over all their tasks. Rewards and successes are the benchmark's, as
recorded in each job's results.jsonl; nothing is re-scored. The results files of tau-bench v1's
run.py (`<strategy>-<model>-..._user-....json`, or a folder of them) are read too.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from statistics import NormalDist, fmean, stdev
from typing import NamedTuple, Optional

from omegaconf import OmegaConf
from pydantic import BaseModel

from tau_exp.bench.tau_bench_results import is_v1_results_file, read_v1_results
from tau_exp.browser import BROWSER_FILE, write_browser
from tau_exp.checkpoint import RESULTS_FILE, read_results
from tau_exp.display import write_table
from tau_exp.errors import TauExpError
from tau_exp.job import read_status
from tau_exp.metrics import pass_hat_k
from tau_exp.records import EpisodeResult, Status
from tau_exp.sweep import job_dirs
from tau_exp.runtime import command_line

Z_95 = NormalDist().inv_cdf(0.975)


class ConfigRow(BaseModel):
    """One configuration of the report."""

    env: str
    agent: str
    model: str
    user: str
    user_strategy: str
    jobs: int  # job directories (or v1 results files) pooled
    tasks: int  # tasks with at least one scored trial
    avg_reward: Optional[float]
    ci_low: Optional[float]  # 95% normal interval of the mean over tasks of each task's mean reward
    ci_high: Optional[float]
    pass_hat_k: dict[int, float]
    results: int  # scored (task, trial) pairs
    infra_errors: int
    harness_errors: int
    prompt_tokens: int
    completion_tokens: int
    wall_time_s: float  # summed over the jobs' last invocations

    @property
    def label(self) -> str:
        return f"{self.env} · {self.agent} · {_short(self.model)} · {_short(self.user)} ({self.user_strategy})"


class Source(NamedTuple):
    """The results of one job directory or one v1 results file, with its configuration."""

    key: tuple[str, str, str, str, str]  # env, agent, model, user, user strategy
    results: list[EpisodeResult]
    wall_time_s: float  # the job's last invocation (0 for v1 files: they do not say)


def find_sources(paths: list[Path]) -> list[Source]:
    """Each path is a job directory, a sweep directory of them, a v1 results file or a folder of them."""
    found: list[Source] = []
    for path in paths:
        if is_v1_results_file(path):
            found.append(_v1_source(path))
        elif (path / RESULTS_FILE).exists():
            found.append(_job_source(path))
        elif path.is_dir() and (jobs := [job for job in job_dirs(path) if (job / RESULTS_FILE).exists()]):
            found.extend(_job_source(job) for job in jobs)
        elif path.is_dir() and (files := sorted(file for file in path.glob("*.json") if is_v1_results_file(file))):
            found.extend(_v1_source(file) for file in files)
        else:
            raise TauExpError(f"{path} holds no results (no {RESULTS_FILE} in it or in its job directories, and no "
                              "tau-bench v1 results file): give sweep directories (outputs/multirun/<date>/<time>), job "
                              "directories, or v1 results files")
    return found


V1_ENV = "{env} (tau-bench v1)"  # v1's domains are other tasks than tau2's of the same name: never pooled


def _job_source(job_dir: Path) -> Source:
    cfg = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
    env = str(cfg.env.name)
    if OmegaConf.select(cfg, "bench.name", default="tau2") == "tau_bench":
        env = V1_ENV.format(env=env)
    key = (env, str(cfg.agent.name), str(cfg.model.name), str(cfg.user.name), str(cfg.user.strategy))
    return Source(key, read_results(job_dir), _wall_time(job_dir))


def _v1_source(path: Path) -> Source:
    configuration, results = read_v1_results(path)
    key = (V1_ENV.format(env=configuration.env), *configuration[1:])
    return Source(key, results, 0.0)  # type: ignore[arg-type]


def config_row(key: tuple[str, str, str, str, str], sources: list[Source]) -> ConfigRow:
    results: list[EpisodeResult] = [r for source in sources for r in source.results]
    scored = [r for r in results if r.status == Status.scored and r.reward is not None]
    rewards_by_task: dict[str, list[float]] = defaultdict(list)
    successes: dict[str, list[bool]] = defaultdict(list)
    for result in scored:
        rewards_by_task[result.task_id].append(result.reward)  # type: ignore[arg-type]
        successes[result.task_id].append(result.success)
    task_means = [fmean(rewards) for rewards in rewards_by_task.values()]
    low, high = mean_interval(task_means)
    max_trials = max((len(trials) for trials in successes.values()), default=0)
    counts = {task: (sum(trials), len(trials)) for task, trials in successes.items()}
    passes = {k: value for k in range(1, max_trials + 1) if (value := pass_hat_k(counts, k)) is not None}
    env, agent, model, user, strategy = key
    return ConfigRow(
        env=env, agent=agent, model=model, user=user, user_strategy=strategy, jobs=len(sources),
        tasks=len(rewards_by_task), avg_reward=fmean(r.reward for r in scored) if scored else None,  # type: ignore[misc]
        ci_low=low, ci_high=high, pass_hat_k=passes, results=len(scored),
        infra_errors=sum(r.status == Status.infra_error for r in results),
        harness_errors=sum(r.status == Status.harness_error for r in results),
        prompt_tokens=sum(u.prompt_tokens for r in results for u in r.usage.values()),
        completion_tokens=sum(u.completion_tokens for r in results for u in r.usage.values()),
        wall_time_s=sum(source.wall_time_s for source in sources),
    )


def mean_interval(values: list[float]) -> tuple[Optional[float], Optional[float]]:
    """95% normal interval of the mean (None without values; a point with one value)."""
    if not values:
        return None, None
    mean = fmean(values)
    if len(values) < 2:
        return mean, mean
    half = Z_95 * stdev(values) / math.sqrt(len(values))
    return max(0.0, mean - half), min(1.0, mean + half)


def build_report(paths: list[Path]) -> list[tuple[ConfigRow, list[Source]]]:
    """One row per configuration, in the table's order, with the sources pooled into it."""
    by_config: dict[tuple[str, str, str, str, str], list[Source]] = defaultdict(list)
    for source in find_sources(paths):
        by_config[source.key].append(source)
    return [(config_row(key, sources), sources) for key, sources in sorted(by_config.items())]


def write_tables(rows: list[ConfigRow], out_dir: Path) -> tuple[Path, Path]:
    max_k = max((max(row.pass_hat_k, default=0) for row in rows), default=0)
    header = ["env", "agent", "model", "user", "user_strategy", "jobs", "tasks", "avg_reward", "ci_low", "ci_high",
              *[f"pass^{k}" for k in range(1, max_k + 1)], "results", "infra_errors", "harness_errors",
              "prompt_tokens", "completion_tokens", "wall_time_s"]
    table = [[row.env, row.agent, row.model, row.user, row.user_strategy, row.jobs, row.tasks, row.avg_reward,
              row.ci_low, row.ci_high, *[row.pass_hat_k.get(k) for k in range(1, max_k + 1)], row.results,
              row.infra_errors, row.harness_errors, row.prompt_tokens, row.completion_tokens, round(row.wall_time_s)]
             for row in rows]
    csv_path, md_path = out_dir / "report.csv", out_dir / "report.md"
    write_table(header, table, csv_path, md_path)
    return csv_path, md_path


def plot_pass_hat_k(rows: list[ConfigRow], path: Path) -> Path:
    """pass^k against k, one line per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, max(5.0, 0.2 * len(rows))), layout="constrained")  # room for the legend
    for row in rows:
        if row.pass_hat_k:
            ks = sorted(row.pass_hat_k)
            ax.plot(ks, [row.pass_hat_k[k] for k in ks], marker="o", label=row.label)
    ax.set(xlabel="k (trials that must all succeed)", ylabel="pass^k", ylim=(-0.02, 1.02),
           title="pass^k per configuration")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_rewards(rows: list[ConfigRow], path: Path) -> Path:
    """Average reward with its 95% interval: one panel per env, strategies along x, a bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({row.env for row in rows})
    models = sorted({row.model for row in rows})
    fig, axes = plt.subplots(1, len(envs), figsize=(max(6, 5 * len(envs)), 4.8), squeeze=False, sharey=True,
                             layout="constrained")
    width = min(0.35, 0.8 / max(1, len(models)))
    for ax, env in zip(axes[0], envs):
        env_rows = [row for row in rows if row.env == env and row.avg_reward is not None]
        strategies = sorted({(row.agent, row.user_strategy) for row in env_rows})
        for index, model in enumerate(models):
            bars = [(strategies.index((row.agent, row.user_strategy)), row) for row in env_rows if row.model == model]
            if not bars:
                continue
            xs = [position + (index - (len(models) - 1) / 2) * width for position, _ in bars]
            means = [row.avg_reward for _, row in bars]
            errors = [[row.avg_reward - row.ci_low for _, row in bars], [row.ci_high - row.avg_reward for _, row in bars]]
            ax.bar(xs, means, width, yerr=errors, capsize=3, label=_short(model))
        ax.set_xticks(range(len(strategies)), [f"{agent}\nuser: {user}" for agent, user in strategies], fontsize="small")
        ax.set(title=env, ylim=(0, 1.05))
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("average reward (95% interval)")
    axes[0][-1].legend(title="assistant model", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _wall_time(job_dir: Path) -> float:
    status = read_status(job_dir)
    if status is None or status.finished_at is None:
        return 0.0
    return (datetime.fromisoformat(status.finished_at) - datetime.fromisoformat(status.started_at)).total_seconds()


def _short(model: str) -> str:
    return model.rsplit("/", 1)[-1]


@command_line
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tau_exp.report", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="sweep directories or job directories")
    parser.add_argument("-o", "--output", type=Path, help="where to write the report (default: the first path)")
    parser.add_argument("--wandb", action="store_true",
                        help="also log the table and plots as a W&B run of job type 'report' (mode from WANDB_MODE, "
                             "default offline; project from --project)")
    parser.add_argument("--project", default="tau_exp", help="W&B project for --wandb (default: %(default)s)")
    parser.add_argument("--html", action="store_true",
                        help=f"also write {BROWSER_FILE}: one self-contained page to browse every configuration, task "
                             "and conversation, and to compare configurations task by task (opens from disk)")
    args = parser.parse_args(argv)
    groups = build_report(args.paths)
    rows = [row for row, _ in groups]
    out_dir = args.output or args.paths[0]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [*write_tables(rows, out_dir), plot_pass_hat_k(rows, out_dir / "pass_hat_k.png"),
               plot_rewards(rows, out_dir / "avg_reward.png")]
    if args.wandb:
        log_to_wandb(rows, written, out_dir, args.project)
    if args.html:
        written.append(write_browser(groups, args.paths, out_dir / BROWSER_FILE))
    print((out_dir / "report.md").read_text())
    for path in written:
        print(path)


def log_to_wandb(rows: list[ConfigRow], written: list[Path], out_dir: Path, project: str) -> None:
    """The report as a W&B run: the table, and the plots as images."""
    import os

    import wandb

    csv_path, _, *plots = written
    with open(csv_path) as csv_file:
        header, *lines = list(csv.reader(csv_file))
    run = wandb.init(project=project, job_type="report", dir=str(out_dir), name=f"report {out_dir.name}",
                     mode=os.environ.get("WANDB_MODE", "offline"))  # type: ignore[arg-type]
    run.log({"report": wandb.Table(columns=header, data=lines),
             **{plot.stem: wandb.Image(str(plot)) for plot in plots}})
    run.finish()


if __name__ == "__main__":
    main()
