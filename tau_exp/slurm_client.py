"""The Slurm commands tau_exp runs itself (submitit submits; these ask and cancel): is a job
still there, what it was allocated, cancel it, is the controller reachable, which partitions exist.

Every command has a time limit: with an unreadable `SLURM_CONF`, Slurm's clients retry for a
minute before they give up."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tau_exp.errors import SlurmError

COMMAND_TIMEOUT_S = 30.0
# States after which a job will not run again. Everything else counts as still there: pending,
# running, and the transitions in between — COMPLETING lasts a while when a job is requeued.
FINAL_STATES = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "NODE_FAIL",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
        "OUT_OF_MEMORY",
        "REVOKED",
        "SPECIAL_EXIT",
    }
)


def _slurm(*args: str) -> subprocess.CompletedProcess[str]:
    conf = os.environ.get("SLURM_CONF")
    if conf and not Path(conf).is_file():
        raise SlurmError(f"SLURM_CONF={conf} is not a file: unset it or point it at the cluster's slurm.conf")
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except FileNotFoundError:
        raise SlurmError(
            f"`{args[0]}` is not installed here: run this on a node with Slurm's client commands "
            "(for a local test cluster: bash scripts/local_slurm.sh install && bash scripts/local_slurm.sh start)"
        ) from None
    except subprocess.TimeoutExpired:
        raise SlurmError(
            f"`{' '.join(args)}` did not answer within {COMMAND_TIMEOUT_S:g} s: is slurmctld reachable from this node?"
        ) from None


def last_line(message: str, default: str) -> str:
    """The last non-empty line of a Slurm or submitit message, spaces collapsed: its cause."""
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return re.sub(r"\s+", " ", lines[-1]) if lines else default


def _failed(result: subprocess.CompletedProcess[str]) -> SlurmError:
    return SlurmError(f"`{' '.join(result.args)}` failed: {last_line(result.stderr, 'no message')}")


def current_job_id() -> str:
    """This process's Slurm job id ('' outside Slurm). A task of a job array is named as Slurm's
    commands and submitit name it, `<array job id>_<task id>`: the plain id of an array's last
    task is the array's own, which squeue, scancel and scontrol take as every task of the array."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID", "")


def job_state(job_id: str) -> str | None:
    """The job's Slurm state (PENDING, RUNNING, ...), or None once it has ended or is unknown."""
    result = _slurm("squeue", "--noheader", "--jobs", job_id, "--format", "%T")
    if result.returncode != 0:
        if "Invalid job id" in result.stderr:  # ended long enough ago to be forgotten
            return None
        raise _failed(result)
    states = result.stdout.split()
    return states[0] if states and states[0] not in FINAL_STATES else None


def cancel(job_id: str) -> None:
    """Ask Slurm to end the job (SIGTERM to its steps, SIGKILL after the cluster's KillWait)."""
    result = _slurm("scancel", job_id)
    if result.returncode != 0 and "Invalid job id" not in result.stderr:
        raise _failed(result)


def check_request(partition: str | None, timeout_min: object, prefix: str) -> None:
    """Refuse what sbatch would refuse, before anything is submitted, naming the setting to fix
    (`prefix`: where the settings live, e.g. hydra.launcher). Also fails if Slurm does not answer."""
    if not isinstance(timeout_min, int) or isinstance(timeout_min, bool) or timeout_min < 1:
        raise SlurmError(f"{prefix}.timeout_min={timeout_min!r} is not a valid time limit: give minutes, at least 1")
    known = partitions()
    if partition is None:
        return
    if partition not in known:
        raise SlurmError(
            f"partition {partition!r} does not exist on this cluster; it has: {', '.join(known)} "
            f"(set {prefix}.partition)"
        )
    limit = partition_time_limit_min(partition)
    if limit is not None and timeout_min > limit:
        raise SlurmError(
            f"{prefix}.timeout_min={timeout_min} exceeds partition {partition}'s time limit of {limit} "
            "minutes: lower it (a job that hits its limit is requeued and resumes)"
        )


def partitions() -> list[str]:
    """The cluster's partition names; raises SlurmError when the controller does not answer."""
    result = _slurm("sinfo", "--noheader", "--format", "%R")
    if result.returncode != 0:
        raise _failed(result)
    return sorted(set(result.stdout.split()))


