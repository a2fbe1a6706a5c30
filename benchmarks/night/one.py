"""One night, run by the real orchestrator in this process: ``python -m benchmarks.night.one --dir D --seed S ...``.

Builds the night's world (``world.build``), starts the API model's stand-in (a fake server with a constant rate per
request), puts the fake ``nvidia-smi`` first on PATH and calls ``orchestrate.execute`` -- the scheduler, the
servers' lifecycle, the client and the checkpoint, all real; grading off (it measures nothing here). Every fake
server's events land in ``D/events.jsonl``; the summary (servers, outcomes, wall seconds) goes to ``--out``.

Time is compressed ``--scale`` times for everything the scheduler sees (its clock, the servers' start-ups, the
models' live answer rates), so its estimates are too: each ``Estimate`` (seconds and start-up) is divided by the
scale (``compress_estimates``). Without it the scheduler would weigh estimates in real seconds against
projections in compressed ones (a replica would never seem to pay for its start-up).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.config import load_config
from orchestrator.orchestrate import RunOptions, execute
from orchestrator.scheduling import estimates
from orchestrator.scheduling.estimate import Estimate
from orchestrator.serving.gpus import default_lock_dir

from . import world


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--scale", type=float, required=True)
    ap.add_argument("--replicas", default="auto")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", default="", help="these models alone (comma-separated), no API model")
    ap.add_argument("--gpus", type=int, default=world.GPUS)
    ap.add_argument("--series", type=int, default=2, choices=(1, 2), help="datasets: both, or the math one alone")
    args = ap.parse_args(argv)
    compress_estimates(args.scale)
    events = args.dir / "events.jsonl"
    events.unlink(missing_ok=True)
    only = tuple(k for k in args.only.split(",") if k)
    port = None if only else _free_port()
    config = world.build(
        args.dir, args.seed, args.scale, args.replicas, events, port, only=only, gpus=args.gpus, series=args.series
    )
    os.environ["PATH"] = f"{args.dir / 'bin'}{os.pathsep}{os.environ['PATH']}"
    api = None if port is None else _api_standin(args.dir, port, args.scale, args.seed, events)
    began = time.time()
    try:
        summary = execute(
            RunOptions(
                config=load_config(str(config)),
                results_dir=args.dir / "results",
                logs_dir=args.dir / "logs",
                grade=False,
                progress_stream=open(os.devnull, "w"),
                fresh=True,
            )
        )
    finally:
        if api is not None:
            api.send_signal(signal.SIGTERM)
            api.wait(timeout=30)
        for lock in default_lock_dir().glob(f"{world.uuid_prefix(args.dir / 'bin')}-*.lock"):
            lock.unlink(missing_ok=True)  # this world's fake GPUs are gone with it
    lines = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
    result = {
        "seed": args.seed,
        "replicas": args.replicas,
        "scale": args.scale,
        "wall_s": time.time() - began,
        "outcomes": {o.model: str(o.status) for o in summary.outcomes},
        "servers": [e for e in lines if e["event"] == "end"],
        "models": [
            {"key": m.key, "tp": m.tp, "full_rate": m.full_rate, "points": m.points}
            for m in world.models(args.seed)
            if not only or m.key in only
        ],
        "api": world.API["name"],
    }
    args.out.write_text(json.dumps(result), encoding="utf-8")
    return 0 if all(v == "finished" for v in result["outcomes"].values()) else 1


def compress_estimates(scale: float) -> None:
    """Make the scheduler's estimates (``estimates.estimate`` and ``estimates.from_history``) ``scale`` x shorter,
    as the benchmark's clock is (see the module docstring)."""

    def compressed(make):
        def wrapper(*args, **kwargs) -> Estimate:
            est = make(*args, **kwargs)
            return dataclasses.replace(est, seconds=est.seconds / scale, startup_s=est.startup_s / scale)

        return wrapper

    estimates.estimate = compressed(estimates.estimate)
    estimates.from_history = compressed(estimates.from_history)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api_standin(folder: Path, port: int, scale: float, seed: int, events: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": f"{folder / 'fake'}{os.pathsep}{Path(__file__).resolve().parents[2]}",
        "NIGHT_FAKE": json.dumps(world.api_knobs(scale, seed)),
        "NIGHT_EVENTS": str(events),
    }
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        world.API["name"],
        "--port",
        str(port),
    ]
    cmd += ["--max-num-seqs", "100000"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the API model's stand-in did not start")


if __name__ == "__main__":
    sys.exit(main())
