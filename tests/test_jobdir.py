"""jobdir.py: the one reader of a job directory's files — results read whole or by their first
fields, a torn last line left out (nothing repaired), a malformed line named; missing files are
None; a sweep's jobs in job order; what a sweep varies, and job directories named by it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from tau_exp.errors import CheckpointError
from tau_exp.jobdir import JobDir, SweepDir, sweep_job_name, swept_suffix
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


def write_sweep(sweep_dir: Path, task: list[str], params: dict[str, str] | None = None) -> Path:
    """A multirun.yaml as Hydra's sweeper writes it (the parts that say what the sweep varies)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    hydra = {"overrides": {"hydra": [f"hydra.sweep.dir={sweep_dir}"], "task": task}, "sweeper": {"params": params}}
    OmegaConf.save(OmegaConf.create({"hydra": hydra}), sweep_dir / "multirun.yaml")
    return sweep_dir


def test_a_job_directory_is_named_by_the_values_its_sweep_varies_that_the_name_lacks(tmp_path: Path):
    sweep = write_sweep(
        tmp_path,
        ["tasks.end=1", "env=retail,airline", "model.temperature=0.0,0.7", "user.temperature=0.1,0.2"],
        {"tasks.shard": "range(5)", "run.seed": "10"},
    )
    assert SweepDir(sweep).swept_keys() == ["env", "model.temperature", "user.temperature", "tasks.shard"]
    job = [
        "tasks.end=1",
        "env=airline",
        "model.temperature=0.7",
        "user.temperature=0.2",
        "tasks.shard=3",
        "run.seed=10",
    ]
    # env is in the name already; a key's shortest tail that no other swept key shares; unswept keys left out
    suffix = swept_suffix(str(sweep), job)
    assert suffix == "_model.temperature-0.7_user.temperature-0.2_shard-3"
    # the resume advice passes the job directory to Hydra as hydra.run.dir=<job dir>: it must parse
    parsed = OverridesParser.create().parse_override(f"hydra.run.dir={sweep}/3_airline_act_oracle{suffix}")
    assert parsed.value() == f"{sweep}/3_airline_act_oracle{suffix}"

    (tmp_path / "3_x" / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create(job), tmp_path / "3_x" / ".hydra" / "overrides.yaml")
    assert JobDir(tmp_path / "3_x").swept(SweepDir(sweep).swept_keys()) == job[1:5]


def test_a_sweep_over_named_keys_only_or_no_sweep_adds_nothing_to_the_name(tmp_path: Path):
    assert swept_suffix(str(tmp_path / "nowhere"), ["model.temperature=0.7"]) == ""  # no multirun.yaml
    sweep = write_sweep(tmp_path / "s", ["env=retail,airline", "agent=act,react", "tasks.end=2"])
    assert swept_suffix(str(sweep), ["env=retail", "agent=act", "tasks.end=2"]) == ""


def test_a_long_suffix_is_cut_and_ends_with_a_hash_of_the_whole(tmp_path: Path):
    sweep = write_sweep(tmp_path, ["tasks.ids=[" + ",".join(map(str, range(60))) + "],[1]"])
    long_ids = "tasks.ids=[" + ",".join(map(str, range(60))) + "]"
    other = "tasks.ids=[" + ",".join(map(str, range(59))) + ",99]"
    first, second = swept_suffix(str(sweep), [long_ids]), swept_suffix(str(sweep), [other])
    assert len(first) == len(second) == 81 and first[:60] == second[:60] and first != second
    assert first.startswith("_ids-0_1_2_") and first[-9] == "-"
    assert swept_suffix(str(sweep), ["tasks.ids=[1]"]) == "_ids-1"


def test_a_sweep_begun_before_names_had_its_values_keeps_its_directories(tmp_path: Path):
    sweep = write_sweep(tmp_path, ["model.temperature=0.0,0.7"])
    base = "1_retail_tool_calling_oracle"
    assert sweep_job_name(base, str(sweep), ["model.temperature=0.7"]) == f"{base}_temperature-0.7"
    (sweep / base / ".hydra").mkdir(parents=True)
    (sweep / base / ".hydra" / "config.yaml").write_text("env: {name: retail}\n")  # written by an older version
    assert sweep_job_name(base, str(sweep), ["model.temperature=0.7"]) == base  # resumed where it is
