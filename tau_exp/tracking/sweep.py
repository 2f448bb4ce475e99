"""The sweep summary: one row per job of a sweep directory — what it ran, its state and its
metrics — written as `summary.csv` and `summary.md` in the sweep directory.

Written by the `WriteSweepSummary` callback when a sweep ends (also when jobs failed: they are
recorded, not raised), and on demand, e.g. while a sweep still runs:

    python -m tau_exp.sweep outputs/multirun/2026-11-24/10-00-00
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from pydantic import BaseModel
from rich.table import Table

from tau_exp import slurm_client
from tau_exp.display import argument_parser, cell, console, write_table
from tau_exp.errors import SlurmError, TauExpError
from tau_exp.jobdir import JobDir, SweepDir
from tau_exp.records import Interval, JobState, ServerLoad
from tau_exp.results.labels import labels
from tau_exp.runtime import command_line


class JobRow(BaseModel):
    """One job of a sweep, as the summary shows it."""

    job: str  # the job directory's name
    label: str = ""  # what sets it apart from the sweep's other jobs, as compare and the report say it
    swept: str = ""  # the job's overrides of the keys its sweep varies, e.g. "model.temperature=0.7"
    env: str
    agent: str
    model: str
    user: str
    state: str  # running | completed | incomplete | failed | interrupted | died | unknown (no status.json)
    avg_reward: float | None = None
    avg_reward_ci: str = ""  # its 95% task-level interval, "0.725–0.950" (metrics.json "intervals")
    pass_hat_k: str = ""  # "1: 0.80 (0.65–0.93), 2: 0.70 (…)", each with its 95% interval
    scored: int | None = None
    infra_errors: int | None = None
    harness_errors: int | None = None
    pending: int | None = None
    slurm_job_id: str | None = None
    # What each role's server reported while the job ran (metrics.json "servers"; empty where
    # the server has no /metrics): mean requests running and waiting there, KV-cache usage,
    # prefix-cache hit rate, tokens generated per second, and the job's mean in-flight limit.
    assistant_server: str = ""
    user_server: str = ""
    # GPU-hours the job held (metrics.json "cost"): its Slurm allocation's and its token share
    # of the shared server jobs it used; tokens per GPU-hour and GPU-hours per scored pair.
    gpu_hours: float | None = None
    tokens_per_gpu_hour: float | None = None
    gpu_hours_per_scored_pair: float | None = None
    error: str = ""


def job_row(job: JobDir, sweep_ended: bool = False, swept_keys: Collection[str] = ()) -> JobRow:
    """`swept_keys`: the keys the job's sweep varies (SweepDir.swept_keys), whose values it shows."""
    names = job.names()
    status = job.read_status()
    row = JobRow(
        job=job.path.name,
        swept=" ".join(job.swept(swept_keys)) if swept_keys else "",
        env=names.env_label,
        agent=names.agent,
        model=names.model,
        user=f"{names.user} ({names.user_strategy})",
        state=status.state.value if status else "unknown",
        slurm_job_id=status.slurm_job_id if status else None,
        error=(status.error or "") if status else "",
    )
    if row.state == JobState.running.value and (sweep_ended or _slurm_job_gone(row.slurm_job_id)):
        # Killed outright (SIGKILL, out of memory, node failure): it never wrote its outcome.
        row.state = "died"
        row.error = "ended without recording an outcome (killed?): see its Slurm log or launch.log"
    metrics = job.read_metrics()
    if metrics is not None:
        row.avg_reward = metrics.avg_reward
        row.avg_reward_ci = _interval(metrics.intervals.get("avg_reward"))
        row.pass_hat_k = ", ".join(
            f"{k}: {value:.2f}" + (f" ({ci})" if (ci := _interval(metrics.intervals.get(f"pass^{k}"))) else "")
            for k, value in metrics.pass_hat_k.items()
        )
        row.scored, row.infra_errors = metrics.n_results, metrics.n_infra_errors
        row.harness_errors, row.pending = metrics.n_harness_errors, metrics.n_pending
        row.assistant_server, row.user_server = (
            describe_load(metrics.servers[role]) if role in metrics.servers else "" for role in ("assistant", "user")
        )
        if metrics.cost is not None:
            row.gpu_hours = metrics.cost.gpu_hours
            row.tokens_per_gpu_hour = metrics.cost.tokens_per_gpu_hour
            row.gpu_hours_per_scored_pair = metrics.cost.gpu_hours_per_scored_pair
    return row


def _interval(interval: Interval | None) -> str:
    return "" if interval is None else f"{interval.low:.3f}–{interval.high:.3f}"


def job_identity(job: JobDir, swept_keys: Collection[str]) -> dict[str, object]:
    """What tells the job apart within its sweep, as labels.labels takes it: its names and the
    values of the keys its sweep varies."""
    names = job.names()
    identity: dict[str, object] = {
        "env": names.env_label,
        "agent": names.agent,
        "model": names.model,
        "user": names.user,
        "user_strategy": names.user_strategy,
    }
    for override in job.swept(swept_keys):
        key, _, value = override.partition("=")
        if key.lstrip("+~") not in NAME_GROUPS:
            identity[key.lstrip("+~")] = value
    return identity


