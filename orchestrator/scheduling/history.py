"""Weights from history: how long each model took in earlier runs, so that ``plan`` starts long jobs first.

Pure: it reads ``SeriesScore``s (``results.load_scores`` loads them) and returns estimated seconds per model key.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..contract import SeriesScore


def estimate_weights(scores: Sequence[SeriesScore]) -> dict[str, float]:
    """Estimated seconds per model from earlier series (the last one per dataset, extrapolated to the full
    dataset when incomplete): pass it as ``plan(..., weights=...)`` so long jobs start first on later runs."""
    last: dict[tuple[str, str], SeriesScore] = {}
    for score in scores:
        last[(score.model, score.dataset)] = score
    totals: dict[str, float] = {}
    for (model, _), score in last.items():
        done = min(score.answered, score.total)
        if done > 0 and score.eval_seconds > 0:
            totals[model] = totals.get(model, 0.0) + score.eval_seconds * score.total / done
    return totals


def mean_tokens(scores: Sequence[SeriesScore]) -> dict[str, float]:
    """Mean completion tokens per answer of each model over its earlier series (the estimate's answer length)."""
    tokens: dict[str, list[float]] = {}
    for score in scores:
        answers = score.answered * max(1, score.samples)
        if answers > 0 and score.completion_tokens > 0:
            entry = tokens.setdefault(score.model, [0.0, 0.0])
            entry[0] += score.completion_tokens
            entry[1] += answers
    return {model: total / count for model, (total, count) in tokens.items()}
