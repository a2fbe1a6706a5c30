"""What the LLM judge's verdicts on a series' details lines add up to (the score in rescue mode, the leaderboard's
counts): per model, how often the judge was asked and where it disagreed with the rule grader.

* ``judged``: answers with a parsed judge verdict (``unparsed`` replies are counted apart).
* ``rescued``: the rule grader said not correct, the judge said correct ("rule incorrect, judge correct");
  its share is of the judged answers the rule grader rejected.
* ``flagged``: the rule grader said correct, the judge said incorrect ("rule correct, judge incorrect");
  its share is of the judged answers the rule grader accepted (the seeded sample).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..contract import AnswerRecord, JudgeVerdict


@dataclass(frozen=True)
class JudgeStats:
    judged: int = 0
    unparsed: int = 0
    rule_rejected: int = 0  # judged answers the rule grader did not accept
    rule_accepted: int = 0  # judged answers the rule grader accepted
    rescued: int = 0
    flagged: int = 0

    @property
    def rescued_share(self) -> float:
        return self.rescued / self.rule_rejected if self.rule_rejected else 0.0

    @property
    def flagged_share(self) -> float:
        return self.flagged / self.rule_accepted if self.rule_accepted else 0.0

    def counts(self) -> dict[str, int]:
        """The counts alone (``SeriesScore.judge``); ``summed`` adds them up again."""
        return dataclasses.asdict(self)

    @classmethod
    def summed(cls, counts: Iterable[Mapping[str, int]]) -> JudgeStats:
        names = [f.name for f in dataclasses.fields(cls)]
        totals = dict.fromkeys(names, 0)
        for one in counts:
            for name in names:
                totals[name] += int(one.get(name, 0))
        return cls(**totals)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "judged": self.judged,
            "unparsed": self.unparsed,
            "rule_incorrect_judge_correct": self.rescued,
            "rule_incorrect_judge_correct_share": round(self.rescued_share, 4),
            "rule_correct_judge_incorrect": self.flagged,
            "rule_correct_judge_incorrect_share": round(self.flagged_share, 4),
        }


def verdict_of(rec: AnswerRecord) -> JudgeVerdict | None:
    """The judge's verdict stored on ``rec``, or None when it was not judged."""
    field = getattr(rec, "judge", None)
    if not isinstance(field, dict):
        return None
    try:
        return JudgeVerdict(field.get("verdict"))
    except ValueError:
        return None


def disagrees(rec: AnswerRecord) -> bool:
    """Whether the judge's parsed verdict differs from the rule grader's."""
    verdict = verdict_of(rec)
    if verdict is None or verdict is JudgeVerdict.UNPARSED:
        return False
    return (verdict is JudgeVerdict.CORRECT) != (rec.verdict == "correct")


def judge_stats(records: Iterable[AnswerRecord]) -> JudgeStats:
    judged = unparsed = rejected = accepted = rescued = flagged = 0
    for rec in records:
        verdict = verdict_of(rec)
        if verdict is None:
            continue
        if verdict is JudgeVerdict.UNPARSED:
            unparsed += 1
            continue
        judged += 1
        if rec.verdict == "correct":
            accepted += 1
            flagged += verdict is JudgeVerdict.INCORRECT
        else:
            rejected += 1
            rescued += verdict is JudgeVerdict.CORRECT
    return JudgeStats(judged, unparsed, rejected, accepted, rescued, flagged)


def rescued(rec: AnswerRecord) -> bool:
    """Whether ``rec`` counts as correct in ``rescue`` mode: the rule grader's correct, or the judge's."""
    return rec.verdict == "correct" or verdict_of(rec) is JudgeVerdict.CORRECT


def as_scored(rec: AnswerRecord, rescue: bool) -> AnswerRecord:
    """``rec`` as the score counts it: in ``rescue`` mode a judge-accepted answer is ``correct``."""
    if rescue and rec.verdict != "correct" and rescued(rec):
        return dataclasses.replace(rec, verdict="correct")
    return rec


def mode_of(meta: Mapping) -> str:
    """The judge mode a series' meta records (``judge.mode``): "" when it was never judged."""
    judge = meta.get("judge")
    mode = judge.get("mode") if isinstance(judge, Mapping) else None
    return mode if mode in ("audit", "rescue") else ""
