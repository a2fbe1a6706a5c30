"""Orchestrator memory while a run is going (target: under 200 MB RSS).

Runs the real orchestrator (`deathmath-orchestrate run`) on the tiny model and the built-in samples with a vLLM CPU
server, samples the RSS of the orchestrator process (and, apart, of its grader workers and of the vLLM server tree)
every 0.2 s, and compares with the baseline of a Python process that only imports the CLI, measured in the same run.
Writes ``benchmarks/results/run_memory.md``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

from benchmarks import publish

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "benchmarks" / "results" / "run_memory.md"
MB = 1024 * 1024


def _tree_rss(proc: psutil.Process) -> dict[str, int]:
    """RSS of the orchestrator itself, its grader workers and the vLLM server tree."""
    out = {"orchestrator": 0, "grader": 0, "vllm": 0}
    try:
        out["orchestrator"] = proc.memory_info().rss
        for child in proc.children(recursive=True):
            cmd = " ".join(child.cmdline())
            kind = "grader" if "grading.worker" in cmd else "vllm"
            out[kind] += child.memory_info().rss
    except psutil.NoSuchProcess:
        pass
    return out


def baseline_rss() -> int:
    """RSS of a Python process that imports the CLI and nothing else."""
    code = "import orchestrator.cli, psutil, os; print(psutil.Process(os.getpid()).memory_info().rss)"
    return int(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    )


def measure(model: Path, limit: int | None) -> tuple[dict[str, int], float, int]:
    with tempfile.TemporaryDirectory(prefix="run-memory-") as tmp:
        config = Path(tmp) / "run.yaml"
        config.write_text(
            textwrap.dedent(f"""
            model_list: [tiny]
            tiny: {{model_name: tiny, vllm: {{model: {model}, max_model_len: 2048}}, parallel: 64, max_tokens: 128}}
            datasets: {{sample-math: {{}}, sample-physics: {{}}}}
        """)
        )
        cmd = [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "run",
            "--config",
            str(config),
            "--results-dir",
            f"{tmp}/results",
            "--logs-dir",
            f"{tmp}/logs",
        ] + (["--limit", str(limit)] if limit else [])
        began = time.monotonic()
        proc = psutil.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = {"orchestrator": 0, "grader": 0, "vllm": 0}
        while proc.poll() is None and time.monotonic() - began < 1200:
            for key, value in _tree_rss(proc).items():
                peak[key] = max(peak[key], value)
            time.sleep(0.2)
        rc = proc.wait(timeout=60)
        return peak, time.monotonic() - began, rc


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "tiny-llama")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    if not (args.model / "config.json").exists():
        from orchestrator.smoke_model import write_smoke_model

        write_smoke_model(args.model)
    cmd_args = f" --limit {args.limit}" if args.limit else ""
    base = baseline_rss()
    peak, seconds, rc = measure(args.model.resolve(), args.limit)
    orchestrator = f"{peak['orchestrator'] / MB:.0f} MB ({peak['orchestrator'] / base:.2f}x baseline)"
    grader = peak["grader"] / MB
    text = textwrap.dedent(f"""\
        ## Orchestrator memory during a run (target: under 200 MB RSS)

        Command: `.venv/bin/python -m benchmarks.run_memory{cmd_args}` -- a real run of the tiny model on a vLLM CPU
        server over both built-in samples ({seconds:.0f} s, exit code {rc}), RSS sampled every 0.2 s.

        | process | peak RSS |
        |---|---:|
        | baseline: python importing the CLI only | {base / MB:.0f} MB |
        | orchestrator process (the run) | {orchestrator} |
        | grader workers (all, separate processes; 0 when every answer was settled without them) | {grader:.0f} MB |
        | vLLM server tree (for scale) | {peak["vllm"] / MB:.0f} MB |

        Target met: {"yes" if peak["orchestrator"] < 200 * MB else "NO"}.
    """)
    return publish(RESULT, text)


if __name__ == "__main__":
    main()
