"""slurm_client.py: Slurm's time formats and allocations as scontrol prints them (the live commands are exercised by the Slurm tier in
tests/servers/test_shared_servers.py and tests/tau_exp_launcher/)."""

from __future__ import annotations

from datetime import datetime

import pytest

from tau_exp import slurm_client
from tau_exp.slurm_client import parse_allocation, parse_time_limit


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("infinite", None),
        ("UNLIMITED", None),
        ("30", 30),
        ("1:30", 2),
        ("2:00:00", 120),
        ("1-00:00:00", 1440),
        ("3-12", 5040),
        ("0:30", 1),
        ("1-02:03:00", 1563),
    ],
)
def test_time_limits_read_in_minutes_rounding_seconds_up(text, minutes):
    assert parse_time_limit(text) == minutes


RUNNING = (
    "JobId=42 JobName=tau_exp UserId=root(0) JobState=RUNNING Reason=None "
    "SubmitTime=2026-12-02T10:00:00 EligibleTime=2026-12-02T10:00:00 StartTime=2026-12-02T10:00:05 "
    "EndTime=2026-12-02T14:00:05 Partition=debug NodeList=localhost "
    "AllocTRES=cpu=2,mem=4G,node=1,billing=2,gres/gpu=2,gres/gpu:a100=2,gres/hpu=8"
)


def test_an_allocation_counts_each_generic_resource_once_and_starts_at_slurms_start_time():
    allocation = parse_allocation("42", RUNNING)
    # The typed part (gres/gpu:a100) repeats the total (gres/gpu): counted once.
    assert allocation.gres == {"gpu": 2, "hpu": 8}
    assert allocation.start == datetime(2026, 12, 2, 10, 0, 5).timestamp()  # the controller's local time


def test_a_pending_job_has_no_start_and_older_slurm_names_its_resources_tres():
    pending = "JobId=43 JobState=PENDING StartTime=2026-12-02T12:00:00 TRES=cpu=1,node=1,gres/gpu=1"
    allocation = parse_allocation("43", pending)
    assert allocation.start is None  # an expected start, not a real one
    assert allocation.gres == {"gpu": 1}
    assert parse_allocation("44", "JobId=44 JobState=RUNNING StartTime=Unknown AllocTRES=cpu=1").gres == {}


def test_a_resource_slurm_does_not_track_is_read_per_node():
    untracked = (
        "JobId=45 JobState=RUNNING StartTime=2026-12-02T10:00:05 NumNodes=2 TRES=cpu=2,node=2 TresPerNode=gres:gpu:4"
    )
    assert parse_allocation("45", untracked).gres == {"gpu": 8}
    typed = "JobId=46 JobState=RUNNING StartTime=2026-12-02T10:00:05 NumNodes=1 TresPerNode=gres/gpu:a100:2"
    assert parse_allocation("46", typed).gres == {"gpu": 2}


def test_an_arrays_first_task_is_read_from_its_own_line():
    array = "\n".join(
        f"JobId={job} ArrayJobId=3 ArrayTaskId={job - 3} JobState=COMPLETED StartTime=2026-12-02T10:00:0{job} "
        f"EndTime=2026-12-02T10:01:0{job} TRES=cpu=1,node=1 TresPerNode=gres:gpu:{job - 2}"
        for job in (4, 5, 3)  # scontrol's order is not the ids'
    )
    allocation = parse_allocation("3", array)
    assert allocation.gres == {"gpu": 1}
    assert allocation.start == datetime(2026, 12, 2, 10, 0, 3).timestamp()
    assert allocation.end == datetime(2026, 12, 2, 10, 1, 3).timestamp()


@pytest.mark.parametrize(
    "environment, job_id",
    [
        ({"SLURM_JOB_ID": "41"}, "41"),
        # An array's last task has the array's own plain id: Slurm's commands would take it as
        # every task of the array, so a task is named <array>_<task>, as submitit names it.
        ({"SLURM_JOB_ID": "32", "SLURM_ARRAY_JOB_ID": "32", "SLURM_ARRAY_TASK_ID": "1"}, "32_1"),
        ({"SLURM_JOB_ID": "33", "SLURM_ARRAY_JOB_ID": "32", "SLURM_ARRAY_TASK_ID": "0"}, "32_0"),
        ({}, ""),
    ],
)
def test_a_jobs_own_id_names_one_task_of_an_array(monkeypatch, environment, job_id):
    for name in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert slurm_client.current_job_id() == job_id
