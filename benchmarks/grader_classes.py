"""Agreement per issue-29 class on the sets of answers nobody wrote for the grader (tests/data/grading/).

Run: ``.venv/bin/python -m benchmarks.grader_classes [--save NAME]``; prints the per-class figures of
``general.jsonl`` (written by the issue-29 developer, not blind) and ``blind_general.jsonl`` (written blind) and,
with ``--save``, stores them under NAME in ``benchmarks/results/grader_classes.json``. The grader section
(benchmarks/grader.py) measures the current grader with ``measure`` and shows it next to the stored ``before``
(measured once with the grader as it was before issue 29, PYTHONPATH pointing at that tree).
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

from benchmarks.grader_gold import request, rows
from orchestrator.grading import GraderPool, grade_many

SETS = ("general.jsonl", "blind_general.jsonl")
STORED = Path(__file__).resolve().parent / "results" / "grader_classes.json"
Figures = dict[str, dict[str, list[int]]]  # set -> class -> [cases, agree, false positives, false negatives]


def measure(pool: GraderPool | None = None) -> Figures:
    """``{set: {class: [cases, agreeing, false positives, false negatives]}}`` for every set present."""
    out: Figures = {}
    for name in SETS:
        cases = rows(name)
        if not cases:
            continue
        grades = grade_many([request(c) for c in cases], pool=pool)
        table: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
        for case, grade in zip(cases, grades):
            truth, said = case["verdict"] == "correct", grade.verdict == "correct"
            for key in (str(case.get("class", 0)), "all"):
                cell = table[key]
                cell[0] += 1
                cell[1] += truth == said
                cell[2] += said and not truth
                cell[3] += truth and not said
        out[name] = dict(sorted(table.items(), key=lambda kv: (kv[0] == "all", int(kv[0]) if kv[0] != "all" else 0)))
    return out


def stored() -> dict:
    """What ``--save`` stored (``{}`` when nothing was)."""
    return json.loads(STORED.read_text(encoding="utf-8")) if STORED.is_file() else {}


def _cell(figures: list[int] | None) -> str:
    return f"{figures[1] / figures[0]:.0%} ({figures[1]}/{figures[0]}), {figures[2]} FP" if figures else "-"


def rows_for(name: str, columns: list[tuple[str, Figures]]) -> list[str]:
    """Markdown rows: per class, agreement and false positives in each ``(heading, figures)`` column."""
    shown = [(heading, figures[name]) for heading, figures in columns if name in figures]
    lines = [
        f"`{name}`",
        "",
        "| class | cases | " + " | ".join(heading for heading, _ in shown) + " |",
        "|---|---:|" + "---:|" * len(shown),
    ]
    for key, (n, *_) in shown[-1][1].items():
        lines.append(f"| {key} | {n} | " + " | ".join(_cell(table.get(key)) for _, table in shown) + " |")
    return lines


def main(argv: list[str] | None = None) -> Figures:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", help="store the figures under this name (before, after)")
    args = parser.parse_args(argv)
    figures = measure()
    for name, table in figures.items():
        print(name)
        for key, (n, agree, fp, fn) in table.items():
            print(f"  class {key:>3}: {agree}/{n} agree, {fp} false positives, {fn} false negatives")
    if args.save:
        data = stored()
        data[args.save] = figures
        STORED.parent.mkdir(parents=True, exist_ok=True)
        STORED.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
