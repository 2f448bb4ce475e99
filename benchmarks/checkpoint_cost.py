"""Checkpoint cost: bytes written and time per result as a job's results file grows.

`ResultStore.append` (one line and an fsync per result) against the old run.py's checkpoint
(the whole JSON read, extended and rewritten after every result), both fed copies of one real
result record, plus the time to reopen the store (what a resume reads).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from benchmarks.measure import bytes_written
from tau_exp.job.checkpoint import ResultStore
from tau_exp.records import EpisodeResult, Manifest


def store_cost(record: EpisodeResult, n: int, workdir: Path) -> dict:
    """Append `n` copies of `record` (as distinct (task, trial) pairs) to a fresh ResultStore."""
    manifest = Manifest(identity={"benchmark": "checkpoint"})
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        job_dir = Path(tmp)
        with ResultStore.open(job_dir, manifest) as store:
            written, started = bytes_written(), time.perf_counter()
            for i in range(n):
                store.append(record.model_copy(update={"task_id": str(i), "trial": 0}))
            seconds, written = time.perf_counter() - started, bytes_written() - written
        final = (job_dir / "results.jsonl").stat().st_size
        started = time.perf_counter()
        with ResultStore.open(job_dir, manifest) as store:
            assert len(store.results()) == n
        reopen_s = time.perf_counter() - started
    return {
        "results": n,
        "ms_per_result": 1000 * seconds / n,
        "bytes_written": written,
        "final_bytes": final,
        "written_over_final": written / final,
        "reopen_s": reopen_s,
    }


def legacy_cost(record: EpisodeResult, n: int, workdir: Path) -> dict:
    """The old run.py checkpoint: after each result, read the whole JSON and write it all back."""
    item = record.model_dump(mode="json")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "results.json"
        written, started = bytes_written(), time.perf_counter()
        for i in range(n):
            data = json.loads(path.read_text()) if path.exists() else []
            path.write_text(json.dumps(data + [{**item, "task_id": str(i)}], indent=2))
        seconds, written = time.perf_counter() - started, bytes_written() - written
        final = path.stat().st_size
    return {
        "results": n,
        "ms_per_result": 1000 * seconds / n,
        "bytes_written": written,
        "final_bytes": final,
        "written_over_final": written / final,
    }


def measure(record: EpisodeResult, sizes: list[int], legacy_sizes: list[int], workdir: Path) -> dict:
    return {
        "record_bytes": len(record.model_dump_json()) + 1,
        "result_store": [store_cost(record, n, workdir) for n in sizes],
        "legacy_rewrite": [legacy_cost(record, n, workdir) for n in legacy_sizes],
    }
