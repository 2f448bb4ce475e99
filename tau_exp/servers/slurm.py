"""The `slurm` server kind: one shared server job per distinct model, for a whole sweep and the
sweeps after it (the old workflow's hand-submitted `user-vllm-job.sh`, automated).

A job that needs the model looks it up in the registry (`servers/registry.py`) under the
entry's lock. A live entry is reused; an entry whose Slurm job is gone is replaced; with no
entry, this job submits the server job (through submitit) and records it. Then it waits for
the server job to publish its address and key, checks its health, and uses it. Nothing is
stopped when the job ends: the server outlives it, until `python -m tau_exp.servers stop`, its
time limit, or `server.slurm.idle_timeout_min` with no request and no live job registered
against it (each job registers itself in the entry while it uses the server).

The server job itself runs `server_job.serve` (the server job's side: start, publish, keep
serving, the idle watch): this module is the side of the jobs that use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shlex
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tau_exp import slurm_client
from tau_exp.config import ModelConfig, ServerKind, SlurmServerConfig, check_durations
from tau_exp.endpoint import Endpoint
from tau_exp.errors import ConfigError, ServerError, SlurmError
from tau_exp.records import utc_timestamp
from tau_exp.runtime import CONSOLE_LOGGER
from tau_exp.servers import oracle, server_job, vllm
from tau_exp.servers.health import log_tail, poll, wait_until_ready
from tau_exp.servers.registry import Registry, ServerJob, ServerUser

log = logging.getLogger(__name__)
console = logging.getLogger(CONSOLE_LOGGER)  # on the console however quiet it is, and in the job's log

POLL_INTERVAL_S = 1.0


def check(key: str, model: ModelConfig) -> None:
    """The slurm kind's settings (`key`: model or user), and those of the kind its job serves
    (its interpreter is checked on its node, by the server job)."""
    server = model.server
    slurm = server.slurm
    check_durations((f"{key}.server.slurm.start_timeout_s", slurm.start_timeout_s, True))
    if slurm.serves not in (ServerKind.vllm, ServerKind.oracle):
        raise ConfigError(
            f"{key}.server.slurm.serves={slurm.serves.value} cannot be shared: a shared server job serves vllm or oracle"
        )
    if slurm.timeout_min < 1:
        raise ConfigError(f"{key}.server.slurm.timeout_min={slurm.timeout_min} must be at least 1")
    if slurm.idle_timeout_min is not None and not slurm.idle_timeout_min > 0:
        raise ConfigError(
            f"{key}.server.slurm.idle_timeout_min={slurm.idle_timeout_min} must be more than 0, or null (the "
            "server job runs until its time limit or `python -m tau_exp.servers stop`)"
        )
    if slurm.serves == ServerKind.vllm:
        vllm.check_settings(key, model, started_by="slurm")
    else:
        if server.api_key_env:
            raise ConfigError(
                f"{key}.server.api_key_env is for attach servers: a slurm server gets a key generated for it"
            )
        oracle.check(key, model)


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
def provide(role: str, model: ModelConfig, servers_dir: Path) -> Iterator[Endpoint]:
    """Find, reuse or submit the shared server job for `model`; yield its Endpoint once it is ready.

    The job is registered against the server from then until it ends, so the server job does
    not stop itself for idleness while the job waits for it or uses it."""
    registry = registry_of(model)
    key = entry_key(model)
    with registry.locked(key):
        entry = registry.read(key)
        state = slurm_client.job_state(entry.job.job_id) if entry is not None and not entry.ended else None
        if entry is not None and state is None:
            log.warning(
                "registry entry %s names Slurm job %s, which %s; submitting a new server job",
                key,
                entry.job.job_id,
                f"ended itself ({entry.end.reason})" if entry.end and entry.ended else "is gone",
            )
        if state is None:
            job_id = submit(role, model, registry, key)
            # On the console however quiet it is: a Slurm job that outlives this one, until stopped.
            console.info(
                "submitted shared %s server job %s for %s (log %s); it serves later jobs too until %s: %s",
                role,
                job_id,
                model.name,
                server_log(registry, key, job_id),
                _until(model.server.slurm),
                shlex.join(["python", "-m", "tau_exp.servers", "stop", key, "--registry", str(registry.root)]),
            )
        else:
            job_id = entry.job.job_id  # type: ignore[union-attr]
            log.info("using shared %s server job %s for %s (%s)", role, job_id, model.name, state.lower())
        registration = registry.register_user(
            key,
            ServerUser(
                host=socket.gethostname(),
                pid=os.getpid(),
                slurm_job_id=slurm_client.current_job_id() or None,
                registered_at=utc_timestamp(),
            ),
        )
    try:
        yield wait_for_address(role, model, registry, key, job_id)
    finally:
        # Not ours to stop: later jobs and sweeps use the same server. It may stop itself once
        # no job is registered and no request came for its idle timeout.
        registration.unlink(missing_ok=True)


def _until(config: SlurmServerConfig) -> str:
    if config.idle_timeout_min is None:
        return "its time limit or"
    return f"{config.idle_timeout_min:g} minutes pass with no job using it, its time limit, or"


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
            job = executor.submit(server_job.serve, key, str(registry.root), model)
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
            return Endpoint(
                entry.address.base_url, model.name, model.provider, registry.api_key(key), slurm_job_id=job_id
            )
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
