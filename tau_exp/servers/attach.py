"""The `attach` server kind: a model already served somewhere (e.g. by hand, or another job)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tau_exp.config import ModelConfig
from tau_exp.endpoint import Endpoint
from tau_exp.errors import ConfigError
from tau_exp.servers.health import wait_until_ready


def check(key: str, model: ModelConfig) -> None:
    """The attach kind's settings (`key`: model or user): a URL to attach to."""
    base_url = model.server.base_url
    if not base_url:
        hint = " (or export USER_MODEL_API_BASE)" if key == "user" else ""
        raise ConfigError(
            f"{key}.server.base_url is not set: an attach server needs the URL of a running "
            f"OpenAI-compatible server, e.g. {key}.server.base_url=http://gaudi001:8007/v1{hint}"
        )
    if not _is_http_url(base_url):
        raise ConfigError(f"{key}.server.base_url={base_url!r} is not an http(s) URL like http://gaudi001:8007/v1")


def _is_http_url(url: str) -> bool:
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.host)


@contextmanager
def provide(role: str, model: ModelConfig, servers_dir: Path) -> Iterator[Endpoint]:
    """Check that the server at `model.server.base_url` serves `model.name`, then use it."""
    server = model.server
    assert server.base_url is not None  # checked by `check`
    endpoint = Endpoint(
        base_url=server.base_url.rstrip("/"),
        model=model.name,
        provider=model.provider,
        api_key=os.environ.get(server.api_key_env) if server.api_key_env else None,
    )
    wait_until_ready(endpoint, server.ready_timeout_s)
    yield endpoint  # not ours: nothing to stop
