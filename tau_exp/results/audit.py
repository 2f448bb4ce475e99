"""Whose fault a failure is: the agent's, or the user simulator's.

Up to 30% of tau-bench's failed conversations are the user simulator's (tau2-bench PR #392): it
stops before the work is done, withholds what the agent needs, or skips an action on its device.
The **audit** tells them apart by experiment, with no judge: the oracle assistant (it performs
every gold action, whatever the user says) talks to a user configuration on every task. A task
where even the perfect assistant fails under that user simulator is **user-limited** for it.

    python -m tau_exp.audit AGENT_RUNS... --audit AUDIT_RUNS... [--json]

An audit run is an ordinary job or sweep with the oracle as the assistant and the user
configuration under audit (`python launch.py -m model=oracle agent=tool_calling user=...`).
Per task and user configuration (its name, strategy and user settings, on one env and task data):
- **sound**: the oracle assistant succeeded in every audited trial;
- **user-limited**: it failed in every one;
- **flaky**: some of each (the simulator spoils the task some of the time).

Each failed or ended-early pair of an agent configuration is then labelled **agent** (the task is
sound for its user), **user simulator** (user-limited) or **undetermined** (flaky, or not
audited), with each label's share of the configuration's pairs and its task-level interval, and
pass^k on the user-sound tasks beside pass^k on all. Audits on other task data than the runs
they judge are refused, and the tasks an audit lacks are named with the command that runs them.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tau_exp.display import argument_parser, print_result
from tau_exp.errors import TauExpError
from tau_exp.jobdir import JobDir
from tau_exp.records import EpisodeResult, EpisodeStatus
from tau_exp.results.collect import SOURCES, SOURCES_IN_FULL, Configuration, find_configurations
from tau_exp.results.inference import Share, share
from tau_exp.results.metrics import pass_hat_ks, task_successes
from tau_exp.runtime import command_line

ORACLE = "oracle"  # the assistant model of an audit: tau_exp's oracle, which takes every gold action
# The keys of a configuration's identity that make its user simulator what it is (and the tasks it
# plays), besides its settings under "user.".
USER_KEYS = ("env", "split", "data", "user", "user_strategy")


class Side(str, Enum):
    """Whose fault a failure is."""

    agent = "agent"
    user_simulator = "user simulator"
    undetermined = "undetermined"


class TaskAudit(str, Enum):
    """What the oracle assistant did on a task under one user configuration."""

    sound = "sound"  # succeeded in every audited trial
    user_limited = "user-limited"  # failed in every one
    flaky = "flaky"  # some of each


class SideShare(Share):
    """One side's failures in one configuration: their count, rate over its pairs and interval."""

    side: Side


class AuditedConfiguration(BaseModel):
    """One agent configuration, its failures by side."""

    label: str
    pairs: int
    failures: int
    sides: list[SideShare]
    user_limited_tasks: list[str]  # tasks the audit found user-limited for its user
    not_audited_tasks: list[str]  # tasks it ran that no audit of its user ran
    pass_hat_k: dict[int, float]  # over all its tasks
    pass_hat_k_user_sound: dict[int, float]  # over the tasks the audit found sound
    labels: dict[str, str]  # "task/trial" → side, for every failed or ended-early pair


class Audit(BaseModel):
    configurations: list[AuditedConfiguration]
    missing: list[str]  # commands that run the audits still missing


def user_key(configuration: Configuration, with_data: bool = True) -> str:
    """The user simulator a configuration talks to, and the tasks it plays: the part of its
    identity an audit must share with it (`with_data=False`: all of it but the task data)."""
    identity = configuration.identity
    parts = {key: identity.get(key) for key in USER_KEYS if with_data or key != "data"}
    parts.update({key: value for key, value in identity.items() if key.startswith("user.")})
    return "; ".join(f"{key}={parts[key]}" for key in sorted(parts))


def task_audits(audits: list[Configuration]) -> dict[str, dict[str, TaskAudit]]:
    """Per user key, per task: sound, user-limited or flaky, from the oracle assistant's scored
    trials (infra and harness errors are not trials)."""
    verdicts: dict[str, dict[str, TaskAudit]] = {}
    for configuration in audits:
        names = configuration.sources[0].names
        if names.model.rsplit("/", 1)[-1] != ORACLE:
            raise TauExpError(
                f"{configuration.row.label} is no audit: its assistant is {names.model}, not the oracle; "
                "run audits with model=oracle (python launch.py -m model=oracle agent=tool_calling user=...)"
            )
        outcomes: dict[str, list[bool]] = defaultdict(list)
        for result in configuration.records:
            if result.status == EpisodeStatus.scored:
                outcomes[result.task_id].append(result.success)
        verdicts[user_key(configuration)] = {
            task: TaskAudit.sound if all(trials) else TaskAudit.user_limited if not any(trials) else TaskAudit.flaky
            for task, trials in outcomes.items()
        }
    return verdicts


def side_of(verdict: TaskAudit | None) -> Side:
    """A failure's side, from what the audit found of its task under its user."""
    if verdict == TaskAudit.sound:
        return Side.agent
    if verdict == TaskAudit.user_limited:
        return Side.user_simulator
    return Side.undetermined


def run_audit(runs: list[Path], audit_runs: list[Path]) -> Audit:
    """Label every failure of `runs` by side, from the audits in `audit_runs` (TauExpError: an
    audit that is no oracle run, or on other task data than the runs it would judge)."""
    return audit_configurations(find_configurations(runs), audit_runs)


