"""benchmarks/: the small benchmark (what CI runs) completes and reports every section, with every
harness doing the same, correct work. Nothing here asserts a speed: the numbers are reported,
not tested (README, "Performance")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

pytestmark = pytest.mark.slow  # end to end: not in the fast tier (pytest -m "not slow")


def test_the_small_benchmark_runs_every_section_on_equal_correct_work(tmp_path, project_root):
    output = tmp_path / "results.json"
    # Its scratch files in a short directory of their own: Chromium's and vLLM's unix sockets
    # live there, and a socket's path may not exceed 107 bytes (pytest-xdist's tmp_path is long).
    with tempfile.TemporaryDirectory(prefix="tau_exp_bench_") as scratch:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks", "--small", "-o", str(output)],
            cwd=project_root,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "TMPDIR": scratch},
        )
    assert done.returncode == 0, done.stderr[-3000:]
    print(done.stdout)  # the summary tables, in the test log
    results = json.loads(output.read_text())

    assert results["machine"]["usable_cpus"] >= 1
    runs = [rows for by_trials in results["throughput"]["domains"].values() for rows in by_trials.values()]
    assert list(results["throughput"]["domains"]["retail"]) == ["2"]  # 3 tasks × 2 trials: the second reuses
    for rows in runs:
        assert set(rows) == {
            "tau_exp",
            "tau_exp (workers=0)",
            "tau_exp (gold every trial)",
            "tau2 run_tasks",
            "old run.py loop",
        }
        # Every harness ran the same pairs and the oracle scored 1.0 everywhere: a like-for-like comparison.
        assert {row["pairs"] for row in rows.values()} == {6}
        assert {row["mean_reward"] for row in rows.values()} == {1.0}
        assert all(row["cpu_s_per_pair"] > 0 and row["pairs_per_s"] > 0 for row in rows.values())
        cpus = results["machine"]["usable_cpus"]
        assert len(rows["tau_exp"]["workers"]) == (cpus if cpus > 1 else 0)  # one worker process per CPU
    latency = results["latency"]["rows"]
    assert [row["concurrency"] for row in latency] == [1, 8]
    assert all(row["mean_reward"] == 1.0 and row["calls"] > row["pairs"] and 0 < row["efficiency"] for row in latency)
    checkpoint = results["checkpoint"]
    assert [row["results"] for row in checkpoint["result_store"]] == [100, 1000]
    assert all(row["bytes_written"] >= row["final_bytes"] > row["results"] * 1000 for row in checkpoint["result_store"])
    assert [row["results"] for row in checkpoint["legacy_rewrite"]] == [100]
    assert results["startup"]["embedded_default_s"] > results["startup"]["attached_s"] > 0
    page = results["browser"]
    assert (page["jobs"], page["tasks_per_job"]) == (12, 100) and 0 < page["index_mb"] < page["page_mb"]
    assert page["sweep_table_s"] > 0 and page["task_view_s"] > 0 and page["js_heap_mb"] > 0  # opened in Chromium
    assert page["report_s"] > 0 and page["comparisons"] > 0  # the sweep's report, its comparisons along its axes
    shared = results["shared"]  # K jobs on one capacity-limited server, fixed against load-aware
    assert shared["jobs"] >= 2 and shared["jobs"] * shared["max_concurrency_per_job"] >= 10 * shared["capacity"]
    assert set(shared["modes"]) == {"fixed", "load_aware"}
    for row in shared["modes"].values():
        assert row["scored"] + row["infra_errors"] <= row["pairs"] == shared["jobs"] * shared["tasks_per_job"]
        assert len(row["call_shares"]) == shared["jobs"] and abs(sum(row["call_shares"]) - 1) < 1e-9
        assert row["calls"] > 0 and row["ideal_s"] > 0 and row["span_s"] > 0
