"""The leaderboard's reasoning table (md, html) and its JSON: per model that reasoned (``rows.Thinking``), thinking
tokens (mean and p95 over its answers), and the shares of answers forced at the budget, with the answer found in
the reasoning (content empty), and cut off by max_tokens. Models that never reasoned get no row; with none, no
table."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from .rows import Row, Thinking

HEAD = ("Model", "Reasoning tokens (mean)", "p95", "Forced", "Answer in reasoning", "Truncated")
NOTE = (
    "Reasoning: thinking tokens per answer (mean, p95); Forced: answers whose thinking reached reasoning.budget and "
    "was closed to ask the answer; Answer in reasoning: empty content with an answer at the end of the reasoning "
    "(graded as empty unless grade_reasoning_tail); Truncated: answers cut off by max_tokens."
)


def share(x: float) -> str:
    return f"{100 * x:.1f}%"


def texts(t: Thinking) -> list[str]:
    """The columns after Model."""
    return [
        f"{t.mean_tokens:,.0f}",
        f"{t.p95_tokens:,}",
        share(t.forced),
        share(t.answer_in_reasoning),
        share(t.truncated),
    ]


def shown(rows: Sequence[Row]) -> list[tuple[Row, Thinking]]:
    return [(r, r.thinking) for r in rows if r.thinking is not None and r.thinking.shown]


def markdown_lines(rows: Sequence[Row], escape_md) -> list[str]:
    """``## Reasoning`` and its table, or nothing."""
    found = shown(rows)
    if not found:
        return []
    lines = ["", "## Reasoning", "", "| " + " | ".join(HEAD) + " |", "|:---|" + "---:|" * (len(HEAD) - 1)]
    lines += ["| " + " | ".join([escape_md(r.model), *texts(t)]) + " |" for r, t in found]
    return lines


def html_section(rows: Sequence[Row]) -> str:
    found = shown(rows)
    if not found:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in HEAD)
    body = "".join(
        f'<tr><td class="model">{escape(r.model)}</td>'
        + "".join(f'<td class="num">{x}</td>' for x in texts(t))
        + "</tr>"
        for r, t in found
    )
    table = f'<table id="reasoning"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    return f'<h2>Reasoning</h2><div class="wrap">{table}</div>'


def as_dict(t: Thinking | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "answers": t.answers,
        "reasoning_tokens_mean": t.mean_tokens,
        "reasoning_tokens_p95": t.p95_tokens,
        "forced_share": t.forced,
        "answer_in_reasoning_share": t.answer_in_reasoning,
        "truncated_share": t.truncated,
    }
