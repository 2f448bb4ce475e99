"""Talking to a running oracle server directly: one chat completion, as an episode's model call
would send it; what it answered; new faults for it."""

from __future__ import annotations

from typing import Any

import httpx

from tau_exp.config import FaultConfig, OracleConfig
from tau_exp.endpoint import Endpoint
from tau_exp.llm.tags import EpisodeTag
from tau_exp.servers.oracle import settings_to_json


def chat(endpoint: Endpoint, task_id: str, messages: list[dict], timeout_s: float = 30) -> httpx.Response:
    tag = EpisodeTag("retail", task_id, 0, "assistant")
    return httpx.post(
        f"{endpoint.base_url}/chat/completions",
        json={"model": endpoint.model, "messages": messages},
        headers={**tag.headers(), "Authorization": f"Bearer {endpoint.api_key}"},
        timeout=timeout_s,
    )


def stats(endpoint: Endpoint) -> dict[str, int]:
    """What the oracle server answered since it started or its settings last changed."""
    return httpx.get(endpoint.base_url.removesuffix("/v1") + "/oracle/stats").json()


def set_settings(endpoint: Endpoint, settings: OracleConfig) -> None:
    """PUT /oracle/settings: the server's latency and faults from now on (its draws and counts
    start again)."""
    answer = httpx.put(
        endpoint.base_url.removesuffix("/v1") + "/oracle/settings",
        content=settings_to_json(settings),
        headers={"Authorization": f"Bearer {endpoint.api_key}"},
    )
    answer.raise_for_status()


class OracleFaults:
    """`faults(assistant={...}, user={...})` gives an oracle pair these fault rates (and
    `latency_s`) and returns the pair; `clear()` takes every fault away again."""

    def __init__(self, servers: dict[str, Endpoint]) -> None:
        self.servers = servers

    def __call__(
        self, assistant: dict[str, Any] | None = None, user: dict[str, Any] | None = None
    ) -> dict[str, Endpoint]:
        for role, settings in (("assistant", assistant), ("user", user)):
            latency_s = (settings or {}).get("latency_s", 0.0)
            faults = {key: value for key, value in (settings or {}).items() if key != "latency_s"}
            set_settings(self.servers[role], OracleConfig(latency_s=latency_s, faults=FaultConfig(**faults)))
        return self.servers

    def clear(self) -> None:
        self()
