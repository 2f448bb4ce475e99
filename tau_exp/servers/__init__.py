"""Model servers: each kind turns a model's config into a ready `Endpoint` and releases it after.

Kinds, one module each behind the `ServerKind` protocol (its settings' checks, and one way to
provide an endpoint): `attach` (a running server), `oracle` (the built-in oracle, started here),
`vllm` (a vLLM server, started here on this node), `slurm` (a shared server job for many jobs;
`server_job.py` is what runs inside that job). `validate` checks a job's models with their
kinds; `provide` gives one model's endpoint; `provide_all` a job's, starting those it starts at
the same time."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import wait
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Protocol, cast

from tau_exp.config import ExperimentConfig, ModelConfig
from tau_exp.config import ServerKind as Kind
from tau_exp.endpoint import Endpoint
from tau_exp.servers.background import ServerThread

__all__ = ["Endpoint", "ServerKind", "provide", "provide_all", "validate"]

log = logging.getLogger(__name__)


class ServerKind(Protocol):
    """What each server kind's module (attach.py, oracle.py, vllm.py, slurm.py) provides."""

    def check(self, key: str, model: ModelConfig) -> None:
        """ConfigError unless the kind's settings of `model` (config key `key`: model or user) are usable."""

    def provide(self, role: str, model: ModelConfig, servers_dir: Path) -> AbstractContextManager[Endpoint]:
        """A context manager that yields a ready Endpoint for `model` and stops what it started."""


def kind(name: Kind) -> ServerKind:
    # Each kind is the module of its name, imported when used (the slurm kind needs submitit).
    return cast(ServerKind, importlib.import_module(f"tau_exp.servers.{Kind(name).value}"))


def validate(experiment: ExperimentConfig) -> None:
    """Each model's server settings, checked by its kind, before anything starts; ConfigError otherwise."""
    for key, model in (("model", experiment.model), ("user", experiment.user)):
        kind(model.server.kind).check(key, model)


def provide(role: str, model: ModelConfig, servers_dir: Path) -> AbstractContextManager[Endpoint]:
    """A context manager that yields a ready Endpoint for `model` and stops what it started."""
    return kind(model.server.kind).provide(role, model, servers_dir)


@contextmanager
def provide_all(models: Sequence[tuple[str, ModelConfig]], servers_dir: Path) -> Iterator[dict[str, Endpoint]]:
    """Yield a ready Endpoint per role of `models` ((role, model) pairs); stop what was started.

    In this order: the servers to attach to (checking them starts nothing, so a wrong URL is
    refused before any server starts); the `slurm` kind, one at a time in this thread (submitting
    clears SLURM_* from os.environ for a moment, which a process started meanwhile by another
    thread would copy); then the servers started here (oracle, vLLM) all at once, each held by a
    thread of its own: each takes seconds (an oracle imports tau2) to minutes (vLLM loads its
    model), and one after the other a job waited for their sum. When one of those fails to start,
    the others are stopped once they are up, and the first error is raised."""
    with ExitStack() as stack:
        endpoints: dict[str, Endpoint] = {}
        for first in (Kind.attach, Kind.slurm):
            for role, model in models:
                if model.server.kind == first:
                    endpoints[role] = stack.enter_context(provide(role, model, servers_dir))
        local = [(role, model) for role, model in models if role not in endpoints]
        if len(local) == 1:  # nothing to overlap: started in this thread
            role, model = local[0]
            endpoints[role] = stack.enter_context(provide(role, model, servers_dir))
        elif local:
            endpoints.update(_start_together(local, servers_dir, stack))
        yield endpoints


def _start_together(
    models: Sequence[tuple[str, ModelConfig]], servers_dir: Path, stack: ExitStack
) -> dict[str, Endpoint]:
    threads = {role: ServerThread(f"start-{role}-server", provide(role, model, servers_dir)) for role, model in models}
    try:
        wait([thread.ready for thread in threads.values()])
    except BaseException:  # interrupted (Ctrl-C): stop each once it is up, without waiting for that
        for thread in threads.values():
            thread.release(wait=False)
        raise
    stack.callback(_release_all, list(threads.values()))  # also those that failed: their threads are done
    errors = [error for thread in threads.values() if (error := thread.ready.exception()) is not None]
    for error in errors[1:]:
        log.error("another server did not start either: %s", error)
    if errors:
        raise errors[0]
    return {role: thread.ready.result() for role, thread in threads.items()}


def _release_all(threads: list[ServerThread]) -> None:
    """Stop the servers at the same time; raise the first stop error once all are stopped."""
    for thread in threads:
        thread.release(wait=False)
    errors: list[BaseException] = []
    for thread in threads:
        try:
            thread.release()
        except BaseException as error:
            errors.append(error)
    if errors:
        raise errors[0]
