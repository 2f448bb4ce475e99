"""How the benchmark measures: CPU time of a whole process tree, peak memory of its processes,
bytes written, and the machine it ran on.

CPU: each harness runs in a child process; this process becomes a child subreaper, so that the
harness's descendants (tau_exp's forkserver and its scoring workers) are reaped here even when
they outlive their parent, and `RUSAGE_CHILDREN` then holds the CPU time of the whole tree.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tau_exp.job.workers import usable_cpus

_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _parent_pid(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def _children(pid: int) -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and _parent_pid(int(entry)) == pid]


def descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        children = [child for parent in frontier for child in _children(parent)]
        found += children
        frontier = children
    return found


def reap_orphans(keep: set[int], timeout_s: float = 30.0) -> None:
    """Wait for every child of this process not in `keep` (the harness's orphaned descendants)."""
    deadline = time.monotonic() + timeout_s
    while (orphans := [pid for pid in _children(os.getpid()) if pid not in keep]) and time.monotonic() < deadline:
        for pid in orphans:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.05)


@dataclass
class HarnessRun:
    """What a harness child process reported, plus the CPU time of its whole process tree."""

    report: dict
    cpu_s: float  # user + system, every process of the harness, after its start-up


def run_harness(args: list[str], keep: set[int], env: dict[str, str] | None = None) -> HarnessRun:
    """Run `python -m benchmarks.harness ARGS`; its last stdout line is its JSON report."""
    before = children_cpu_s()
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks.harness", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=Path(__file__).parent.parent,
    )
    reap_orphans(keep)
    if process.returncode != 0:
        raise RuntimeError(f"harness {' '.join(args)} failed ({process.returncode}):\n{process.stderr[-3000:]}")
    report = json.loads(process.stdout.strip().splitlines()[-1])
    return HarnessRun(report, children_cpu_s() - before - report["startup_cpu_s"])


class MemorySampler:
    """Samples the peak resident set (VmHWM) and proportional set (Pss, shared pages split among
    the processes sharing them) of this process's descendants while it runs."""

    def __init__(self, interval_s: float = 0.25) -> None:
        self.interval_s = interval_s
        self.peak: dict[int, dict[str, Any]] = {}  # rss_mb, pss_mb, cmd, parent
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for pid in descendants(os.getpid()):
                sample = _memory_mb(pid)
                if sample:
                    peak = self.peak.setdefault(
                        pid, {"rss_mb": 0.0, "pss_mb": 0.0, "cmd": _command(pid), "parent": _parent_pid(pid)}
                    )
                    peak["rss_mb"] = max(peak["rss_mb"], sample[0])
                    peak["pss_mb"] = max(peak["pss_mb"], sample[1])

    def forked_workers(self) -> list[dict[str, float]]:
        """The peaks of the processes forked by a multiprocessing forkserver (tau_exp's workers)."""
        forkservers = {pid for pid, peak in self.peak.items() if "forkserver" in peak["cmd"]}
        return [
            {"rss_mb": p["rss_mb"], "pss_mb": p["pss_mb"]} for p in self.peak.values() if p["parent"] in forkservers
        ]


def _memory_mb(pid: int) -> tuple[float, float] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    fields = dict(line.split()[:2] for line in (status + rollup).splitlines() if line.startswith(("VmHWM:", "Pss:")))
    return int(fields.get("VmHWM:", 0)) / 1024, int(fields.get("Pss:", 0)) / 1024


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return ""


def process_cpu_s(pids: set[int]) -> float:
    """User + system CPU seconds that the running processes `pids` have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        if fields := _stat(pid):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def bytes_written() -> int:
    """Bytes this process has passed to write() so far (`wchar` of /proc/self/io)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


def machine() -> dict:
    """The machine the numbers were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "cpu": cpu,
        "usable_cpus": usable_cpus(),
        "memory_gb": round(memory_kb / 1024**2, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }
