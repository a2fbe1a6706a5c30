"""Planning on the GPU (issue 32): the scheduler's estimate against a measured run, and replicas on two GPUs.

* ``estimate_vs_measured`` (added to s4's figures as ``estimate``): ``orchestrator.scheduling.estimate`` for s4's
  model shape (its parameters x 2 bytes, bf16), TP 1 and the GPU's ``nvidia-smi`` name, on s4's work (prompts x
  ``max_tokens`` with ``ignore_eos``: every answer is ``max_tokens`` long, at s4's concurrency), against the
  median of our client's measured passes: estimated and measured seconds and tok/s, their ratio, the calibrated
  start-up against the measured server start. What recalibration (``orchestrator/scheduling/calibration.json``)
  should take from the GPU.
* ``s7`` (two GPUs; skipped on one): one TP=1 model (Llama-3.1-8B's shape, dummy weights) on ``--gpus 0,1``, first
  with ``replicas: 1`` (one server, the other GPU idle), then with ``replicas: auto`` on the same work: the second
  run starts a replica on GPU 1 (``policy.fill``: the estimate of an unknown-size folder is long, so it pays), every
  (problem, sample) is stored once, and the run with the replica ends sooner. Figures: each run's seconds, the
  speed-up, the servers seen per GPU.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from orchestrator.scheduling.estimate import ModelFacts, Workload, estimate

from .common import Deadline, Profile, Recorder, write_config
from .make_model import param_count, write_shape
from .scenarios import SAMPLES, fresh, need_gpus, statuses, watched_run

CLIENTS = ("ours", "bare")  # the labels of our client's passes in s4 (``variants.CLIENT_LABELS``)


def estimate_vs_measured(
    config: dict, gpu: str | None, passes: list[dict], max_tokens: int, concurrency: int, startups: dict | None
) -> dict[str, Any]:
    """See the module docstring; {} when no client pass was measured."""
    ours = [r for r in passes if r.get("label") in CLIENTS and r.get("round", 1) >= 1]
    if not ours:
        return {}
    facts = ModelFacts(param_count(config) * 2, 1, 1, gpu)
    answers = int(statistics.median(r["requests"] for r in ours))
    est = estimate(facts, Workload(answers, max_tokens, concurrency, float(max_tokens)))
    generation = est.seconds - est.startup_s
    measured = statistics.median(r["seconds"] for r in ours)
    measured_startup = statistics.median(startups.values()) if startups else None
    return {
        "gpu": gpu,
        "basis": est.basis,
        "estimate_s": round(generation, 1),
        "measured_s": round(measured, 1),
        "estimate_over_measured": round(generation / measured, 2) if measured else None,
        "estimate_tok_s": round(est.tok_s),
        "measured_tok_s": round(statistics.median(r["tok_s"] for r in ours)),
        "startup_estimate_s": round(est.startup_s, 1),
        "startup_measured_s": None if measured_startup is None else round(measured_startup, 1),
    }


def record_estimate(rec: Recorder, model: Path, gpu: str | None, p: Profile) -> None:
    """s4's ``estimate`` figure (see ``estimate_vs_measured``)."""
    config = json.loads((model / "config.json").read_text())
    figures = rec.data["figures"]
    got = estimate_vs_measured(
        config, gpu, figures.get("passes", []), p.s4_max_tokens, p.s4_concurrency, figures.get("server_startup_s")
    )
    if got:
        rec.figure("estimate", got)
        rec.log(f"estimate {got['estimate_s']} s vs measured {got['measured_s']} s ({got['basis']})")


# ---------------------------------------------------------------------------------------------------- s7


def s7(p: Profile, dl: Deadline, rec: Recorder) -> None:
    """One TP=1 model on two GPUs: one server, then replicas: auto on the same work."""
    dl.need(480 if not p.dry_run else 600, "s7")
    need_gpus(2)
    d = fresh(p.work / "s7")
    model = p.model if p.dry_run else write_shape(p.model, d / "shape-llama-8b", "llama-8b")
    args = () if p.dry_run else ("--load-format", "dummy")
    rec.figure("setup", {"samples": p.s7_samples, "max_tokens": p.s7_max_tokens, "problems": p.s7_limit})
    seconds = {}
    for mode in ("1", "auto"):
        if mode == "auto" and dl.left() < seconds.get("1", 0.0) + 60:
            rec.note(f"replicas: auto skipped: {dl.left():.0f} s left, one server took {seconds['1']:.0f} s")
            break
        run_dir = fresh(d / f"replicas-{mode}")
        entry = p.model_block("gpu-llama-r", args=args)
        entry["vllm"]["model"] = str(model)
        entry.update(
            replicas=1 if mode == "1" else "auto", samples=p.s7_samples, max_tokens=p.s7_max_tokens, temperature=0.6
        )
        cfg = write_config(run_dir / "run.yaml", {"llama-r": entry}, SAMPLES, num_examples=p.s7_limit)
        began = time.monotonic()
        run = watched_run(p, dl, rec, run_dir, cfg, "0,1")
        seconds[mode] = time.monotonic() - began
        servers = sorted({tuple(v["gpus"]) for v in run.seen["servers"].values()})
        rec.figure(f"replicas_{mode}", {"seconds": round(seconds[mode], 1), "servers_on_gpus": servers})
        rec.check(f"replicas: {mode}: exit code 0", run.code == 0, f"exit {run.code}; {statuses(run.summary)}")
        rec.check(f"replicas: {mode}: each answer stored once", *answered_once(run_dir, p.s7_samples))
        if mode == "auto":
            rec.check("replicas: auto: servers on both GPUs", {(0,), (1,)} <= set(servers), json.dumps(servers))
    if len(seconds) == 2:
        rec.figure("speedup", round(seconds["1"] / seconds["auto"], 2))
        rec.check(
            "the replica beats one server on the same work",
            seconds["auto"] < seconds["1"],
            f"{seconds['auto']:.0f} s vs {seconds['1']:.0f} s",
        )


def answered_once(run_dir: Path, samples: int) -> tuple[bool, str]:
    """Every (problem, sample) of every series stored exactly once, none an error."""
    rows = [
        json.loads(line)
        for path in (run_dir / "results" / "details" / "llama-r").glob("*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    keys = Counter((r["dataset"], r["id"], r.get("sample", 0)) for r in rows)
    twice = [k for k, n in keys.items() if n > 1]
    errors = sum(r.get("error") is not None for r in rows)
    problems = {(r["dataset"], r["id"]) for r in rows}
    complete = len(keys) == len(problems) * samples
    return (bool(rows) and not twice and not errors and complete), (
        f"{len(keys)} answers of {len(problems)} problems x {samples}; {len(twice)} stored twice; {errors} errors"
    )
