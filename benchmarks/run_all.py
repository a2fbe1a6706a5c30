"""`make perf`: run every benchmark, one after the other (they share 2 cores), and assemble BENCHMARKS.md.

Each benchmark is a module that writes its own section to ``benchmarks/results/<name>.md`` with the command that
produced it; this script runs them and concatenates the sections. ``--only a,b`` reruns some; the others' last
sections are kept.
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
ORDER = [
    "lifecycle",
    "client_throughput",
    "slow_server",
    "samples_requests",
    "grader",
    "grader_adversarial",
    "scheduling",
    "run_memory",
    "ray_overhead",
    "weights_prefetch",
]
ASSEMBLED = ORDER + ["gpu"]  # gpu.md comes from `make perf-gpu` on a GPU box (benchmarks/gpu); never run here
HEADER = """# Benchmarks

Produced by `make perf` (`python -m benchmarks.run_all`), which runs each benchmark below and writes its section.
Every figure is a ratio against a baseline measured in the same run, on the machine named in each section.
Machine of the last full run: {machine}.

"""


def run(names: list[str], timeout: float) -> dict[str, str]:
    """Run the named benchmarks; returns name -> 'ok' or the failure."""
    status = {}
    for name in names:
        began = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], cwd=ROOT, timeout=timeout)
        status[name] = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        print(f"benchmark {name}: {status[name]} in {time.monotonic() - began:.0f}s", flush=True)
    return status


def assemble(keep_machine: bool = False) -> Path:
    """Concatenate the sections in a fixed order into BENCHMARKS.md (``keep_machine``: the header keeps the machine
    of the last full run instead of naming this one)."""
    out = ROOT / "BENCHMARKS.md"
    machine = f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}"
    if keep_machine and out.exists():
        found = re.search(r"Machine of the last full run: (.*)\.\n", out.read_text())
        machine = found.group(1) if found else machine
    parts = [HEADER.format(machine=machine)]
    for name in ASSEMBLED + sorted(p.stem for p in RESULTS.glob("*.md") if p.stem not in ASSEMBLED):
        path = RESULTS / f"{name}.md"
        if path.exists():
            parts.append(path.read_text().rstrip() + "\n\n")
    out.write_text("".join(parts))
    return out


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per benchmark")
    parser.add_argument(
        "--assemble-only",
        action="store_true",
        help="run nothing: rebuild BENCHMARKS.md from the sections (e.g. after benchmarks.gpu.report wrote gpu.md)",
    )
    args = parser.parse_args(argv)
    if args.assemble_only:
        print(f"wrote {assemble(keep_machine=True)}")
        return 0
    names = [n for n in args.only.split(",") if n] or ORDER
    status = run(names, args.timeout)
    print(f"wrote {assemble()}")
    return 0 if all(s == "ok" for s in status.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
