"""servers/: the oracle kind starts a real server process and leaves nothing behind; the
attach kind checks a running server; readiness failures name the URL and the cause; a job's
servers start at the same time, after the servers it attaches to are checked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tau_exp import servers
from tau_exp.config import ServerKind
from tau_exp.endpoint import Endpoint
from tau_exp.errors import ServerError
from tau_exp.servers import provide, provide_all
from tau_exp.servers.health import wait_until_ready
from tau_exp.servers.process import start_process, stop_process


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_oracle_kind_serves_the_openai_api_and_stops_cleanly(tmp_path, oracle_model, wait_until):
    model = oracle_model()
    with provide("assistant", model, tmp_path) as endpoint:
        assert endpoint.base_url.startswith("http://127.0.0.1:")  # loopback only
        assert httpx.get(endpoint.base_url.removesuffix("/v1") + "/health").status_code == 200
        listed = httpx.get(f"{endpoint.base_url}/models", headers={"Authorization": f"Bearer {endpoint.api_key}"})
        assert listed.json()["data"][0]["id"] == "oracle"
        assert httpx.get(f"{endpoint.base_url}/models").status_code == 401  # the key is required
        pids = [
            int(p)
            for p in subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
        ]
        assert pids
    wait_until(lambda: not any(_alive(pid) for pid in pids), 10, "the oracle's processes to end")
    assert any(p.name.startswith("assistant_oracle_") and p.suffix == ".log" for p in tmp_path.iterdir())


def test_attach_kind_checks_the_server_and_serves_its_endpoint(oracle_servers, oracle_model, monkeypatch):
    model = oracle_model()
    model.server.kind = ServerKind.attach
    model.server.base_url = oracle_servers["assistant"].base_url
    monkeypatch.setenv("ATTACH_TEST_KEY", oracle_servers["assistant"].api_key)
    model.server.api_key_env = "ATTACH_TEST_KEY"
    with provide("assistant", model, None) as endpoint:
        assert endpoint == oracle_servers["assistant"]


def test_unreachable_server_fails_within_seconds_naming_the_url():
    started = time.monotonic()
    with pytest.raises(ServerError, match=r"server at http://127.0.0.1:9/v1 did not answer /v1/models within 1 s"):
        wait_until_ready(Endpoint("http://127.0.0.1:9/v1", "m"), timeout_s=1)
    assert time.monotonic() - started < 5


def test_a_server_that_does_not_serve_the_model_is_named(oracle_servers):
    endpoint = oracle_servers["assistant"]
    wrong = Endpoint(endpoint.base_url, "Qwen/Qwen3-4B", endpoint.provider, endpoint.api_key)
    with pytest.raises(ServerError, match=r"does not serve model 'Qwen/Qwen3-4B'; it serves \['oracle'\]"):
        wait_until_ready(wrong, timeout_s=2)


def test_a_server_process_that_dies_fails_fast_with_its_log(tmp_path):
    log = tmp_path / "server.log"
    process = start_process([sys.executable, "-c", "import sys; print('CUDA out of memory'); sys.exit(3)"], log)
    started = time.monotonic()
    with pytest.raises(ServerError, match=r"(?s)exited with status 3 .*CUDA out of memory"):
        wait_until_ready(Endpoint("http://127.0.0.1:9/v1", "m"), timeout_s=60, process=process, log_path=log)
    assert time.monotonic() - started < 5


def test_stop_process_kills_the_whole_group_even_when_sigterm_is_ignored(tmp_path, wait_until):
    code = (
        "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); time.sleep(600)"
    )
    process = start_process([sys.executable, "-c", code], tmp_path / "log")

    def group() -> list[int]:
        found = subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True, text=True)
        return [int(pid) for pid in found.stdout.split()]

    children = wait_until(lambda: len(group()) == 2 and group(), 10, "the server and its child to start")
    stop_process(process, grace_s=0.5)
    wait_until(lambda: not any(_alive(pid) for pid in children), 10, "the whole group to end")


def test_a_killed_job_takes_its_server_with_it(tmp_path):
    # The job (here a small parent process) is SIGKILLed: its server must not outlive it.
    code = (
        "import sys, time; from pathlib import Path; from tau_exp.servers.process import start_process; "
        f"p = start_process([sys.executable, '-c', 'import time; time.sleep(600)'], Path({str(tmp_path)!r}) / 'log'); "
        "print(p.pid, flush=True); time.sleep(600)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    server_pid = int(parent.stdout.readline())
    assert _alive(server_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while _alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(server_pid)


@pytest.mark.parametrize(
    "change, status, message",
    [
        ({"temperature": 3.0}, 400, "temperature must be in [0, 2]"),
        ({"max_tokens": 0}, 400, "max_tokens must be at least 1"),
        ({"model": "not-served"}, 404, "The model `not-served` does not exist"),
    ],
)
def test_the_oracle_refuses_what_vllm_refuses(oracle_servers, change, status, message):
    endpoint = oracle_servers["assistant"]
    body = {"model": endpoint.model, "messages": [{"role": "user", "content": "hi"}], **change}
    answer = httpx.post(
        f"{endpoint.base_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {endpoint.api_key}"}
    )
    assert answer.status_code == status and message in answer.json()["error"]["message"]


def test_a_jobs_servers_start_together_stay_up_and_stop(tmp_path, oracle_model, wait_until):
    # Each server is held by a thread of its own: the parent-death signal follows the thread that
    # started the server, so a thread that returned after starting it would stop it at once.
    with provide_all([("assistant", oracle_model()), ("user", oracle_model())], tmp_path) as endpoints:
        assert endpoints["assistant"].base_url != endpoints["user"].base_url
        time.sleep(0.5)  # time for a wrongly delivered parent-death signal to arrive
        for endpoint in endpoints.values():
            wait_until_ready(endpoint, timeout_s=2)
        pids = [
            int(p)
            for p in subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
        ]
        assert len(pids) >= 2
    wait_until(lambda: not any(_alive(pid) for pid in pids), 10, "both oracles' processes to end")


class _FakeServer:
    """A server kind's context manager that records its start and stop in `events`; its start
    waits at `barrier` (if any), then raises `error` (if any)."""

    def __init__(self, role, events, barrier=None, error=None):
        self.role, self.events, self.barrier, self.error = role, events, barrier, error

    def __enter__(self):
        self.events.append(("start", self.role))
        if self.barrier is not None:
            self.barrier.wait(timeout=60)  # broken (an error) unless both servers start at once
        if self.error is not None:
            raise self.error
        return Endpoint(f"http://{self.role}:8000/v1", "m")

    def __exit__(self, *exc):
        self.events.append(("stop", self.role))


def _fake_kinds(monkeypatch, oracle_model, events, barrier=None, errors=None, attach=()):
    """(role, model) pairs for assistant and user (those in `attach` of the attach kind), served
    by `_FakeServer`s."""
    monkeypatch.setattr(
        servers,
        "provide",
        lambda role, model, servers_dir: _FakeServer(role, events, barrier, (errors or {}).get(role)),
    )
    models = []
    for role in ("assistant", "user"):
        model = oracle_model()
        if role in attach:
            model.server.kind = ServerKind.attach
        models.append((role, model))
    return models


def test_servers_started_here_start_at_the_same_time(monkeypatch, oracle_model, tmp_path):
    events: list = []
    models = _fake_kinds(monkeypatch, oracle_model, events, barrier=threading.Barrier(2))
    with provide_all(models, tmp_path) as endpoints:
        assert endpoints["user"].base_url == "http://user:8000/v1"
        assert sorted(events) == [("start", "assistant"), ("start", "user")]
    assert sorted(events[2:]) == [("stop", "assistant"), ("stop", "user")]


def test_when_one_server_fails_to_start_the_other_is_stopped(monkeypatch, oracle_model, tmp_path):
    events: list = []
    failure = ServerError("user server did not start")
    models = _fake_kinds(monkeypatch, oracle_model, events, barrier=threading.Barrier(2), errors={"user": failure})
    with pytest.raises(ServerError, match="user server did not start"):
        with provide_all(models, tmp_path):
            pytest.fail("a job must not run with one server missing")
    assert ("stop", "assistant") in events and ("stop", "user") not in events


def test_servers_to_attach_to_are_checked_before_any_server_starts(monkeypatch, oracle_model, tmp_path):
    events: list = []
    models = _fake_kinds(monkeypatch, oracle_model, events, errors={"user": ServerError("wrong URL")}, attach=("user",))
    with pytest.raises(ServerError, match="wrong URL"):
        with provide_all(models, tmp_path):
            pass
    assert events == [("start", "user")]  # the assistant's server never started
