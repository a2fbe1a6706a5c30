#!/usr/bin/env bash
# Unpack the slim vLLM 0.26.0 bundle (benchmarks/gpu/README.md) into /tmp/site and print the versions. Idempotent:
# a box that already holds it only prints them. Usage: bash benchmarks/gpu/install.sh [.gpu/c]
set -euo pipefail
c=${1:-.gpu/c}
stash=${STASH:-/tmp/stash}
site=${SITE:-/tmp/site}
if [ -f "$site/.installed" ]; then
  echo "install: $site already holds vLLM"
else
  for f in "$stash/part-00" "$stash/part-01" "$c/part-02"; do
    if [ ! -s "$f" ]; then
      echo "install: $f is missing: this box is fresh; carry .gpu/a and .gpu/b (benchmarks/gpu/carry.sh) and" \
           ".gpu/c again, in calls that follow each other within the box's warm time" >&2
      exit 3
    fi
  done
  began=$(date +%s)
  rm -rf "$site" && mkdir -p "$site"
  cat "$stash/part-00" "$stash/part-01" "$c/part-02" | xz -d -T8 | tar -C "$site" -xf -
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" "$c"/wheels/*.whl
  touch "$site/.installed"
  echo "install: vLLM unpacked into $site in $(( $(date +%s) - began )) s"
fi
PYTHONPATH="$site" python3 -c 'import importlib.metadata as m, platform
def v(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return "missing"
print("install:", ", ".join(f"{n} {v(n)}" for n in ("vllm", "torch", "transformers", "tokenizers")),
      "| python", platform.python_version())'
nvidia-smi --query-gpu=index,name,memory.total,memory.used,driver_version --format=csv,noheader