# Config groups whose choice is a name of the identity above (user_strategy sets user.strategy).
NAME_GROUPS = frozenset({"env", "agent", "model", "user", "user_strategy"})


def describe_load(load: ServerLoad) -> str:
    """A server's means in one cell, e.g. "running 3.9 · waiting 0.4 · KV 0.97 · prefix hits 0.92 ·
    210 tok/s · limit 2.5" (no server numbers where it has no /metrics)."""

    def number(value: float | None, digits: int = 1) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    parts = []
    if load.metrics:
        parts += [
            f"running {number(load.running)}",
            f"waiting {number(load.waiting)}",
            f"KV {number(load.kv_cache_usage, 2)}",
            f"prefix hits {number(load.prefix_cache_hit_rate, 2)}",
            f"{number(load.generation_tokens_per_s, 0)} tok/s",
        ]
    else:
        parts.append("no /metrics")
    if load.in_flight_limit is not None:
        parts.append(f"limit {number(load.in_flight_limit)}")
    return " · ".join(parts)


def _slurm_job_gone(job_id: str | None) -> bool:
    if job_id is None:
        return False
    try:
        return slurm_client.job_state(job_id) is None
    except SlurmError:  # read away from the cluster: say what the job last said
        return False


def summarize(sweep_dir: Path, sweep_ended: bool = False) -> list[JobRow]:
    """Read every job of the sweep and write `summary.csv` and `summary.md` next to them.

    `sweep_ended`: every job has returned, so one still marked running has died."""
    if not sweep_dir.is_dir():
        raise TauExpError(
            f"{sweep_dir} is not a directory: give a sweep directory such as outputs/multirun/<date>/<time>"
        )
    sweep = SweepDir(sweep_dir)
    swept_keys = sweep.swept_keys()
    jobs = sweep.jobs()
    rows = [job_row(job, sweep_ended, swept_keys) for job in jobs]
    if not rows:
        raise TauExpError(f"{sweep_dir} holds no job directories (no */.hydra/config.yaml): is it a sweep directory?")
    for row, label in zip(rows, labels([job_identity(job, swept_keys) for job in jobs]), strict=True):
        row.label = label
    fields = list(JobRow.model_fields)
    table = [[getattr(row, name) for name in fields] for row in rows]
    # summary.md leaves out what no job has (GPU-hours outside Slurm, errors when none failed).
    write_table(fields, table, sweep.summary_csv, sweep.summary_md, drop_empty_in_markdown=True)
    return rows


def print_summary(sweep_dir: Path, rows: list[JobRow]) -> None:
    """The table on stdout: it is the result the user asked for (logs and errors go to stderr)."""
    # The title as a line of its own: a table's title wraps to the table's width.
    print(f"sweep {sweep_dir} ({sum(r.state == 'completed' for r in rows)} of {len(rows)} completed)")
    table = Table()
    for column in ("job", "label", "state", "avg_reward (95%)", "pass^k (95%)", "scored", "infra"):
        table.add_column(column, overflow="fold")
    errors = any(row.error for row in rows)  # no column that cannot hold anything
    if errors:
        table.add_column("error (whole in summary.md)", overflow="ellipsis", no_wrap=True, max_width=60)
    for row in rows:
        table.add_row(
            row.job,
            row.label,
            row.state,
            cell(row.avg_reward) + (f"\n{row.avg_reward_ci}" if row.avg_reward_ci else ""),
            row.pass_hat_k,
            cell(row.scored),
            cell(row.infra_errors),
            *([row.error] if errors else []),
        )
    console().print(table)
    costs = [row for row in rows if row.gpu_hours]
    if costs:
        hours = sum(row.gpu_hours or 0.0 for row in costs)
        scored = sum(row.scored or 0 for row in costs)
        per_pair = f"{hours / scored:.4f} per scored pair" if scored else "no scored pair"
        print(f"GPU-hours: {hours:.3f} over {len(costs)} jobs ({per_pair}; per job in summary.md)")


@command_line
def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(
        "python -m tau_exp.sweep",
        __doc__,
        reads="a sweep directory: its multirun.yaml (the keys the sweep varies) and each job directory's "
        "status.json, metrics.json, .hydra/config.yaml and .hydra/overrides.yaml; and, for a job that says it is "
        "running on Slurm, whether squeue still knows it. Writes summary.csv and summary.md into the sweep "
        "directory.",
        docs="docs/jobs-and-sweeps.md (its Sweeps section)",
    )
    parser.add_argument("sweep_dir", type=Path, help="a sweep directory, e.g. outputs/multirun/<date>/<time>")
    args = parser.parse_args(argv)
    rows = summarize(args.sweep_dir)
    print_summary(args.sweep_dir, rows)
    print(SweepDir(args.sweep_dir).summary_md)


if __name__ == "__main__":
    main()
