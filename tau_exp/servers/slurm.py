"""The `slurm` server kind: one shared server job per distinct model, for a whole sweep and the
sweeps after it (the old workflow's hand-submitted `user-vllm-job.sh`, automated).

A job that needs the model looks it up in the registry (`servers/registry.py`) under the
entry's lock. A live entry is reused; an entry whose Slurm job is gone is replaced; with no
entry, this job submits the server job (through submitit) and records it. Then it waits for
the server job to publish its address and key, checks its health, and uses it. Nothing is
stopped when the job ends: the server outlives it, until `python -m tau_exp.servers stop` or
its time limit.

The server job itself runs `serve`: it starts the server with the `vllm` (or `oracle`) kind,
publishes the address, and keeps it up until Slurm tells it to stop.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shlex
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tau_exp import slurm_client
from tau_exp.config import ModelConfig, ServerKind, SlurmServerConfig
from tau_exp.endpoint import Endpoint
from tau_exp.errors import ServerError, SlurmError
from tau_exp.records import utc_timestamp
from tau_exp.runtime import CONSOLE_LOGGER
from tau_exp.servers.health import NotReady, log_tail, poll, served_models, wait_until_ready
from tau_exp.servers.registry import Registry, ServerAddress, ServerJob

log = logging.getLogger(__name__)
console = logging.getLogger(CONSOLE_LOGGER)  # on the console however quiet it is, and in the job's log

POLL_INTERVAL_S = 1.0
HEALTH_INTERVAL_S = 30.0  # the server job's own check of its server
HEALTH_FAILURES = 3  # consecutive failed checks after which the server job gives up


def entry_key(model: ModelConfig) -> str:
    """The registry key: the served name, readable, plus a digest of everything that decides
    what is served (so a different max_model_len or parser gets its own server)."""
    server = model.server
    served = server.vllm if server.slurm.serves == ServerKind.vllm else server.oracle
    spec = {"name": model.name, "serves": server.slurm.serves.value, "config": dataclasses.asdict(served)}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', model.name)}-{digest}"


def registry_of(model: ModelConfig) -> Registry:
    return Registry(Path(model.server.slurm.registry_dir))


def server_log(registry: Registry, key: str, job_id: str) -> Path:
    """The server job's Slurm log (submitit names it after the job id)."""
    return registry.entry_dir(key) / "logs" / f"{job_id}_0_log.out"


@contextmanager
def shared(role: str, model: ModelConfig) -> Iterator[Endpoint]:
    """Find, reuse or submit the shared server job for `model`; yield its Endpoint once it is ready."""
    registry = registry_of(model)
    key = entry_key(model)
    with registry.locked(key):
        entry = registry.read(key)
        state = slurm_client.job_state(entry.job.job_id) if entry is not None else None
        if entry is not None and state is None:
            log.warning(
                "registry entry %s names Slurm job %s, which is gone; submitting a new server job",
                key,
                entry.job.job_id,
            )
        if state is None:
            job_id = submit(role, model, registry, key)
            # On the console however quiet it is: a Slurm job that outlives this one, until stopped.
            console.info(
                "submitted shared %s server job %s for %s (log %s); it serves later jobs too until: %s",
                role,
                job_id,
                model.name,
                server_log(registry, key, job_id),
                shlex.join(["python", "-m", "tau_exp.servers", "stop", key, "--registry", str(registry.root)]),
            )
        else:
            job_id = entry.job.job_id  # type: ignore[union-attr]
            log.info("using shared %s server job %s for %s (%s)", role, job_id, model.name, state.lower())
    yield wait_for_address(role, model, registry, key, job_id)
    # Not ours to stop: later jobs and sweeps use the same server.


def submit(role: str, model: ModelConfig, registry: Registry, key: str) -> str:
    """Submit the server job for `model` and record it in the registry; returns its job id."""
    import submitit  # imported here: only the slurm kind needs it

    config = model.server.slurm
    slurm_client.check_request(config.partition, config.timeout_min, f"{_config_prefix(role)}.server.slurm")
    executor = submitit.SlurmExecutor(folder=registry.entry_dir(key) / "logs", max_num_timeout=0)
    executor.update_parameters(**sbatch_parameters(config, job_name=f"tau_exp-server-{key}"))
    try:
        # Submitted from inside a sweep's Slurm job, the server job would inherit that job's
        # SLURM_* variables (its array ids, its gres): submit from a clean environment, keeping
        # only the path to the cluster's config.
        slurm_conf = os.environ.get("SLURM_CONF")
        with submitit.helpers.clean_env():
            if slurm_conf:
                os.environ["SLURM_CONF"] = slurm_conf
            job = executor.submit(serve, key, str(registry.root), model)
    except Exception as error:  # submitit raises its own error types with sbatch's message
        cause = slurm_client.last_line(str(error), type(error).__name__)
        raise SlurmError(f"sbatch refused the shared server job for {model.name}: {cause}") from None
    registry.record_job(ServerJob(key=key, model=model.name, job_id=str(job.job_id), submitted_at=utc_timestamp()))
    return str(job.job_id)


