"""servers/server_job.py's IdleWatch, the shared server job's test of whether it is still needed,
against a real oracle server and a real registry directory (no Slurm: the jobs registered here
run outside it, checked by pid). The whole server job stopping itself on the local Slurm
cluster is in tests/servers/test_shared_servers.py."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tau_exp.endpoint import Endpoint
from tau_exp.servers.registry import Registry, ServerAddress, ServerJob, ServerUser
from tau_exp.servers.server_job import IdleWatch
from tests.support.oracle_chat import chat

KEY = "oracle-0123456789"
TIMEOUT_MIN = 0.01  # 0.6 s


@pytest.fixture
def entry(tmp_path: Path, oracle_servers: dict[str, Endpoint]) -> tuple[Registry, IdleWatch]:
    """A registry entry whose server job (id 7, never submitted) serves the session's user oracle."""
    registry = Registry(tmp_path / "registry")
    endpoint = oracle_servers["user"]
    registry.record_job(ServerJob(key=KEY, model="oracle", job_id="7", submitted_at="2026-12-02T10:00:00"))
    registry.record_address(KEY, ServerAddress(base_url=endpoint.base_url, job_id="7", ready_at="now"), None)
    return registry, IdleWatch(registry, KEY, "7", endpoint, TIMEOUT_MIN)


def register(registry: Registry, pid: int) -> Path:
    user = ServerUser(host=socket.gethostname(), pid=pid, slurm_job_id=None, registered_at="2026-12-02T10:00:00")
    return registry.register_user(KEY, user)


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def checks_for(watch: IdleWatch, seconds: float) -> list[bool]:
    """should_stop every 0.1 s for `seconds`, or until it says stop."""
    answers: list[bool] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not any(answers):
        answers.append(watch.should_stop())
        time.sleep(0.1)
    return answers


def test_a_live_registered_job_keeps_the_server_past_its_idle_timeout(entry):
    registry, watch = entry
    register(registry, os.getpid())
    assert not any(checks_for(watch, 4 * TIMEOUT_MIN * 60))
    assert registry.read(KEY).ready and not registry.read(KEY).ended


def test_a_dead_registered_job_is_noticed_and_the_idle_server_ends_its_entry(entry):
    registry, watch = entry
    registration = register(registry, dead_pid())
    answers = checks_for(watch, 10)
    assert answers[-1] is True  # stopped: the only registered job is dead, and nothing came
    assert not registration.exists()  # unregistered on its behalf
    after = registry.read(KEY)
    assert after.ended and not after.ready and after.address is None  # the next job submits a new one
    assert "idle for 0.01 minutes" in after.end.reason


def test_a_request_counts_as_use_with_no_job_registered(entry):
    registry, watch = entry
    watch.should_stop()  # the counters' first reading
    watch.last_active -= 3600  # as if idle for an hour
    reply = chat(watch.endpoint, "0", [{"role": "user", "content": "Hi, I want to return an order."}])
    assert reply.status_code == 200
    assert watch.should_stop() is False  # the server's token counters moved since the last check
    assert not registry.read(KEY).ended
    assert checks_for(watch, 10)[-1] is True  # then nothing more came: it ends
