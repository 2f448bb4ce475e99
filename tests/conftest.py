"""Shared fixtures: the project's real Hydra configs (composed, shrunk, outputs in tmp dirs),
real oracle model servers started through the project's own server code, and a helper that
runs `launch.py` as a user would.

No test double stands in for tau2, litellm or HTTP here: every episode is a real tau2
conversation over real HTTP, scored by tau2's own evaluation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from tau_exp import runtime
from tau_exp.config import ModelConfig, register_configs, to_experiment_config
from tau_exp.endpoint import Endpoint
from tau_exp.servers import provide_all
from tests.support.oracle_chat import OracleFaults

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"

runtime.prepare_process()  # the test session is an entry point, like launch.py
register_configs()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep tests from reading a user's model URLs or writing under ~/."""
    for name in ("USER_MODEL_API_BASE", "MODEL_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.getbasetemp() / "home"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def conf_dir() -> Path:
    """The project's Hydra config directory."""
    return CONF_DIR


def compose_config(*overrides: str) -> DictConfig:
    """The project's real config, as `python launch.py <overrides>` would compose it."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(config_name="config", overrides=["run.progress=false", *overrides])


@pytest.fixture(scope="session")
def compose_cfg() -> Callable[..., DictConfig]:
    """`compose_cfg(*overrides)`: the project's real config, composed as launch.py would."""
    return compose_config


def _oracle_model(**oracle: object) -> ModelConfig:
    model = to_experiment_config(compose_config()).model
    for key, value in oracle.items():
        if key == "latency_s":
            model.server.oracle.latency_s = value  # type: ignore[assignment]
        else:
            setattr(model.server.oracle.faults, key, value)
    return model


@pytest.fixture(scope="session")
def oracle_model() -> Callable[..., ModelConfig]:
    """`oracle_model(latency_s=…, error_rate=…, …)`: a ModelConfig for an oracle server with
    that latency and those fault rates."""
    return _oracle_model


@pytest.fixture(scope="session")
def session_env() -> Iterator[pytest.MonkeyPatch]:
    """Environment changes that session-wide fixtures need, undone when the session ends."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="session")
def oracle_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Endpoint]]:
    """One assistant and one user oracle server for the whole session, started and stopped by
    the project's own `oracle` server kind. Tests attach to them (the `attach` kind)."""
    servers_dir = tmp_path_factory.mktemp("oracle_servers")
    experiment = to_experiment_config(compose_config())
    with provide_all([("assistant", experiment.model), ("user", experiment.user)], servers_dir) as endpoints:
        yield endpoints


@pytest.fixture(scope="session")
def faulty_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Endpoint]]:
    """A second assistant and user oracle pair for the session, for tests that inject faults or
    latency (`oracle_faults` sets them per test); the clean pair, `oracle_servers`, never changes.
    One pair serves every test's settings: each oracle started costs seconds of imports."""
    servers_dir = tmp_path_factory.mktemp("faulty_servers")
    experiment = to_experiment_config(compose_config())
    with provide_all([("assistant", experiment.model), ("user", experiment.user)], servers_dir) as endpoints:
        yield endpoints


@pytest.fixture
def oracle_faults(faulty_servers: dict[str, Endpoint]) -> Iterator[OracleFaults]:
    """`oracle_faults(assistant={...}, user={...})`: the session's faulty oracle pair, with these
    fault rates (and `latency_s`) for this test — as a fresh oracle started with them would
    answer: its fault draws and counts start again — and none again after the test. Returns the
    pair; `attach_to(pair)` gives the overrides that point a job at it."""
    faults = OracleFaults(faulty_servers)
    yield faults
    faults.clear()


