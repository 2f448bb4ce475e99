"""Hydra callbacks: job bookkeeping that belongs to Hydra's life cycle, not to the pipeline."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class KeepEveryInvocation(Callback):
    """Hydra rewrites `.hydra/*.yaml` each time a job directory is used again (a resume, or a
    bad command line); this copies each invocation's files to `.hydra/invocations/<time>/`
    first thing, so the configuration of every earlier run of the job is kept."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.output_subdir is None:
            return
        subdir = Path(hydra_cfg.runtime.output_dir) / hydra_cfg.output_subdir
        archive = subdir / "invocations" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
        archive.mkdir(parents=True, exist_ok=True)
        for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
            if (subdir / name).exists():
                shutil.copy2(subdir / name, archive / name)
