"""servers/slurm.py and servers/registry.py on the real single-node Slurm cluster
(scripts/local_slurm.sh): a shared server job is submitted once per model and reused, replaced
when its job is gone, reported with its log when it fails, listed and stopped by the command,
and stops itself when idle.

The shared job serves the built-in oracle (no GPU model can run here); everything else is real:
sbatch through submitit, slurmd running the job, HTTP from the jobs to the shared server."""

from __future__ import annotations

import json
import logging
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tau_exp import slurm_client
from tau_exp.config import ModelConfig, ServerKind
from tau_exp.errors import ServerError, SlurmError
from tau_exp.runtime import CONSOLE_LOGGER
from tau_exp.servers import provide
from tau_exp.servers.__main__ import main as servers_cli
from tau_exp.servers.__main__ import server_gpu_hours
from tau_exp.servers.health import served_models
from tau_exp.servers.registry import Registry, ServerAddress, ServerJob, ServerUser
from tau_exp.servers.slurm import entry_key, sbatch_parameters

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("slurm_cluster")]


@pytest.fixture
def registry_dir(tmp_path: Path) -> Iterator[Path]:
    """A fresh registry; whatever server jobs it still names are cancelled after the test."""
    registry = tmp_path / "registry"
    yield registry
    for entry in Registry(registry).entries():
        slurm_client.cancel(entry.job.job_id)


