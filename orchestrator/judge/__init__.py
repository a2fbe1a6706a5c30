"""The LLM judge that audits the rule grader (``judge:`` in run.yaml).

The rule grader's verdict stays the score (``audit`` mode) or is joined by the judge's acceptances (``rescue``);
the judge is asked about every answer the rule grader rejected and a seeded share of those it accepted, and the
leaderboard shows where the two disagree. Modules: ``settings`` (the config block), ``prompt`` (what is asked),
``verdict`` (the reply read strictly, the judge hash), ``select`` (which answers), ``ask`` (an OpenAI-compatible
judge), ``store`` (the checkpoint of replies), ``audit`` (one series), ``review`` (disagreements as candidate
grading cases), ``job`` (the judge's job in a run). The counts the leaderboard shows are ``results.judged``.
"""

from ..results.judged import JudgeStats, disagrees, judge_stats, rescued
from .ask import ChatJudge, JudgeAsk
from .audit import AuditResult, audit_series, with_verdicts
from .review import write_review
from .settings import JudgeMode, JudgeSettings, parse_judge
from .store import JudgeStore
from .verdict import JudgeRecord, JudgeVerdict, read_reply

__all__ = [
    "AuditResult",
    "ChatJudge",
    "JudgeAsk",
    "JudgeMode",
    "JudgeRecord",
    "JudgeSettings",
    "JudgeStats",
    "JudgeStore",
    "JudgeVerdict",
    "audit_series",
    "disagrees",
    "judge_stats",
    "parse_judge",
    "read_reply",
    "rescued",
    "with_verdicts",
    "write_review",
]
