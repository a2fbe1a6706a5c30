"""The night benchmark: the real orchestrator against fake vLLM servers, 12 models on 8 fake GPUs, no history.

Run: ``.venv/bin/python -m benchmarks.night [--nights N] [--scale S] [--seed S] [--modes auto,1]`` (default 8
nights, ~30 min on 2 cores; ``--nights 50`` for the full figure, ~3 h); writes ``benchmarks/results/night.md`` and
``night.json`` (``--report-only`` rewrites the section from the JSON). First the fake server's fidelity under the
real client (``fidelity.py``), then each night (``world.py``: DeathMath's size, 4 samples, 5 x TP1 7-9B, 2 x TP1
14B, 2 x TP2 32B, 2 x TP4 70B and an API model; actual durations = calibrated x lognormal noise, unknown to the
scheduler) in its own process (``one.py``) once per mode: ``replicas: auto`` and ``replicas: 1``. Times are
simulated seconds (real x ``--scale``), read from the fake servers' own events (first server start to last answer).
Per night:

* bound = total GPU-seconds of generation / 8: each model's generated tokens at its full-batch rate x its TP
  (replicas allowed, start-ups not counted);
* tail-aware bound = the same with each model's generation replayed without any overhead (``fidelity.ideal``);
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
    """The section: per mode the median makespan / bound with its spread, against the tail-aware bound, the speed-up
    over one model at a time; the fake servers' fidelity under the real client; the targets."""
    rows, fid = data["rows"], data.get("fidelity") or {}
    lines = [
        "## Night: 12 models on 8 GPUs, no history (benchmarks/night)",
        "",
        f"Command: `{data['command']}`. {data['nights']} seeded nights, time x{data['scale']:g}: the real scheduler,",
        "servers' lifecycle, client and checkpoint against fake vLLM servers that keep the calibrated H100 rates of",
        "`orchestrator/scheduling/calibration.json` (processor sharing, each of a request's n choices a sequence),",
        "DeathMath's size (2 x 190 problems x 4 samples), answers of 8k tokens on average (lognormal, sigma 0.6, at",
        "most 32k), each model's length x its own lognormal noise (sigma 0.3), unknown to the scheduler, whose",
        "estimates take max_tokens as the answer length. Figures are simulated seconds; median (min-max) over nights.",
        "",
        "| mode | makespan / bound | makespan / tail-aware bound | speed-up vs one at a time | batch fill | servers |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mode in sorted({r["replicas"] for r in rows}):
        mine = [r for r in rows if r["replicas"] == mode]
        ratio = [r["makespan"] / r["bound"] for r in mine]
        speed = [r["one_at_a_time"] / r["makespan"] for r in mine]
        tail = [r["makespan"] / r["tail_bound"] for r in mine]
        lines.append(
            f"| replicas: {mode} | **{statistics.median(ratio):.3f}** ({min(ratio):.3f}-{max(ratio):.3f}) | "
            f"{_spread(tail)} | **{statistics.median(speed):.2f}x** ({min(speed):.2f}-{max(speed):.2f}) | "
            f"{statistics.median(r['achieved'] for r in mine):.2f} | "
            f"{statistics.mean(r['servers'] for r in mine):.1f} |"
        )
    lines += [
        "",
        f"Targets: median makespan / bound <= {TARGET_BOUND}; >= {TARGET_SPEEDUP:g}x faster than one at a time.",
        "",
        "* Bound = GPU-seconds of generation / 8 at each model's full-batch rate (replicas allowed, start-ups not",
        "  counted). Tail-aware bound = the same with each model's generation replayed by a client without overhead",
        "  (`fidelity.ideal`, all its requests in one pass): a finite series ends in a thin batch while its longest",
        "  answers finish, which no schedule removes (only another model on the same GPU could use it).",
        "* One at a time (the by-hand flow) = the sum of each model's start-up and generation at its full-batch rate",
        "  (no tail: an ideal for that flow, so the speed-up is conservative).",
        "* Batch fill = the fake servers' tokens / (their busy seconds x full-batch rate): the bound assumes 1.",
    ]
    tails = [r["tail_bound"] / r["bound"] for r in rows]
    walls = [r["wall_s"] for r in rows]
    lines.append(
        f"* Where the gap is: the tail-aware bound is {statistics.median(tails):.2f} x the bound (median): the series'"
        " tails alone; makespan / tail-aware bound is the rest -- start-ups, the order chosen without knowing"
        " durations (estimates take max_tokens, 4x the mean answer here), a model's last tail alone on its GPUs."
        f" One night took {statistics.median(walls):.0f} s of wall time (median)."
    )
    if fid:
        lines.append(
            f"* Fidelity (`python -m benchmarks.night.fidelity --scale {fid['scale']:g}`, one 7B series alone): the"
            f" real run took {fid['real_s']} s, the same requests replayed without client overhead {fid['ideal_s']} s:"
            f" **{fid['fidelity']:.3f}** (target >= {fidelity.TARGET}); the ideal itself fills the batch"
            f" {fid['ideal_fill']:.2f} of the time (the series' tail)."
        )
    return "\n".join(lines) + "\n"


def _spread(values: list[float]) -> str:
    """Median (min-max)."""
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.night", description=__doc__.splitlines()[0])
    ap.add_argument("--nights", type=int, default=8, help="seeded nights (~3.5 min each; 50 for the full figure)")
    ap.add_argument("--scale", type=float, default=100.0, help="simulated seconds per real second")
    ap.add_argument("--seed", type=int, default=0, help="the first night's seed")
    ap.add_argument("--modes", default="auto,1", help="replicas settings to run, comma-separated")
    ap.add_argument("--report-only", action="store_true", help="rewrite night.md from night.json (no night is run)")
    args = ap.parse_args(argv)
    if args.report_only:
        data = json.loads((RESULTS / "night.json").read_text(encoding="utf-8"))
    else:
        data = run(args)
        (RESULTS / "night.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    text = report(data)
    (RESULTS / "night.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


def run(args: argparse.Namespace) -> dict:
    """The fidelity check, then every seeded night in every mode."""
    fid = fidelity.check(args.scale, "qwen2.5-7b")
    print(json.dumps(fid), flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="night-") as tmp:
        for seed in range(args.seed, args.seed + args.nights):
            for mode in args.modes.split(","):
                rows.append(night(seed, args.scale, mode, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
    command = f"python -m benchmarks.night --nights {args.nights} --scale {args.scale:g} --modes {args.modes}"
    return {"command": command, "nights": args.nights, "scale": args.scale, "fidelity": fid, "rows": rows}


if __name__ == "__main__":
    sys.exit(main())
