"""What the oracle servers with faults injected while a job ran, so that a fault rate's outcome is
in the job's own outputs (metrics.json `injected_faults`, its closing lines, W&B), not only in
the last line of a server's log.

`FaultMeter` asks each server of the job that may be an oracle (the `oracle` kind, a shared
server job serving the oracle, and an attached server, which may be one) for its settings
(`GET /oracle/settings`); an oracle with a nonzero fault rate has its counts (`GET
/oracle/stats`) read when the invocation starts and when it ends, before the servers stop, and
the difference is appended to `servers/injected_faults.jsonl`. A server that does not answer
/oracle/settings is no oracle and is left alone. `summarize` adds a job's lines up over its
invocations, as metrics.json's other per-invocation records are.

An oracle's counts are the server's: for a server the job did not start (attach, slurm) they
include whatever other clients sent it over the same time (`FaultCounts.shared`). A server whose
settings change while the job runs starts its counts again: those since the change are kept.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from tau_exp.config import FAULT_RATES, ModelConfig, ServerKind
from tau_exp.endpoint import Endpoint
from tau_exp.records import FAULT_SHARES, FaultCounts

log = logging.getLogger(__name__)


TIMEOUT_S = 5.0  # a local or cluster oracle answers in milliseconds; this is for one that hangs


class FaultReading(BaseModel):
    """One line of `servers/injected_faults.jsonl`: one oracle server over one invocation of a job."""

    roles: list[str]  # the job's roles it served (both, when one server serves both)
    counts: FaultCounts


def may_be_oracle(model: ModelConfig) -> bool:
    """Whether the server of `model` may be an oracle: the kinds that start one, and attached
    servers (what they are, only they can say); a vLLM server never is."""
    server = model.server
    return server.kind in (ServerKind.oracle, ServerKind.attach) or (
        server.kind == ServerKind.slurm and server.slurm.serves == ServerKind.oracle
    )


def counts_of(stats: dict[str, int], rates: dict[str, float], shared: bool) -> FaultCounts:
    """An oracle's `/oracle/stats` (or a difference of two) as FaultCounts."""
    return FaultCounts(
        rates=rates,
        shared=shared,
        **{share: stats.get(share, 0) for share in FAULT_SHARES.values()},  # requests, answered, ...
        **{kind: stats.get(f"fault_{kind}", 0) for kind in FAULT_SHARES},
    )


def difference(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """What an oracle counted between two readings of its stats; the later reading alone when its
    counts went back (its settings changed in between, and it counted again from then)."""
    if any(after.get(key, 0) < value for key, value in before.items()):
        log.warning("an oracle's counts started again while the job ran (its settings changed): counted since then")
        return dict(after)
    return {key: value - before.get(key, 0) for key, value in after.items()}


@dataclass(frozen=True)
class _Watched:
    """An oracle with faults, and its counts when the invocation started."""

    roles: list[str]
    endpoint: Endpoint
    rates: dict[str, float]
    shared: bool
    before: dict[str, int]


class FaultMeter:
    """Count what the job's oracles with faults inject over one invocation, and append it to
    `path` on exit (a context manager, entered once the servers are ready and left before they
    stop). `servers` maps role → (its Endpoint, its model's config)."""

    def __init__(self, path: Path, servers: dict[str, tuple[Endpoint, ModelConfig]]) -> None:
        self.path = path
        self.servers = servers
        self.watched: list[_Watched] = []

    def __enter__(self) -> FaultMeter:
        roles_of: dict[str, list[str]] = {}  # one server may serve both roles: read it once
        for role, (endpoint, model) in self.servers.items():
            if may_be_oracle(model):
                roles_of.setdefault(endpoint.base_url, []).append(role)
        for roles in roles_of.values():
            endpoint, model = self.servers[roles[0]]
            rates = _fault_rates(endpoint)
            before = _stats(endpoint) if rates else None
            if rates and before is not None:
                shared = model.server.kind != ServerKind.oracle  # the oracle kind is this job's own server
                self.watched.append(_Watched(roles=roles, endpoint=endpoint, rates=rates, shared=shared, before=before))
                log.info("%s oracle at %s injects faults %s: counting them", "+".join(roles), endpoint.base_url, rates)
        return self

    def __exit__(self, *exc: object) -> None:
        readings = []
        for watched in self.watched:
            after = _stats(watched.endpoint)
            if after is None:  # gone (killed with the job's servers?): nothing to say for this invocation
                log.warning("could not read what the oracle at %s injected", watched.endpoint.base_url)
                continue
            counts = counts_of(difference(watched.before, after), watched.rates, watched.shared)
            readings.append(FaultReading(roles=watched.roles, counts=counts))
        if readings:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a") as file:  # one write: a line is whole or torn, never mixed
                    file.write("".join(reading.model_dump_json() + "\n" for reading in readings))
            except OSError as error:  # e.g. a full disk: must not hide what stopped the run
                log.error("could not write %s (%s)", self.path, error.strerror)


def summarize(rows: list[Any]) -> dict[str, FaultCounts] | None:
    """Per role ("assistant+user" for a server of both), the counts of a job's lines summed over
    its invocations; None when no server of the job had faults."""
    totals: dict[str, FaultCounts] = {}
    for row in rows:
        try:
            reading = FaultReading.model_validate(row)
        except ValidationError:  # a line of another shape: not counted
            continue
        key = "+".join(reading.roles)
        totals[key] = totals[key].plus(reading.counts) if key in totals else reading.counts
    return totals or None


def _root(endpoint: Endpoint) -> str:
    """The server's root, where the oracle's own routes sit beside `/v1`."""
    return endpoint.base_url.rstrip("/").removesuffix("/v1")


def _headers(endpoint: Endpoint) -> dict[str, str]:
    return {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}


def _fault_rates(endpoint: Endpoint) -> dict[str, float]:
    """The oracle's nonzero fault rates; {} for an oracle without faults and for a server that is
    no oracle (it does not answer `/oracle/settings` as one)."""
    try:
        response = httpx.get(f"{_root(endpoint)}/oracle/settings", headers=_headers(endpoint), timeout=TIMEOUT_S)
        faults = response.json()["faults"] if response.status_code == 200 else {}
        return {name: float(faults[name]) for name in FAULT_RATES if faults.get(name)}
    except (httpx.HTTPError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return {}


def _stats(endpoint: Endpoint) -> dict[str, int] | None:
    try:
        response = httpx.get(f"{_root(endpoint)}/oracle/stats", headers=_headers(endpoint), timeout=TIMEOUT_S)
        response.raise_for_status()
        return {str(key): int(value) for key, value in response.json().items()}
    except (httpx.HTTPError, json.JSONDecodeError, AttributeError, TypeError, ValueError):
        return None
