"""The project's exception tree: every error a user can cause or fix has its own type and a
message that names the cause and the next thing to try."""

from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)


class TauExpError(Exception):
    """Base class: an error with a message meant for the user (no traceback needed)."""

    exit_code = 2


class ConfigError(TauExpError):
    """The composed configuration is invalid (bad value, missing value, bad combination)."""


class ServerError(TauExpError):
    """A model server could not be started or reached, or does not speak the OpenAI API."""


class SlurmError(TauExpError):
    """Slurm cannot be used: its commands are missing, the controller does not answer, or it
    refused a request (unknown partition, invalid time limit...)."""


class CheckpointError(TauExpError):
    """The results store of a job directory cannot be used (malformed, locked, other config)."""


class Interrupted(KeyboardInterrupt):
    """The job was asked to stop (Ctrl-C, SIGTERM) and stopped at a safe point."""

    def __init__(self, signum: int, resume_command: str | None = None) -> None:
        super().__init__(signum)
        self.signum = signum
        self.resume_command = resume_command  # the command that resumes this job, ready to paste


class IncompleteRun(TauExpError):
    """The job ran to its end, but some (task, trial) pairs ended in errors and were not scored."""

    exit_code = 3


# What ends an episode without a crash of the job: each becomes part of its record.


class InfraError(Exception):
    """A model call failed for reasons outside the agent (server down, 5xx, timeout, auth...).

    Raised by the model client after its retries; the run loop records the (task, trial) as an
    infra error, never as a reward."""


class ModelFault(Exception):
    """The model itself failed the conversation (it no longer fits the context, or the reply was
    empty): not the infrastructure's fault. The conversation ends as the agent's or the user's
    error, and the benchmark scores it."""

    def __init__(self, role: str, message: str) -> None:
        super().__init__(message)
        self.role = role


class Cancelled(Exception):
    """The run is stopping (Ctrl-C, or too many infra errors in a row): abandon this episode
    (the pair stays pending and runs on resume)."""


F = TypeVar("F", bound=Callable)


def exit_on_user_error(func: F) -> F:
    """Turn a TauExpError into one line on stderr and its exit status (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except TauExpError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt as interrupt:
            resume = getattr(interrupt, "resume_command", None)
            print(
                "interrupted: finished results are saved; "
                + (f"resume with: {resume}" if resume else "rerun the same command with the same output directory"),
                file=sys.stderr,
                flush=True,
            )
            sys.exit(128 + getattr(interrupt, "signum", signal.SIGINT))

    return wrapper  # type: ignore[return-value]