def server_jobs() -> set[str]:
    queued = subprocess.run(["squeue", "--noheader", "--format", "%i %j"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in queued.stdout.splitlines() if " tau_exp-server-" in line}


@pytest.fixture(scope="session")
def shared_oracle(oracle_model):
    """`shared_oracle(registry)`: the oracle as a shared server job (the slurm kind) in that registry."""

    def model_in(registry: Path) -> ModelConfig:
        model = oracle_model()
        model.server.kind = ServerKind.slurm
        model.server.slurm.serves = ServerKind.oracle
        model.server.slurm.registry_dir = str(registry)
        model.server.slurm.start_timeout_s = 90
        return model

    return model_in


def wait_until_gone(job_id: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while slurm_client.job_state(job_id) is not None:
        assert time.monotonic() < deadline, f"Slurm job {job_id} still there after {timeout_s} s"
        time.sleep(0.5)


def oracle_processes(registry: Path) -> list[str]:
    found = subprocess.run(["pgrep", "-f", f"port-file {registry}"], capture_output=True, text=True)
    return found.stdout.split()


def test_jobs_share_one_server_job_and_a_later_job_reuses_it(
    tmp_path, registry_dir, shared_oracle, wait_until, launch, attached, caplog
):
    registry = registry_dir
    jobs_before = server_jobs()
    model = shared_oracle(registry)

    def use_server(_: int) -> str:
        with provide("user", model, None) as endpoint:
            assert served_models(endpoint) == ["oracle"]
            return endpoint.base_url

    # Four jobs of a sweep ask at once: one server job is submitted, all four use it, and the
    # console says so once (it outlives the jobs, and how to stop it).
    with caplog.at_level(logging.INFO, logger=CONSOLE_LOGGER), ThreadPoolExecutor(4) as pool:
        urls = set(pool.map(use_server, range(4)))
    assert len(urls) == 1
    assert sum("submitted shared user server job" in r.message for r in caplog.records) == 1
    entries = Registry(registry).entries()
    assert len(entries) == 1 and entries[0].ready
    job_id = entries[0].job.job_id
    assert slurm_client.job_state(job_id) == "RUNNING"
    assert server_jobs() - jobs_before == {job_id}  # no second server job was submitted

    # A later job (python launch.py, its user model on the slurm kind) finds the live entry,
    # reuses the same server job and runs its experiment against it.
    done = launch(
        [
            "tasks.end=2",
            f"hydra.run.dir={tmp_path / 'run'}",
            *[override for override in attached if override.startswith("model.")],
            "user.server.kind=slurm",
            "user.server.slurm.serves=oracle",
            f"user.server.slurm.registry_dir={registry}",
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "avg_reward=1.0000" in done.stdout
    assert f"using shared user server job {job_id}" in (tmp_path / "run" / "launch.log").read_text()
    assert Registry(registry).read(entries[0].job.key).job.job_id == job_id
    assert server_jobs() - jobs_before == {job_id}

    # The key is readable by its owner only, and appears in no other file of the entry.
    entry_dir = registry / entries[0].job.key
    key_file = entry_dir / "api_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text()
    for path in entry_dir.rglob("*"):
        if path.is_file() and path != key_file and path.suffix != ".pkl":
            assert key not in path.read_text(errors="replace"), path

    servers_cli(["stop", "--all", "--registry", str(registry)])
    wait_until_gone(job_id)
    assert Registry(registry).entries() == []
    wait_until(lambda: oracle_processes(registry) == [], 30, "the server to die with its job")


def test_an_entry_whose_job_is_gone_is_replaced(registry_dir, caplog, shared_oracle):
    model = shared_oracle(registry_dir)
    registry = Registry(registry_dir)
    key = entry_key(model)

    # A server job that was cancelled withdraws its address but leaves its job record.
    with provide("user", model, None):
        pass
    first = registry.read(key)
    slurm_client.cancel(first.job.job_id)
    wait_until_gone(first.job.job_id)
    deadline = time.monotonic() + 10
    while registry.read(key).address is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert registry.read(key).address is None  # withdrawn by the job on SIGTERM

    # A job killed outright leaves its address too: the entry still looks ready, but is stale.
    registry.record_job(ServerJob(key=key, model="oracle", job_id="999999", submitted_at="2026-01-01T00:00:00"))
    registry.record_address(
        key,
        ServerAddress(base_url="http://127.0.0.1:9/v1", job_id="999999", ready_at="2026-01-01T00:00:00"),
        "stale-key",
    )
    servers_cli(["list", "--registry", str(registry_dir)])
    with caplog.at_level("WARNING"), provide("user", model, None) as endpoint:
        assert served_models(endpoint) == ["oracle"]
    assert "names Slurm job 999999, which is gone" in caplog.text
    replacement = registry.read(key)
    assert replacement.job.job_id not in ("999999", first.job.job_id) and replacement.ready
    servers_cli(["stop", key, "--registry", str(registry_dir)])
    wait_until_gone(replacement.job.job_id)
    assert registry.read(key) is None


def test_an_idle_server_job_stops_itself_unless_a_live_job_uses_it(registry_dir, shared_oracle, capsys):
    """With a 6 s idle timeout: a job that holds the server past it keeps it; once that job
    leaves (and a job that died without unregistering is noticed), the server job ends itself,
    marks its entry gone, and the next job submits a new one."""
    model = shared_oracle(registry_dir)
    model.server.slurm.idle_timeout_min = 0.1
    model.server.slurm.gres = "gpu:2"  # the local cluster's GPUs without devices
    registry = Registry(registry_dir)
    key = entry_key(model)
    with provide("user", model, None):
        job_id = registry.read(key).job.job_id
        # A job that died without unregistering: on this host, its pid gone.
        gone = subprocess.Popen(["true"])
        gone.wait()
        registry.register_user(
            key, ServerUser(host=socket.gethostname(), pid=gone.pid, slurm_job_id=None, registered_at="then")
        )
        deadline = time.monotonic() + 15  # 2.5 idle timeouts with no request
        while time.monotonic() < deadline:
            assert slurm_client.job_state(job_id) == "RUNNING" and registry.read(key).ready
            time.sleep(0.5)
        # `servers list` shows what it has held so far: 2 GPUs for at least the 15 s above.
        assert float(server_gpu_hours(registry.read(key))) >= 2 * 15 / 3600
    wait_until_gone(job_id, timeout_s=60)
    entry = registry.read(key)
    assert entry.ended and "idle for 0.1 minutes" in entry.end.reason and entry.address is None
    assert registry.users(key) == {}  # this job unregistered; the dead one was unregistered for it
    servers_cli(["list", "--registry", str(registry_dir)])
    assert "gone" in capsys.readouterr().out

    with provide("user", model, None) as endpoint:  # the next job: a new server job
        assert served_models(endpoint) == ["oracle"]
        assert registry.read(key).job.job_id != job_id


def test_a_server_job_that_fails_at_start_is_reported_with_its_log(registry_dir, shared_oracle):
    model = shared_oracle(registry_dir)
    model.server.slurm.serves = ServerKind.vllm
    model.server.vllm.python = "/nonexistent/bin/python"
    with pytest.raises(ServerError, match=r"(?s)ended before its server was ready; log .*_0_log.out.*nonexistent"):
        with provide("user", model, None):
            pass
    job_id = Registry(registry_dir).entries()[0].job.job_id
    assert slurm_client.job_state(job_id) is None  # nothing left running


def test_unknown_partition_is_refused_before_anything_is_submitted(registry_dir, shared_oracle):
    model = shared_oracle(registry_dir)
    model.server.slurm.partition = "nosuchpartition"
    with pytest.raises(SlurmError, match=r"partition 'nosuchpartition' does not exist on this cluster; it has: debug"):
        with provide("user", model, None):
            pass
    assert Registry(registry_dir).entries() == []


def test_unreadable_slurm_conf_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "missing.conf"))
    started = time.monotonic()
    with pytest.raises(SlurmError, match=r"SLURM_CONF=.*missing.conf is not a file"):
        slurm_client.partitions()
    assert time.monotonic() - started < 5  # not Slurm's own minute of retries


def test_stopping_an_unknown_server_names_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        servers_cli(["stop", "nope", "--registry", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "no shared server 'nope'" in capsys.readouterr().err


def test_entry_key_separates_what_is_served_and_is_a_safe_name(shared_oracle):
    model = shared_oracle(Path("/unused"))
    model.name = "Qwen/Qwen3-32B"
    model.server.slurm.serves = ServerKind.vllm
    key = entry_key(model)
    assert key.startswith("Qwen_Qwen3-32B-") and "/" not in key
    model.server.slurm.partition = "other"  # where it runs does not change what is served
    assert entry_key(model) == key
    model.server.vllm.max_model_len = 8192
    assert entry_key(model) != key


def test_sbatch_parameters_map_the_config_and_leave_unset_options_to_slurm(shared_oracle):
    config = shared_oracle(Path("/unused")).server.slurm
    config.partition, config.gres, config.mem_gb = "gaudi", "gpu:8", 256
    config.setup = ["module load habana", "source /opt/vllm/bin/activate"]
    parameters = sbatch_parameters(config, job_name="tau_exp-server-x")
    assert parameters == {
        "job_name": "tau_exp-server-x",
        "time": 1440,
        "setup": ["module load habana", "source /opt/vllm/bin/activate"],
        "stderr_to_stdout": True,
        "additional_parameters": {},
        "partition": "gaudi",
        "gres": "gpu:8",
        "mem": "256G",
    }
    json.dumps(parameters)  # plain values only
