"""Model servers: each kind turns a model's config into a ready `Endpoint` and releases it after.

Kinds: `attach` (a running server), `oracle` (the built-in oracle, started here), `vllm` (a
vLLM server, started here on this node), `slurm` (a shared server job for many jobs)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from tau_exp.config import ModelConfig, ServerKind
from tau_exp.endpoint import Endpoint

__all__ = ["Endpoint", "provide"]


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
