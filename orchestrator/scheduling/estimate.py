"""How long a model will take, known before it starts, and corrected once it runs.

A managed model's generation is bound by reading its weights once per decode step, so a server's output rate at a
given number of requests in flight scales as ``GPU memory bandwidth / weight bytes per GPU``. ``calibration.json``
(beside this module) holds measured runs; each fitted row (gpu_memory_utilization >= 0.85) gives one value of
``tok/s x bytes per GPU / bandwidth`` at its in-flight count, and ``Calibration.rate`` interpolates those on the
log of the in-flight count and scales them to the model and GPU asked about. Start-up is fitted as a line in the
weight bytes per GPU. An answer is taken to be ``max_tokens`` long (the bound) until the model's own history gives
its mean; with history of the whole series, the history's seconds win.

``Estimate.basis`` says in words what an estimate rests on (shown by ``--dry-run``); ``Projection`` corrects an
estimate from the tokens a running model has produced so far. Everything here is pure: the facts come in as
values (``ModelFacts``), read by the caller from a local folder, the hub's file list or ``nvidia-smi``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CALIBRATION = Path(__file__).with_name("calibration.json")
FIT_MIN_MEMORY = 0.85
API_TOK_S_PER_REQUEST = 40.0  # an API model without history: a typical streamed rate per request
CPU_TOK_S = 200.0  # a CPU server without history: the whole server (small models only run there)


@dataclass(frozen=True)
class ModelFacts:
    """What is known of a model before it runs."""

    weight_bytes: int | None  # the weights' files (safetensors sizes); None unknown
    tp: int = 1
    pp: int = 1
    gpu: str | None = None  # nvidia-smi's name; None: a CPU server or an API model
    managed: bool = True


@dataclass(frozen=True)
class Workload:
    """What the run asks of a model."""

    answers: int  # problems x samples still to ask
    max_tokens: int
    in_flight: int  # requests the client keeps in flight
    mean_tokens: float | None = None  # this model's mean completion tokens per answer, from its history


@dataclass(frozen=True)
class Estimate:
    seconds: float
    startup_s: float
    tokens: float
    tok_s: float
    basis: str


@dataclass(frozen=True)
class _Point:
    in_flight: int
    scale: float  # tok/s x bytes per GPU / bandwidth


@dataclass(frozen=True)
class Calibration:
    points: tuple[_Point, ...]
    startup: tuple[float, float]  # seconds = a + b x GB per GPU
    bandwidth: Mapping[str, float]
    rows: int

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Calibration:
        bandwidth = {str(k): float(v) for k, v in data["bandwidth_gb_s"].items()}
        points, starts = [], []
        for row in data["rows"]:
            per_gpu = row["weight_gb"] / (row["tp"] * row["pp"])
            bw = bandwidth_of(row["gpu"], bandwidth)
            if row.get("gpu_memory_utilization", 0.9) >= FIT_MIN_MEMORY and bw:
                points.append(_Point(int(row["in_flight"]), row["tok_s"] * per_gpu / bw))
                if row.get("startup_s"):
                    starts.append((per_gpu, float(row["startup_s"])))
        return cls(tuple(sorted(points, key=lambda p: p.in_flight)), _line(starts), bandwidth, len(points))

    def scale_at(self, in_flight: int) -> float:
        """The fitted ``tok/s x GB per GPU / bandwidth`` at ``in_flight``: the mean of the measured points at the
        nearest counts, interpolated on log(in flight); proportional below the smallest count, flat above the
        largest (the engine is saturated)."""
        by_count: dict[int, list[float]] = {}
        for p in self.points:
            by_count.setdefault(p.in_flight, []).append(p.scale)
        counts = sorted(by_count)
        mean = {c: sum(v) / len(v) for c, v in by_count.items()}
        if in_flight <= counts[0]:
            return mean[counts[0]] * in_flight / counts[0]
        if in_flight >= counts[-1]:
            return mean[counts[-1]]
        hi = next(c for c in counts if c >= in_flight)
        lo = counts[counts.index(hi) - 1]
        t = (math.log(in_flight) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return mean[lo] + t * (mean[hi] - mean[lo])

    def rate(self, facts: ModelFacts, in_flight: int) -> float | None:
        """Output tok/s of one server of this model on ``facts.gpu`` with ``in_flight`` requests, or None."""
        bw = bandwidth_of(facts.gpu or "", self.bandwidth)
        if not facts.weight_bytes or not bw or not self.points:
            return None
        per_gpu_gb = facts.weight_bytes / 1e9 / (facts.tp * facts.pp)
        return self.scale_at(max(1, in_flight)) * bw / per_gpu_gb

    def startup_s(self, facts: ModelFacts) -> float:
        a, b = self.startup
        per_gpu_gb = (facts.weight_bytes or 0) / 1e9 / (facts.tp * facts.pp)
        return a + b * per_gpu_gb


@cache
def default_calibration() -> Calibration:
    return Calibration.from_data(json.loads(CALIBRATION.read_text(encoding="utf-8")))


def bandwidth_of(gpu: str, table: Mapping[str, float]) -> float | None:
    """Memory bandwidth (GB/s) of a GPU by its name: the longest table key the name contains."""
    keys = [k for k in table if k.lower() in gpu.lower()]
    return table[max(keys, key=len)] if keys else None


def _line(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares ``(a, b)`` of ``y = a + b x``; a flat 120 s without two distinct points."""
    if len({x for x, _ in points}) < 2:
        return (points[0][1] if points else 120.0), 0.0
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    b = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - b * mx, b


