"""`make chaos`: ``python -m benchmarks.chaos [--minutes M | --rounds N] [--seed S]`` (``CHAOS_MINUTES`` too)."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shlex
import sys
import tempfile
from pathlib import Path

from .driver import ROOT, Settings
from .faults import KINDS, Fault
from .soak import soak, write_report


def parse_script(text: str | None) -> list[list[Fault]] | None:
    """'hang_engine:chaos-a,kill_orchestrator;port_taken:chaos-b' -> two rounds of faults (1 s after first answer)."""
    if not text:
        return None
    rounds = []
    for part in text.split(";"):
        faults = []
        for item in filter(None, part.split(",")):
            kind, _, model = item.partition(":")
            if kind not in KINDS:
                raise SystemExit(f"error: --script: unknown fault {kind!r}; known: {', '.join(KINDS)}")
            faults.append(Fault(kind=kind, model=model or None, delay=1.0))
        rounds.append(faults)
    return rounds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__)
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("CHAOS_MINUTES", 30)))
    parser.add_argument("--rounds", type=int, default=None, help="stop after N rounds (default: by time)")
    parser.add_argument("--seed", type=int, default=None, help="default: random, printed")
    parser.add_argument("--faults-per-round", type=int, default=2)
    parser.add_argument("--limit", type=int, default=10, help="problems per dataset")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "tiny-llama")
    parser.add_argument(
        "--script",
        default=None,
        help="scripted rounds instead of random ones: 'kind:model,kind;kind' (rounds split by ';')",
    )
    parser.add_argument("--keep", action="store_true", help="keep the rounds' directories")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not (args.model / "config.json").exists():
        print(f"error: no model at {args.model}; run `make smoke-model` first", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    with tempfile.TemporaryDirectory(prefix="chaos-", ignore_cleanup_errors=True) as tmp:
        workdir = Path(tempfile.mkdtemp(prefix="chaos-", dir=ROOT / "logs")) if args.keep else Path(tmp)
        settings = Settings(model_dir=args.model.resolve(), workdir=workdir, limit=args.limit)
        summary = soak(
            settings,
            seed=seed,
            minutes=None if args.rounds else args.minutes,
            rounds=args.rounds,
            faults_per_round=args.faults_per_round,
            scripted=parse_script(args.script),
        )
    command = "python -m benchmarks.chaos " + shlex.join(argv if argv is not None else sys.argv[1:])
    path = write_report(summary, command.strip(), ROOT / "benchmarks" / "results")
    from benchmarks.run_all import assemble

    print(f"wrote {path} and {assemble()}")
    for violation in summary.violations:
        print(f"violation: {violation}", file=sys.stderr)
    return 0 if not summary.violations else 1


if __name__ == "__main__":
    sys.exit(main())
