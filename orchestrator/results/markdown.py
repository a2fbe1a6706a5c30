"""The readable ``<dataset>.md`` of a series: task, response, reference, extracted answer, verdict, tokens."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..contract import AnswerRecord, SeriesScore

_TICKS = re.compile(r"`+")


def _longest_tick_run(text: str) -> int:
    return max((len(m) for m in _TICKS.findall(text)), default=0)


def fenced(text: str, info: str = "text") -> str:
    """``text`` in a code fence longer than any backtick run inside it."""
    fence = "`" * max(3, _longest_tick_run(text) + 1)
    return f"{fence}{info}\n{text.rstrip()}\n{fence}"


def inline(text: str | None) -> str:
    """``text`` as one-line inline code (empty shows as an em dash)."""
    if not text:
        return "—"
    flat = " ".join(str(text).split())
    ticks = "`" * (_longest_tick_run(flat) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{ticks}{pad}{flat}{pad}{ticks}"


def _header(meta: Mapping[str, Any], score: SeriesScore) -> list[str]:
    acc = f"{100 * score.accuracy:.1f}%"
    return [
        f"# {meta.get('model_name') or score.model} — {score.dataset}",
        "",
        f"- model key: {inline(score.model)}; dataset version: {inline(str(meta.get('dataset_version', '')))}; "
        f"settings: {inline(score.settings_hash)}",
        f"- answered {score.answered}/{score.total}, correct {score.correct} ({acc}), "
        f"transport errors {score.errors}, cut off by max_tokens {score.truncated}"
        if score.samples == 1
        else f"- {score.samples} samples per problem: answered {score.answered}/{score.total} problems, correct "
        f"{score.correct} of {score.answered * score.samples} samples (avg@{score.samples} {acc}), "
        f"transport errors {score.errors}, cut off by max_tokens {score.truncated}",
        f"- tokens: prompt {score.prompt_tokens}, completion {score.completion_tokens}; "
        f"eval time {score.eval_seconds:.1f} s",
        "",
    ]


def _entry(n: int, rec: AnswerRecord) -> list[str]:
    status = f"error: {rec.error}" if rec.error is not None else (rec.verdict or "not graded")
    sample = f" sample {rec.sample} (seed {rec.seed})" if rec.sample or rec.seed is not None else ""
    lines = [
        f"## {n}. {inline(rec.id)}{sample} — {status}",
        "",
        "**Task**",
        "",
        fenced(rec.task),
        "",
        "**Response**",
        "",
        fenced(rec.response),
        "",
    ]
    if rec.reasoning:
        lines += [f"_(reasoning kept apart: {len(rec.reasoning)} characters, see the .jsonl)_", ""]
    lines += [
        f"- reference: {inline(rec.reference)}; extracted: {inline(rec.extracted)}; "
        f"verdict: {rec.verdict or '—'}" + (" (approximate)" if rec.approximate else ""),
        f"- tokens: prompt {rec.prompt_tokens}, completion {rec.completion_tokens}; "
        f"finish: {rec.finish_reason or '—'}; latency {rec.latency_s:.2f} s",
        "",
    ]
    return lines


def render_markdown(meta: Mapping[str, Any], score: SeriesScore, records: Sequence[AnswerRecord]) -> str:
    """The whole markdown document of one series."""
    lines = _header(meta, score)
    for n, rec in enumerate(records, 1):
        lines += _entry(n, rec)
    return "\n".join(lines)
