"""``deathmath-orchestrate review --out cases.jsonl``: the answers where the judge and the rule grader disagree,
as candidate grading cases for a person to label.

One JSON object per line: model, dataset, id, sample, domain, task, reference, response, extracted, the rule
grader's verdict, the judge's verdict and reason, and ``label: null`` for the person to fill in (``correct`` or
``incorrect``). The file is written atomically; the details files are only read.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..contract import AnswerRecord
from ..fileio import atomic_write_text, jsonl_line
from ..results.judged import disagrees


def review_cases(records: Iterable[AnswerRecord]) -> list[dict]:
    """The disagreements among ``records`` as candidate cases (see the module docstring)."""
    cases = []
    for rec in records:
        if not disagrees(rec):
            continue
        judge = rec.judge or {}
        cases.append(
            {
                "model": rec.model,
                "dataset": rec.dataset,
                "id": rec.id,
                "sample": rec.sample,
                "domain": rec.domain,
                "task": rec.task,
                "reference": rec.reference,
                "response": rec.response,
                "extracted": rec.extracted,
                "rule_verdict": rec.verdict,
                "judge_verdict": judge.get("verdict"),
                "judge_reason": judge.get("reason", ""),
                "judge_model": judge.get("model", ""),
                "label": None,
            }
        )
    return cases


def write_review(records: Iterable[AnswerRecord], out: Path) -> int:
    """Write the candidate cases to ``out``; returns how many."""
    cases = review_cases(records)
    atomic_write_text(Path(out), "".join(jsonl_line(c).decode("utf-8") for c in cases))
    return len(cases)
