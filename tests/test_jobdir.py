"""jobdir.py: the one reader of a job directory's files — results read whole or by their first
fields, a torn last line left out (nothing repaired), a malformed line named; missing files are
None; a sweep's jobs in job order."""

from __future__ import annotations

from pathlib import Path

import pytest

from tau_exp.errors import CheckpointError
from tau_exp.jobdir import JobDir, SweepDir
from tau_exp.records import EpisodeResult, EpisodeStatus, ResultHead


def record(task_id: str, trial: int = 0, status: EpisodeStatus = EpisodeStatus.scored) -> EpisodeResult:
    return EpisodeResult(
        task_id=task_id,
        trial=trial,
        seed=1,
        status=status,
        reward=1.0 if status == EpisodeStatus.scored else None,
        messages=[{"role": "user", "content": "x" * 1000}],
    )


def write(job: JobDir, *records: EpisodeResult, tail: bytes = b"") -> bytes:
    job.path.mkdir(parents=True, exist_ok=True)
    data = b"".join(r.model_dump_json().encode() + b"\n" for r in records) + tail
    job.results.write_bytes(data)
    return data


def test_the_latest_record_of_each_pair_is_read_and_a_torn_tail_is_left_as_it_is(tmp_path: Path):
    job = JobDir(tmp_path / "job")
    data = write(
        job,
        record("1", status=EpisodeStatus.infra_error),
        record("2"),
        record("1"),
        tail=record("3").model_dump_json().encode()[:50],
    )
    results = job.read_results()
    assert [(r.task_id, r.status) for r in results] == [("1", EpisodeStatus.scored), ("2", EpisodeStatus.scored)]
    assert results[0].messages  # the whole record
    assert job.results.read_bytes() == data and not job.torn_results.exists()  # a reader repairs nothing


def test_results_can_be_read_by_their_first_fields_only(tmp_path: Path):
    job = JobDir(tmp_path / "job")
    write(job, record("1"), record("2", status=EpisodeStatus.harness_error))
    heads = job.read_results(ResultHead)
    assert heads == [
        ResultHead(task_id="1", trial=0, status=EpisodeStatus.scored, reward=1.0),
        ResultHead(task_id="2", trial=0, status=EpisodeStatus.harness_error, reward=None),
    ]


def test_a_malformed_line_in_the_middle_is_named(tmp_path: Path):
    job = JobDir(tmp_path / "job")
    write(job, record("1"), tail=b'{"not": "a record"}\n' + record("2").model_dump_json().encode() + b"\n")
    with pytest.raises(CheckpointError, match=r"results.jsonl:2: not a valid result record"):
        job.read_results()


def test_files_a_job_has_not_written_read_as_none(tmp_path: Path):
    job = JobDir(tmp_path)
    assert (job.read_results(), job.read_status(), job.read_metrics()) == ([], None, None)
    job.status.write_text("{half a")
    assert job.read_status() is None  # unreadable: as if none


def test_a_sweeps_jobs_are_in_job_order(tmp_path: Path):
    for name in ("10_airline_react_m", "2_retail_act_m", "0_retail_act_m", "notes"):
        (tmp_path / name / ".hydra").mkdir(parents=True)
        if name != "notes":
            (tmp_path / name / ".hydra" / "config.yaml").write_text("env: {name: retail}\n")
    assert [job.path.name for job in SweepDir(tmp_path).jobs()] == [
        "0_retail_act_m",
        "2_retail_act_m",
        "10_airline_react_m",
    ]