def partition_time_limit_min(partition: str) -> int | None:
    """The partition's time limit in minutes; None when it has none."""
    result = _slurm("sinfo", "--noheader", "--partition", partition, "--format", "%l")
    if result.returncode != 0:
        raise _failed(result)
    return parse_time_limit(result.stdout.split()[0]) if result.stdout.split() else None


def parse_time_limit(text: str) -> int | None:
    """Slurm's time format (`minutes`, `M:S`, `H:M:S`, `D-H:M:S`, `D-H`) in minutes; None for infinite."""
    if text in ("infinite", "UNLIMITED", "n/a"):
        return None
    days, _, clock = text.rpartition("-")
    parts = [int(part) for part in clock.split(":")]
    if days and len(parts) == 1:
        hours, minutes, seconds = parts[0], 0, 0
    elif len(parts) == 1:
        hours, minutes, seconds = 0, parts[0], 0
    elif len(parts) == 2:
        hours, minutes, seconds = (parts[0], parts[1], 0) if days else (0, parts[0], parts[1])
    else:
        hours, minutes, seconds = parts
    return (int(days or 0) * 24 + hours) * 60 + minutes + (1 if seconds else 0)


def allocation(job_id: str) -> Allocation | None:
    """What Slurm allocated to a job that is still known to the controller (running, or ended
    less than MinJobAge ago): its start and generic resources. None once it is forgotten."""
    result = _slurm("scontrol", "show", "job", "--oneliner", job_id)
    if result.returncode != 0:
        if "Invalid job id" in result.stderr:
            return None
        raise _failed(result)
    return parse_allocation(job_id, result.stdout)


# Generic resources that count as accelerators in GPU-hours: GPUs, or Gaudi's HPUs where a
# cluster names them so (the project's Gaudi launcher asks for gpu).
ACCELERATORS = frozenset({"gpu", "hpu"})


@dataclass(frozen=True)
class Allocation:
    """A Slurm job's allocation: when it started and ends (unix time; None while pending; the end
    is the time limit's while it runs) and how many of each generic resource it holds, by name
    (`gres/gpu=2` → {"gpu": 2})."""

    job_id: str
    start: float | None
    end: float | None
    gres: dict[str, int]

    @property
    def accelerators(self) -> int:
        return sum(count for name, count in self.gres.items() if name in ACCELERATORS)


def parse_allocation(job_id: str, text: str) -> Allocation:
    """`scontrol show job --oneliner` → Allocation. Asked for an array's first task by its id,
    scontrol prints every task of the array, a line each: the one with this JobId counts.
    The allocated TRES (`AllocTRES`, `TRES` in
    older Slurm) print both the untyped total (`gres/gpu=2`) and typed parts
    (`gres/gpu:a100=2`) of a resource: only totals count. A cluster that does not track a
    resource as TRES (AccountingStorageTRES) shows it only per node (`TresPerNode=gres:gpu:2`)."""
    lines = text.splitlines() or [""]
    line = next((line for line in lines if re.search(rf"(^|\s)JobId={re.escape(job_id)}(\s|$)", line)), lines[0])
    fields = dict(re.findall(r"(\w+)=(\S*)", line))
    tres = fields.get("AllocTRES") or fields.get("TRES") or ""
    gres = {name: int(count) for name, count in re.findall(r"gres/([\w-]+)=(\d+)", tres)}
    if not gres:
        nodes = int(fields.get("NumNodes", "1").split("-")[0] or 1)
        for request in fields.get("TresPerNode", "").split(","):
            parts = re.split(r"[:/]", request)  # gres:gpu:2, gres/gpu:2, gres:gpu:a100:2
            if len(parts) >= 3 and parts[0] == "gres" and parts[-1].isdigit():
                gres[parts[1]] = gres.get(parts[1], 0) + int(parts[-1]) * nodes
    if fields.get("JobState") == "PENDING":  # its times are estimates
        return Allocation(job_id=job_id, start=None, end=None, gres=gres)
    return Allocation(job_id=job_id, start=_time(fields.get("StartTime")), end=_time(fields.get("EndTime")), gres=gres)


def _time(text: str | None) -> float | None:
    """A Slurm time stamp (the controller's local time) as unix time; None for Unknown."""
    if not text or text in ("Unknown", "None"):
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").timestamp()
