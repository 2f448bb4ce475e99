"""The harness benchmark: this project against tau2's own runner and the old run.py loop.

    python -m benchmarks            # the full run (~25 min on 2 cores); writes benchmarks/results.json
    python -m benchmarks --small    # the version CI runs (~4.5 min on 2 cores)
    python -m benchmarks --sections throughput -o /tmp/t.json   # some sections only (also: latency,
                                                                # checkpoint, startup, browser, shared)

Sections (all against oracle servers on this machine, the same tasks for every harness):
1. throughput: (task, trial) pairs per second and CPU seconds per pair, zero model latency, with
   1 trial per task (nothing to reuse across trials) and with 4;
2. latency: 200 ms per model call, concurrency 1/8/32/64: wall time against calls × latency ÷
   concurrency, and the CPU floor (the harness's and the server's CPU time over the cores);
3. checkpoint: bytes written and time per result at 100, 1,000 and 10,000 results;
4. start-up: time from `python launch.py` to the first model request; peak memory per process;
5. the sweep browser: the report of JOBS × 100 tasks (`report --html`: tables, comparisons along
   the sweep's axes, plots, page), then its page opened in headless Chromium;
6. a shared server: K jobs against one capacity-limited oracle, run.concurrency=fixed against
   load_aware (benchmarks/shared_server.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import browser_page, checkpoint_cost, shared_server, startup
from benchmarks.measure import (
    HarnessRun,
    become_subreaper,
    descendants,
    machine,
    process_cpu_s,
    run_harness,
    usable_cpus,
)
from benchmarks.oracle import KEY_ENV, oracle_servers
from tau_exp import runtime
from tau_exp.records import EpisodeResult

console = Console()
LATENCY_S = 0.2


SECTIONS = ("throughput", "latency", "checkpoint", "startup", "browser", "shared")


@dataclass(frozen=True)
class Scale:
    domains: dict[str, int]  # domain → tasks (the first N of its test split)
    trials: tuple[int, ...]  # a throughput run per number of trials per task
    concurrencies: list[int]
    latency_pairs_per_slot: int  # pairs per unit of concurrency in section 2 (at least 2 × this)
    checkpoint_sizes: list[int]
    legacy_checkpoint_sizes: list[int]
    browser_jobs: int  # × 100 tasks


FULL = Scale({"retail": 40, "airline": 20}, (1, 4), [1, 8, 32, 64], 4, [100, 1_000, 10_000], [100, 1_000], 120)
# CI's: every section runs and is checked on as little work as shows it works (each harness run
# and each job of section 6 costs seconds of imports before its first pair).
SMALL = Scale({"retail": 3}, (2,), [1, 8], 1, [100, 1_000], [100], 12)

# What is compared in section 1: harness → (its arguments, its environment). tau_exp three times:
# with its worker processes, without them, and with the gold environment of tau2's evaluation
# built and replayed for every trial (TAU_EXP_GOLD_CACHE=0: how tau2 scores, and how tau_exp did
# before it reused the first trial's).
HARNESSES = {
    "tau_exp": (["tau_exp"], {}),
    "tau_exp (workers=0)": (["tau_exp", "--workers", "0"], {}),
    "tau_exp (gold every trial)": (["tau_exp"], {"TAU_EXP_GOLD_CACHE": "0"}),
    "tau2 run_tasks": (["tau2"], {}),
    "old run.py loop": (["legacy"], {}),
}


def throughput(scale: Scale, url: str, key: str, keep: set[int], workdir: Path) -> dict:
    """domains → trials per task → harness → row."""
    section: dict = {"concurrency": 8, "trials": list(scale.trials), "domains": {}}
    for domain, tasks in scale.domains.items():
        for trials in scale.trials:
            rows = {}
            for name, (harness, env) in HARNESSES.items():
                console.print(f"throughput: {domain}, {trials} trial(s), {name}")
                run = run_harness(
                    [
                        *harness,
                        "--url",
                        url,
                        "--domain",
                        domain,
                        "--tasks",
                        str(tasks),
                        "--trials",
                        str(trials),
                        "--concurrency",
                        "8",
                        "--workdir",
                        str(_fresh(workdir, domain, f"{trials}trials", name)),
                    ],
                    keep,
                    {KEY_ENV: key, **env},
                )
                rows[name] = _throughput_row(run)
            for row in rows.values():
                row["cpu_vs_tau2"] = row["cpu_s_per_pair"] / rows["tau2 run_tasks"]["cpu_s_per_pair"]
                row["pairs_per_s_vs_tau2"] = row["pairs_per_s"] / rows["tau2 run_tasks"]["pairs_per_s"]
                row["pairs_per_s_vs_old_loop"] = row["pairs_per_s"] / rows["old run.py loop"]["pairs_per_s"]
            section["domains"].setdefault(domain, {})[str(trials)] = rows
    return section


def _throughput_row(run: HarnessRun) -> dict:
    report, pairs = run.report, len(run.report["rewards"])
    row = {
        "pairs": pairs,
        "mean_reward": sum(report["rewards"]) / pairs,
        "wall_s": report["wall_s"],
        "pairs_per_s": pairs / report["wall_s"],
        "cpu_s": run.cpu_s,
        "cpu_s_per_pair": run.cpu_s / pairs,
        "peak_rss_mb": report["peak_rss_mb"],
        "results_bytes": report["results_bytes"],
    }
    if "workers" in report:
        row["workers"] = [{"peak_rss_mb": w["rss_mb"], "peak_pss_mb": w["pss_mb"]} for w in report["workers"]]
    return row


def latency(scale: Scale, url: str, key: str, keep: set[int], workdir: Path) -> dict:
    rows = []
    for concurrency in scale.concurrencies:
        pairs = scale.latency_pairs_per_slot * max(2, concurrency)
        trials = math.ceil(pairs / 114)  # retail's base split has 114 tasks
        tasks = math.ceil(pairs / trials)
        console.print(f"latency: concurrency {concurrency}, {tasks} tasks × {trials} trials")
        server_cpu = process_cpu_s(keep)
        run = run_harness(
            [
                "tau_exp",
                "--url",
                url,
                "--split",
                "base",
                "--tasks",
                str(tasks),
                "--trials",
                str(trials),
                "--concurrency",
                str(concurrency),
                "--workdir",
                str(_fresh(workdir, f"latency{concurrency}")),
            ],
            keep,
            {KEY_ENV: key},
        )
        server_cpu = process_cpu_s(keep) - server_cpu
        report = run.report
        # The run loop's span: first episode start to last episode end (server checks and the
        # start of the scoring workers before it are in job_wall_s).
        starts = [start for start, _ in report["episodes"]]
        span = max(start + duration for start, duration in report["episodes"]) - min(starts)
        ideal = report["calls"] * LATENCY_S / concurrency
        rows.append(
            {
                "concurrency": concurrency,
                "pairs": len(report["rewards"]),
                "calls": report["calls"],
                "mean_reward": sum(report["rewards"]) / len(report["rewards"]),
                "ideal_s": ideal,
                "run_loop_s": span,
                "job_wall_s": report["wall_s"],
                "efficiency": ideal / span,
                "cpu_s": run.cpu_s,
                "server_cpu_s": server_cpu,
                # No run can be faster than its CPU time spread over every core (the model
                # server shares this machine's cores here; on a cluster it does not).
                "cpu_floor_s": (run.cpu_s + server_cpu) / usable_cpus(),
            }
        )
    return {"latency_s": LATENCY_S, "rows": rows}


def _fresh(workdir: Path, *parts: str) -> Path:
    path = workdir / "_".join(
        part.replace(" ", "_").replace("(", "").replace(")", "").replace("=", "") for part in parts
    )
    path.mkdir(parents=True)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="the small version (CI)")
    parser.add_argument("-o", "--output", type=Path, help="the JSON file (default benchmarks/results[-small].json)")
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        help="the sections to run (default: all; checkpoint and browser need throughput's records)",
    )
    args = parser.parse_args(argv)
    sections = set(args.sections)
    if sections & {"checkpoint", "browser"} and "throughput" not in sections:
        parser.error("the checkpoint and browser sections are fed the throughput section's records: add throughput")
    runtime.prepare_process()
    scale = SMALL if args.small else FULL
    output = args.output or Path(__file__).parent / ("results-small.json" if args.small else "results.json")

    become_subreaper()  # the CPU time of harnesses' orphaned workers is counted here
    results: dict = {"scale": "small" if args.small else "full", "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="tau_exp_bench_", dir=os.environ.get("TMPDIR")) as tmp:
        workdir = Path(tmp)
        if sections & {"throughput", "latency"}:
            with oracle_servers({"instant": 0.0, "slow": LATENCY_S}, workdir / "servers") as oracles:
                instant, slow = oracles["instant"], oracles["slow"]
                keep = set(descendants(os.getpid()))  # the oracle servers: not a harness's orphans
                if "throughput" in sections:
                    results["throughput"] = throughput(scale, instant.base_url, instant.api_key or "", keep, workdir)
                if "latency" in sections:
                    results["latency"] = latency(scale, slow.base_url, slow.api_key or "", keep, workdir)
        if sections & {"checkpoint", "browser"}:
            records = _real_records(workdir)
        if "checkpoint" in sections:
            console.print("checkpoint cost")
            results["checkpoint"] = checkpoint_cost.measure(
                records[0], scale.checkpoint_sizes, scale.legacy_checkpoint_sizes, workdir
            )
        if "startup" in sections:
            console.print("start-up")
            results["startup"] = {
                "embedded_default_s": startup.embedded_default(workdir),
                "attached_s": startup.attached(workdir),
            }
        if "browser" in sections:
            console.print("sweep browser")
            results["browser"] = browser_page.measure(records, scale.browser_jobs, workdir)
        if "shared" in sections:
            console.print("shared server")
            keep = set(descendants(os.getpid()))
            results["shared"] = shared_server.measure(
                shared_server.SMALL if args.small else shared_server.FULL, workdir, keep
            )
    output.write_text(json.dumps(results, indent=2) + "\n")
    print_summary(results)
    console.print(f"written to {output}")


def _real_records(workdir: Path) -> list[EpisodeResult]:
    """The scored retail records of the throughput run: the checkpoint and the browser are fed
    realistic records."""
    results = sorted(workdir.glob("retail_*trials_tau_exp/job/results.jsonl"))[-1]  # the most trials
    return [EpisodeResult.model_validate_json(line) for line in results.read_text().splitlines()]


def print_summary(results: dict) -> None:
    machine_ = results["machine"]
    console.print(f"[bold]{machine_['cpu']}, {machine_['usable_cpus']} CPUs, {machine_['memory_gb']} GB[/bold]")
    if "throughput" in results:
        _print_throughput(results["throughput"])
    if "latency" in results:
        _print_latency(results["latency"])
    if "checkpoint" in results:
        _print_checkpoint(results["checkpoint"])
    if "startup" in results:
        console.print(
            f"4. first model request after `python launch.py`: {results['startup']['embedded_default_s']:.1f} s "
            f"(embedded default, starts two oracle servers), {results['startup']['attached_s']:.1f} s "
            "(attached to running servers)"
        )
    if "browser" in results:
        _print_browser(results["browser"])
    if "shared" in results:
        _print_shared(results["shared"])


def _print_shared(shared: dict) -> None:
    table = Table(
        title=f"6. shared server: {shared['jobs']} jobs × {shared['tasks_per_job']} pairs, max_concurrency "
        f"{shared['max_concurrency_per_job']} each, capacity {shared['capacity']}, {shared['service_s']} s per "
        f"request, timeout {shared['timeout_s']} s"
    )
    for column in (
        "mode",
        "calls",
        "span s (ideal)",
        "of capacity",
        "scored/s",
        "infra / retries",
        "p50 / p95 s",
        "call shares",
        "lowest ÷ fair",
    ):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode, row in shared["modes"].items():
        table.add_row(
            mode,
            str(row["calls"]),
            f"{row['span_s']:.0f} ({row['ideal_s']:.0f})",
            f"{row['of_capacity']:.2f}",
            f"{row['scored_per_s']:.2f}",
            f"{row['infra_errors']} / {row['retries']}",
            f"{row['latency_p50_s']:.2f} / {row['latency_p95_s']:.2f}",
            "/".join(f"{share:.2f}" for share in row["call_shares"]),
            f"{row['min_share_of_fair']:.2f}",
        )
    console.print(table)


def _print_throughput(section: dict) -> None:
    for domain, runs in section["domains"].items():
        for trials, rows in runs.items():
            table = Table(
                title=f"1. throughput, {domain}, {trials} trial(s) per task (zero latency, concurrency {section['concurrency']})"
            )
            for column in (
                "harness",
                "pairs",
                "reward",
                "pairs/s",
                "CPU s/pair",
                "CPU vs tau2",
                "speed vs tau2",
                "speed vs old loop",
            ):
                table.add_column(column, justify="left" if column == "harness" else "right")
            for name, row in rows.items():
                table.add_row(
                    name,
                    str(row["pairs"]),
                    f"{row['mean_reward']:.3f}",
                    f"{row['pairs_per_s']:.2f}",
                    f"{row['cpu_s_per_pair']:.3f}",
                    f"{row['cpu_vs_tau2']:.2f}",
                    f"{row['pairs_per_s_vs_tau2']:.2f}×",
                    f"{row['pairs_per_s_vs_old_loop']:.2f}×",
                )
            console.print(table)


def _print_latency(section: dict) -> None:
    table = Table(title=f"2. latency-bound efficiency ({section['latency_s'] * 1000:.0f} ms per call)")
    for column in ("concurrency", "pairs", "calls", "ideal s", "run loop s", "efficiency", "CPU floor s"):
        table.add_column(column, justify="right")
    for row in section["rows"]:
        table.add_row(
            str(row["concurrency"]),
            str(row["pairs"]),
            str(row["calls"]),
            f"{row['ideal_s']:.1f}",
            f"{row['run_loop_s']:.1f}",
            f"{row['efficiency']:.2f}",
            f"{row['cpu_floor_s']:.1f}",
        )
    console.print(table)


def _print_checkpoint(checkpoint: dict) -> None:
    table = Table(title=f"3. checkpoint cost ({checkpoint['record_bytes']:,} bytes per record)")
    for column in ("writer", "results", "ms/result", "written ÷ final size", "reopen s"):
        table.add_column(column, justify="left" if column == "writer" else "right")
    for writer, key in (("ResultStore (append)", "result_store"), ("old run.py (rewrite)", "legacy_rewrite")):
        for row in checkpoint[key]:
            reopen = f"{row['reopen_s']:.2f}" if "reopen_s" in row else ""
            table.add_row(
                writer, f"{row['results']:,}", f"{row['ms_per_result']:.2f}", f"{row['written_over_final']:.2f}", reopen
            )
    console.print(table)


def _print_browser(page: dict) -> None:
    line = (
        f"5. sweep browser, {page['jobs']} jobs × {page['tasks_per_job']} tasks: the whole report "
        f"(report --html, {page['comparisons']:,} comparisons along the sweep's axes) in {page['report_s']:.1f} s; "
        f"page written in {page['write_s']:.1f} s, "
        f"{page['page_mb']:.1f} MB (index {page['index_mb']:.1f} MB)"
    )
    if "sweep_table_s" in page:
        line += (
            f"; sweep table shown after {page['sweep_table_s']:.2f} s (page parsed {page['page_parsed_s']:.2f} s), "
            f"task list {page['task_list_s']:.2f} s, task {page['task_view_s']:.2f} s; longest main-thread block "
            f"{page['longest_main_thread_block_ms']:.0f} ms; JS heap {page['js_heap_mb']:.0f} MB"
        )
    console.print(line if "browser" not in page else f"{line}; {page['browser']}")


if __name__ == "__main__":
    main()
