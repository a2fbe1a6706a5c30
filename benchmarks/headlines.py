"""The headline table that opens BENCHMARKS.md: per benchmark, its current figure, baseline, target, machine, date.

Every figure is read from the stored results, never typed here: a CPU benchmark's from its section
(``benchmarks/results/<name>.md``, where ``Rule`` says which words of it to take), the GPU scenarios' from their JSON
(``benchmarks.gpu.report.headlines``). A pattern that no longer matches its section shows ``?`` in the table, and
``missing`` names it, so a reworded section cannot silently drop a figure (tests/unit/test_benchmarks_report.py).
The date of a section is the one ``run_all`` recorded when it ran the benchmark (``runs.json``, committed with the
sections, so ``--assemble-only`` gives the same file anywhere), else the date of
the section's last commit.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

NONE = "—"
UNMATCHED = "?"


@dataclass(frozen=True)
class Headline:
    measure: str
    figure: str
    baseline: str
    target: str
    machine: str
    date: str


@dataclass(frozen=True)
class Pick:
    """The groups of ``pattern``'s match in a section, put into ``template`` (the last match when ``last``)."""

    pattern: str
    template: str = "{0}"
    last: bool = False

    def read(self, text: str) -> str:
        found = list(re.finditer(self.pattern, text, re.DOTALL))
        if not found:
            return UNMATCHED
        return self.template.format(*(" ".join(g.split()) for g in found[-1 if self.last else 0].groups()))


@dataclass(frozen=True)
class Rule:
    """Where one headline of a CPU benchmark stands in its section. A field given as text names no figure."""

    name: str
    measure: str
    figure: Pick
    baseline: Pick | str = NONE
    target: Pick | str = NONE


