"""The `attach` server kind: a model already served somewhere (e.g. by hand, or another job)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from tau_exp.config import ModelConfig
from tau_exp.endpoint import Endpoint
from tau_exp.servers.health import wait_until_ready


@contextmanager
def attached(model: ModelConfig) -> Iterator[Endpoint]:
    """Check that the server at `model.server.base_url` serves `model.name`, then use it."""
    server = model.server
    assert server.base_url is not None  # checked by config.validate
    endpoint = Endpoint(
        base_url=server.base_url.rstrip("/"),
        model=model.name,
        provider=model.provider,
        api_key=os.environ.get(server.api_key_env) if server.api_key_env else None,
    )
    wait_until_ready(endpoint, server.ready_timeout_s)
    yield endpoint  # not ours: nothing to stop
