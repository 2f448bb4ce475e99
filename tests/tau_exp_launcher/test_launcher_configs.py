"""conf/hydra/launcher/: every launcher config composes, submitit accepts every parameter it
sets, and a cluster's own values come from a config dir of the user's without editing the
project (no Slurm needed here; sweeps through sbatch are in test_slurm_launcher.py)."""

from __future__ import annotations

import pytest
import submitit
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf


@pytest.fixture(scope="session")
def launcher_params(conf_dir):
    """`launcher_params(option, *overrides)`: hydra.launcher as `hydra/launcher=option` composes it."""

    def params(option: str, *overrides: str) -> dict:
        with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir)):
            cfg = compose("config", overrides=[f"hydra/launcher={option}", *overrides], return_hydra_config=True)
        composed = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
        assert isinstance(composed, dict)
        return composed

    return params


@pytest.mark.parametrize("option", ["slurm_gaudi", "slurm_cuda"])
def test_slurm_launcher_configs_target_tau_exps_launcher_and_submitit_accepts_them(
    option, tmp_path, launcher_params, monkeypatch
):
    # submitit's Slurm executor refuses to exist where `srun` is not on the PATH; checking the
    # parameter names needs no cluster, so this test runs in the fast tier on any machine.
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    params = launcher_params(option)
    assert params.pop("_target_") == "hydra_plugins.tau_exp_launcher.slurm_launcher.SlurmLauncher"
    assert params["max_num_timeout"] > 0 and params["signal_delay_s"] > 0  # requeue on time limit
    # The same mapping as the launcher: submitit refuses unknown parameter names.
    executor = submitit.AutoExecutor(
        folder=tmp_path, cluster="slurm", slurm_max_num_timeout=params.pop("max_num_timeout")
    )
    params.pop("submitit_folder")
    base = {
        "timeout_min",
        "cpus_per_task",
        "gpus_per_node",
        "tasks_per_node",
        "mem_gb",
        "nodes",
        "name",
        "stderr_to_stdout",
    }
    executor.update_parameters(**{key if key in base else f"slurm_{key}": value for key, value in params.items()})


def test_the_local_launcher_is_hydras_basic_launcher(launcher_params):
    assert launcher_params("local")["_target_"] == "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


@pytest.mark.slow
def test_a_clusters_values_live_in_the_users_own_config_dir(tmp_path, launch):
    launchers = tmp_path / "conf" / "hydra" / "launcher"
    launchers.mkdir(parents=True)
    (launchers / "mycluster.yaml").write_text(
        yaml.safe_dump(
            {
                "defaults": ["slurm_gaudi"],
                "partition": "gaudi2",
                "account": "myproject",
                "setup": ["module load habanalabs"],
            }
        )
    )
    shown = launch(["--config-dir", str(tmp_path / "conf"), "--cfg", "hydra", "hydra/launcher=mycluster"], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    launcher = yaml.safe_load(shown.stdout)["hydra"]["launcher"]
    assert (launcher["partition"], launcher["account"], launcher["setup"]) == (
        "gaudi2",
        "myproject",
        ["module load habanalabs"],
    )
    assert launcher["gres"] == "gpu:1"  # the rest comes from the project's slurm_gaudi
