"""Rounds after rounds for a set time (or count), a summary of them, and its BENCHMARKS.md section."""

from __future__ import annotations

import json
import logging
import platform
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .driver import Round, RoundResult, Settings, plan_faults
from .faults import KINDS, Fault

log = logging.getLogger(__name__)


@dataclass
class Summary:
    """What the soak found: per-kind counts, losses, orphans, the slowest recovery and every violation."""

    seed: int
    rounds: list[RoundResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def faults(self) -> list[Fault]:
        return [f for r in self.rounds for f in r.faults]

    def injected(self) -> Counter:
        return Counter(f.kind for f in self.faults if f.injected_at is not None)

    def missed(self) -> Counter:
        return Counter(f.kind for f in self.faults if f.injected_at is None)

    def recovered(self) -> Counter:
        return Counter(f.kind for f in self.faults if f.recovery_s is not None)

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.rounds)

    @property
    def orphans(self) -> int:
        return sum(r.orphans for r in self.rounds)

    @property
    def violations(self) -> list[str]:
        return [f"round {r.index}: {v}" for r in self.rounds for v in r.violations]

    def slowest_recovery(self) -> Fault | None:
        timed = [f for f in self.faults if f.recovery_s is not None]
        return max(timed, key=lambda f: f.recovery_s or 0.0) if timed else None

    def to_json(self) -> dict:
        return {
            "seed": self.seed,
            "seconds": round(self.seconds, 1),
            "lost": self.lost,
            "orphans": self.orphans,
            "injected": dict(self.injected()),
            "missed": dict(self.missed()),
            "recovered": dict(self.recovered()),
            "violations": self.violations,
            "rounds": [
                {
                    "index": r.index,
                    "seconds": round(r.seconds, 1),
                    "invocations": r.invocations,
                    "server_starts": r.server_starts,
                    "lost": r.lost,
                    "duplicates": r.duplicates,
                    "orphans": r.orphans,
                    "faults": [f.describe() for f in r.faults],
                    "violations": r.violations,
                }
                for r in self.rounds
            ],
        }


def soak(
    settings: Settings,
    *,
    seed: int,
    minutes: float | None = None,
    rounds: int | None = None,
    faults_per_round: int = 2,
    scripted: Sequence[Sequence[Fault]] | None = None,
) -> Summary:
    """Run rounds until ``minutes`` have passed or ``rounds`` are done (``scripted``: those rounds' faults)."""
    rng, summary, began = random.Random(seed), Summary(seed=seed), time.monotonic()
    log.info("chaos soak: seed %d", seed)
    print(f"chaos soak: seed {seed} (rerun with --seed {seed})", flush=True)
    index = 0
    while _more(index, began, minutes, rounds, scripted):
        faults = list(scripted[index]) if scripted else plan_faults(rng, faults_per_round)
        result = Round(index, settings, faults).run()
        summary.rounds.append(result)
        print(_round_line(result), flush=True)
        index += 1
    summary.seconds = time.monotonic() - began
    return summary


def _more(
    index: int, began: float, minutes: float | None, rounds: int | None, scripted: Sequence[Sequence[Fault]] | None
) -> bool:
    if scripted is not None:
        return index < len(scripted)
    if rounds is not None and index >= rounds:
        return False
    # a round takes a few minutes: start one only while at least half of the median round fits the budget
    return minutes is None or time.monotonic() - began < minutes * 60


def _round_line(r: RoundResult) -> str:
    faults = ", ".join(
        f"{f.kind}({f.model or 'orchestrator'})"
        + (
            f" missed: {f.missed}"
            if f.missed
            else f" recovered in {f.recovery_s:.0f}s"
            if f.recovery_s is not None
            else " not recovered"
        )
        for f in r.faults
    )
    status = "ok" if r.ok else "FAILED: " + "; ".join(r.violations)
    runs = f"{r.invocations} run(s), {r.server_starts} server start(s)"
    return f"round {r.index}: {r.seconds:.0f}s, {runs}; {faults}; {status}"


def render(summary: Summary, command: str) -> str:
    """The BENCHMARKS.md section of a soak."""
    injected, missed, recovered = summary.injected(), summary.missed(), summary.recovered()
    slow = summary.slowest_recovery()
    lines = [
        "## Chaos soak: faults injected at random into real runs",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, Python {platform.python_version()}; {time.strftime('%Y-%m-%d')}; "
        f"seed {summary.seed}; {summary.seconds / 60:.1f} min.",
        "",
        "Each round runs the real orchestrator (two managed models on real vLLM CPU servers, the tiny model, both "
        "sample datasets) in fresh directories and injects faults at random moments.",
        "",
        "| fault | injected | recovered | not injected (the run finished first, or vLLM won the race) |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {k} | {injected[k]} | {recovered[k]} | {missed[k]} |" for k in KINDS]
    lines += [
        "",
        f"- Rounds: {len(summary.rounds)}, of which passed every check: {sum(r.ok for r in summary.rounds)}.",
        f"- Orchestrator invocations: {sum(r.invocations for r in summary.rounds)}; vLLM server starts: "
        f"{sum(r.server_starts for r in summary.rounds)}.",
        f"- Answers lost: **{summary.lost}** (target 0); answered twice: "
        f"{sum(r.duplicates for r in summary.rounds)}; orphans found: **{summary.orphans}** (target 0).",
        f"- Slowest recovery: {_slow(slow)} (from the fault to the model's next stored answer; for an "
        "orchestrator fault with nothing left to ask, to the end of the resumed run).",
        f"- Slowest round: {max((r.seconds for r in summary.rounds), default=0):.0f} s.",
    ]
    if summary.violations:
        lines += ["", "Violations:", ""] + [f"- {v}" for v in summary.violations]
    return "\n".join(lines) + "\n"


def _slow(fault: Fault | None) -> str:
    if fault is None or fault.recovery_s is None:
        return "none measured"
    return f"{fault.recovery_s:.0f} s ({fault.kind} of {fault.model or 'the orchestrator'})"


def write_report(summary: Summary, command: str, results_dir: Path) -> Path:
    """benchmarks/results/chaos.md and chaos.json."""
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "chaos.json").write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    path = results_dir / "chaos.md"
    path.write_text(render(summary, command))
    return path
