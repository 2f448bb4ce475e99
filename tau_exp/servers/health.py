"""Readiness checks: does an endpoint answer `GET /v1/models` like an OpenAI-compatible server?
And `poll`, the one wait with a deadline that server kinds use."""

from __future__ import annotations

import subprocess
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import tenacity

from tau_exp.endpoint import Endpoint
from tau_exp.errors import ServerError

POLL_INTERVAL_S = 0.25
T = TypeVar("T")


class NotReady(Exception):
    """The server answered, but not yet as a ready server would."""


def served_models(endpoint: Endpoint, timeout_s: float = 5.0) -> list[str]:
    """The model names the server lists; raises httpx errors or ServerError for a non-OpenAI answer."""
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    response = httpx.get(f"{endpoint.base_url.rstrip('/')}/models", headers=headers, timeout=timeout_s)
    if response.status_code >= 500:  # e.g. a proxy in front of a server that is still starting
        raise NotReady(f"HTTP {response.status_code}")
    if response.status_code in (401, 403):
        raise ServerError(
            f"server at {endpoint.base_url} refused the API key (HTTP {response.status_code}): "
            "check the server's --api-key and the config's api_key_env"
        )
    try:
        response.raise_for_status()
        return [entry["id"] for entry in response.json()["data"]]
    except (httpx.HTTPStatusError, ValueError, KeyError, TypeError):
        raise ServerError(
            f"server at {endpoint.base_url} is not an OpenAI-compatible API: GET /models answered "
            f"HTTP {response.status_code} {response.text[:120]!r}; the base URL should end with /v1"
        ) from None


def poll(check: Callable[[], T | None], timeout_s: float, interval_s: float = POLL_INTERVAL_S) -> T | None:
    """Call `check` every `interval_s` until it returns something other than None (returned),
    or until `timeout_s` has passed (None). An exception from `check` ends the wait at once."""
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout_s),
        wait=tenacity.wait_fixed(interval_s),
        retry=tenacity.retry_if_result(lambda result: result is None),
        retry_error_callback=lambda _: None,
    )
    return retrying(check)


def wait_until_ready(
    endpoint: Endpoint,
    timeout_s: float,
    process: subprocess.Popen | None = None,
    log_path: Path | None = None,
) -> None:
    """Poll /v1/models until it lists `endpoint.model`; fail fast if `process` dies.

    Raises ServerError naming the URL, the wait and the last lines of the server log."""
    last_problem = "no answer yet"

    def ready() -> bool | None:
        nonlocal last_problem
        if process is not None and process.poll() is not None:
            raise ServerError(
                f"server for {endpoint.model} exited with status {process.returncode} before it "
                f"was ready at {endpoint.base_url}{log_tail(log_path)}"
            )
        try:
            models = served_models(endpoint)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as error:
            raise ServerError(f"cannot reach {endpoint.base_url!r}: {error}; fix the URL") from None
        except (httpx.HTTPError, NotReady) as error:
            last_problem = f"{type(error).__name__}: {error}"
            return None
        if endpoint.model not in models:
            raise ServerError(
                f"server at {endpoint.base_url} does not serve model {endpoint.model!r}; it serves "
                f"{models}: fix the model's name (model.name / user.name)"
            )
        return True

    if poll(ready, timeout_s) is None:
        raise ServerError(
            f"server at {endpoint.base_url} did not answer /v1/models within {timeout_s:g} s "
            f"({last_problem}): is it running and reachable from this node? If it is still "
            f"starting, raise model.server.ready_timeout_s / user.server.ready_timeout_s{log_tail(log_path)}"
        )


def log_tail(log_path: Path | None, lines: int = 15) -> str:
    """'; log PATH, last lines: …' for an error message ('' without a log)."""
    if log_path is None or not log_path.exists():
        return ""
    with open(log_path, errors="replace") as log:
        tail = "".join(deque(log, maxlen=lines)).rstrip()
    return f"; log {log_path}, last lines:\n{tail}" if tail else f"; log {log_path} is empty"
