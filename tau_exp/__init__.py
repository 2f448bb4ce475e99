"""tau_exp: Hydra-configured tau-bench experiments with a hardened run loop.

Importing the package sets the environment that litellm and tau2 must see before they are
imported anywhere (they read it at import time).
"""

import os

# litellm otherwise fetches a price map from the internet at import (no network on clusters'
# compute nodes; once crashed an import from a background retry thread).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOG", "ERROR")


def _silence_loguru() -> None:
    # tau2 logs through loguru at DEBUG to stderr from its first import on; each job routes it
    # to <job dir>/tau2.log instead (tau_exp.bench.tau2.route_tau2_logs).
    try:
        from loguru import logger
    except ImportError:
        return
    logger.remove()


_silence_loguru()


def _register_resolvers() -> None:
    # `${tau_exp.path_safe:${model.name}}` in directory names: Qwen/Qwen3-4B → Qwen_Qwen3-4B.
    # Registered on import of the package, so that Slurm jobs (which unpickle the launcher,
    # not launch.py) resolve it too.
    import re

    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("tau_exp.path_safe"):
        OmegaConf.register_new_resolver("tau_exp.path_safe", lambda text: re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)))


_register_resolvers()
