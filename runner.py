#!/usr/bin/env python3
"""The original DeathMath entry point, kept working: ``python runner.py [--config configs/run.yaml]
[--dataset all|russianmath|physics] [--no-cache] [--max-workers N]``.

It maps onto ``deathmath-orchestrate run``: ``--no-cache`` is ``--fresh`` and ``--max-workers`` sets every model's
``parallel``. The files produced are the same (``results/leaderboard.md``, ``results/details/<model>/``).
"""

from __future__ import annotations

import argparse
import sys


def translate(argv: list[str]) -> list[str]:
    """The ``deathmath-orchestrate run`` arguments for an original ``runner.py`` command line."""
    parser = argparse.ArgumentParser(prog="runner.py", description=__doc__)
    parser.add_argument("--config", default="configs/run.yaml")
    parser.add_argument("--dataset", default="all", help="all, russianmath (math) or russianphysics (physics)")
    parser.add_argument("--no-cache", action="store_true", help="ignore checkpoints and ask every problem again")
    parser.add_argument("--max-workers", type=int, default=None, help="concurrent requests per model")
    args = parser.parse_args(argv)
    out = ["run", "--config", args.config, "--dataset", args.dataset]
    if args.no_cache:
        out.append("--fresh")
    if args.max_workers is not None:
        out += ["--parallel", str(args.max_workers)]
    return out


if __name__ == "__main__":
    from orchestrator.cli import main

    sys.exit(main(translate(sys.argv[1:]), prog_name="runner.py"))
