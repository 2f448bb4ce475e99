"""Entry point: Hydra composes the config from `conf/`, `tau_exp.experiment.run` does the job.

python launch.py                                    # retail test split, oracle models
python launch.py -m env=retail,airline agent=tool_calling
"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from tau_exp import runtime
from tau_exp.config import register_configs
from tau_exp.errors import exit_on_user_error
from tau_exp.job.outcome import run_recorded

runtime.prepare_process()
register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    from tau_exp import experiment  # heavy (tau2, litellm): imported after Hydra has parsed the CLI

    hydra_cfg = HydraConfig.get()
    job_dir = Path(hydra_cfg.runtime.output_dir)
    # In a sweep, a failed job is recorded and the sweep goes on (the sweep summary lists it).
    return run_recorded(
        lambda: experiment.run(cfg, job_dir).avg_reward, job_dir, in_sweep=hydra_cfg.mode == RunMode.MULTIRUN
    )


if __name__ == "__main__":
    main()
