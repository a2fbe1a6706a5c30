"""The night benchmark: the real orchestrator against fake vLLM servers, 12 models on 8 fake GPUs, no history.

Run: ``.venv/bin/python -m benchmarks.night [--nights N] [--scale S] [--seed S] [--modes auto,1] [--jobs J]``
(default 8 nights, ~8 min on 2 cores; ``--nights 50`` for the full figure, ~85 min; ``--modes auto --merge`` reruns
one mode and keeps the other's rows); writes
``benchmarks/results/night.md`` and ``night.json`` (``--report-only`` rewrites the section from the JSON). First the
fake server's fidelity under the real client (``fidelity.py``), then each night (``world.py``: DeathMath's size, 4
samples, 5 x TP1 7-9B, 2 x TP1 14B, 2 x TP2 32B, 2 x TP4 70B and an API model; actual durations = calibrated x
lognormal noise, unknown to the scheduler) in its own process (``one.py``) once per mode: ``replicas: auto`` and
``replicas: 1``. Times are simulated seconds (real x ``--scale``), read from the fake servers' own events (first
server start to last answer).
Per night:

* bound = total GPU-seconds of generation / 8 (replicas allowed, start-ups not counted): each model's requests
  replayed alone on its TP GPUs without any overhead (``fidelity.ideal``), x its TP (``tail_bound``);
* full-batch bound = the same at each model's full-batch rate all the time (``bound``): no tail;
* one at a time (the by-hand flow, each model alone on its own TP) = the sum of each model's start-up plus its
  tokens at the full-batch rate (an ideal for that flow: no tail, no gap), plus the API model's own duration.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from orchestrator.serving import queueahead

from . import fidelity, world
from .fidelity import PARALLEL, ideal

RESULTS = Path(__file__).resolve().parents[1] / "results"
TARGET_BOUND, TARGET_SPEEDUP = 1.15, 3.0


def night(seed: int, scale: float, replicas: str, folder: Path) -> dict:
    out = folder / f"{seed}-{replicas}.json"
    cmd = [sys.executable, "-m", "benchmarks.night.one", "--dir", str(folder / f"{seed}-{replicas}")]
    cmd += ["--seed", str(seed), "--scale", str(scale), "--replicas", replicas, "--out", str(out)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=3600)
    return measure(json.loads(out.read_text()))


def measure(result: dict) -> dict:
    """Makespan, bound, one-at-a-time and the fake servers' fill of their batch, in simulated seconds."""
    scale, api = result["scale"], result["api"]
    models = {m["key"]: m for m in result["models"]}
    servers = result["servers"]
    managed = [s for s in servers if s["model"] in models]
    start = min(s["began"] for s in managed)
    end = max(s["last_done"] for s in servers)
    tokens: dict[str, float] = {}
    for s in managed:
        tokens[s["model"]] = tokens.get(s["model"], 0.0) + s["tokens"]
    gen = {k: tokens[k] / models[k]["full_rate"] for k in tokens}
    bound = sum(gen[k] * models[k]["tp"] for k in gen) / world.GPUS
    in_flight = queueahead.in_flight(PARALLEL, queueahead.DEFAULT_GPU_QUEUE_AHEAD)
    alone = {
        k: ideal([r for s in managed if s["model"] == k for r in s["requests"]], in_flight, models[k]["points"], 256)
        for k in gen
    }
    tail_bound = sum(alone[k] * models[k]["tp"] for k in gen) / world.GPUS
    api_s = sum((s["last_done"] - s["ready"]) * scale for s in servers if s["model"] == api)
    one_at_a_time = sum(gen[k] + world.STARTUP_S[models[k]["tp"]] for k in gen) + api_s
    achieved = sum(s["tokens"] for s in managed) / sum(s["busy_s"] * models[s["model"]]["full_rate"] for s in managed)
    return {
        "seed": result["seed"],
        "replicas": result["replicas"],
        "makespan": (end - start) * scale,
        "bound": bound,
        "tail_bound": tail_bound,
        "one_at_a_time": one_at_a_time,
        "servers": len(managed),
        "achieved": achieved,
        "wall_s": result["wall_s"],
        "finished": all(v == "finished" for v in result["outcomes"].values()),
    }


