"""The `oracle` server kind: start the built-in oracle model server (`tau_exp.oracle`) as a child
process on 127.0.0.1, like any other model server, and stop it when the job ends.

This module is also the server's command-line contract: its key arrives in `API_KEY_ENV`, its
settings (`server.oracle` of the model's config: latency, faults) as `--settings` JSON."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tau_exp.config import FAULT_RATES, ModelConfig, OracleConfig, check_durations
from tau_exp.endpoint import Endpoint
from tau_exp.errors import ConfigError, ServerError
from tau_exp.servers.health import log_tail, poll, wait_until_ready
from tau_exp.servers.process import start_process, stop_process

log = logging.getLogger(__name__)

# The server's API key arrives in this environment variable (never on the command line).
API_KEY_ENV = "TAU_EXP_ORACLE_API_KEY"


def check(key: str, model: ModelConfig) -> None:
    """The oracle kind's settings (`key`: model or user): its timings, capacity and fault rates."""
    oracle = model.server.oracle
    prefix = f"{key}.server.oracle"
    check_durations(
        (f"{prefix}.latency_s", oracle.latency_s, False),
        (f"{prefix}.service_s", oracle.service_s, False),
        (f"{prefix}.service_s_per_token", oracle.service_s_per_token, False),
        (f"{prefix}.faults.hang_s", oracle.faults.hang_s, False),
    )
    if oracle.capacity is not None and oracle.capacity < 1:
        raise ConfigError(f"{prefix}.capacity={oracle.capacity} must be at least 1, or null (no limit)")
    for name in FAULT_RATES:
        value = getattr(oracle.faults, name)
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{prefix}.faults.{name}={value} must be between 0 and 1")


def settings_to_json(settings: OracleConfig) -> str:
    """`server.oracle` of a model's config (latency, faults) as the server's `--settings`."""
    return json.dumps(dataclasses.asdict(settings))


def settings_from_json(text: str) -> OracleConfig:
    """`--settings` read back through the config schema (unknown keys and wrong types refused)."""
    from omegaconf import OmegaConf

    merged = OmegaConf.merge(OmegaConf.structured(OracleConfig), json.loads(text))
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def oracle_command(model: ModelConfig, port_file: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tau_exp.oracle",
        "--host",
        "127.0.0.1",
        "--port-file",
        str(port_file),
        "--model",
        model.name,
        "--settings",
        settings_to_json(model.server.oracle),
    ]


@contextmanager
def provide(role: str, model: ModelConfig, servers_dir: Path) -> Iterator[Endpoint]:
    """Start an oracle server for `role` (assistant or user); yield its Endpoint; stop it."""
    servers_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = servers_dir / f"{role}_oracle_{stamp}.log"
    port_file = servers_dir / f".{role}_oracle_{stamp}.port"
    api_key = secrets.token_urlsafe(24)
    command = oracle_command(model, port_file)
    log.info("starting %s oracle server: %s (log %s)", role, " ".join(command), log_path)
    # The oracle imports what the job imports (e.g. a tau-bench checkout named by bench.path).
    python_path = os.pathsep.join(entry for entry in (os.environ.get("PYTHONPATH", ""), *sys.path) if entry)
    process = start_process(command, log_path, env={API_KEY_ENV: api_key, "PYTHONPATH": python_path})
    try:
        port = _wait_for_port(port_file, process, model.server.ready_timeout_s, log_path)
        endpoint = Endpoint(f"http://127.0.0.1:{port}/v1", model.name, model.provider, api_key)
        wait_until_ready(endpoint, model.server.ready_timeout_s, process, log_path)
        log.info("%s oracle server ready at %s", role, endpoint.base_url)
        yield endpoint
    finally:
        stop_process(process)
        port_file.unlink(missing_ok=True)


def _wait_for_port(port_file: Path, process: subprocess.Popen, timeout_s: float, log_path: Path) -> int:
    """The server binds port 0 and writes the port it got (no race for a 'free' port)."""

    def port() -> int | None:
        if process.poll() is not None:
            raise ServerError(f"oracle server exited with status {process.returncode} at start{log_tail(log_path)}")
        return int(port_file.read_text()) if port_file.exists() else None

    found = poll(port, timeout_s, interval_s=0.05)
    if found is None:
        raise ServerError(f"oracle server did not bind a port within {timeout_s:g} s; log {log_path}")
    return found
