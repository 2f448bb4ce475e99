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
