"""Which answers the judge is asked about.

Every answer the rule grader did not mark correct (``incorrect``, ``unparsed``), and a seeded share of the correct
ones, to estimate the grader's false positives. Never an answer that is not there: a transport error, an empty
response, or a grader ``timeout`` (its check did not finish; the issue of that answer is the grader's, and it is
counted apart). The share is drawn per answer from a hash of the seed and the answer's identity, so the same seed
picks the same answers on every run and resume, whatever the order they are met in.
"""

from __future__ import annotations

import hashlib

from ..contract import AnswerRecord

JUDGED_VERDICTS = frozenset({"incorrect", "unparsed"})


def in_share(seed: int, model: str, dataset: str, key: str, share: float) -> bool:
    """Whether this answer falls in the seeded ``share`` (0 none, 1 all)."""
    if share <= 0:
        return False
    if share >= 1:
        return True
    digest = hashlib.sha256(f"{seed}\0{model}\0{dataset}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def needs_judging(rec: AnswerRecord, *, model: str, share: float, seed: int) -> bool:
    """Whether the judge is asked about ``rec`` (see the module docstring)."""
    if rec.error or not rec.response.strip():
        return False
    if rec.verdict in JUDGED_VERDICTS:
        return True
    return rec.verdict == "correct" and in_share(seed, model, rec.dataset, rec.key, share)