def estimate(facts: ModelFacts, work: Workload, calibration: Calibration | None = None) -> Estimate:
    """The duration of ``work`` for the model of ``facts``; see the module docstring."""
    cal = calibration or default_calibration()
    per_answer = work.mean_tokens if work.mean_tokens else float(work.max_tokens)
    length = f"{per_answer:.0f} tokens per answer ({'its history' if work.mean_tokens else 'max_tokens, a bound'})"
    tokens = work.answers * per_answer
    in_flight = max(1, min(work.in_flight, work.answers))
    if not facts.managed:
        rate = API_TOK_S_PER_REQUEST * in_flight
        basis = f"API model: {API_TOK_S_PER_REQUEST:.0f} tok/s per request assumed x {in_flight} in flight"
        return Estimate(tokens / rate, 0.0, tokens, rate, f"{basis}; {work.answers} answers x {length}")
    rate = cal.rate(facts, in_flight)
    startup = cal.startup_s(facts)
    if rate is None:
        rate = CPU_TOK_S if facts.gpu is None else CPU_TOK_S * 10
        why = "no GPU" if facts.gpu is None else f"no calibration for {facts.gpu!r} or unknown weight size"
        basis = f"{why}: {rate:.0f} tok/s assumed"
    else:
        bw = bandwidth_of(facts.gpu or "", cal.bandwidth)
        gb = (facts.weight_bytes or 0) / 1e9
        basis = (
            f"{gb:.1f} GB of weights on TP {facts.tp} x PP {facts.pp}, {facts.gpu} ({bw:.0f} GB/s), {in_flight} in "
            f"flight: {rate:,.0f} tok/s from {cal.rows} calibrated runs"
        )
    generation = tokens / rate
    return Estimate(startup + generation, startup, tokens, rate, f"{basis}; {work.answers} answers x {length}")


def from_history(seconds: float, work: Workload) -> Estimate:
    """An estimate from this model's own earlier series (seconds for the same work)."""
    return Estimate(seconds, 0.0, work.answers * (work.mean_tokens or work.max_tokens), 0.0, "its history")


@dataclass
class Projection:
    """An estimate corrected as the model runs: once it has produced tokens, its own rate replaces the
    calibrated one for what is left (the start-up already spent is not counted again)."""

    planned: Estimate
    started_at: float  # when generation began (after start-up), on the caller's clock

    def remaining_s(self, now: float, tokens_done: float) -> float:
        elapsed = max(0.0, now - self.started_at)
        left = max(0.0, self.planned.tokens - tokens_done)
        if tokens_done <= 0 or elapsed <= 0:
            return max(0.0, self.planned.seconds - self.planned.startup_s - elapsed)
        return left / (tokens_done / elapsed)

    def end(self, now: float, tokens_done: float) -> float:
        return now + self.remaining_s(now, tokens_done)
