"""Job metrics from result records: average reward, pass^k, counts, tokens and latency.

pass^k (tau-bench, arXiv 2406.12045; the same in tau2): for each task with n scored trials of
which c succeeded, C(c, k) / C(n, k) — the chance that k trials drawn without replacement all
succeed — averaged over the tasks that have at least k scored trials. Infra and harness errors
are not trials: they are counted, never scored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from math import comb
from statistics import fmean

from tau_exp.records import ConfigNames, EpisodeResult, EpisodeStatus, Metrics, ModelUsage, TaskData
from tau_exp.results.diagnosis import Diagnosis, category_counts, diagnose
from tau_exp.results.inference import TaskTrials, interval


def pass_hat_k(successes: dict[str, tuple[int, int]], k: int) -> float | None:
    """Mean over tasks with n ≥ k of C(c, k) / C(n, k); `successes` maps task → (c, n)."""
    ratios = [comb(c, k) / comb(n, k) for c, n in successes.values() if n >= k]
    return fmean(ratios) if ratios else None


def task_successes(scored: Iterable[EpisodeResult]) -> dict[str, tuple[int, int]]:
    """Per task: (successful trials, scored trials) of these scored results."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    for result in scored:
        per_task[result.task_id].append(result.success)
    return {task: (sum(trials), len(trials)) for task, trials in per_task.items()}


def pass_hat_ks(successes: dict[str, tuple[int, int]], max_k: int) -> dict[int, float]:
    """pass^1 … pass^max_k, each over the tasks with at least k scored trials (none left out)."""
    return {k: value for k in range(1, max_k + 1) if (value := pass_hat_k(successes, k)) is not None}


def compute_metrics(
    results: Iterable[EpisodeResult],
    task_ids: list[str],
    num_trials: int,
    names: ConfigNames,
    task_data: TaskData | None = None,
    diagnoses: Iterable[Diagnosis] | None = None,
) -> Metrics:
    """Metrics over the selected (task, trial) pairs; records outside the selection are ignored.
    The failure modes count `diagnoses` (diagnosis.py: one per failed or ended-early record, made
    with its task and its domain's tools); without them each record is diagnosed on its own."""
    selected = {(task_id, trial) for task_id in task_ids for trial in range(num_trials)}
    chosen = [r for r in results if r.key in selected]
    scored = [r for r in chosen if r.status == EpisodeStatus.scored]

    pass_k = {str(k): value for k, value in pass_hat_ks(task_successes(scored), num_trials).items()}
    trials = TaskTrials.of(scored)
    intervals = {
        metric: ci
        for metric in ["avg_reward", *(f"pass^{k}" for k in pass_k)]
        if (ci := interval(trials, metric)) is not None and ci.tasks > 1
    }

    reasons: dict[str, int] = defaultdict(int)
    usage: dict[str, ModelUsage] = defaultdict(ModelUsage)
    for result in chosen:
        if result.termination_reason:
            reasons[result.termination_reason] += 1
        for role, role_usage in result.usage.items():
            total = usage[role]
            for field in ModelUsage.model_fields:
                setattr(total, field, getattr(total, field) + getattr(role_usage, field))

    return Metrics(
        **names.model_dump(),
        task_data=task_data,
        avg_reward=fmean(r.reward for r in scored) if scored else None,  # type: ignore[misc]
        pass_hat_k=pass_k,
        intervals=intervals,
        n_tasks=len(task_ids),
        n_trials=num_trials,
        n_results=len(scored),
        n_infra_errors=sum(r.status == EpisodeStatus.infra_error for r in chosen),
        n_harness_errors=sum(r.status == EpisodeStatus.harness_error for r in chosen),
        n_pending=len(selected) - len(chosen),
        termination_reasons=dict(reasons),
        usage=dict(usage),
        avg_duration_s=fmean(r.duration_s for r in scored) if scored else None,
        failure_modes={
            category.value: count
            for category, count in category_counts(
                (d for d in diagnoses if (d.task_id, d.trial) in selected)
                if diagnoses is not None
                else (diagnose(r) for r in chosen)
            ).items()
        },
    )