def report(data: dict) -> str:
    """The section: per mode the median makespan / bound with its spread (the bound with each model's tail, and the
    full-batch one without), the speed-up over one model at a time; the fake servers' fidelity; the targets."""
    rows, fid = data["rows"], data.get("fidelity") or {}
    lines = [
        "## Night: 12 models on 8 GPUs, no history (benchmarks/night)",
        "",
        f"Command: `{data['command']}`{_kept(data)}.",
        "",
        f"{data['nights']} seeded nights, time x{data['scale']:g}: the real scheduler, servers' lifecycle, client and",
        "checkpoint against fake vLLM servers that keep the calibrated H100 rates of",
        "`orchestrator/scheduling/calibration.json` (processor sharing, each of a request's n choices a sequence),",
        "DeathMath's size (2 x 190 problems x 4 samples), answers of 8k tokens on average (lognormal, sigma 0.6, at",
        "most 32k), each model's length x its own lognormal noise (sigma 0.3), unknown to the scheduler, whose",
        "estimates take max_tokens as the answer length. Figures are simulated seconds; median (min-max) over nights.",
        "",
        "| mode | makespan / bound | makespan / full-batch bound | speed-up vs one at a time | batch fill | servers |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode in sorted({r["replicas"] for r in rows}):
        mine = [r for r in rows if r["replicas"] == mode]
        speed = [r["one_at_a_time"] / r["makespan"] for r in mine]
        lines.append(
            f"| replicas: {mode} | {_spread([r['makespan'] / r['tail_bound'] for r in mine], bold=True)} | "
            f"{_spread([r['makespan'] / r['bound'] for r in mine])} | "
            f"**{statistics.median(speed):.2f}x** ({min(speed):.2f}-{max(speed):.2f}) | "
            f"{statistics.median(r['achieved'] for r in mine):.2f} | "
            f"{statistics.mean(r['servers'] for r in mine):.1f} |"
        )
    tails = [r["tail_bound"] / r["bound"] for r in rows]
    walls = [r["wall_s"] for r in rows]
    lines += [
        "",
        f"Targets: median makespan / bound <= {TARGET_BOUND}; >= {TARGET_SPEEDUP:g}x faster than one at a time.",
        "",
        "* Bound = total GPU-seconds of generation / 8 (replicas allowed, start-ups not counted), where a model's",
        "  generation is its own requests replayed alone on its TP GPUs by a client without overhead",
        "  (`fidelity.ideal`, all its requests in one pass): what its series costs on the calibrated server whatever",
        "  the schedule, the series' tail included (a finite series ends in a thin batch while its longest answers",
        "  finish; no schedule removes that, only another model on the same GPU could use it).",
        "* Full-batch bound = the same at each model's full-batch rate all the time (its tokens / that rate): no tail,",
        f"  unreachable by any schedule; the bound is {statistics.median(tails):.2f} x it (median).",
        "* One at a time (the by-hand flow) = the sum of each model's start-up and generation at its full-batch rate",
        "  (no tail: an ideal for that flow, so the speed-up is conservative).",
        "* Batch fill = the fake servers' tokens / (their busy seconds x full-batch rate).",
        "* Makespan / bound is the schedule's own cost: start-ups (105-148 s each, not in the bound), the order chosen",
        "  without knowing durations (estimates take max_tokens, 4x the mean answer here), a model's last tail alone",
        "  on its GPUs, and each hand-over stretched by the compression (a real second of process start and",
        f"  teardown is {data['scale']:g} simulated ones). One night took {statistics.median(walls):.0f} s of wall time"
        " (median).",
    ]
    if fid:
        lines.append(
            f"* Fidelity (`python -m benchmarks.night.fidelity --scale {fid['scale']:g}`, one 7B series alone): the"
            f" real run took {fid['real_s']} s, the same requests replayed without client overhead {fid['ideal_s']} s:"
            f" **{fid['fidelity']:.3f}** (target >= {fidelity.TARGET}); the ideal itself fills the batch"
            f" {fid['ideal_fill']:.2f} of the time (the series' tail)."
        )
    return "\n".join(lines) + "\n"


def _kept(data: dict) -> str:
    """Where ``--merge`` kept another run's rows: which modes, and that run's command."""
    kept = data.get("kept")
    return f" (the rows of replicas: {kept['modes']} kept from `{kept['command']}`)" if kept else ""


def _spread(values: list[float], *, bold: bool = False) -> str:
    """Median (min-max), the median in bold if asked."""
    median = f"**{statistics.median(values):.3f}**" if bold else f"{statistics.median(values):.3f}"
    return f"{median} ({min(values):.3f}-{max(values):.3f})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.night", description=__doc__.splitlines()[0])
    ap.add_argument("--nights", type=int, default=8, help="seeded nights (~50 s each; 50 for the full figure)")
    ap.add_argument("--scale", type=float, default=100.0, help="simulated seconds per real second")
    ap.add_argument("--seed", type=int, default=0, help="the first night's seed")
    ap.add_argument("--modes", default="auto,1", help="replicas settings to run, comma-separated")
    ap.add_argument("--jobs", type=int, default=1, help="nights run at once (each uses under one core)")
    ap.add_argument("--report-only", action="store_true", help="rewrite night.md from night.json (no night is run)")
    ap.add_argument(
        "--merge", action="store_true", help="keep night.json's rows of the other modes (same seeds and scale)"
    )
    args = ap.parse_args(argv)
    if args.report_only:
        data = json.loads((RESULTS / "night.json").read_text(encoding="utf-8"))
    else:
        old = json.loads((RESULTS / "night.json").read_text(encoding="utf-8")) if args.merge else None
        data = run(args)
        if old is not None:
            data = merged(old, {**data, "command": data["command"] + " --merge"}, args.modes.split(","))
        (RESULTS / "night.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    text = report(data)
    (RESULTS / "night.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


def run(args: argparse.Namespace) -> dict:
    """The fidelity check, then every seeded night in every mode (``--jobs`` nights at a time, each in its own
    process with its own fake GPUs and ports)."""
    fid = fidelity.check(args.scale, "qwen2.5-7b")
    print(json.dumps(fid), flush=True)
    nights = [(seed, mode) for seed in range(args.seed, args.seed + args.nights) for mode in args.modes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="night-") as tmp, ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(night, seed, args.scale, mode, Path(tmp)) for seed, mode in nights]
        for future in as_completed(futures):
            rows.append(future.result())
            print(json.dumps(rows[-1]), flush=True)
    rows.sort(key=lambda r: (r["seed"], r["replicas"]))
    command = f"python -m benchmarks.night --nights {args.nights} --scale {args.scale:g} --modes {args.modes}"
    command += f" --jobs {args.jobs}" if args.jobs > 1 else ""
    return {"command": command, "nights": args.nights, "scale": args.scale, "fidelity": fid, "rows": rows}


def merged(old: dict, new: dict, modes: list[str]) -> dict:
    """``new`` with ``old``'s rows of the modes it did not run; their seeds and scale must be the same."""
    if (old["nights"], old["scale"]) != (new["nights"], new["scale"]):
        raise SystemExit("night.json: --merge needs the same --nights and --scale as the run it keeps rows of")
    kept = [r for r in old["rows"] if r["replicas"] not in modes]
    if {r["seed"] for r in kept} != {r["seed"] for r in new["rows"]}:
        raise SystemExit("night.json: --merge needs the same seeds as the run it keeps rows of (--seed)")
    previous = old.get("kept")
    command = previous["command"] if previous else old["command"]
    rows = sorted(new["rows"] + kept, key=lambda r: (r["seed"], r["replicas"]))
    return {**new, "rows": rows, "kept": {"modes": ",".join(sorted({r["replicas"] for r in kept})), "command": command}}


if __name__ == "__main__":
    sys.exit(main())
