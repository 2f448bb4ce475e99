"""status.py: the live progress of a real sweep caught in the middle — one job finished, one
failed, one running, one not started yet."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tau_exp.status import main as status_cli

pytestmark = pytest.mark.slow  # end to end: not in the fast tier (pytest -m "not slow")


def test_status_of_a_sweep_in_progress(tmp_path, capsys, launch_process):
    sweep_dir = tmp_path / "sweep"
    # Four jobs, one after another (Hydra's basic launcher): 2 tasks, a bad range (fails at once),
    # 3 slow tasks (caught running), 4 tasks (not started when we look).
    sweep = launch_process(
        [
            "-m",
            f"hydra.sweep.dir={sweep_dir}",
            "tasks.end=2,999,3,4",
            "run.max_concurrency=1",
            "model.server.oracle.latency_s=0.3",
        ],
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 300
        while not list(sweep_dir.glob("2_*/results.jsonl")):
            assert sweep.poll() is None and time.monotonic() < deadline, sweep.communicate()
            time.sleep(0.2)
        status_cli([str(sweep_dir), "--json"])
        progress = json.loads(capsys.readouterr().out)
        status_cli([str(sweep_dir)])  # the table, as people see it
        table = capsys.readouterr().out
    finally:
        sweep.send_signal(signal.SIGINT)
        sweep.communicate(timeout=120)

    jobs = {job["job"].split("_")[0]: job for job in progress["jobs"]}
    assert (jobs["0"]["state"], jobs["0"]["done"], jobs["0"]["total"], jobs["0"]["avg_reward"]) == (
        "completed",
        2,
        2,
        1.0,
    )
    assert jobs["1"]["state"] == "failed" and "tasks.start=0, tasks.end=999 is out of range" in jobs["1"]["error"]
    assert jobs["2"]["state"] == "running" and jobs["2"]["total"] == 3 and 1 <= jobs["2"]["done"] < 3
    assert set(jobs) == {"0", "1", "2"} and progress["pending"] == 1
    assert "1 completed, 1 failed, 1 running, 1 pending" in table and "2/2" in table
