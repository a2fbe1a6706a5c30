"""`make perf`: run every benchmark, one after the other (they share 2 cores), and assemble BENCHMARKS.md.

Each benchmark is a module that writes its own section to ``benchmarks/results/<name>.md`` with the command that
produced it; this script runs them, records the date and machine of each run (``results/runs.json``) and assembles
BENCHMARKS.md: one table of headline figures read from the stored results (``headlines.py``), then the current
section of each benchmark. Superseded runs (``results/<name>-archive.md``, e.g. earlier GPU s4 runs) go to
BENCHMARKS-archive.md, which the report links. ``--only a,b`` reruns some; the others' last sections are kept;
``--assemble-only`` runs nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from . import headlines
from .gpu import report as gpu_report

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
    "night",
]
ASSEMBLED = ORDER + ["gpu"]  # gpu.md comes from `make perf-gpu` on a GPU box (benchmarks/gpu); never run here
RUNS = RESULTS / "runs.json"
ARCHIVE = "BENCHMARKS-archive.md"
HEADER = """# Benchmarks

Produced by `make perf` (`python -m benchmarks.run_all`), which runs each benchmark below and writes its section.
Every figure is measured against a baseline in the same run, on the machine named in each section.
Machine of the last full run: {machine}.

## Headline figures

Each benchmark's current figure, read from its section below (GPU scenarios: from their JSON results).
Superseded runs: [{archive}]({archive}).

"""
ARCHIVE_HEADER = """# Benchmarks: superseded runs

Runs replaced by a later one of the same benchmark, kept for the variants they measured. The current figures are
in [BENCHMARKS.md](BENCHMARKS.md).

"""


def run(names: list[str], timeout: float) -> dict[str, str]:
    """Run the named benchmarks; returns name -> 'ok' or the failure."""
    status = {}
    runs = headlines.recorded_runs(RUNS)
    for name in names:
        began = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], cwd=ROOT, timeout=timeout)
        status[name] = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        print(f"benchmark {name}: {status[name]} in {time.monotonic() - began:.0f}s", flush=True)
        if proc.returncode == 0:
            runs[name] = {"date": time.strftime("%Y-%m-%d"), "machine": _machine()}
            RUNS.write_text(json.dumps(runs, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return status


def assemble(keep_machine: bool = False, root: Path = ROOT, results: Path = RESULTS) -> list[str]:
    """BENCHMARKS.md: the headline table, then each benchmark's section in a fixed order; BENCHMARKS-archive.md: the
    superseded runs (``keep_machine``: the header keeps the machine of the last full run instead of naming this
    one). Returns the headlines whose figures were not found in their sections."""
    out = root / "BENCHMARKS.md"
    machine = _machine()
    if keep_machine and out.exists():
        found = re.search(r"Machine of the last full run: (.*)\.\n", out.read_text())
        machine = found.group(1) if found else machine
    rows = headlines.cpu_headlines(results, headlines.recorded_runs(results / "runs.json"), machine)
    rows += gpu_report.headlines(gpu_report.load([results / "gpu"]))
    parts = [HEADER.format(machine=machine, archive=ARCHIVE), "\n".join(headlines.table(rows)) + "\n\n"]
    sections = sorted(p.stem for p in results.glob("*.md") if not p.stem.endswith("-archive"))
    parts += [_section(results / f"{name}.md") for name in ASSEMBLED + [s for s in sections if s not in ASSEMBLED]]
    out.write_text("".join(parts))
    archived = [_section(p) for p in sorted(results.glob("*-archive.md"))]
    (root / ARCHIVE).write_text(ARCHIVE_HEADER + "".join(archived).rstrip() + "\n")
    print(f"wrote {out} and {root / ARCHIVE}")
    return headlines.missing(rows)


def _section(path: Path) -> str:
    text = path.read_text().rstrip() if path.exists() else ""
    return text + "\n\n" if text else ""


def _machine() -> str:
    return f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}"


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
    status = {} if args.assemble_only else run([n for n in args.only.split(",") if n] or ORDER, args.timeout)
    lost = assemble(keep_machine=args.assemble_only)
    for measure in lost:  # a reworded section: its pattern in benchmarks/headlines.py RULES needs the new words
        print(f"headline figure not found in its section: {measure}", file=sys.stderr)
    return 0 if all(s == "ok" for s in status.values()) and not lost else 1


if __name__ == "__main__":
    sys.exit(main())