_CLIENT = r"ours @ \d+ / (vllm bench serve @ \d+): \*\*([\d.]+)\*\*.*?\(target ([^)]+)\)"
_MIXES = r"random mixes.*?\| this scheduler \| ([\d.]+) \| [\d.]+ \| ([\d.]+) \| (\d+/\d+) \|"
_RAY = r"\*\*([+-][\d.]+%)\*\* of the local backend's \(([\d.]+ s) vs ([\d.]+ s)\)"
_NIGHT = (
    r"\| replicas: auto \| \*\*([\d.]+)\*\* \(([\d.]+)-([\d.]+)\) \| [^|]+ \| \*\*([\d.]+x)\*\* \(([\d.]+)-([\d.]+)\)"
)
_LOST = r"[Aa]nswers lost: \*\*(\d+)\*\*.*?orphans(?: found)?:\s*\*\*(\d+)\*\*"
RULES = (
    Rule(
        "lifecycle",
        "Server start: orchestration overhead (in-run, median)",
        Pick(r"in-run, median: \*\*([^*]+)\*\*"),
        Pick(r"Baseline = ([^,;]+)"),
        Pick(r"in-run, median: \*\*[^*]+\*\*; target ([^:]+):"),
    ),
    Rule(
        "lifecycle",
        "Server teardown through `stop()` (median)",
        Pick(r"Teardown through .*?median: \*\*([^*]+)\*\*"),
        Pick(r"\(same signal by hand: ([^)]+)\)", "same signal by hand: {0}"),
        Pick(r"by hand: [^)]+\); target ([^:]+):"),
    ),
    Rule(
        "client_throughput",
        "Client throughput: ours / `vllm bench serve`, output tok/s (medians)",
        Pick(_CLIENT, "{1}"),
        Pick(_CLIENT, "{0}"),
        Pick(_CLIENT, "{2}"),
    ),
    Rule(
        "slow_server",
        "Long generations under a stall limit: answers stored",
        Pick(r"\*\*(\d+/\d+ answers stored, \d+ errors)\*\*"),
        Pick(r"came to before .*?: `[^`]+`, (\d+ of \d+ answered)", "a limit on the whole answer: {0}"),
        Pick(r"answers stored, \d+ errors\*\* \(target (\d+)\)", "{0} errors"),
    ),
    Rule(
        "slow_server",
        "Hung engine: SIGSTOP to the replacement server's start (median)",
        Pick(r"SIGSTOP to restart, median \*\*([^*]+)\*\*"),
        NONE,
        Pick(r"SIGSTOP to restart, .*?target ([^:]+):"),
    ),
    Rule(
        "samples_requests",
        "k samples: `n` = k in one request / k requests, output tok/s (median ratio)",
        Pick(r"median \*\*([\d.]+)\*\*"),
        Pick(r"median tok/s `n` = k \d+, (k requests \d+)", "{0} tok/s"),
    ),
    Rule(
        "grader",
        "Grader throughput in `grade_many` (median of rounds)",
        Pick(r"\(median (\d+)/s, slowest round (\d+)/s", "{0} answers/s (slowest round {1})"),
        Pick(r"\| baseline: ([^|]+?) \|[^|]*\|[^|]*\| ([\d.]+) \|", "{1} answers/s, {0}"),
        Pick(r"Target: (a median of more than \d+ answers/s)"),
    ),
    Rule(
        "grader",
        "Grader agreement with hand labels (real answers)",
        Pick(r"\| real answers, this grader \| (\d+) \| ([\d.]+%) \|", "{1} of {0}"),
        Pick(r"\| real answers, upstream DeathMath scores \| \d+ \| ([\d.]+%) \|", "upstream DeathMath scores: {0}"),
    ),
    Rule(
        "grader_adversarial",
        "Grader under adversarial answers: throughput vs ordinary ones",
        Pick(r"Adversarial vs ordinary: ([\d.]+x) the throughput"),
        Pick(r"\| baseline: ([^|]+?) \|[^|]*\|[^|]*\| (\d+) \|", "{0}: {1} answers/s"),
    ),
    Rule(
        "scheduling",
        "Scheduling: makespan / lower bound over seeded random mixes",
        Pick(_MIXES, "mean {0}, worst {1}; {2} mixes within target"),
        Pick(r"random mixes.*?\| config order \| ([\d.]+) \|", "config order: mean {0}"),
        Pick(r"target (<= \d+\.\d+)"),
    ),
    Rule(
        "run_memory",
        "Orchestrator memory during a run (peak RSS)",
        Pick(r"\| orchestrator process \(the run\) \| ([^|]+?) \|"),
        Pick(r"\| baseline: ([^|]+?) \| ([^|]+?) \|", "{1}, {0}"),
        Pick(r"target: (under [^)]+)\)"),
    ),
    Rule(
        "ray_overhead",
        "Ray backend: wall time vs the local backend (two models, median)",
        Pick(_RAY, "{0} ({1})"),
        Pick(_RAY, "local backend: {2}"),
        Pick(r"target (under \d+%)"),
    ),
    Rule(
        "weights_prefetch",
        "Weights prefetch: makespan / bound of one lane (median over rounds)",
        Pick(r"with / bound median ([\d.]+)"),
        Pick(r"without / with median ([\d.]+)", "without prefetch: {0} x the time with it"),
        Pick(r"Target with prefetch (<= [\d.]+ x bound)"),
    ),
    Rule(
        "night",
        "Night, 12 models on 8 fake GPUs, no history: makespan / bound (median, replicas: auto)",
        Pick(_NIGHT, "{0} ({1}-{2})"),
        Pick(r"\| replicas: 1 \| \*\*([\d.]+)\*\*", "replicas: 1: {0}"),
        Pick(r"Targets: median makespan / bound (<= [\d.]+)"),
    ),
    Rule(
        "night",
        "Night: speed-up over one model at a time (median, replicas: auto)",
        Pick(_NIGHT, "{3} ({4}-{5})"),
        "one model at a time, each alone on its TP",
        Pick(r"; (>= [\d.]+x) faster than one at a time"),
    ),
    Rule(
        "chaos",
        "Chaos soak: answers lost and orphans left (latest soak)",
        Pick(_LOST, "{0} lost, {1} orphans", last=True),
        NONE,
        Pick(r"\(target (\d+)\).*?orphans found: \*\*\d+\*\* \(target (\d+)\)", "{0} lost, {1} orphans"),
    ),
)


def cpu_headlines(results: Path, runs: dict[str, dict[str, str]], machine: str) -> list[Headline]:
    """The rows of ``RULES`` whose section is stored in ``results``; ``runs``: what ``run_all`` recorded of each run,
    ``machine``: the machine of a benchmark it holds nothing for."""
    rows = []
    for rule in RULES:
        path = results / f"{rule.name}.md"
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        field = [f if isinstance(f, str) else f.read(text) for f in (rule.figure, rule.baseline, rule.target)]
        run = runs.get(rule.name, {})
        rows.append(Headline(rule.measure, *field, run.get("machine", machine), run.get("date") or section_date(path)))
    return rows


def missing(rows: list[Headline]) -> list[str]:
    """The measures whose figure, baseline or target a pattern no longer finds."""
    return [r.measure for r in rows if UNMATCHED in (r.figure, r.baseline, r.target)]


def section_date(path: Path) -> str:
    """The date of the section's last commit, else ``NONE``."""
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%cs", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return NONE
    return out.stdout.strip() or NONE


def recorded_runs(path: Path) -> dict[str, dict[str, str]]:
    """``runs.json``: benchmark -> {"date", "machine"} of its last run through ``run_all``."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def table(rows: list[Headline]) -> list[str]:
    lines = ["| measure | figure | baseline | target | machine | date |", "|---|---|---|---|---|---|"]
    cells = [(r.measure, r.figure, r.baseline, r.target, r.machine, r.date) for r in rows]
    return lines + ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
