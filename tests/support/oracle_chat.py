"""One chat completion sent straight to an oracle server, as an episode's model call would be."""

from __future__ import annotations

import httpx

from tau_exp.endpoint import Endpoint
from tau_exp.llm.tags import EpisodeTag


def chat(endpoint: Endpoint, task_id: str, messages: list[dict], timeout_s: float = 30) -> httpx.Response:
    tag = EpisodeTag("retail", task_id, 0, "assistant")
    return httpx.post(
        f"{endpoint.base_url}/chat/completions",
        json={"model": endpoint.model, "messages": messages},
        headers={**tag.headers(), "Authorization": f"Bearer {endpoint.api_key}"},
        timeout=timeout_s,
    )
