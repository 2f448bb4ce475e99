"""runtime.py: importing tau_exp — every module of it — changes nothing in the host process
(environment, log handlers and levels, OmegaConf resolvers); the entry points' set-up does."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import tau_exp

SNAPSHOT = """
import json, logging, os
from loguru import logger
from omegaconf import OmegaConf
def snapshot():
    return {"env": dict(os.environ), "loguru": sorted(logger._core.handlers),
            "levels": {name: logging.getLogger(name).level for name in ("LiteLLM", "httpx", "httpcore")},
            "resolver": OmegaConf.has_resolver("tau_exp.path_safe")}
"""


def _run(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SNAPSHOT + code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_every_module_of_the_package_changes_nothing_in_the_process():
    modules = sorted(
        module.name
        for module in pkgutil.walk_packages(tau_exp.__path__, "tau_exp.")
        if not module.name.endswith("__main__")
    )
    assert "tau_exp.experiment" in modules and "tau_exp.llm.chat" in modules and "tau_exp.bench.tau2" in modules
    # The libraries tau_exp uses first (litellm itself sets httpx's level when imported): what
    # is compared is what importing tau_exp adds. tau_bench (v1) is imported only when used.
    after = _run(f"""
import litellm, tau2.run, tau2.registry, tau2.orchestrator.orchestrator, tau2.evaluator.evaluator, wandb
before = snapshot()
import importlib
for name in {modules!r}:
    importlib.import_module(name)
print(json.dumps({{"before": before, "after": snapshot()}}))
""")
    assert after["after"] == after["before"]


def test_the_entry_points_set_up_litellms_environment_quiet_loggers_and_the_resolver():
    changed = _run("""
from tau_exp import runtime
runtime.prepare_process()
print(json.dumps(snapshot()))
""")
    assert changed["env"]["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert changed["env"]["LOGURU_AUTOINIT"] == "False"  # processes it starts (the workers' forkserver) too
    assert changed["loguru"] == []  # tau2's DEBUG lines no longer reach stderr
    assert set(changed["levels"].values()) == {30} and changed["resolver"] is True
