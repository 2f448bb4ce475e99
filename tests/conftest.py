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
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from tau_exp import runtime
from tau_exp.config import ModelConfig, register_configs, to_experiment_config
from tau_exp.endpoint import Endpoint
from tau_exp.servers import provide

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


def compose_config(*overrides: str) -> DictConfig:
    """The project's real config, as `python launch.py <overrides>` would compose it."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(config_name="config", overrides=["run.progress=false", *overrides])


@pytest.fixture
def compose_cfg():
    return compose_config


@pytest.fixture(scope="session")
def oracle_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Endpoint]]:
    """One assistant and one user oracle server for the whole session, started and stopped by
    the project's own `oracle` server kind. Tests attach to them (the `attach` kind)."""
    servers_dir = tmp_path_factory.mktemp("oracle_servers")
    experiment = to_experiment_config(compose_config())
    with ExitStack() as stack:
        yield {
            "assistant": stack.enter_context(provide("assistant", experiment.model, servers_dir)),
            "user": stack.enter_context(provide("user", experiment.user, servers_dir)),
        }


def attach_overrides(servers: dict[str, Endpoint]) -> list[str]:
    """Overrides that point a job's assistant and user at already-running oracle servers.

    The oracle's key reaches the job the way a real key would: through an environment variable."""
    os.environ["TEST_ASSISTANT_KEY"] = servers["assistant"].api_key or ""
    os.environ["TEST_USER_KEY"] = servers["user"].api_key or ""
    return [
        "model.server.kind=attach", f"model.server.base_url={servers['assistant'].base_url}",
        "model.server.api_key_env=TEST_ASSISTANT_KEY",
        "user.server.kind=attach", f"user.server.base_url={servers['user'].base_url}",
        "user.server.api_key_env=TEST_USER_KEY",
    ]


@pytest.fixture
def attached(oracle_servers: dict[str, Endpoint]) -> list[str]:
    return attach_overrides(oracle_servers)


def oracle_model(**oracle: object) -> ModelConfig:
    """A ModelConfig for an oracle server with the given latency/fault settings."""
    model = to_experiment_config(compose_config()).model
    for key, value in oracle.items():
        if key == "latency_s":
            model.server.oracle.latency_s = value  # type: ignore[assignment]
        else:
            setattr(model.server.oracle.faults, key, value)
    return model


def run_launch(args: list[str], cwd: Path, timeout_s: float = 600, env: dict[str, str] | None = None,
               ) -> subprocess.CompletedProcess:
    """Run `python launch.py ARGS` as a user would (a separate process, real exit status)."""
    return subprocess.run(
        [sys.executable, str(ROOT / "launch.py"), *args, "run.progress=false"],
        cwd=cwd, capture_output=True, text=True, timeout=timeout_s, env={**os.environ, **(env or {})},
    )


@pytest.fixture
def launch():
    return run_launch


def read_config(job_dir: Path) -> DictConfig:
    return OmegaConf.load(job_dir / ".hydra" / "config.yaml")  # type: ignore[return-value]


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Path]:
    """The single-node Slurm cluster of scripts/local_slurm.sh on 127.0.0.1, with SLURM_CONF
    exported for the session. Started here if it is not up yet, and then stopped after."""
    if not all(shutil.which(daemon) for daemon in ("slurmctld", "slurmd", "sbatch", "munged")):
        pytest.skip("Slurm is not installed: bash scripts/local_slurm.sh install")
    script = ["bash", str(ROOT / "scripts" / "local_slurm.sh")]
    was_up = subprocess.run([*script, "status"], capture_output=True).returncode == 0
    started = subprocess.run([*script, "start"], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, f"local Slurm did not start: {started.stderr}"
    conf = Path(started.stdout.split("SLURM_CONF=")[-1].strip())
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    try:
        yield conf
    finally:
        if previous is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = previous
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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI (CI=true, set by .ci/run) a skipped test is a failure: every tier must run there."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI", "").lower() in ("1", "true", "yes") and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where every test must run: {report.longrepr}"
