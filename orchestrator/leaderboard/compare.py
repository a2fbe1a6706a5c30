"""Which differences are real: every pair of models on the same problems, with a paired 95% interval.

Two models are compared over the datasets both completed (as Combined), on the problems both answered. The
difference is the mean over those datasets of (accuracy of A - accuracy of B), per problem the share of correct
samples (avg@k; the correctness itself when k = 1).

When both models have one answer per problem, the verdict is the exact McNemar test on the problems only one of
them got right (pooled over the datasets) and the interval its paired normal interval (``stats.paired_wald``).
Otherwise the interval is a paired bootstrap: the same resampled problems for both models, each dataset resampled
within itself (``stats.Resampler``, seeded, so reruns agree), and the verdict is whether it excludes 0. "A beats B"
means the difference is positive and significant at the 5% level. Pairs without a common complete dataset are not
compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from .rows import Cell, Row
from .stats import LEVEL, Resampler, interval, mcnemar_p, paired_wald, stratified


@dataclass(frozen=True)
class Comparison:
    """Model ``a`` against model ``b``: ``diff`` = accuracy of a minus b over ``datasets`` (``problems`` in all)."""

    a: str
    b: str
    datasets: tuple[str, ...]
    problems: int
    diff: float
    ci_low: float
    ci_high: float
    method: str  # "mcnemar" (both k = 1) or "paired bootstrap"
    p_value: float | None  # McNemar's exact p; None for the bootstrap (its interval is the test)
    significant: bool

    @property
    def winner(self) -> str | None:
        """The model that beats the other with 95% confidence, if either does."""
        if not self.significant:
            return None
        return self.a if self.diff > 0 else self.b

    def flipped(self) -> Comparison:
        """The same comparison seen from ``b``."""
        return Comparison(
            self.b,
            self.a,
            self.datasets,
            self.problems,
            -self.diff,
            -self.ci_high,
            -self.ci_low,
            self.method,
            self.p_value,
            self.significant,
        )

    def to_dict(self) -> dict:
        return {
            "a": self.a,
            "b": self.b,
            "datasets": list(self.datasets),
            "problems": self.problems,
            "diff": self.diff,
            "ci95": [self.ci_low, self.ci_high],
            "method": self.method,
            "p_value": self.p_value,
            "significant": self.significant,
            "winner": self.winner,
        }


def pairwise(rows: Sequence[Row], resampler: Resampler | None = None) -> list[Comparison]:
    """Every pair of rows with a complete dataset in common, in leaderboard order (``a`` ranks above ``b``)."""
    resampler = resampler or Resampler()
    out = []
    for first, second in combinations(rows, 2):
        found = compare(first, second, resampler)
        if found is not None:
            out.append(found)
    return out


def compare(a: Row, b: Row, resampler: Resampler) -> Comparison | None:
    """``a`` against ``b`` on their common complete datasets and common problems; None when they share none."""
    pairs = [(a.cells[d], b.cells[d]) for d in a.combined_over if d in b.combined_over]
    kept = [found for found in (_aligned(x, y) for x, y in pairs) if found.ids]
    if not kept:
        return None
    diff = sum(sum(p.a) / len(p.a) - sum(p.b) / len(p.b) for p in kept) / len(kept)
    names, problems = tuple(p.dataset for p in kept), sum(len(p.ids) for p in kept)
    if all(x.samples == 1 and y.samples == 1 for x, y in pairs):
        strata = [p.discordant() for p in kept]
        low, high = paired_wald(strata)
        p_value = mcnemar_p(sum(s[0] for s in strata), sum(s[1] for s in strata))
        return Comparison(a.model, b.model, names, problems, diff, low, high, "mcnemar", p_value, p_value < 1 - LEVEL)
    low, high = interval(stratified(*(p.diff_draws(resampler) for p in kept)))
    return Comparison(a.model, b.model, names, problems, diff, low, high, "paired bootstrap", None, low > 0 or high < 0)


@dataclass(frozen=True)
class _Paired:
    """One dataset's common problems and both models' per-problem accuracy on them."""

    dataset: str
    ids: tuple[str, ...]
    a: tuple[float, ...]
    b: tuple[float, ...]

    def discordant(self) -> tuple[int, int, int]:
        """(problems only a got right, only b got right, problems) for single answers."""
        return sum(x > y for x, y in zip(self.a, self.b)), sum(y > x for x, y in zip(self.a, self.b)), len(self.ids)

    def diff_draws(self, resampler: Resampler) -> list[float]:
        return [x - y for x, y in zip(resampler.means(self.ids, self.a), resampler.means(self.ids, self.b))]


def _aligned(x: Cell, y: Cell) -> _Paired:
    theirs = {o.id: o.correct / o.samples for o in y.outcomes}
    mine = [(o.id, o.correct / o.samples) for o in x.outcomes if o.id in theirs]
    return _Paired(x.dataset, tuple(i for i, _ in mine), tuple(v for _, v in mine), tuple(theirs[i] for i, _ in mine))


def beaten_by(comparisons: Sequence[Comparison], model: str) -> list[str]:
    """The models that ``model`` beats with 95% confidence, in leaderboard order."""
    out = []
    for c in comparisons:
        if c.winner == model:
            out.append(c.b if c.a == model else c.a)
    return out
