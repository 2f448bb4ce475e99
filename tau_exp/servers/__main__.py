"""List and stop the shared model servers of the `slurm` server kind.

    python -m tau_exp.servers list [--registry DIR]
    python -m tau_exp.servers stop KEY [KEY ...] [--registry DIR]
    python -m tau_exp.servers stop --all [--registry DIR]

The registry defaults to the config's default (`~/.tau_exp/servers`); pass the same directory
as `*.server.slurm.registry_dir` if the sweep used another one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich.table import Table

from tau_exp import slurm_client
from tau_exp.config import SlurmServerConfig
from tau_exp.display import argument_parser, console
from tau_exp.errors import TauExpError
from tau_exp.runtime import command_line
from tau_exp.servers.registry import Registry, SharedServer


def server_state(entry: SharedServer) -> str:
    """ready | starting | queued | gone (its job has ended, or ended itself when idle; the next
    job that needs it replaces it)."""
    state = None if entry.ended else slurm_client.job_state(entry.job.job_id)
    if state is None:
        return "gone"
    if entry.ready:
        return "ready"
    return "queued" if state == "PENDING" else "starting"


def server_gpu_hours(entry: SharedServer) -> str:
    """The server job's accelerator-hours so far (its whole life, idle minutes included; jobs
    are charged their token share of it, cost.py), while Slurm still knows the job."""
    allocation = slurm_client.allocation(entry.job.job_id)
    if allocation is None or allocation.start is None:
        return ""
    end = min(time.time(), allocation.end or time.time())
    return f"{allocation.accelerators * max(0.0, end - allocation.start) / 3600:.3f}"


def list_servers(registry: Registry) -> None:
    entries = registry.entries()
    if not entries:
        print(f"no shared servers in {registry.root}")
        return
    table = Table(title=f"shared servers in {registry.root}")
    for column in ("key", "model", "Slurm job", "state", "address", "submitted", "GPU-hours"):
        table.add_column(column, overflow="fold")  # never cut a key or an address short
    for entry in entries:
        table.add_row(
            entry.job.key,
            entry.job.model,
            entry.job.job_id,
            server_state(entry),
            entry.address.base_url if entry.ready and entry.address else "",
            entry.job.submitted_at,
            server_gpu_hours(entry),
        )
    console().print(table)


def stop_servers(registry: Registry, keys: list[str]) -> None:
    for key in keys:
        entry = registry.read(key)
        if entry is None:
            raise TauExpError(
                f"no shared server {key!r} in {registry.root}: `python -m tau_exp.servers list` shows them"
            )
        slurm_client.cancel(entry.job.job_id)
        registry.remove(key)
        print(f"stopped {key} (Slurm job {entry.job.job_id})")


@command_line
def main(argv: list[str] | None = None) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--registry",
        type=Path,
        default=Path(SlurmServerConfig.registry_dir),
        help="the registry directory (default: %(default)s)",
    )
    parser = argument_parser(
        "python -m tau_exp.servers",
        __doc__,
        reads="the registry directory (--registry): each entry's job.json, endpoint.json and ended.json; and "
        "Slurm: squeue for each server job's state, scontrol for its allocation (GPU-hours). stop: scancel.",
        docs="docs/serving/shared-servers.md",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", parents=[common], help="list shared servers and their status")
    stop = commands.add_parser("stop", parents=[common], help="cancel shared server jobs and forget them")
    stop.add_argument("keys", nargs="*", metavar="KEY", help="keys from `list`")
    stop.add_argument("--all", action="store_true", help="every shared server in the registry")
    args = parser.parse_args(argv)
    registry = Registry(args.registry)
    if args.command == "list":
        list_servers(registry)
    else:
        if not args.keys and not args.all:
            parser.error("name the servers to stop (KEY ...), or pass --all")
        stop_servers(registry, [entry.job.key for entry in registry.entries()] if args.all else args.keys)


if __name__ == "__main__":
    sys.exit(main())
