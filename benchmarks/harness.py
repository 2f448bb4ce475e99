"""The harnesses the benchmark compares, each run in its own process by `measure.run_harness`:

- `tau_exp`: this project's whole job (`tau_exp.experiment.run`) attached to the oracle server.
- `tau2`: tau2's own runner, `tau2.run.run_tasks`, with its LLM agent and user simulator.
- `legacy`: a re-creation of the old tau-bench `run.py` loop — a thread pool per trial, and after
  each task the whole results JSON read and rewritten under a lock. The v1 package is not
  installable here, so its episodes are tau2 episodes (`tau_exp.bench.tau2.run_episode`, scored
  in the episode's thread, the garbage collector as Python sets it): what differs is the loop.

Each prints one JSON line: what it ran, its wall time, the CPU time it spent before the
measured part (imports; the caller subtracts it), rewards and model calls, peak memory.

    python -m benchmarks.harness tau_exp --url http://127.0.0.1:PORT/v1 --domain retail ...
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from benchmarks.measure import MemorySampler, self_cpu_s
from benchmarks.oracle import KEY_ENV, attach_overrides
from tau_exp import runtime


def run_tau_exp(args: argparse.Namespace) -> dict:
    from hydra import compose, initialize_config_dir

    from tau_exp.config import register_configs
    from tau_exp.experiment import run
    from tau_exp.jobdir import JobDir

    register_configs()
    overrides = [
        f"env={args.domain}",
        f"tasks.split={args.split}",
        f"tasks.end={args.tasks}",
        f"run.num_trials={args.trials}",
        f"run.max_concurrency={args.concurrency}",
        "run.progress=false",
        "tracking=none",
        *attach_overrides(args.url),
    ]
    if args.workers is not None:
        overrides.append(f"run.workers={args.workers}")
    overrides += args.override
    with initialize_config_dir(str(Path(__file__).parent.parent / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    from tau_exp.errors import IncompleteRun
    from tau_exp.files import read_json_lines
    from tau_exp.records import EpisodeStatus

    job_dir = Path(args.workdir) / "job"
    with Timed() as timed, MemorySampler() as memory:
        try:
            run(cfg, job_dir)
        except IncompleteRun:  # infra errors: reported, as the rest
            pass
    job = JobDir(job_dir)
    results = job.read_results()
    rows = [row for role in ("assistant", "user") for row in read_json_lines(job.server_metrics(role))]
    return timed.report(
        scored=sum(r.status == EpisodeStatus.scored for r in results),
        infra_errors=sum(r.status == EpisodeStatus.infra_error for r in results),
        retries=sum(usage.retries for r in results for usage in r.usage.values()),
        # Both roles share one server here: its rows are in both files, once each.
        latencies_s=[
            latency
            for row in read_json_lines(job.server_metrics("assistant"))
            for latency in row.get("latencies_s", [])
        ],
        overloads=sum(row.get("overloads", 0) for row in read_json_lines(job.server_metrics("assistant"))),
        limits=[row["limit"] for row in read_json_lines(job.server_metrics("assistant")) if "limit" in row],
        metrics_rows=len(rows),
        rewards=[r.reward for r in results],
        calls=sum(usage.calls for r in results for usage in r.usage.values()),
        episodes=[(datetime.fromisoformat(r.started_at).timestamp(), r.duration_s) for r in results if r.started_at],
        workers=memory.forked_workers(),
        results_bytes=(job_dir / "results.jsonl").stat().st_size,
    )


def run_tau2(args: argparse.Namespace) -> dict:
    import tau2.run
    from tau2.run import get_tasks, run_tasks

    from tau_exp.llm.tags import EpisodeTag

    llm_args = {"api_base": args.url, "api_key": os.environ[KEY_ENV]}
    original_run_task = tau2.run.run_task

    def run_task(*, task, llm_args_agent, llm_args_user, **kwargs):
        # The oracle knows its task from tau_exp's headers: tau2's runner gets them per task.
        def tagged(llm_args: dict, role: str) -> dict:
            return {**llm_args, "extra_headers": EpisodeTag(args.domain, task.id, 0, role).headers()}

        return original_run_task(
            task=task,
            llm_args_agent=tagged(llm_args_agent, "assistant"),
            llm_args_user=tagged(llm_args_user, "user"),
            **kwargs,
        )

    tau2.run.run_task = run_task
    tasks = get_tasks(args.domain, args.split)[: args.tasks]
    with Timed() as timed:
        results = run_tasks(
            args.domain,
            tasks,
            agent="llm_agent",
            user="user_simulator",
            llm_agent="hosted_vllm/oracle",
            llm_args_agent=llm_args,
            llm_user="hosted_vllm/oracle",
            llm_args_user=llm_args,
            num_trials=args.trials,
            save_to=Path(args.workdir) / "tau2_results.json",
            console_display=False,
            max_concurrency=args.concurrency,
            log_level="ERROR",
        )
    return timed.report(
        rewards=[s.reward_info.reward for s in results.simulations],
        results_bytes=(Path(args.workdir) / "tau2_results.json").stat().st_size,
    )


def run_legacy(args: argparse.Namespace) -> dict:
    from tau2.run import get_tasks

    from tau_exp.bench import episode_spec
    from tau_exp.bench.tau2 import run_episode
    from tau_exp.config import AgentConfig, EnvConfig, ExperimentConfig, ModelConfig, UserConfig
    from tau_exp.endpoint import Endpoint
    from tau_exp.job.runloop import pair_seed
    from tau_exp.runtime import route_tau2_logs

    route_tau2_logs(None)
    endpoint = Endpoint(args.url, "oracle", api_key=os.environ[KEY_ENV])
    experiment = ExperimentConfig(
        env=EnvConfig(name=args.domain),
        agent=AgentConfig(name="tool_calling"),
        model=ModelConfig(name="oracle"),
        user=UserConfig(name="oracle", strategy="llm"),
    )
    tasks = get_tasks(args.domain, args.split)[: args.tasks]
    ckpt_path = Path(args.workdir) / "legacy_results.json"
    lock = threading.Lock()

    def solve(task, trial: int) -> dict:
        spec = episode_spec(experiment, task, trial, pair_seed(10, task.id, trial), endpoint, endpoint)
        try:
            result = run_episode(spec).model_dump(mode="json")
        except Exception as error:  # as in run.py: any exception is a reward of 0
            result = {"task_id": task.id, "reward": 0.0, "info": {"error": str(error)}, "traj": [], "trial": trial}
        with lock:  # as in run.py: read the whole file, write it all back
            data = json.loads(ckpt_path.read_text()) if ckpt_path.exists() else []
            ckpt_path.write_text(json.dumps(data + [result], indent=2))
        return result

    results: list[dict] = []
    with Timed() as timed:
        for trial in range(args.trials):
            with ThreadPoolExecutor(max_workers=args.concurrency) as executor:
                results += executor.map(solve, tasks, [trial] * len(tasks))
    return timed.report(rewards=[r["reward"] for r in results], results_bytes=ckpt_path.stat().st_size)


class Timed:
    """Wall time of the measured part; CPU time spent before it (imports) for the caller."""

    def __enter__(self) -> Timed:
        self.startup_cpu_s = self_cpu_s()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self.started

    def report(self, **fields) -> dict:
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {"wall_s": self.wall_s, "startup_cpu_s": self.startup_cpu_s, "peak_rss_mb": peak_rss_mb, **fields}


HARNESSES = {"tau_exp": run_tau_exp, "tau2": run_tau2, "legacy": run_legacy}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.harness", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("harness", choices=HARNESSES)
    parser.add_argument("--url", required=True, help="the oracle server, ending in /v1")
    parser.add_argument("--domain", default="retail")
    parser.add_argument("--split", default="test")
    parser.add_argument("--tasks", type=int, required=True, help="the first N tasks of the split")
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, help="tau_exp only: run.workers")
    parser.add_argument("--override", action="append", default=[], help="tau_exp only: a config override")
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args(argv)
    runtime.prepare_process()
    runtime.quiet_litellm()
    report = HARNESSES[args.harness](args)
    sys.stdout.flush()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
