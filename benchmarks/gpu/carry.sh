#!/usr/bin/env bash
# Keep one carried part of the vLLM bundle (.gpu/a or .gpu/b) in /tmp/stash on the GPU box; /tmp lasts while the box
# stays warm (about 30 s between calls), so the calls that carry a, b and c must follow each other closely.
set -euo pipefail
part=${1:?usage: bash benchmarks/gpu/carry.sh a|b}
stash=${STASH:-/tmp/stash}
mkdir -p "$stash"
cp .gpu/"$part"/part-* "$stash"/
ls -l "$stash"
