"""Entry point: Hydra composes the config from `conf/`, `tau_exp.experiment.run` does the job.

    python launch.py                                    # retail test split, oracle models
    python launch.py -m env=retail,airline agent=tool_calling
"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from tau_exp.config import register_configs
from tau_exp.errors import exit_on_user_error

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    from tau_exp import experiment  # heavy (tau2, litellm): imported after Hydra has parsed the CLI

    return experiment.run(cfg, Path(HydraConfig.get().runtime.output_dir)).avg_reward


if __name__ == "__main__":
    main()
