"""Per-problem outcomes of a series of k samples: correct samples and the majority answer's credit (maj@k).

Majority voting clusters the extracted answers by the grader's own equivalence, not by string: ``1/2``, ``0.5``
and ``\\frac{1}{2}`` are one answer. Correct answers are all equivalent to the reference and form one cluster;
the incorrect ones are clustered among themselves (each joins the first cluster whose first answer it equals), but
only when they could outnumber the correct cluster, so a problem the model mostly gets right costs no check.
Samples with no extracted answer do not vote. The majority's credit is 1 when the correct cluster is strictly the
largest, 1/m when it ties with m - 1 others (the expected credit of a random tie-break), else 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..contract import AnswerRecord, ProblemOutcome
from ..grading import grade

# (answer a, answer b, domain, tolerance) -> are they the same answer?
Equivalence = Callable[[str, str, str, "float | None"], bool]


def samples_of(meta: Mapping[str, Any]) -> int:
    """k of a series from its meta (``sampling.samples``); 1 for series written before samples existed."""
    sampling = meta.get("sampling")
    value = sampling.get("samples") if isinstance(sampling, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


def grader_equivalence(a: str, b: str, domain: str, tolerance: float | None) -> bool:
    """The grader's verdict on answer ``a`` against ``b`` taken as the reference."""
    return grade(f"Ответ: {a}", b, domain, tolerance).verdict == "correct"


def outcomes(records: Iterable[AnswerRecord], k: int, same: Equivalence | None = None) -> list[ProblemOutcome]:
    """One outcome per problem whose samples 0..k-1 are all in ``records`` (successful ones), in first-seen order."""
    by_id: dict[str, dict[int, AnswerRecord]] = {}
    for rec in records:
        if rec.sample < k:
            by_id.setdefault(rec.id, {})[rec.sample] = rec
    full = [(pid, [got[i] for i in range(k)]) for pid, got in by_id.items() if len(got) == k]
    equal = same or grader_equivalence
    return [
        ProblemOutcome(pid, k, sum(r.verdict == "correct" for r in recs), majority(recs, equal)) for pid, recs in full
    ]


def majority(records: Sequence[AnswerRecord], same: Equivalence) -> float:
    """The credit of the majority answer of one problem's samples (see the module docstring)."""
    correct = sum(r.verdict == "correct" for r in records)
    others = [r for r in records if r.verdict != "correct" and r.extracted]
    if correct == 0:
        return 0.0
    if correct > len(others):
        return 1.0
    sizes = cluster_sizes(others, same)
    largest = max(sizes, default=0)
    if correct != largest:
        return 1.0 if correct > largest else 0.0
    return 1.0 / (1 + sizes.count(largest))


def cluster_sizes(records: Sequence[AnswerRecord], same: Equivalence) -> list[int]:
    """Sizes of the clusters of ``records``' extracted answers: each joins the first cluster it equals."""
    heads: list[AnswerRecord] = []
    sizes: list[int] = []
    for rec in records:
        for i, head in enumerate(heads):
            if rec.extracted == head.extracted or same(rec.extracted, head.extracted, head.domain, head.tolerance):
                sizes[i] += 1
                break
        else:
            heads.append(rec)
            sizes.append(1)
    return sizes
