"""Problems and what came of them: a dataset item (``Problem``, one per sample: ``with_samples``, ``answer_key``),
one answer (``AnswerRecord``, a details line), the grader's ``Grade``, a series' ``SeriesScore`` and a problem's
``ProblemOutcome``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DOMAINS = ("math", "physics")
VERDICTS = ("correct", "incorrect", "unparsed", "timeout")


@dataclass(frozen=True)
class Problem:
    """One dataset item with a stable id."""

    id: str
    dataset: str
    domain: str
    task: str
    reference: str
    tolerance: float | None = None
    sample: int = 0

    @property
    def key(self) -> str:
        """The checkpoint key of this (problem, sample): see ``answer_key``."""
        return answer_key(self.id, self.sample)


def answer_key(problem_id: str, sample: int) -> str:
    """The checkpoint key of one answer: the problem id for sample 0 (as before samples existed), else ``id#i``."""
    return problem_id if sample == 0 else f"{problem_id}#{sample}"


def with_samples(problems: Sequence[Problem], samples: int) -> list[Problem]:
    """Every problem ``samples`` times (``sample`` = 0..k-1), problem by problem."""
    if samples <= 1:
        return list(problems)
    return [dataclasses.replace(p, sample=i) for p in problems for i in range(samples)]


@dataclass
class AnswerRecord:
    """One answer: a line of the details JSONL. ``error`` set means a transport failure (never scored)."""

    id: str
    dataset: str
    model: str
    task: str
    reference: str
    response: str = ""
    reasoning: str = ""
    extracted: str = ""
    verdict: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None
    settings_hash: str = ""
    domain: str = "math"
    tolerance: float | None = None
    approximate: bool = False
    timestamp: float = 0.0
    sample: int = 0  # which of the k samples (0 in series written before samples existed)
    seed: int | None = None  # the seed it was asked with
    judge: dict[str, str] | None = None  # the LLM judge's {model, verdict, reason, hash}, when it was asked
    reasoning_tokens: int = 0  # generated inside the thinking block (the API's own count where it gives one)
    answer_tokens: int = 0  # generated after it (0 where unknown: lines written before)
    forced: bool = False  # the thinking reached reasoning.budget: closed, and the answer asked (``reasoning.forced``)
    answer_in_reasoning: bool = False  # content empty, the reasoning's last part states an answer
    graded_tail: bool = False  # graded from the reasoning's last part (grade_reasoning_tail), not the response

    @property
    def key(self) -> str:
        return answer_key(self.id, self.sample)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if data["judge"] is None:
            del data["judge"]  # lines of unjudged answers stay as they were
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AnswerRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Grade:
    """The grader's verdict on one response."""

    extracted: str
    verdict: str  # one of VERDICTS
    seconds: float = 0.0
    approximate: bool = False  # a decimal accepted for an exact reference


@dataclass(frozen=True)
class SeriesScore:
    """Aggregate of one series (model, dataset, settings hash)."""

    model: str
    dataset: str
    settings_hash: str
    total: int
    answered: int
    correct: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    eval_seconds: float
    samples: int = 1
    outcomes: tuple[ProblemOutcome, ...] = ()  # per problem with all its samples answered, in dataset order
    truncated: int = 0  # answers cut off by max_tokens (finish_reason "length"): scored, but worth knowing
    reasoning_tokens: tuple[int, ...] = ()  # per answer counted (same order as the records), for mean and p95
    forced: int = 0  # answers whose thinking reached reasoning.budget and was closed
    answer_in_reasoning: int = 0  # answers with an empty content and an answer at the end of the reasoning
    judge: Mapping[str, int] = field(default_factory=dict)  # the LLM judge's counts (results.judged.JudgeStats)
    judge_mode: str = ""  # "" not judged, audit or rescue (then ``correct`` counts judge-accepted answers too)

    @property
    def complete(self) -> bool:
        return self.answered >= self.total

    @property
    def accuracy(self) -> float:
        """avg@k over all problems (k = 1: correct / total)."""
        return self.correct / (self.total * self.samples) if self.total else 0.0


@dataclass(frozen=True)
class ProblemOutcome:
    """One problem's k samples: how many were correct, and the credit of the majority answer (maj@k).

    ``majority`` is 1 when the correct answer's cluster is the largest, 1/m when it ties with m-1 others, else 0.
    """

    id: str
    samples: int
    correct: int
    majority: float
