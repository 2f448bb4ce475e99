"""What a tau_exp process sets up for itself, once, at its entry point — never on import.

Importing tau_exp (as a library, in a notebook, in another tool) changes nothing in the host
process. The entry points call these: `launch.py` and the Slurm jobs of a sweep, each
command-line tool, the oracle server, and the worker processes that run episodes.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from tau_exp.errors import exit_on_user_error

P = ParamSpec("P")
R = TypeVar("R")

# Libraries that log one INFO line per model call (or worse).
_NOISY_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore")

# The logger of the few INFO lines a user needs on the console however quiet it is (where a job's
# results go): conf/hydra/job_logging/quiet.yaml gives it a console handler of its own.
CONSOLE_LOGGER = "tau_exp.console"


def prepare_process() -> None:
    """The environment litellm and tau2 read when they are imported, quiet logs, and the
    config resolver of directory names. Call before tau2 or litellm is imported."""
    # litellm otherwise fetches a price map from the internet at import (no network on clusters'
    # compute nodes; once crashed an import from a background retry thread).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    # tau2 logs through loguru at DEBUG to stderr from its first import on. Processes started
    # from this one (the episode workers' forkserver imports tau2 before any of tau_exp's code
    # runs there; the oracle server) get no default loguru sink; this one drops it.
    os.environ.setdefault("LOGURU_AUTOINIT", "False")
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    route_tau2_logs(None)
    register_resolvers()


def register_resolvers() -> None:
    """The resolvers of job directory names (conf/config.yaml, hydra.sweep.subdir):
    `${tau_exp.path_safe:${model.name}}`: Qwen/Qwen3-4B → Qwen_Qwen3-4B;
    `${tau_exp.sweep_job_name:'<base>',${hydra.sweep.dir},${hydra.overrides.task}}`: the base name
    followed by the values of the keys the sweep varies that it does not show yet, e.g.
    `1_retail_tool_calling_oracle_temperature-0.7` (jobdir.sweep_job_name)."""
    from omegaconf import OmegaConf

    from tau_exp.jobdir import path_safe, sweep_job_name

    if not OmegaConf.has_resolver("tau_exp.path_safe"):
        OmegaConf.register_new_resolver("tau_exp.path_safe", path_safe)
    if not OmegaConf.has_resolver("tau_exp.sweep_job_name"):
        OmegaConf.register_new_resolver("tau_exp.sweep_job_name", sweep_job_name)


def console_shows(level: int, logger: str = "tau_exp") -> bool:
    """Whether a record of `level` from `logger` reaches the console (a stream handler on stdout
    or stderr, not a file) under the logging configuration in force — Hydra's job_logging: by
    default (`quiet`) INFO does not, with `hydra/job_logging=verbose` it does. Other tools'
    output (W&B's) follows it."""
    if not logging.getLogger(logger).isEnabledFor(level):
        return False
    current: logging.Logger | None = logging.getLogger(logger)
    while current is not None:
        for handler in current.handlers:
            if (
                isinstance(handler, logging.StreamHandler)
                and getattr(handler, "stream", None) in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
                and level >= handler.level
            ):
                return True
        current = current.parent if current.propagate else None
    return False


def quiet_litellm() -> None:
    """No 'Give Feedback / Get Help' banner on every failed model call (they are retried, and
    reported once as an infra error)."""
    import litellm

    litellm.suppress_debug_info = True


def route_tau2_logs(log_path: Path | None, level: str = "WARNING") -> None:
    """tau2 logs through loguru at DEBUG to stderr from its first import on: send it to
    `log_path` (the job's tau2.log) instead, or nowhere."""
    from loguru import logger

    logger.remove()
    if log_path is not None:
        logger.add(log_path, level=level, enqueue=False)


_gc_tuned = False


def tune_gc() -> None:
    """Make tau2's environment builds about 3× cheaper (measured here: a retail build and hash
    took 158 ms with eight other environments alive, 49 ms after this).

    A tau2 database is a large graph of pydantic objects, and building one triggers collections
    that traverse every database alive (the other episodes'). Freezing what exists now (imports,
    tasks) and collecting the young generation less often removes most of that; the reference
    cycles that episodes leave are still collected. Once per process: a later freeze would keep
    the garbage of earlier jobs of a sweep alive."""
    global _gc_tuned
    if not _gc_tuned:
        _gc_tuned = True
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)


def command_line(main: Callable[P, R]) -> Callable[P, R | None]:
    """Decorate the `main` of a command-line tool: the process set-up first, and a TauExpError
    as one line on stderr and its exit status (no traceback)."""

    @functools.wraps(main)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | None:
        prepare_process()
        return exit_on_user_error(main)(*args, **kwargs)

    return wrapper
