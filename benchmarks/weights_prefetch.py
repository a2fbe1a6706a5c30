"""Weights before GPUs: the makespan of 4 hub models on one CPU-server lane, with prefetch and without.

Run: ``.venv/bin/python -m benchmarks.weights_prefetch [--download-s 60] [--rounds 1] [--limit 4]``; prints the
figures and writes ``benchmarks/results/weights_prefetch.md`` (raw numbers in ``weights_prefetch.json``).

Each configuration is a real ``deathmath-orchestrate run`` (``--max-cpu-servers 1``: one lane) of 4 managed models,
each its own hub repository serving the smoke model from the loopback hub stand-in (``standins/hubstub.py``) at a
bandwidth chosen so that one download takes about ``--download-s`` seconds, set near a model's run (a real
vLLM CPU server: start, ``--limit`` problems of sample-math, stop). Every run starts with an empty hub cache.

* with prefetch: ``--prefetch 1`` (the default): the next model downloads while the current one runs;
* without: ``--prefetch 0``: a model downloads only while none runs (what a download inside vLLM's start costs).

Lower bound for one lane, from the same run's measured downloads D and runs R (manifest timings; R = start-up +
datasets + teardown), in the order the models ran: max(D_first + sum R, sum D + R_last). Makespan = the wall-clock
of the command. Target: with prefetch <= 1.10 x bound.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from benchmarks import publish
from orchestrator.smoke_model import write_smoke_model
from standins.hubstub import HubStub, files_of

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TARGET = 1.10
KEYS = ("m1", "m2", "m3", "m4")
HEADER = (
    "| round | with prefetch (s) | bound (s) | with / bound | without (s) | bound (s) | without / bound "
    "| without / with |"
)


def config_text() -> str:
    blocks = "".join(
        textwrap.dedent(f"""
        {key}:
          model_name: {key}
          vllm: {{model: bench/{key}, max_model_len: 512, startup_timeout: 900}}
          parallel: 4
          max_tokens: 16
    """)
        for key in KEYS
    )
    return f"model_list: [{', '.join(KEYS)}]\n{blocks}datasets:\n  sample-math: {{}}\ntemperature: 0.0\n"


def run_once(files: dict[str, bytes], prefetch: int, rate: float, limit: int, work: Path) -> dict:
    work.mkdir(parents=True)
    (work / "run.yaml").write_text(config_text())
    with HubStub({f"bench/{k}": files for k in KEYS}, rate=rate) as stub:
        env = {**os.environ, "HF_ENDPOINT": stub.url, "HF_HUB_CACHE": str(work / "hub"), "PYTHONPATH": str(ROOT)}
        cmd = [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "run",
            "--config",
            str(work / "run.yaml"),
            "--results-dir",
            str(work / "results"),
            "--logs-dir",
            str(work / "logs"),
            "--limit",
            str(limit),
            "--max-cpu-servers",
            "1",
            "--prefetch",
            str(prefetch),
        ]
        began = time.monotonic()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
        makespan = time.monotonic() - began
        order = sorted(KEYS, key=lambda k: stub.first_get.get(f"bench/{k}", float("inf")))
    if done.returncode != 0:
        raise SystemExit(f"run with --prefetch {prefetch} failed ({done.returncode}): {done.stderr[-2000:]}")
    timings = json.loads(next((work / "results" / "runs").glob("*/manifest.json")).read_text())["timings"]
    downloads = {k: timings[k]["download"] for k in KEYS}
    runs = {k: sum(v for phase, v in timings[k].items() if phase != "download") for k in KEYS}
    bound = max(downloads[order[0]] + sum(runs.values()), sum(downloads.values()) + runs[order[-1]])
    return {
        "prefetch": prefetch,
        "makespan_s": makespan,
        "bound_s": bound,
        "ratio": makespan / bound,
        "order": order,
        "download_s": downloads,
        "run_s": runs,
        "load": os.getloadavg()[0],
    }


def section(rounds: list[dict[str, dict]], args: argparse.Namespace, size: int) -> str:
    rows = []
    for i, r in enumerate(rounds, 1):
        with_, without = r["with"], r["without"]
        rows.append(
            f"| {i} | {with_['makespan_s']:.0f} | {with_['bound_s']:.0f} | **{with_['ratio']:.3f}** | "
            f"{without['makespan_s']:.0f} | {without['bound_s']:.0f} | {without['ratio']:.3f} | "
            f"{without['makespan_s'] / with_['makespan_s']:.2f} |"
        )
    ratios = [r["with"]["ratio"] for r in rounds]
    first = rounds[0]["with"]
    mean_d = statistics.mean(first["download_s"].values())
    mean_r = statistics.mean(first["run_s"].values())
    verdict = "met" if max(ratios) <= TARGET else "NOT met"
    loads = [r[name]["load"] for r in rounds for name in ("with", "without") if "load" in r[name]]
    load = (
        f"{min(loads):.1f} to {max(loads):.1f}" if loads else "not recorded"
    ) + f" (1-minute average at the end of each run, {len(os.sched_getaffinity(0))} cores)"
    command = (
        f".venv/bin/python -m benchmarks.weights_prefetch --download-s {args.download_s:g} --rounds {args.rounds}"
        f" --limit {args.limit}"
    )
    return (
        textwrap.dedent(f"""\
        ## Weights before GPUs: prefetch of hub models

        Command: `{command}`.

        Four managed models, each its own hub repository ({size / 1e6:.2f} MB,
        the smoke model) served by the loopback hub stand-in at {args.rate / 1e3:.1f} KB/s, on one CPU-server lane
        (`--max-cpu-servers 1`, real vLLM CPU servers, {args.limit} sample-math problems each), empty cache per
        run. In round 1 a download took {mean_d:.1f} s and a run {mean_r:.1f} s on average. Bound (one lane, same
        run's measured downloads D and runs R, in run order) = max(D_first + sum R, sum D + R_last); makespan = the
        command's wall-clock, so start-up of the CLI and the leaderboard count against it. Only one lane is
        measured; for L lanes sharing one link the bound would be max(D_first + sum R / L, sum D + R_last).
        Load of the shared machine: {load}.

        {HEADER}
        |---|---|---|---|---|---|---|---|
        """)
        + "\n".join(rows)
        + textwrap.dedent(f"""

        Target with prefetch <= {TARGET:.2f} x bound: **{verdict}** (worst round {max(ratios):.3f}). {_spreads(rounds)}
        Raw results: `benchmarks/results/weights_prefetch.json`.
        """)
    )


def _spreads(rounds: list[dict[str, dict]]) -> str:
    """The median and spread (max - min) over the rounds of with / bound and of without / with."""
    figures = {
        "with / bound": [r["with"]["ratio"] for r in rounds],
        "without / with": [r["without"]["makespan_s"] / r["with"]["makespan_s"] for r in rounds],
    }
    return (
        f"Over {len(rounds)} round(s): "
        + "; ".join(
            f"{name} median {statistics.median(v):.3f}, spread {max(v) - min(v):.3f}" for name, v in figures.items()
        )
        + "."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--download-s",
        type=float,
        default=60.0,
        help="seconds one model's download takes: set it near one run's length on this machine",
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--report-only", action="store_true", help="rewrite the section from the last raw results")
    args = parser.parse_args(argv)
    if args.report_only:
        saved = json.loads((RESULTS / "weights_prefetch.json").read_text())
        vars(args).update(saved["args"])
        publish(RESULTS / "weights_prefetch.md", section(saved["rounds"], args, saved["size"]))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-prefetch-") as tmp:
        model = ROOT / "models" / "tiny-llama"
        if not (model / "model.safetensors").is_file():
            model = write_smoke_model(Path(tmp) / "tiny-llama")
        files = {k: v for k, v in files_of(model).items() if not k.startswith(".")}
        size = sum(len(v) for v in files.values())
        args.rate = size / args.download_s
        rounds = []
        for i in range(args.rounds):  # alternate which configuration goes first, so load hits both alike
            pair = [("with", 1), ("without", 0)] if i % 2 == 0 else [("without", 0), ("with", 1)]
            rounds.append(
                {name: run_once(files, p, args.rate, args.limit, Path(tmp) / f"r{i}-{name}") for name, p in pair}
            )
            print(json.dumps(rounds[-1]), flush=True)
    saved = {
        "args": {k: vars(args)[k] for k in ("download_s", "rounds", "limit", "rate")},
        "size": size,
        "rounds": rounds,
    }
    (RESULTS / "weights_prefetch.json").write_text(json.dumps(saved, indent=2) + "\n")
    publish(RESULTS / "weights_prefetch.md", section(rounds, args, size))
    return 0 if max(r["with"]["ratio"] for r in rounds) <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
