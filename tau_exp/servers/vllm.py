"""The `vllm` server kind: start vLLM's OpenAI-compatible server as a child process of this job,
on this node, for as long as the job runs.

The command line comes from the config (model, served name, tensor parallelism, context
length, dtype, tool-call and reasoning parsers, extra arguments), the environment from a device
profile (`gaudi`, `cuda`, `cpu`), the interpreter from `server.vllm.python` (on a cluster vLLM
usually lives in an environment of its own). The server binds a free port, requires a key
generated for this job (passed in the environment, never on the command line), logs to
`<job dir>/servers/<role>_vllm_<job id>.log`, and is stopped with its whole process group when
the job ends, fails or is interrupted.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tau_exp import slurm_client
from tau_exp.config import Device, ModelConfig
from tau_exp.endpoint import Endpoint
from tau_exp.errors import ConfigError, ServerError
from tau_exp.servers.health import wait_until_ready
from tau_exp.servers.process import start_process, stop_process

log = logging.getLogger(__name__)

API_KEY_ENV = "VLLM_API_KEY"  # vLLM reads its --api-key from here too
PORT_ATTEMPTS = 3


def check(key: str, model: ModelConfig) -> None:
    """The vllm kind's settings (`key`: model or user), and an interpreter to start it with here."""
    check_settings(key, model, started_by="vllm")
    python = model.server.vllm.python
    if shutil.which(python) is None:
        raise ConfigError(
            f"{key}.server.vllm.python={python} is not an executable here: point it at the interpreter "
            "of the environment that has vLLM (on this machine, bash scripts/setup_vllm_cpu.sh makes "
            ".venv-vllm/bin/python)"
        )


def check_settings(key: str, model: ModelConfig, started_by: str) -> None:
    """What vLLM is started with, wherever it starts (here, or in a shared server job of the
    `started_by`=slurm kind, whose node has its own interpreter)."""
    server = model.server
    if server.vllm.tensor_parallel_size < 1:
        raise ConfigError(
            f"{key}.server.vllm.tensor_parallel_size={server.vllm.tensor_parallel_size} must be at least 1"
        )
    if server.api_key_env:
        raise ConfigError(
            f"{key}.server.api_key_env is for attach servers: a {started_by} server gets a key generated for it"
        )


def vllm_command(model: ModelConfig, host: str, port: int) -> list[str]:
    """The server's command line (no secrets in it)."""
    vllm = model.server.vllm
    command = [
        vllm.python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        vllm.model or model.name,
        "--served-model-name",
        model.name,
        "--host",
        host,
        "--port",
        str(port),
        "--tensor-parallel-size",
        str(vllm.tensor_parallel_size),
        "--dtype",
        "float32" if vllm.device == Device.cpu and vllm.dtype == "auto" else vllm.dtype,
    ]
    if vllm.max_model_len is not None:
        command += ["--max-model-len", str(vllm.max_model_len)]
    if vllm.tool_call_parser:
        command += ["--enable-auto-tool-choice", "--tool-call-parser", vllm.tool_call_parser]
    if vllm.reasoning_parser:
        command += ["--reasoning-parser", vllm.reasoning_parser]
    if vllm.device == Device.cpu:
        command += ["--enforce-eager"]  # no graph capture on CPU
    return command + list(vllm.extra_args)


def device_environment(model: ModelConfig, scratch: Path) -> dict[str, str]:
    """Environment variables for the device profile; `server.vllm.env` entries win."""
    vllm = model.server.vllm
    env = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    if vllm.device == Device.gaudi:
        env["PT_HPU_LAZY_MODE"] = "1"
        if vllm.tensor_parallel_size > 1:
            env["PT_HPU_ENABLE_LAZY_COLLECTIVES"] = "true"
        if vllm.recipe_cache_dir:
            # Compiled graphs cached on local disk: a warm restart skips most of the warm-up.
            env["PT_HPU_RECIPE_CACHE_CONFIG"] = f"{vllm.recipe_cache_dir},False,{vllm.recipe_cache_mb}"
    elif vllm.device == Device.cpu:
        env["VLLM_CPU_KVCACHE_SPACE"] = str(vllm.cpu_kv_cache_gb)
        env["VLLM_TARGET_DEVICE"] = "cpu"
        # vLLM leaves sockets and caches in TMPDIR and its cache root: keep them in a scratch dir.
        env["TMPDIR"] = str(scratch)
        env["VLLM_CACHE_ROOT"] = str(scratch / "cache")
    return {**env, **{key: str(value) for key, value in vllm.env.items()}}


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def job_id() -> str:
    return slurm_client.current_job_id() or time.strftime("%Y%m%d-%H%M%S")


@contextmanager
def provide(role: str, model: ModelConfig, servers_dir: Path) -> Iterator[Endpoint]:
    """Start vLLM for `role`, wait until it serves `model.name`, yield its Endpoint, stop it."""
    vllm = model.server.vllm
    servers_dir.mkdir(parents=True, exist_ok=True)
    log_path = servers_dir / f"{role}_vllm_{job_id()}.log"
    # vLLM's IPC sockets live in TMPDIR and their paths must stay under 107 characters, so the
    # scratch directory is a short one in the system's temp dir, removed when the server stops.
    scratch = Path(tempfile.mkdtemp(prefix="tau_exp_vllm_"))
    api_key = secrets.token_urlsafe(24)
    env = {**device_environment(model, scratch), API_KEY_ENV: api_key}
    host = vllm.host or "127.0.0.1"
    address = "127.0.0.1" if host == "0.0.0.0" else host  # this job's own clients use loopback
    try:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            # The port is free when chosen, but another process may take it before vLLM binds it.
            port = free_port(host)
            command = vllm_command(model, host, port)
            log.info("starting %s vLLM server: %s (log %s)", role, " ".join(command), log_path)
            with open(log_path, "a") as log_file:
                log_file.write(f"$ {' '.join(command)}\n")
                log_start = log_file.tell()
            process = start_process(command, log_path, env=env)
            endpoint = Endpoint(f"http://{address}:{port}/v1", model.name, model.provider, api_key)
            try:
                wait_until_ready(endpoint, model.server.ready_timeout_s, process, log_path)
                break
            except ServerError:
                stop_process(process)
                if attempt < PORT_ATTEMPTS and _port_was_taken(log_path, log_start):
                    log.warning("port %d was taken before the %s vLLM server bound it; trying another", port, role)
                    continue
                raise
        log.info("%s vLLM server ready at %s", role, endpoint.base_url)
        try:
            yield endpoint
        finally:
            stop_process(process)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _port_was_taken(log_path: Path, offset: int) -> bool:
    with open(log_path, errors="replace") as log_file:
        log_file.seek(offset)
        return "address already in use" in log_file.read().lower()
