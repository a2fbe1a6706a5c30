"""The GPU suite: the orchestrator with real vLLM on real GPUs (issue 8). One JSON result and one log per scenario.

    python3 -m benchmarks.gpu.suite s1 s3b s3a --out DIR [--model /tmp/gpu-model] [--deadline-s 540]
    python3 -m benchmarks.gpu.suite all --out DIR --cpu-dry-run      # the same code on CPU vLLM + a fake nvidia-smi
    python3 -m benchmarks.gpu.suite s4 --out DIR --s4-prompts 512 --s4-rounds 3 --s4-api-servers 1,4,2

Scenarios: s1 (one GPU, two models in turn), s2 (two GPUs: TP=2 + a TP=1 pair), s3a (SIGKILL + cleanup), s3b (models
that cannot fit), s4 (throughput; with the scheduler's estimate against it), s5a / s5b (long generations; a
SIGSTOPped engine mid-run), s6 (a thinking budget: client vs engine), s7 (two GPUs: replicas of one model against
one server), sj (two models and a managed LLM judge on one GPU, in turn). ``--deadline-s`` is the
budget of the whole command counted from ``--t0`` (epoch seconds; default: now): a scenario that cannot finish in what
is left is skipped and says so. After each scenario ``DIR/logs.tgz`` is rewritten with every config, orchestrator
output, server log and GPU sample. ``python3 -m benchmarks.gpu.report`` turns the JSON files into
``benchmarks/results/gpu.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from . import smi
from .common import REPO, TITLES, Deadline, Profile, Recorder, Skip, pack_logs, prepare_environ
from .make_model import SHAPES
from .variants import CLIENTS

ORDER = ("s1", "s2", "s3b", "s3a", "s4", "s5a", "s5b", "s6", "s7", "sj")


def _scenario(name: str) -> Callable[[Profile, Deadline, Recorder], None]:
    from . import judging, longgen, planning, reasoning, scenarios, throughput

    return {
        "s1": scenarios.s1,
        "s2": scenarios.s2,
        "s3a": scenarios.s3a,
        "s3b": scenarios.s3b,
        "s4": throughput.s4,
        "s5a": longgen.s5a,
        "s5b": longgen.s5b,
        "s6": reasoning.s6,
        "s7": planning.s7,
        "sj": judging.sj,
    }[name]


def dry_run_setup(work: Path) -> Path:
    """CPU dry run: a fake two-GPU nvidia-smi first on PATH, and the tiny smoke model."""
    os.environ["FAKE_SMI_TAG"] = smi.install_fake(work / "bin")
    os.environ["PATH"] = f"{work / 'bin'}{os.pathsep}{os.environ['PATH']}"
    model = REPO / "models" / "tiny-llama"
    if (model / "config.json").is_file() and (model / "model.safetensors").is_file():
        return model
    from orchestrator.smoke_model import write_smoke_model

    return write_smoke_model(work / "tiny-llama")


def ensure_model(model: Path, python: str, timeout: float = 300.0) -> None:
    """Make the 0.8B model in a process of its own (the suite never holds a CUDA context)."""
    began = time.monotonic()
    proc = subprocess.run(
        [python, "-m", "benchmarks.gpu.make_model", "--out", str(model)], cwd=REPO, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"make_model failed with exit {proc.returncode}")
    print(f"{time.strftime('%H:%M:%S')} model ready in {time.monotonic() - began:.0f} s", flush=True)


def sweep(work: Path, when: str) -> None:
    """Kill servers of earlier scenarios or commands whose orchestrator is gone (vLLM servers run in sessions of
    their own, so they outlive the command that started them) and log GPU memory."""
    from orchestrator.serving.records import cleanup

    for logs in sorted(work.glob("*/logs")):
        for rec in cleanup(logs):
            print(f"{time.strftime('%H:%M:%S')} sweep {when}: killed orphan {rec.describe()}", flush=True)
    snap = smi.snapshot()
    used = ", ".join(f"GPU {g['index']} {g['used_mib']} MiB" for g in snap["gpus"]) or snap.get("error", "")
    print(f"{time.strftime('%H:%M:%S')} sweep {when}: {used}; {len(snap['apps'])} compute process(es)", flush=True)


def run_one(name: str, profile: Profile, deadline: Deadline, out: Path) -> str:
    """Run one scenario; whatever happens its JSON says how it ended."""
    rec = Recorder(out, name, TITLES[name], profile)
    snap = smi.snapshot()
    rec.data["host"]["gpus"] = [{k: g[k] for k in ("index", "name", "total_mib")} for g in snap["gpus"]]
    rec.log(f"{TITLES[name]} ({rec.data['mode']}; {deadline.left():.0f} s left in this command)")
    try:
        _scenario(name)(profile, deadline, rec)
        return rec.finish()
    except Skip as exc:
        return rec.finish("skipped", str(exc))
    except Exception as exc:  # noqa: BLE001 -- recorded with its traceback; the next scenario still runs
        rec.failure("unexpected error", "".join(traceback.format_exception(exc))[-3000:])
        return rec.finish("error", f"{type(exc).__name__}: {exc}")
    finally:
        try:
            pack_logs(profile.work, out)
        except OSError as exc:
            print(f"could not pack the logs: {exc}", flush=True)


def s4_overrides(profile: Profile, args: argparse.Namespace) -> Profile:
    """The profile with s4's sizes from the command line, where given."""
    changes: dict[str, object] = {}
    if args.s4_prompts:
        changes["s4_prompts"] = args.s4_prompts
    if args.s4_rounds:
        changes["s4_rounds"] = args.s4_rounds
    if args.s4_api_servers:
        changes["s4_api_servers"] = tuple(int(n) for n in args.s4_api_servers.split(",") if n.strip())
    if args.s4_clients:
        keys = tuple(k.strip() for k in args.s4_clients.split(",") if k.strip())
        known = [c.key for c in CLIENTS.values()]
        if unknown := [k for k in keys if k not in known]:
            raise SystemExit(f"--s4-clients: no client variant {', '.join(unknown)}; use some of {','.join(known)}")
        changes["s4_clients"] = keys
    changes.update({k: v for k, v in (("s4_stats_off", args.s4_stats_off), ("s4_shape", args.s4_shape)) if v})
    if args.s4_no_profile:
        changes["s4_profile"] = False
    if args.s6_ways:
        ways = tuple(w.strip() for w in args.s6_ways.split(",") if w.strip())
        if unknown := [w for w in ways if w not in Profile.s6_ways]:
            raise SystemExit(f"--s6-ways: no way {', '.join(unknown)}; use some of {','.join(Profile.s6_ways)}")
        changes["s6_ways"] = ways
    return dataclasses.replace(profile, **changes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.gpu.suite", description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="+", choices=[*ORDER, "all"])
    parser.add_argument("--out", type=Path, required=True, help="where the JSON results and logs go")
    parser.add_argument("--model", type=Path, default=Path("/tmp/gpu-model"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu-suite"), help="configs, results, server logs")
    parser.add_argument("--cpu-dry-run", action="store_true", help="tiny model, CPU vLLM, fake nvidia-smi")
    parser.add_argument("--deadline-s", type=float, default=3600.0, help="budget of the command, from --t0")
    parser.add_argument("--t0", type=float, default=None, help="when the command began (epoch seconds)")
    parser.add_argument("--s4-prompts", type=int, default=None, help="s4: prompts per pass (default 1024)")
    parser.add_argument("--s4-rounds", type=int, default=None, help="s4: rounds per variant (default 3)")
    parser.add_argument(
        "--s4-api-servers", default=None, help="s4: --api-server-count of each server variant, in order (default 1,4,2)"
    )
    parser.add_argument(
        "--s4-stats-off", action="store_true", help="s4: one more server variant, started with --disable-log-stats"
    )
    parser.add_argument(
        "--s4-clients",
        default=None,
        help="s4: client variants by key, e.g. queue,bare "
        f"(of {','.join(c.key for c in CLIENTS.values())}; default all)",
    )
    parser.add_argument(
        "--s4-shape",
        choices=sorted(SHAPES),
        default=None,
        help="s4: that architecture's shape with dummy weights instead of the 0.8B model",
    )
    parser.add_argument("--s4-no-profile", action="store_true", help="s4: no py-spy pass (its time goes to rounds)")
    parser.add_argument("--s6-ways", default=None, help="s6: the ways to run, e.g. engine (default client,engine)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
    prepare_environ()
    args.work.mkdir(parents=True, exist_ok=True)
    deadline = Deadline(args.t0 or time.time(), args.deadline_s)
    model = dry_run_setup(args.work) if args.cpu_dry_run else args.model
    profile = s4_overrides(Profile.make(args.cpu_dry_run, model, args.work), args)  # bad flags: before the model
    if not args.cpu_dry_run:
        ensure_model(model, sys.executable, timeout=deadline.cap(300))
    names = list(ORDER) if "all" in args.scenarios else list(dict.fromkeys(args.scenarios))
    sweep(args.work, "before")
    try:
        statuses = {name: run_one(name, profile, deadline, args.out) for name in names}
    finally:
        sweep(args.work, "after")
    print("suite: " + ", ".join(f"{k} {v}" for k, v in statuses.items()), flush=True)
    return 0 if all(s in ("passed", "skipped") for s in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
