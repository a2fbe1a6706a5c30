"""Markdown and JSON renderings of the leaderboard rows, and the text formats the HTML page shares."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from . import thinking
from .compare import Comparison, beaten_by, pairwise
from .rows import Cell, Row, dataset_title

DASH = "—"
NOTES = (
    "Combined: mean accuracy over the datasets a model completed; `(k/N: ...)` names them when not all are.",
    "95% CI: Wilson interval of Combined (at the Kish effective size of the mean; "
    "equal to the pooled-answers interval when datasets have equal sizes).",
    "`incomplete`: accuracy over the problems answered so far (answered/total); not part of Combined.",
    "Tokens: completion tokens; Tokens/s: completion tokens per second of evaluation.",
    "`N truncated`: answers cut off by max_tokens (finish reason `length`), scored as they are; many of them mean "
    "max_tokens (or vllm.max_model_len) is too small for the model.",
)
SAMPLE_NOTES = (
    "k > 1 samples per problem: Combined and the dataset columns are avg@k (mean correctness over all samples); "
    "95% CI: seeded bootstrap over problems (a problem's samples stay together); pass@k: the unbiased estimator "
    "of Chen et al. 2021; maj@k: the majority answer, answers clustered by the grader's equivalence (ties share "
    "the credit).",
)
COMPARE_NOTE = (
    "Beats: the difference in accuracy is above zero with 95% confidence on the problems both models "
    "answered (exact McNemar test when both have one answer per problem, else a paired bootstrap "
    "interval); no correction for the number of pairs."
)
JUDGE_NOTES = (
    "Judged: answers the LLM judge gave a verdict on (every answer the rule grader did not accept, and a seeded "
    "share of those it accepted); rule ✗ judge ✓: the judge accepts an answer the rule grader rejected (share of "
    "the judged rejected ones); rule ✓ judge ✗: the judge rejects an answer the rule grader accepted (share of the "
    "judged accepted ones).",
    "`rule + judge`: the model's judge runs in rescue mode, so its score counts the answers the judge accepted too; "
    "otherwise the score is the rule grader's alone.",
)
JUDGE_HEADERS = ["Judged", "Rule ✗ judge ✓", "Rule ✓ judge ✗"]
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#])")


def pct(x: float | None) -> str:
    return DASH if x is None else f"{100 * x:.1f}%"


def interval(low: float | None, high: float | None) -> str:
    return DASH if low is None or high is None else f"{100 * low:.1f}–{100 * high:.1f}%"


def duration(seconds: float) -> str:
    """``1h 02m``, ``3m 05s`` or ``42s``."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def rate(x: float | None) -> str:
    return DASH if x is None else f"{x:.1f}"


def cell_text(cell: Cell | None) -> str:
    """``61.1%`` complete, ``41.2% (85/190, incomplete)`` partial, ``58.0% (3 truncated)`` with answers cut off by
    max_tokens, a dash for none."""
    if cell is None:
        return DASH
    notes = [] if cell.complete else [f"{cell.answered}/{cell.total}", "incomplete"]
    notes += [f"{cell.truncated} truncated"] if cell.truncated else []
    return f"{pct(cell.accuracy)} ({', '.join(notes)})" if notes else pct(cell.accuracy)


def combined_text(row: Row, datasets: Sequence[str]) -> str:
    """Combined, naming the datasets it covers when that is not all of them."""
    if row.combined is None:
        return DASH
    rescue = " (rule + judge)" if row.judge_mode == "rescue" else ""
    if len(row.combined_over) == len(datasets):
        return pct(row.combined) + rescue
    names = ", ".join(dataset_title(d) for d in row.combined_over)
    return f"{pct(row.combined)}{rescue} ({len(row.combined_over)}/{len(datasets)}: {names})"


def judged(rows: Sequence[Row]) -> bool:
    """Whether any model's answers were judged (the judge's columns are shown)."""
    return any(r.judge is not None for r in rows)


def judge_texts(row: Row) -> list[str]:
    """Judged, rule ✗ judge ✓ and rule ✓ judge ✗ of ``row`` (counts and shares), dashes when not judged."""
    stats = row.judge
    if stats is None:
        return [DASH] * len(JUDGE_HEADERS)
    judged_text = f"{stats.judged}" + (f" ({stats.unparsed} unparsed)" if stats.unparsed else "")
    return [
        judged_text,
        f"{stats.rescued} ({pct(stats.rescued_share)})",
        f"{stats.flagged} ({pct(stats.flagged_share)})",
    ]


def sampled(rows: Sequence[Row]) -> bool:
    """Whether any model has k > 1 samples per problem (the k, pass@k and maj@k columns are shown)."""
    return any(r.samples > 1 for r in rows)


def headers(datasets: Sequence[str], samples: bool = False, judge: bool = False) -> list[str]:
    extra = ["k", "pass@k", "maj@k"] if samples else []
    return (
        ["Model", "Combined"]
        + [dataset_title(d) for d in datasets]
        + ["95% CI"]
        + extra
        + ["Answered/Total", "Tokens", "Eval time", "Tokens/s"]
        + (JUDGE_HEADERS if judge else [])
        + ["Details"]
    )