@pytest.fixture(scope="session")
def attach_to(session_env: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """`attach_to(servers, name=None)`: overrides that point a job's assistant and user at running
    servers.

    Each server's key reaches the job the way a real key would: through an environment variable,
    `<name>_ASSISTANT_KEY` / `<name>_USER_KEY`, or without a name one named after the server's
    port, so that servers of different fixtures never share one."""

    def overrides(servers: dict[str, Endpoint], name: str | None = None) -> list[str]:
        attached: list[str] = []
        for role, key in (("assistant", "model"), ("user", "user")):
            endpoint = servers[role]
            variable = f"{name}_{role.upper()}_KEY" if name else f"TAU_EXP_TEST_KEY_{httpx.URL(endpoint.base_url).port}"
            session_env.setenv(variable, endpoint.api_key or "")
            attached += [
                f"{key}.server.kind=attach",
                f"{key}.server.base_url={endpoint.base_url}",
                f"{key}.server.api_key_env={variable}",
            ]
        return attached

    return overrides


@pytest.fixture(scope="session")
def attached(oracle_servers: dict[str, Endpoint], attach_to) -> list[str]:
    """Overrides that attach a job to the session's oracle servers (keys in TEST_ASSISTANT_KEY
    and TEST_USER_KEY)."""
    return attach_to(oracle_servers, "TEST")


@pytest.fixture(scope="session")
def tau2_results_file(oracle_servers: dict[str, Endpoint], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results file written by tau2's own runner (`tau2.run.run_tasks`, its LLM agent and user
    simulator) against the session's oracle: the first 3 retail test tasks × 2 trials. tau2's model
    calls carry tau_exp's episode headers through litellm's `extra_headers` in tau2's llm_args (the
    benchmark's tau2 harness, benchmarks/harness.py, in a process of its own: run_tasks replaces
    loguru's sinks and runs git in its working directory). tau2 saves its llm_args, API key included."""
    from benchmarks.oracle import KEY_ENV

    workdir = tmp_path_factory.mktemp("tau2_run_tasks")
    endpoint = oracle_servers["assistant"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.harness", "tau2", "--url", endpoint.base_url, "--domain", "retail"]
        + ["--tasks", "3", "--trials", "2", "--concurrency", "1", "--workdir", str(workdir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, KEY_ENV: endpoint.api_key or ""},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir / "tau2_results.json"


def write_job_config(job_dir: Path, cfg: DictConfig) -> None:
    """`.hydra/config.yaml` as Hydra writes it for a job (for jobs run by `experiment.run` in a test)."""
    from omegaconf import OmegaConf

    (job_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, job_dir / ".hydra" / "config.yaml")


@pytest.fixture(scope="session")
def oracle_job(attached: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tau_exp job directory: the first 3 retail test tasks × 2 trials against the
    session's oracle (the tasks tau2_results_file runs), with its .hydra/config.yaml."""
    from tau_exp import experiment

    job_dir = tmp_path_factory.mktemp("oracle_job") / "0_retail_tool_calling_oracle"
    cfg = compose_config("tasks.end=3", "run.num_trials=2", "tracking=none", *attached)
    experiment.run(cfg, job_dir)
    write_job_config(job_dir, cfg)
    return job_dir


def _make_job(job_dir: Path, overrides: list[str], records: list[Any]) -> Path:
    from tau_exp.config import result_identity
    from tau_exp.records import Manifest

    cfg = compose_config(*overrides)
    write_job_config(job_dir, cfg)
    manifest = Manifest(identity=result_identity(to_experiment_config(cfg)), tau2_version="26.3")
    (job_dir / "manifest.json").write_text(manifest.model_dump_json())
    (job_dir / "results.jsonl").write_text("".join(record.model_dump_json() + "\n" for record in records))
    return job_dir


@pytest.fixture(scope="session")
def make_job() -> Callable[..., Path]:
    """`make_job(job_dir, overrides, records)`: a job directory as tau_exp writes it — the real
    config composed with `overrides` (.hydra/config.yaml), its manifest, and these EpisodeResult
    records as results.jsonl — without running anything."""
    return _make_job


def _run_launch(
    args: list[str], cwd: Path, timeout_s: float = 600, env: dict[str, str] | None = None, **popen: Any
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), *args, "run.progress=false"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **(env or {})},
        **popen,
    )


@pytest.fixture(scope="session")
def launch() -> Callable[..., subprocess.CompletedProcess]:
    """`launch(args, cwd)`: run `python launch.py ARGS` as a user would (a separate process,
    real exit status, output captured)."""
    return _run_launch


@pytest.fixture(scope="session")
def launch_process() -> Callable[..., subprocess.Popen]:
    """`launch_process(args, cwd, new_session=False)`: `python launch.py ARGS` started in the
    background (output piped), for tests that signal or watch a running job."""

    def start(args: list[str], cwd: Path, new_session: bool = False) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "launch.py"), *args, "run.progress=false"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=new_session,
        )

    return start


@pytest.fixture(scope="session")
def wait_until() -> Callable[..., Any]:
    """`wait_until(condition, timeout_s, what)`: poll `condition` until it returns something
    truthy (returned), or fail the test naming `what` after `timeout_s`."""

    def wait(condition: Callable[[], Any], timeout_s: float = 60.0, what: str = "the condition") -> Any:
        deadline = time.monotonic() + timeout_s
        while not (value := condition()):
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not happen within {timeout_s:g} s")
            time.sleep(0.05)
        return value

    return wait


