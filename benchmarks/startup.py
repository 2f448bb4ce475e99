"""Time from `python launch.py` to the first model request.

Two ways a job starts: the embedded default (the job starts its two oracle servers, W&B offline)
and a job attached to servers that already run (tracking off): the harness's own start-up. The
oracle logs when it got its first request; the clock starts just before `launch.py` is spawned.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.oracle import KEY_ENV, attach_overrides, oracle_server

REPO = Path(__file__).parent.parent
_FIRST_REQUEST = re.compile(r"first request at ([0-9.]+) \(unix time\)")


def first_request_at(log: Path) -> float | None:
    match = _FIRST_REQUEST.search(log.read_text()) if log.exists() else None
    return float(match.group(1)) if match else None


def launch(overrides: list[str], env: dict[str, str]) -> float:
    """Spawn `python launch.py OVERRIDES`; return when it was spawned (unix time)."""
    spawned = time.time()
    process = subprocess.run(
        [sys.executable, "launch.py", *overrides], cwd=REPO, capture_output=True, text=True, env={**os.environ, **env}
    )
    if process.returncode != 0:
        raise RuntimeError(f"launch.py {' '.join(overrides)} failed ({process.returncode}):\n{process.stderr[-3000:]}")
    return spawned


def embedded_default(workdir: Path) -> float:
    """Seconds to the first request of `python launch.py` (two tasks of the default)."""
    job_dir = workdir / "startup_default"
    wandb_dirs = {
        name: str(workdir / "wandb") for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR")
    }
    spawned = launch(
        ["tasks.end=2", "run.progress=false", f"hydra.run.dir={job_dir}"], {"WANDB_MODE": "offline", **wandb_dirs}
    )
    firsts = [at for log in (job_dir / "servers").glob("*_oracle_*.log") if (at := first_request_at(log))]
    return min(firsts) - spawned


def attached(workdir: Path) -> float:
    """Seconds to the first request of a job attached to an oracle that already runs (tracking off)."""
    servers_dir = workdir / "startup_oracle"
    with oracle_server(0.0, servers_dir) as endpoint:
        spawned = launch(
            [
                "tasks.end=2",
                "run.progress=false",
                "tracking=none",
                f"hydra.run.dir={workdir / 'startup_attached'}",
                *attach_overrides(endpoint.base_url),
            ],
            {KEY_ENV: endpoint.api_key or ""},
        )
    # The oracle logs its first request's time when it stops.
    return min(at for log in servers_dir.glob("*.log") if (at := first_request_at(log))) - spawned
