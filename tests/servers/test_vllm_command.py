"""servers/vllm.py: the command lines and environments it builds for each device profile,
pinned as golden values (what a person would otherwise type into an sbatch script)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tau_exp.config import Device, ModelConfig, ServerKind
from tau_exp.errors import ConfigError
from tau_exp.experiment import validate
from tau_exp.servers.vllm import device_environment, vllm_command


def vllm_model(name: str, **vllm) -> ModelConfig:
    model = ModelConfig(name=name)
    model.server.kind = ServerKind.vllm
    for key, value in vllm.items():
        setattr(model.server.vllm, key, value)
    return model


def test_gaudi_tensor_parallel_with_a_recipe_cache():
    model = vllm_model(
        "Qwen/Qwen3-32B",
        device=Device.gaudi,
        tensor_parallel_size=4,
        max_model_len=32768,
        reasoning_parser="qwen3",
        python="/opt/vllm/bin/python",
        recipe_cache_dir="/scratch/recipes",
    )
    assert vllm_command(model, "127.0.0.1", 8007) == [
        "/opt/vllm/bin/python",
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        "Qwen/Qwen3-32B",
        "--served-model-name",
        "Qwen/Qwen3-32B",
        "--host",
        "127.0.0.1",
        "--port",
        "8007",
        "--tensor-parallel-size",
        "4",
        "--dtype",
        "auto",
        "--max-model-len",
        "32768",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
        "--reasoning-parser",
        "qwen3",
    ]
    assert device_environment(model, Path("/tmp/s")) == {
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "PT_HPU_LAZY_MODE": "1",
        "PT_HPU_ENABLE_LAZY_COLLECTIVES": "true",
        "PT_HPU_RECIPE_CACHE_CONFIG": "/scratch/recipes,False,8192",
    }


def test_cuda_from_a_local_path_without_tool_parser_and_with_extra_args():
    model = vllm_model(
        "qwen3-4b",
        device=Device.cuda,
        model="/models/Qwen3-4B",
        tool_call_parser=None,
        extra_args=["--gpu-memory-utilization", "0.85"],
        env={"CUDA_VISIBLE_DEVICES": "1"},
    )
    assert vllm_command(model, "127.0.0.1", 9000) == [
        "python",
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        "/models/Qwen3-4B",
        "--served-model-name",
        "qwen3-4b",
        "--host",
        "127.0.0.1",
        "--port",
        "9000",
        "--tensor-parallel-size",
        "1",
        "--dtype",
        "auto",
        "--gpu-memory-utilization",
        "0.85",
    ]
    assert device_environment(model, Path("/tmp/s")) == {
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "CUDA_VISIBLE_DEVICES": "1",
    }


def test_cpu_profile_uses_float32_eager_mode_and_a_scratch_dir():
    model = vllm_model("tiny", device=Device.cpu, model="/tmp/tiny-model")
    command = vllm_command(model, "127.0.0.1", 8100)
    assert command[command.index("--dtype") + 1] == "float32" and command[-1] == "--enforce-eager"
    env = device_environment(model, Path("/job/servers/.scratch"))
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "1" and env["TMPDIR"] == "/job/servers/.scratch"


def test_no_secret_on_the_command_line():
    command = " ".join(vllm_command(vllm_model("m"), "127.0.0.1", 1))
    assert "api-key" not in command and "KEY" not in command


def test_a_missing_vllm_interpreter_is_refused_before_anything_starts(compose_cfg):
    with pytest.raises(ConfigError, match=r"model.server.vllm.python=/no/such/python is not an executable here"):
        validate(compose_cfg("model.server.kind=vllm", "model.server.vllm.python=/no/such/python"))
