"""The oracle model servers the benchmark measures against, and how a job attaches to them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tau_exp.config import ModelConfig, OracleConfig, ServerConfig, ServerKind
from tau_exp.endpoint import Endpoint
from tau_exp.servers import provide_all

KEY_ENV = "TAU_EXP_BENCH_ORACLE_KEY"  # the oracle server's API key, passed to harnesses (never on a command line)


def _oracle_model(latency_s: float) -> ModelConfig:
    return ModelConfig(
        name="oracle",
        server=ServerConfig(kind=ServerKind.oracle, ready_timeout_s=120, oracle=OracleConfig(latency_s=latency_s)),
    )


@contextmanager
def oracle_servers(latencies_s: dict[str, float], servers_dir: Path) -> Iterator[dict[str, Endpoint]]:
    """Fresh oracle servers on 127.0.0.1, started at the same time: by name, one that waits
    `latencies_s[name]` before every reply (its log is servers_dir/<name>_oracle_<time>.log)."""
    models = [(name, _oracle_model(latency_s)) for name, latency_s in latencies_s.items()]
    with provide_all(models, servers_dir) as endpoints:
        yield endpoints


@contextmanager
def oracle_server(latency_s: float, servers_dir: Path) -> Iterator[Endpoint]:
    """A fresh oracle server on 127.0.0.1 that waits `latency_s` before every reply."""
    with oracle_servers({"assistant": latency_s}, servers_dir) as endpoints:
        yield endpoints["assistant"]


def attach_overrides(base_url: str) -> list[str]:
    """Config overrides that attach a job's assistant and user to the oracle at `base_url`."""
    return [
        f"{role}.server.{key}"
        for role in ("model", "user")
        for key in ("kind=attach", f"base_url={base_url}", f"api_key_env={KEY_ENV}")
    ]
