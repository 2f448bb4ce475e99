"""The project's exception tree: every error a user can cause or fix has its own type and a
message that names the cause and the next thing to try."""

from __future__ import annotations

import functools
import logging
import sys
from typing import Callable, TypeVar

log = logging.getLogger(__name__)


class TauExpError(Exception):
    """Base class: an error with a message meant for the user (no traceback needed)."""


class ConfigError(TauExpError):
    """The composed configuration is invalid (bad value, missing value, bad combination)."""


class ServerError(TauExpError):
    """A model server could not be started or reached, or does not speak the OpenAI API."""


class CheckpointError(TauExpError):
    """The results store of a job directory cannot be used (malformed, locked, other config)."""


class InfraError(Exception):
    """A model call failed for reasons outside the agent (server down, 5xx, timeout, auth...).

    Raised by the model client after its retries; the run loop records the (task, trial) as an
    infra error, never as a reward."""


F = TypeVar("F", bound=Callable)


def exit_on_user_error(func: F) -> F:
    """Turn a TauExpError into one line on stderr and exit status 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except TauExpError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted: finished results are saved; rerun the same command "
                  "with the same output directory to resume", file=sys.stderr, flush=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