def row_texts(row: Row, datasets: Sequence[str], samples: bool = False, judge: bool = False) -> list[str]:
    """Every column of ``row`` as plain (unescaped) text, Model and Details excluded."""
    extra = [str(row.samples), pct(row.pass_at_k), pct(row.maj_at_k)] if samples else []
    return (
        [combined_text(row, datasets)]
        + [cell_text(row.cells.get(d)) for d in datasets]
        + [interval(row.ci_low, row.ci_high)]
        + extra
        + [
            f"{row.answered}/{row.total}",
            f"{row.completion_tokens:,}",
            duration(row.eval_seconds),
            rate(row.tokens_per_s),
        ]
        + (judge_texts(row) if judge else [])
    )


def notes(rows: Sequence[Row]) -> tuple[str, ...]:
    reasoned = (thinking.NOTE,) if thinking.shown(rows) else ()
    judge_notes = JUDGE_NOTES if judged(rows) else ()
    return NOTES + (SAMPLE_NOTES if sampled(rows) else ()) + judge_notes + reasoned + (COMPARE_NOTE,)


def beats_line(row: Row, comparisons: Sequence[Comparison]) -> str:
    """``beats A, B with 95% confidence`` / ``beats no model with 95% confidence`` (plain text)."""
    beaten = beaten_by(comparisons, row.model)
    return f"beats {', '.join(beaten) if beaten else 'no model'} with 95% confidence"


def md_escape(text: str) -> str:
    """``text`` safe inside a markdown table cell (user input: model names)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def render_markdown(
    rows: Sequence[Row], datasets: Sequence[str], comparisons: Sequence[Comparison] | None = None
) -> str:
    """``results/leaderboard.md``: the table, one line per model saying which models it beats, the notes."""
    comparisons = pairwise(rows) if comparisons is None else comparisons
    samples, judge = sampled(rows), judged(rows)
    head = headers(datasets, samples, judge)
    lines = [
        "# DeathMath leaderboard",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(head) - 2) + [":---"]) + "|",
    ]
    for row in rows:
        cells = [md_escape(row.model)] + [md_escape(t) for t in row_texts(row, datasets, samples, judge)]
        cells.append(f"[details]({row.details})")
        lines.append("| " + " | ".join(cells) + " |")
    if not rows:
        lines.append("| " + " | ".join([DASH] * len(head)) + " |")
    wins = ["", "## Which differences are real", ""] + [
        f"- **{md_escape(r.model)}** {md_escape(beats_line(r, comparisons))}" for r in rows
    ]
    reasoning = thinking.markdown_lines(rows, md_escape)
    return "\n".join(lines + (wins if rows else []) + reasoning + [""] + [f"- {note}" for note in notes(rows)]) + "\n"


def _cell_dict(cell: Cell) -> dict[str, Any]:
    return {
        "accuracy": cell.accuracy,
        "correct": cell.correct,
        "answered": cell.answered,
        "total": cell.total,
        "complete": cell.complete,
        "ci95": [cell.ci_low, cell.ci_high],
        "settings_hash": cell.settings_hash,
        "prompt_tokens": cell.prompt_tokens,
        "completion_tokens": cell.completion_tokens,
        "eval_seconds": cell.eval_seconds,
        "truncated": cell.truncated,
        "samples": cell.samples,
        "pass_at_k": cell.pass_at_k,
        "maj_at_k": cell.maj_at_k,
    }


def row_dict(row: Row) -> dict[str, Any]:
    """One row as JSON data (per-dataset cells keyed by dataset name)."""
    ci = [row.ci_low, row.ci_high] if row.ci_low is not None else None
    return {
        "model": row.model,
        "combined": row.combined,
        "combined_over": list(row.combined_over),
        "ci95": ci,
        "datasets": {name: _cell_dict(cell) for name, cell in row.cells.items()},
        "answered": row.answered,
        "total": row.total,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "eval_seconds": row.eval_seconds,
        "tokens_per_s": row.tokens_per_s,
        "truncated": row.truncated,
        "details": row.details,
        "samples": row.samples,
        "pass_at_k": row.pass_at_k,
        "maj_at_k": row.maj_at_k,
        "reasoning": thinking.as_dict(row.thinking),
        "judge": None if row.judge is None else {"mode": row.judge_mode, **row.judge.to_dict()},
    }


def render_json(rows: Sequence[Row], datasets: Sequence[str], comparisons: Sequence[Comparison] | None = None) -> str:
    """``results/leaderboard.json``: the same rows, with per-dataset intervals and prompt tokens too, each row's
    ``beats`` list and every pairwise ``comparisons`` entry (difference, paired 95% interval, test)."""
    comparisons = pairwise(rows) if comparisons is None else comparisons
    data = {
        "datasets": [{"name": d, "title": dataset_title(d)} for d in datasets],
        "rows": [{**row_dict(r), "beats": beaten_by(comparisons, r.model)} for r in rows],
        "comparisons": [c.to_dict() for c in comparisons],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
