"""Model servers: each kind turns a model's config into a ready `Endpoint` and releases it after.

Kinds: `attach` (a running server), `oracle` (the built-in oracle, started here), `vllm` (a
vLLM server, started here on this node), `slurm` (a shared server job for many jobs).
`provide` gives one model's; `provide_all` a job's, starting those it starts at the same time."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import wait
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

from tau_exp.config import ModelConfig, ServerKind
from tau_exp.endpoint import Endpoint
from tau_exp.servers.background import ServerThread

__all__ = ["Endpoint", "provide", "provide_all"]

log = logging.getLogger(__name__)


def provide(role: str, model: ModelConfig, servers_dir: Path) -> AbstractContextManager[Endpoint]:
    """A context manager that yields a ready Endpoint for `model` and stops what it started."""
    if model.server.kind == ServerKind.attach:
        from tau_exp.servers.attach import attached

        return attached(model)
    if model.server.kind == ServerKind.oracle:
        from tau_exp.servers.oracle import started

        return started(role, model, servers_dir)
    if model.server.kind == ServerKind.vllm:
        from tau_exp.servers.vllm import started as started_vllm

        return started_vllm(role, model, servers_dir)
    if model.server.kind == ServerKind.slurm:
        from tau_exp.servers.slurm import shared

        return shared(role, model)
    raise ValueError(f"unknown server kind {model.server.kind}")  # the schema's enum prevents this


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
        for kind in (ServerKind.attach, ServerKind.slurm):
            for role, model in models:
                if model.server.kind == kind:
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