@pytest.fixture(scope="session")
def slurm_cluster(session_env: pytest.MonkeyPatch) -> Iterator[Path]:
    """The single-node Slurm cluster of scripts/local_slurm.sh on 127.0.0.1, with SLURM_CONF
    exported for the session. Started here if it is not up yet, and then stopped after."""
    if not all(shutil.which(daemon) for daemon in ("slurmctld", "slurmd", "sbatch", "munged")):
        pytest.skip("Slurm is not installed: bash scripts/local_slurm.sh install")
    script = ["bash", str(ROOT / "scripts" / "local_slurm.sh")]
    was_up = subprocess.run([*script, "status"], capture_output=True).returncode == 0
    started = subprocess.run([*script, "start"], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, f"local Slurm did not start: {started.stderr}"
    conf = Path(started.stdout.split("SLURM_CONF=")[-1].strip())
    session_env.setenv("SLURM_CONF", str(conf))
    try:
        yield conf
    finally:
        session_env.delenv("SLURM_CONF", raising=False)
        if not was_up:
            subprocess.run([*script, "stop"], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def chromium():
    """Headless Chromium (Debian's package: scripts/install_chromium.sh), driven by playwright,
    with a fresh empty profile and nothing that reaches out to the network."""
    from benchmarks.browser_page import CHROMIUM, launch_chromium

    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: bash scripts/install_chromium.sh (or set TAU_EXP_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium):
    """A fresh browser tab (1360×860); any JavaScript error or failed request fails the test."""
    context = chromium.new_context(viewport={"width": 1360, "height": 860})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on("console", lambda message: problems.append(f"console: {message.text}") if message.type == "error" else None)
    tab.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    yield tab
    problems += tab.locator("#view .error").all_inner_texts()  # a view that could not be drawn
    context.close()
    assert not problems, problems


# What makes a test slow: it runs launch.py, Slurm, vLLM or Chromium. Such a test says so
# (@pytest.mark.slow, or its module's pytestmark), so that `pytest -m "not slow"` stays fast.
SLOW_FIXTURES = frozenset({"launch", "launch_process", "slurm_cluster", "chromium", "page", "tiny_model"})


# How the tests share pytest-xdist's two workers (pyproject.toml: -n 2): a test file is one unit
# of work (its module fixtures are made once), and the files on the Slurm cluster are one (the
# cluster starts and stops once, and no other test's Slurm jobs meet theirs). Much of a test
# waits (on Slurm's timers, on servers starting, on latency it injects) while the other worker
# computes. The longest units go first, so that both workers end at about the same time (a
# scheduling hint, from `--durations`: a stale one only costs minutes).
SLURM_FILES = ("tests/servers/test_shared_servers.py", "tests/tau_exp_launcher/test_slurm_launcher.py")
SLURM_UNIT = "the Slurm cluster"
LONGEST_UNITS_FIRST = (
    SLURM_UNIT,
    "tests/job/test_runloop.py",
    "tests/test_benchmarks.py",
    "tests/bench/test_tau2_scoring.py",
)


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to (its file, or the Slurm cluster's)."""
    path = nodeid.split("::")[0]
    return SLURM_UNIT if path in SLURM_FILES else path


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's scheduler by scope, with `unit_of` as the scope."""
    from xdist.scheduler import LoadScopeScheduling

    class ByUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

    return ByUnit(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unmarked = [
        item.nodeid
        for item in items
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("slow") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests run launch.py, Slurm, vLLM or Chromium but are not marked "
            "@pytest.mark.slow: " + ", ".join(unmarked)
        )
    elsewhere = [
        item.nodeid
        for item in items
        if "slurm_cluster" in getattr(item, "fixturenames", ()) and unit_of(item.nodeid) != SLURM_UNIT
    ]
    if elsewhere:
        raise pytest.UsageError(
            "these tests use the Slurm cluster outside tests/conftest.py's SLURM_FILES, where another worker "
            "could meet their jobs: " + ", ".join(elsewhere)
        )
    first = {unit: rank for rank, unit in enumerate(LONGEST_UNITS_FIRST)}
    items.sort(key=lambda item: first.get(unit_of(item.nodeid), len(first)))  # stable: the rest keep their order


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI (CI=true, set by .ci/run) a skipped test is a failure: every tier must run there."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI", "").lower() in ("1", "true", "yes") and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every test must run: {report.longrepr}"
