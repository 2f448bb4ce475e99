"""The shared server job's side of the `slurm` kind: what runs inside the Slurm job that
`slurm.submit` submitted. It starts the server with the `vllm` (or `oracle`) kind, publishes
its address and key in the registry, and keeps it up until Slurm tells it to stop, the server
stops answering, or no job has used it for `server.slurm.idle_timeout_min` (then it marks its
entry ended, so that the next job submits a new one).

It starts its server through the kind's own module, never through the dispatcher in
`servers/__init__.py`, which reaches this module through the `slurm` kind.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx

from tau_exp import slurm_client
from tau_exp.config import ModelConfig, ServerKind
from tau_exp.endpoint import Endpoint
from tau_exp.errors import ServerError, SlurmError
from tau_exp.records import utc_timestamp
from tau_exp.servers import oracle, vllm
from tau_exp.servers.health import NotReady, served_models
from tau_exp.servers.load import read_sample
from tau_exp.servers.registry import Registry, ServerAddress, ServerEnd, ServerUser

log = logging.getLogger(__name__)

HEALTH_INTERVAL_S = 30.0  # the server job's own check of its server
HEALTH_FAILURES = 3  # consecutive failed checks after which the server job gives up
SERVED_KINDS = {ServerKind.vllm: vllm, ServerKind.oracle: oracle}


def serve(key: str, registry_root: str, model: ModelConfig) -> None:
    """The shared server job: start the server, publish it, keep it up until Slurm stops the job.

    Runs inside the Slurm job (submitted by `submit`). Ends on SIGTERM (scancel, time limit) or
    when the server stops answering; either way its address is withdrawn from the registry."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    registry = Registry(Path(registry_root))
    job_id = slurm_client.current_job_id()
    server = model.server
    local = dataclasses.replace(
        model,
        server=dataclasses.replace(
            server,
            kind=server.slurm.serves,
            vllm=dataclasses.replace(server.vllm, host=server.vllm.host or "0.0.0.0"),  # reachable from other nodes
        ),
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # submitit ignores SIGTERM; a server job must not
        signal.signal(signum, lambda *_: stop.set())
    with SERVED_KINDS[server.slurm.serves].provide("shared", local, registry.entry_dir(key) / "logs") as endpoint:
        address = ServerAddress(
            base_url=announced_url(endpoint.base_url, local), job_id=job_id, ready_at=utc_timestamp()
        )
        registry.record_address(key, address, endpoint.api_key)
        log.info("serving %s at %s for every job that needs it", model.name, address.base_url)
        idle_timeout_min = server.slurm.idle_timeout_min
        watch = None if idle_timeout_min is None else IdleWatch(registry, key, job_id, endpoint, idle_timeout_min)
        try:
            keep_serving(endpoint, stop, watch)
        finally:
            registry.withdraw_address(key, job_id)
    log.info("shared server for %s stopped", model.name)


def announced_url(base_url: str, model: ModelConfig) -> str:
    """A server bound to every interface is announced by this node's name, not loopback."""
    if model.server.slurm.serves == ServerKind.vllm and model.server.vllm.host == "0.0.0.0":
        return str(httpx.URL(base_url).copy_with(host=socket.getfqdn()))
    return base_url


def keep_serving(endpoint: Endpoint, stop: threading.Event, watch: IdleWatch | None = None) -> None:
    """Check the server until Slurm stops the job, the server stops answering, or (with a
    `watch`) it has been idle for its timeout."""
    interval_s = HEALTH_INTERVAL_S if watch is None else min(HEALTH_INTERVAL_S, watch.timeout_s / 4)
    failures = 0
    while not stop.wait(interval_s):
        try:
            served_models(endpoint)
            failures = 0
        except (httpx.HTTPError, NotReady, ServerError) as error:
            failures += 1
            log.warning("health check %d/%d failed: %s", failures, HEALTH_FAILURES, error)
            if failures >= HEALTH_FAILURES:
                raise ServerError(f"the shared server at {endpoint.base_url} stopped answering") from None
        if watch is not None and watch.should_stop():
            return


class IdleWatch:
    """Whether a shared server job is still needed: a request since the last check (its
    /metrics counters moved, or requests are running or waiting) or a live job registered
    against it keeps it; `timeout_min` of neither ends it. A registered job that has died
    (its Slurm job gone, or its process gone on this host) is unregistered and counts for
    nothing; a job outside Slurm on another host cannot be checked and counts until it
    unregisters. Without /metrics only registered jobs count."""

    def __init__(self, registry: Registry, key: str, job_id: str, endpoint: Endpoint, timeout_min: float) -> None:
        self.registry, self.key, self.job_id, self.endpoint = registry, key, job_id, endpoint
        self.timeout_s = timeout_min * 60
        self.last_active = time.monotonic()
        self.last_counters: float | None = None

    def should_stop(self) -> bool:
        now = time.monotonic()
        if self._requests_since_last_check() or self._live_users():
            self.last_active = now
            return False
        if now - self.last_active < self.timeout_s:
            return False
        with self.registry.locked(self.key):  # no job registers while this decides
            if self._live_users():
                self.last_active = now
                return False
            reason = f"idle for {self.timeout_s / 60:g} minutes: no request and no live job using it"
            self.registry.record_end(self.key, ServerEnd(job_id=self.job_id, ended_at=utc_timestamp(), reason=reason))
        log.info("ending the shared server job: %s", reason)
        return True

    def _requests_since_last_check(self) -> bool:
        with httpx.Client(timeout=5.0) as client:  # one check every few minutes: no client kept open
            sample = read_sample(client, self.endpoint)
        if sample is None:
            return False
        moved = self.last_counters is not None and sample.tokens != self.last_counters
        self.last_counters = sample.tokens
        return moved or sample.running + sample.waiting > 0

    def _live_users(self) -> int:
        live = 0
        for path, user in self.registry.users(self.key).items():
            if _alive(user):
                live += 1
            else:
                log.warning("job %s (Slurm job %s) ended without unregistering", user.name, user.slurm_job_id)
                path.unlink(missing_ok=True)
        return live


def _alive(user: ServerUser) -> bool:
    if user.slurm_job_id is not None:
        try:
            return slurm_client.job_state(user.slurm_job_id) is not None
        except SlurmError:  # the controller did not answer: not a reason to stop
            return True
    if user.host != socket.gethostname():
        return True
    try:
        os.kill(user.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