def sbatch_parameters(config: SlurmServerConfig, job_name: str) -> dict[str, Any]:
    """submitit SlurmExecutor parameters for the server job (unset options are left to Slurm)."""
    parameters: dict[str, Any] = {
        "job_name": job_name,
        "time": config.timeout_min,
        "setup": list(config.setup),
        "stderr_to_stdout": True,
        "additional_parameters": dict(config.additional_parameters),
    }
    optional = {
        "partition": config.partition,
        "gres": config.gres,
        "cpus_per_task": config.cpus_per_task,
        "mem": f"{config.mem_gb}G" if config.mem_gb else None,
        "account": config.account,
        "qos": config.qos,
    }
    return parameters | {name: value for name, value in optional.items() if value is not None}


def wait_for_address(role: str, model: ModelConfig, registry: Registry, key: str, job_id: str) -> Endpoint:
    """Wait until the server job publishes a ready address, check it, and return the Endpoint.

    Fails when the job ends first (with its log's last lines) or after `start_timeout_s`."""
    timeout_s = model.server.slurm.start_timeout_s
    state = "unknown"

    def published() -> Endpoint | None:
        nonlocal job_id, state
        entry = registry.read(key)
        if entry is not None and entry.job.job_id != job_id:
            job_id = entry.job.job_id  # replaced meanwhile by another job of the sweep: follow it
        if entry is not None and entry.ready:
            assert entry.address is not None
            return Endpoint(entry.address.base_url, model.name, model.provider, registry.api_key(key))
        state = slurm_client.job_state(job_id) or ""
        if not state:
            raise ServerError(
                f"shared server job {job_id} for {model.name} ended before its server was ready"
                f"{log_tail(server_log(registry, key, job_id))}"
            )
        return None

    endpoint = poll(published, timeout_s, POLL_INTERVAL_S)
    if endpoint is None:
        raise ServerError(
            f"shared server job {job_id} for {model.name} was not ready within {timeout_s:g} s (Slurm state "
            f"{state}): check `squeue -j {job_id}` and its log {server_log(registry, key, job_id)}, or raise "
            f"{_config_prefix(role)}.server.slurm.start_timeout_s"
        )
    wait_until_ready(endpoint, model.server.ready_timeout_s)
    log.info("shared %s server ready at %s (Slurm job %s)", role, endpoint.base_url, job_id)
    return endpoint


def _config_prefix(role: str) -> str:
    return "model" if role == "assistant" else "user"


def serve(key: str, registry_root: str, model: ModelConfig) -> None:
    """The shared server job: start the server, publish it, keep it up until Slurm stops the job.

    Runs inside the Slurm job (submitted by `submit`). Ends on SIGTERM (scancel, time limit) or
    when the server stops answering; either way its address is withdrawn from the registry."""
    from tau_exp.servers import provide

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    registry = Registry(Path(registry_root))
    job_id = slurm_client.current_job_id()
    server = model.server
    local = dataclasses.replace(
        model,
        server=dataclasses.replace(
            server,
            kind=server.slurm.serves,
            vllm=dataclasses.replace(server.vllm, host=server.vllm.host or "0.0.0.0"),  # reachable from other nodes
        ),
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # submitit ignores SIGTERM; a server job must not
        signal.signal(signum, lambda *_: stop.set())
    with provide("shared", local, registry.entry_dir(key) / "logs") as endpoint:
        address = ServerAddress(
            base_url=announced_url(endpoint.base_url, local), job_id=job_id, ready_at=utc_timestamp()
        )
        registry.record_address(key, address, endpoint.api_key)
        log.info("serving %s at %s for every job that needs it", model.name, address.base_url)
        try:
            keep_serving(endpoint, stop)
        finally:
            registry.withdraw_address(key, job_id)
    log.info("shared server for %s stopped", model.name)


def announced_url(base_url: str, model: ModelConfig) -> str:
    """A server bound to every interface is announced by this node's name, not loopback."""
    if model.server.slurm.serves == ServerKind.vllm and model.server.vllm.host == "0.0.0.0":
        return str(httpx.URL(base_url).copy_with(host=socket.getfqdn()))
    return base_url


def keep_serving(endpoint: Endpoint, stop: threading.Event) -> None:
    failures = 0
    while not stop.wait(HEALTH_INTERVAL_S):
        try:
            served_models(endpoint)
            failures = 0
        except (httpx.HTTPError, NotReady, ServerError) as error:
            failures += 1
            log.warning("health check %d/%d failed: %s", failures, HEALTH_FAILURES, error)
            if failures >= HEALTH_FAILURES:
                raise ServerError(f"the shared server at {endpoint.base_url} stopped answering") from None
