"""The in-memory view of one series: the best record per answer key (problem id, sample), and its score.

The score counts the first k samples of each problem (k from the meta's ``sampling.samples``, 1 when absent), so
a series asked with more samples is scored as a smaller k when the config lowers it.

``missing_answers`` is the one home of "is this series complete?": the job, ``run_series``, the weights prefetcher
and the Ray driver all ask it (through ``SeriesStore.missing``, ``SeriesState.missing`` or the Ray node's proxy).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..contract import AnswerRecord, Problem, SeriesScore, with_samples
from .judged import as_scored, judge_stats, mode_of
from .samples import Equivalence, outcomes, samples_of

log = logging.getLogger(__name__)


def to_record(obj: Mapping[str, Any]) -> AnswerRecord | None:
    """A details line as an ``AnswerRecord``; ``None`` (with a warning) when required fields are missing."""
    try:
        return AnswerRecord.from_dict(obj)
    except TypeError:
        log.warning("skipping a details line without the required fields (id=%r)", obj.get("id"))
        return None


def missing_answers(problems: Sequence[Problem], samples: int, answered: Callable[[str], bool]) -> list[Problem]:
    """The answers a series still lacks: each of ``problems`` ``samples`` times (``contract.with_samples``), those
    whose key ``answered`` denies, in order. Empty: the series is complete. ``samples`` 1 takes ``problems`` as they
    are (a list already expanded to its samples included)."""
    return [p for p in with_samples(problems, samples) if not answered(p.key)]


class SeriesState:
    """Best record per answer key in order of first appearance: the latest successful one, else the latest error.

    ``same`` (two extracted answers, domain, tolerance -> equivalent?) clusters answers for maj@k; the default is
    the grader's own equivalence.
    """

    def __init__(self, settings_hash: str | None = None, same: Equivalence | None = None) -> None:
        self.settings_hash, self.same = settings_hash, same
        self.best: dict[str, AnswerRecord] = {}
        self.foreign = 0  # lines of another settings hash (never mixed in)

    def absorb_dicts(self, objects: Iterable[Mapping[str, Any]]) -> None:
        """Absorb parsed JSONL objects."""
        for obj in objects:
            rec = to_record(obj)
            if rec is not None:
                self.absorb(rec)

    def absorb(self, rec: AnswerRecord) -> None:
        """Take ``rec`` unless it is an error and the id already has a successful answer."""
        if self.settings_hash and rec.settings_hash != self.settings_hash:
            self.foreign += 1
            return
        cur = self.best.get(rec.key)
        if cur is None or rec.error is None or cur.error is not None:
            self.best[rec.key] = rec

    def done(self, key: str) -> bool:
        """Whether answer ``key`` (``Problem.key``: the id for sample 0) has a successful answer."""
        rec = self.best.get(key)
        return rec is not None and rec.error is None

    def missing(self, problems: Sequence[Problem], samples: int = 1) -> list[Problem]:
        """``missing_answers`` of this state."""
        return missing_answers(problems, samples, self.done)

    def records(self) -> list[AnswerRecord]:
        return list(self.best.values())

    def score(self, meta: Mapping[str, Any], model: str, dataset: str) -> SeriesScore:
        """The aggregate of this series; ``total``, ``eval_seconds`` and k come from the meta.

        ``answered`` counts the problems with all k samples answered; ``correct`` the correct samples among them
        (with the meta's judge mode ``rescue``, the judge-accepted ones too: ``judged.as_scored``).
        """
        k = samples_of(meta)
        counted = [r for r in self.best.values() if r.sample < k]
        ok = [r for r in counted if r.error is None]
        mode = mode_of(meta)
        per_problem = outcomes([as_scored(r, mode == "rescue") for r in ok], k, self.same)
        return SeriesScore(
            model=model,
            dataset=dataset,
            settings_hash=self.settings_hash or str(meta.get("settings_hash", "")),
            total=max(int(meta.get("total") or 0), len(per_problem)),
            answered=len(per_problem),
            correct=sum(o.correct for o in per_problem),
            errors=len(counted) - len(ok),
            samples=k,
            outcomes=tuple(per_problem),
            prompt_tokens=sum(r.prompt_tokens for r in ok),
            completion_tokens=sum(r.completion_tokens for r in ok),
            eval_seconds=float(meta.get("eval_seconds") or 0.0),
            truncated=sum(r.finish_reason == "length" for r in ok),
            reasoning_tokens=tuple(r.reasoning_tokens for r in ok),
            forced=sum(r.forced for r in ok),
            answer_in_reasoning=sum(r.answer_in_reasoning for r in ok),
            judge=judge_stats(ok).counts() if mode else {},
            judge_mode=mode,
        )