def audit_configurations(judged: list[Configuration], audit_runs: list[Path]) -> Audit:
    """`run_audit` of configurations already read (the report's)."""
    audits = find_configurations(audit_runs)
    verdicts = task_audits(audits)
    data_of = {user_key(c, with_data=False): c.identity.get("data") for c in audits}
    configurations, missing = [], []
    for configuration in judged:
        key = user_key(configuration)
        if key not in verdicts:
            same_user = user_key(configuration, with_data=False)
            if same_user in data_of:
                raise TauExpError(
                    f"the audit of {configuration.row.label}'s user ran other task data ({data_of[same_user]}, the runs "
                    f"{configuration.identity.get('data')}): a task's audit says nothing of another version of it; "
                    "run the audit on the runs' data"
                )
        audited = verdicts.get(key, {})
        records = configuration.records
        outcome = _labelled(configuration.row.label, records, audited)
        configurations.append(outcome)
        if outcome.not_audited_tasks:
            missing.append(_audit_command(configuration, outcome.not_audited_tasks))
    return Audit(configurations=configurations, missing=missing)


def _labelled(label: str, records: list[EpisodeResult], audited: dict[str, TaskAudit]) -> AuditedConfiguration:
    # Failures the benchmark scored (infra and harness errors are neither side's: not trials).
    failed = [r for r in records if r.status == EpisodeStatus.scored and not r.success]
    side_of_pair = {r.key: side_of(audited.get(r.task_id)) for r in failed}

    def on(side: Side) -> Callable[[EpisodeResult], bool]:
        return lambda record: side_of_pair.get(record.key) == side

    scored = [r for r in records if r.status == EpisodeStatus.scored]
    successes = task_successes(scored)
    most = max((n for _, n in successes.values()), default=0)
    sound = {task for task, verdict in audited.items() if verdict == TaskAudit.sound}
    return AuditedConfiguration(
        label=label,
        pairs=len(records),
        failures=len(failed),
        sides=[SideShare(side=side, **share(records, on(side)).model_dump()) for side in Side],
        user_limited_tasks=sorted(t for t, v in audited.items() if v == TaskAudit.user_limited),
        not_audited_tasks=sorted({r.task_id for r in records} - set(audited)),
        pass_hat_k=pass_hat_ks(successes, most),
        pass_hat_k_user_sound=pass_hat_ks({t: s for t, s in successes.items() if t in sound}, most),
        labels={f"{task}/{trial}": side.value for (task, trial), side in side_of_pair.items()},
    )


def _audit_command(configuration: Configuration, tasks: list[str]) -> str:
    """The launch command of the missing audit: the runs' own overrides (their env, tasks and
    user), with the oracle as the assistant, on the tasks not audited."""
    job = JobDir(configuration.sources[0].path)
    overrides = [
        o
        for o in (job.read_overrides() if job.hydra_overrides.exists() else [])
        if not o.split("=", 1)[0].lstrip("+~").startswith(("model", "agent", "hydra.", "tasks.ids"))
    ]
    ids = "[" + ",".join(tasks) + "]"
    return shlex.join(
        ["python", "launch.py", "-m", "model=oracle", "agent=tool_calling", *overrides, f"tasks.ids={ids}"]
    )


def render(audit: Audit) -> list[Any]:
    from rich import box
    from rich.table import Table

    table = Table(
        title="whose fault each failure is (shares of the pairs, 95% task-level intervals)", box=box.SIMPLE_HEAD
    )
    for column in (
        "configuration",
        "failures",
        "agent",
        "user simulator",
        "undetermined",
        "pass^1",
        "pass^1 user-sound",
    ):
        table.add_column(column, overflow="fold")
    for c in audit.configurations:
        shares = {share.side: _share(share) for share in c.sides}
        table.add_row(
            c.label,
            f"{c.failures} of {c.pairs}",
            shares[Side.agent],
            shares[Side.user_simulator],
            shares[Side.undetermined],
            _fmt(c.pass_hat_k.get(1)),
            _fmt(c.pass_hat_k_user_sound.get(1)),
        )
    notes = [
        f"{c.label}: user-limited tasks {', '.join(c.user_limited_tasks)}"
        for c in audit.configurations
        if c.user_limited_tasks
    ]
    if audit.missing:
        notes += ["tasks no audit ran (their failures are undetermined); run the audits with:", *audit.missing]
    return [table, *notes]


def _share(share: SideShare) -> str:
    interval_text = "" if share.low is None or share.high is None else f"\n{share.low:.3f}–{share.high:.3f}"
    return f"{share.count} ({share.rate:.3f}){interval_text}"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


@command_line
def main(argv: list[str] | None = None) -> None:
    parser = argument_parser(
        "python -m tau_exp.audit",
        __doc__,
        reads=f"{SOURCES_IN_FULL}; for --audit, runs whose assistant is the oracle (model=oracle).",
        docs="docs/diagnosis.md (Whose fault: the user-simulator audit)",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help=f"the runs to judge: {SOURCES}")
    parser.add_argument("--audit", nargs="+", type=Path, required=True, metavar="AUDIT", help="the audit runs")
    parser.add_argument("--json", action="store_true", help="print the audit as JSON (for scripts)")
    args = parser.parse_args(argv)
    audit = run_audit(args.paths, args.audit)
    print_result(audit, [] if args.json else render(audit), args.json)


if __name__ == "__main__":
    main()
