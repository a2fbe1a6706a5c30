"""Aggregation: series scores -> leaderboard rows (see the package docstring for the rules)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from ..contract import ProblemOutcome, SeriesScore
from ..results import safe_name
from ..results.judged import JudgeStats
from .stats import Resampler, interval, pass_at_k, stratified

TITLES = {"russianmath": "RussianMath", "russianphysics": "RussianPhysics"}


def dataset_title(name: str) -> str:
    """The column header of a dataset: RussianMath, RussianPhysics, others as named."""
    return TITLES.get(name.lower(), name)


def details_link(model: str) -> str:
    """The model's details folder relative to ``results/`` (as ``orchestrator.results`` names it)."""
    return f"details/{quote(safe_name(model))}/"


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of ``correct`` successes in ``n`` trials; ``(0, 1)`` when ``n`` is 0."""
    return wilson_p(correct / n if n else 0.0, n, z)


def wilson_p(p: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """Wilson interval of a proportion ``p`` observed over ``n`` (possibly effective, non-integer) trials."""
    if n <= 0:
        return 0.0, 1.0
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Cell:
    """One (model, dataset) series as shown: ``accuracy`` is correct/total when complete, else correct/answered."""

    dataset: str
    accuracy: float
    correct: int
    total: int
    answered: int
    complete: bool
    ci_low: float
    ci_high: float
    settings_hash: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    eval_seconds: float = 0.0
    truncated: int = 0
    samples: int = 1  # k; above 1 accuracy is avg@k and the interval a bootstrap
    pass_at_k: float | None = None
    maj_at_k: float | None = None
    outcomes: tuple[ProblemOutcome, ...] = ()
    reasoning_tokens: tuple[int, ...] = ()  # per answer (``SeriesScore.reasoning_tokens``)
    forced: int = 0
    answer_in_reasoning: int = 0
    judge: JudgeStats | None = None  # the LLM judge's counts when the series was judged
    judge_mode: str = ""  # audit, rescue (accuracy counts judge-accepted answers too), "" not judged

    @classmethod
    def of(cls, s: SeriesScore, resampler: Resampler | None = None) -> Cell:
        answered = min(s.answered, s.total)
        scored = s.total if s.complete else answered
        accuracy = s.correct / (scored * s.samples) if scored else 0.0
        low, high = (
            wilson(s.correct, scored) if s.samples == 1 else interval(_draws(s.outcomes, resampler or Resampler()))
        )
        done = s.outcomes
        return cls(
            dataset=s.dataset,
            accuracy=accuracy,
            correct=s.correct,
            total=s.total,
            answered=answered,
            complete=s.complete,
            ci_low=low,
            ci_high=high,
            settings_hash=s.settings_hash,
            prompt_tokens=s.prompt_tokens,
            completion_tokens=s.completion_tokens,
            eval_seconds=s.eval_seconds,
            truncated=s.truncated,
            samples=s.samples,
            pass_at_k=_mean([pass_at_k(o.samples, o.correct, o.samples) for o in done]),
            maj_at_k=_mean([o.majority for o in done]),
            outcomes=done,
            reasoning_tokens=s.reasoning_tokens,
            forced=s.forced,
            answer_in_reasoning=s.answer_in_reasoning,
            judge=JudgeStats.summed([s.judge]) if s.judge_mode else None,
            judge_mode=s.judge_mode,
        )

    def draws(self, resampler: Resampler) -> list[float]:
        """avg@k of this cell in every bootstrap round (problems resampled)."""
        return _draws(self.outcomes, resampler)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _draws(outcomes: Sequence[ProblemOutcome], resampler: Resampler) -> list[float]:
    """avg@k over ``outcomes`` in every bootstrap round (problems resampled; a problem's samples stay together)."""
    return resampler.means([o.id for o in outcomes], [o.correct / o.samples for o in outcomes])


@dataclass
class Row:
    """One model: its cells by dataset, Combined over ``combined_over`` (complete datasets) and totals."""

    model: str
    cells: dict[str, Cell]
    combined: float | None
    combined_over: tuple[str, ...]
    ci_low: float | None
    ci_high: float | None
    answered: int
    total: int
    prompt_tokens: int
    completion_tokens: int
    eval_seconds: float
    tokens_per_s: float | None
    details: str = field(default="")
    truncated: int = 0
    samples: int = 1  # the largest k of its cells (1: every cell has one answer per problem)
    pass_at_k: float | None = None  # mean over the Combined datasets, like Combined
    maj_at_k: float | None = None
    thinking: Thinking | None = None  # reasoning figures over all its answers (``thinking``)
    judge: JudgeStats | None = None  # summed over its judged cells
    judge_mode: str = ""  # rescue when any of its cells counts judge-accepted answers, else audit or ""

    @property
    def tokens(self) -> int:
        return self.completion_tokens


@dataclass(frozen=True)
class Thinking:
    """One model's reasoning over all its answers: thinking tokens (mean, p95) and the shares of answers forced
    at the budget, found in the reasoning with an empty content, and cut off by max_tokens."""

    answers: int
    mean_tokens: float
    p95_tokens: int
    forced: float
    answer_in_reasoning: float
    truncated: float

    @classmethod
    def of(cls, cells: Sequence[Cell]) -> Thinking | None:
        tokens = sorted(t for c in cells for t in c.reasoning_tokens)
        n = len(tokens)
        if not n:
            return None
        p95 = tokens[max(0, math.ceil(0.95 * n) - 1)]  # nearest rank
        return cls(
            answers=n,
            mean_tokens=sum(tokens) / n,
            p95_tokens=p95,
            forced=sum(c.forced for c in cells) / n,
            answer_in_reasoning=sum(c.answer_in_reasoning for c in cells) / n,
            truncated=sum(c.truncated for c in cells) / n,
        )

    @property
    def shown(self) -> bool:
        """Whether the model reasoned at all (a reasoning table row is worth showing)."""
        return self.mean_tokens > 0 or self.forced > 0 or self.answer_in_reasoning > 0


def select_series(scores: Sequence[SeriesScore]) -> dict[tuple[str, str], SeriesScore]:
    """Per (model, dataset): the latest complete series, else the latest one (input order = age)."""
    chosen: dict[tuple[str, str], SeriesScore] = {}
    for s in scores:
        key = (s.model, s.dataset)
        if s.complete or key not in chosen or not chosen[key].complete:
            chosen[key] = s
    return chosen


def aggregate(scores: Sequence[SeriesScore], datasets: Sequence[str] | None = None) -> list[Row]:
    """Rows sorted by Combined (descending; rows without a complete dataset last), then model name."""
    names = list(datasets) if datasets is not None else list(dict.fromkeys(s.dataset for s in scores))
    chosen = select_series([s for s in scores if s.dataset in names])
    models = list(dict.fromkeys(model for model, _ in chosen))
    resampler = Resampler()
    rows = [
        _row(m, {d: Cell.of(chosen[(m, d)], resampler) for d in names if (m, d) in chosen}, resampler) for m in models
    ]
    return sorted(rows, key=lambda r: (r.combined is None, -(r.combined or 0.0), r.model))


def _row(model: str, cells: dict[str, Cell], resampler: Resampler) -> Row:
    done = [c for c in cells.values() if c.complete and c.total > 0]
    judged = [c for c in cells.values() if c.judge is not None]
    combined = sum(c.accuracy for c in done) / len(done) if done else None
    low, high = _combined_ci(done, resampler) if done else (None, None)
    completion = sum(c.completion_tokens for c in cells.values())
    seconds = sum(c.eval_seconds for c in cells.values())
    return Row(
        model=model,
        cells=cells,
        combined=combined,
        combined_over=tuple(c.dataset for c in done),
        ci_low=low,
        ci_high=high,
        answered=sum(c.answered for c in cells.values()),
        total=sum(c.total for c in cells.values()),
        prompt_tokens=sum(c.prompt_tokens for c in cells.values()),
        completion_tokens=completion,
        eval_seconds=seconds,
        tokens_per_s=completion / seconds if seconds > 0 else None,
        details=details_link(model),
        truncated=sum(c.truncated for c in cells.values()),
        samples=max((c.samples for c in cells.values()), default=1),
        pass_at_k=_mean([c.pass_at_k for c in done if c.pass_at_k is not None]) if done else None,
        maj_at_k=_mean([c.maj_at_k for c in done if c.maj_at_k is not None]) if done else None,
        thinking=Thinking.of(list(cells.values())),
        judge=JudgeStats.summed(c.judge.counts() for c in judged) if judged else None,
        judge_mode=max((c.judge_mode for c in judged), key=("audit", "rescue").index, default=""),
    )


def _combined_ci(done: Sequence[Cell], resampler: Resampler) -> tuple[float, float]:
    """Wilson interval of the mean accuracy at the Kish effective size k^2 / sum(1/n_i) (= pooled n if equal);
    with k > 1 samples in any dataset, the bootstrap interval of the mean, resampling within each dataset."""
    if any(c.samples > 1 for c in done):
        return interval(stratified(*(c.draws(resampler) for c in done)))
    mean = sum(c.accuracy for c in done) / len(done)
    n_eff = len(done) ** 2 / sum(1.0 / c.total for c in done)
    return wilson_p(mean, n_eff)
