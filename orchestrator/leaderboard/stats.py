"""Statistics of k samples per problem: pass@k, a seeded bootstrap, paired comparisons, McNemar. Pure functions.

* ``pass_at_k(n, c, k)``: the unbiased estimator of Chen et al. 2021 (HumanEval), 1 - C(n-c, k) / C(n, k): the
  chance that at least one of k samples drawn without replacement from the n asked is correct.
* ``bootstrap_mean``: percentile interval of a mean over problems, resampling problems (the unit that varies
  between datasets; the samples of one problem stay together). Seeded: the same inputs give the same interval.
* ``paired_bootstrap`` / ``Resampler``: the same for the difference of two models on the same problems, resampling
  problems once for both (over several datasets, ``stratified``: each dataset is resampled within itself and the
  difference is the mean of the per-dataset differences, as Combined is the mean of per-dataset accuracies).
* ``mcnemar_p``: the exact (binomial) two-sided McNemar test on the discordant pairs of two single-answer models,
  and ``paired_wald``: the matching normal interval of their difference (no resampling: k = 1 stays instant).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

BOOTSTRAP_ROUNDS = 1000
BOOTSTRAP_SEED = 20260101
LEVEL = 0.95


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct (``k`` <= ``n``)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values, linear between order statistics."""
    pos = q * (len(sorted_values) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


class Resampler:
    """Seeded bootstrap draws of problem indices, shared by every model scored on the same problems.

    Each round draws len(ids) problems with replacement, from a generator seeded by ``seed`` and the problem ids,
    so two models on the same problems see the same resamples (a paired bootstrap) and a rerun gives the same
    intervals. ``means`` caches each model's resampled means.
    """

    def __init__(self, rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED) -> None:
        self.rounds, self.seed = rounds, seed
        self._draws: dict[tuple[str, ...], list[list[int]]] = {}
        self._means: dict[tuple[tuple[str, ...], tuple[float, ...]], list[float]] = {}

    def draws(self, ids: Sequence[str]) -> list[list[int]]:
        key = tuple(ids)
        if key not in self._draws:
            rng = random.Random(f"{self.seed}:{len(key)}:{'|'.join(key)}")
            population = range(len(key))
            self._draws[key] = [rng.choices(population, k=len(key)) for _ in range(self.rounds)]
        return self._draws[key]

    def means(self, ids: Sequence[str], values: Sequence[float]) -> list[float]:
        """The mean of ``values`` (aligned with ``ids``) in every round (cached: every pair reuses a model's)."""
        key = (tuple(ids), tuple(values))
        if key not in self._means:
            n, pick = len(key[1]), key[1].__getitem__
            self._means[key] = [sum(map(pick, draw)) / n for draw in self.draws(key[0])] if n else []
        return self._means[key]


def interval(draws: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap draws."""
    ordered = sorted(draws)
    if not ordered:
        return 0.0, 0.0
    tail = (1 - level) / 2
    return percentile(ordered, tail), percentile(ordered, 1 - tail)


def stratified(*rounds_per_stratum: Sequence[float]) -> list[float]:
    """Per round, the mean over strata (datasets) of each stratum's resampled value."""
    strata = [r for r in rounds_per_stratum if r]
    return [sum(vals) / len(vals) for vals in zip(*strata)] if strata else []


def bootstrap_mean(
    values: Sequence[float], rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED, level: float = LEVEL
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one per problem), resampling problems."""
    ids = [str(i) for i in range(len(values))]
    return interval(Resampler(rounds, seed).means(ids, values), level)


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = BOOTSTRAP_SEED,
    level: float = LEVEL,
) -> tuple[float, float]:
    """Interval of mean(a) - mean(b) over the same problems (aligned), resampling problems once for both."""
    if len(a) != len(b):
        raise ValueError(f"paired values must be aligned, got {len(a)} and {len(b)}")
    diffs = [x - y for x, y in zip(a, b)]
    return bootstrap_mean(diffs, rounds, seed, level)


def paired_wald(strata: Sequence[tuple[int, int, int]], z: float = 1.96) -> tuple[float, float]:
    """Interval of the mean over strata of (only_a - only_b) / n, each stratum given as (only_a, only_b, n).

    Per stratum the variance of the paired difference of proportions is (b + c - (b - c)^2 / n) / n^2.
    """
    kept = [(a, b, n) for a, b, n in strata if n > 0]
    if not kept:
        return 0.0, 0.0
    diff = sum((a - b) / n for a, b, n in kept) / len(kept)
    var = sum((a + b - (a - b) ** 2 / n) / n**2 for a, b, n in kept) / len(kept) ** 2
    half = z * math.sqrt(max(var, 0.0))
    return diff - half, diff + half


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value: ``only_a`` problems A got right and B wrong, ``only_b`` the reverse."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2**n
    return min(1.0, 2 * tail)
