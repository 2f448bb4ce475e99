"""Section 6, a shared server: K jobs at once against one capacity-limited oracle (capacity C,
service time S per request), with a combined run.max_concurrency of at least 10 × C and a
request timeout that the queue at that load exceeds, once with run.concurrency=fixed and once
with load_aware, side by side.

Reported per mode: the span from the first conversation's start to the last one's end against
the server's ideal (calls ÷ (C / S)), scored pairs per second, infra errors and retries,
p50/p95 latency of the calls that succeeded, and each job's share of the calls. Both roles of
every job call the one server, each job runs the same first tasks of retail's test split in its
own directory, and every job starts at once (each with its worker processes, as by default).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from statistics import quantiles

from benchmarks.measure import descendants, reap_orphans
from benchmarks.oracle import KEY_ENV
from tau_exp.config import ModelConfig, OracleConfig, ServerConfig, ServerKind
from tau_exp.endpoint import Endpoint
from tau_exp.jobdir import JobDir
from tau_exp.servers.oracle import provide as start_oracle


@dataclass(frozen=True)
class SharedScale:
    jobs: int  # K
    tasks: int  # per job (the first N of retail's test split)
    max_concurrency: int  # per job
    capacity: int  # C
    service_s: float  # S
    timeout_s: float  # per request


FULL = SharedScale(jobs=4, tasks=10, max_concurrency=10, capacity=4, service_s=0.5, timeout_s=3.0)
# CI's: two jobs (each job's start-up, its imports and its workers', is most of a small run).
SMALL = SharedScale(jobs=2, tasks=2, max_concurrency=10, capacity=2, service_s=0.5, timeout_s=3.0)
MODES = ("fixed", "load_aware")


@contextmanager
def capacity_oracle(scale: SharedScale, servers_dir: Path) -> Iterator[Endpoint]:
    model = ModelConfig(
        name="oracle",
        server=ServerConfig(
            kind=ServerKind.oracle,
            ready_timeout_s=120,
            oracle=OracleConfig(capacity=scale.capacity, service_s=scale.service_s),
        ),
    )
    with start_oracle("assistant", model, servers_dir) as endpoint:
        yield endpoint


def measure(scale: SharedScale, workdir: Path, keep: set[int]) -> dict:
    section: dict = {
        "jobs": scale.jobs,
        "tasks_per_job": scale.tasks,
        "max_concurrency_per_job": scale.max_concurrency,
        "capacity": scale.capacity,
        "service_s": scale.service_s,
        "timeout_s": scale.timeout_s,
        "server_calls_per_s": scale.capacity / scale.service_s,
        "modes": {},
    }
    for mode in MODES:
        with capacity_oracle(scale, workdir / f"shared_{mode}_servers") as endpoint:
            # The oracle is no job's orphan: waiting for it to end after the jobs waited the
            # orphans' whole timeout (30 s) per mode.
            keep_oracle = keep | set(descendants(os.getpid()))
            section["modes"][mode] = _run_jobs(scale, mode, endpoint, workdir / f"shared_{mode}", keep_oracle)
    return section


def _run_jobs(scale: SharedScale, mode: str, endpoint: Endpoint, workdir: Path, keep: set[int]) -> dict:
    processes = []
    for job in range(scale.jobs):
        job_dir = workdir / f"job{job}"
        job_dir.mkdir(parents=True)
        args = [
            "tau_exp",
            "--url",
            endpoint.base_url,
            "--tasks",
            str(scale.tasks),
            "--concurrency",
            str(scale.max_concurrency),
            "--workdir",
            str(job_dir),
            "--override",
            f"run.concurrency={mode}",
            "--override",
            f"model.timeout_s={scale.timeout_s}",
            "--override",
            f"user.timeout_s={scale.timeout_s}",
        ]
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "benchmarks.harness", *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, KEY_ENV: endpoint.api_key or ""},
                cwd=Path(__file__).parent.parent,
            )
        )
    reports = []
    for process in processes:
        stdout, stderr = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"a shared-server job failed ({process.returncode}):\n{stderr[-3000:]}")
        reports.append(json.loads(stdout.strip().splitlines()[-1]))
    reap_orphans(keep)

    spans = []
    for job in range(scale.jobs):
        for result in JobDir(workdir / f"job{job}" / "job").read_results():
            start = datetime.fromisoformat(result.started_at).timestamp() if result.started_at else None
            if start is not None:
                spans.append((start, start + result.duration_s))
    span_s = max(end for _, end in spans) - min(start for start, _ in spans)
    calls = [report["calls"] for report in reports]
    ideal_s = sum(calls) / (scale.capacity / scale.service_s)
    latencies = sorted(latency for report in reports for latency in report["latencies_s"])
    cuts = quantiles(latencies, n=20) if len(latencies) >= 2 else [float("nan")] * 19
    scored = sum(report["scored"] for report in reports)
    return {
        "calls": sum(calls),
        "ideal_s": ideal_s,
        "span_s": span_s,
        "of_capacity": ideal_s / span_s,
        "scored": scored,
        "pairs": scale.jobs * scale.tasks,
        "scored_per_s": scored / span_s,
        "infra_errors": sum(report["infra_errors"] for report in reports),
        "retries": sum(report["retries"] for report in reports),
        "timeouts_and_overloads": sum(report["overloads"] for report in reports),
        "latency_p50_s": cuts[9],
        "latency_p95_s": cuts[18],
        "call_shares": [c / sum(calls) for c in calls],
        "min_share_of_fair": min(calls) / (sum(calls) / scale.jobs),
        "mean_limit_per_job": [sum(r["limits"]) / len(r["limits"]) if r["limits"] else None for r in reports],
    }
