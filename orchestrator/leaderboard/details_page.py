"""``results/details/<model>/index.html``: one page per model with every answer, linked from the leaderboard.

For each dataset of the model (its current series): accuracy (as the leaderboard computes it, ``rows.Cell``) and the
counts of correct, incorrect, unparsed, timeout, truncated (``finish_reason`` ``length``: the answer hit
``max_tokens``; it also has a verdict) and error (a request that failed; never scored) answers. Then a row per
problem (id, the task shortened, reference, extracted answer, verdict, completion tokens, latency) that opens
(``<details>``) to the full task and response, with the reasoning apart and collapsed (its thinking tokens counted).
Reasoning models' answers are marked ``forced`` (the thinking reached the budget and was closed) and ``answer in
reasoning`` (content empty, an answer at the end of the reasoning; with ``grade_reasoning_tail`` that part is shown
as what was graded); the verdict filter selects either. An answer the LLM judge was asked about shows its verdict
beside the grader's (marked when they disagree) and its reason under the response.

The page is self-contained: inline CSS and a few lines of plain JavaScript for the filters (verdict, dataset, text
search, "judge disagrees"; kept in the URL's ``#v=...&d=...&q=...&j=1`` so a filtered view can be linked), no
framework, no network, so it works from ``file://``. Formulas in tasks, references, extracted answers, responses
and reasoning are rendered by MathJax from ``results/assets/`` (``mathassets``; a "raw LaTeX" toggle shows the
text as written; the search reads the raw text). Every string from the results is HTML-escaped (a model's answer
can hold ``<script>``; it shows as text), and the renderer reads that text, never markup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from ..contract import AnswerRecord, SeriesScore
from ..fileio import atomic_write_text
from ..reasoning.forced import reasoning_tail
from ..results import SeriesPaths, iter_series, read_series, safe_name
from ..results.judged import disagrees
from .mathassets import CSS as MATH_CSS
from .mathassets import head_html, write_assets
from .render import DASH, cell_text, pct
from .rows import Cell, dataset_title

PAGE = "index.html"
COUNTS = ("correct", "incorrect", "unparsed", "timeout", "truncated", "error")
MARKS = ("forced", "answer in reasoning")  # filters of reasoning models' answers (``forced``, ``answer_in_reasoning``)
TASK_CHARS = 110
CELL_CHARS = 60
FULL_CHARS = 200_000  # longer responses / reasoning are cut here on the page (the .jsonl keeps them whole)


@dataclass(frozen=True)
class SeriesView:
    """One dataset of a model as the page shows it."""

    dataset: str
    meta: Mapping[str, Any]
    score: SeriesScore
    records: Sequence[AnswerRecord]


def verdict_of(rec: AnswerRecord) -> str:
    """``error`` for a failed request, else the grader's verdict (``not graded`` when there is none)."""
    if rec.error is not None:
        return "error"
    return rec.verdict or "not graded"


def truncated(rec: AnswerRecord) -> bool:
    return rec.error is None and rec.finish_reason == "length"


def counts(records: Sequence[AnswerRecord]) -> Counter:
    """Answers per verdict, plus ``truncated`` (which overlaps the verdicts)."""
    found = Counter(verdict_of(r) for r in records)
    found["truncated"] = sum(truncated(r) for r in records)
    return found


def load_model(results_dir: Path, model_dir: str) -> list[SeriesView]:
    """Every current series of one model folder (``details/<model_dir>/``), by dataset name."""
    return _views(_grouped(Path(results_dir)).get(model_dir, []))


def _grouped(results_dir: Path) -> dict[str, list[SeriesPaths]]:
    groups: dict[str, list[SeriesPaths]] = {}
    for paths in iter_series(results_dir):
        groups.setdefault(paths.dir.name, []).append(paths)
    return groups


def _views(series: Sequence[SeriesPaths]) -> list[SeriesView]:
    views = []
    for paths in series:
        meta, score, records = read_series(paths)
        views.append(SeriesView(dataset=score.dataset, meta=meta, score=score, records=records))
    return views


def _write(results_dir: Path, folder: str, views: Sequence[SeriesView]) -> Path:
    path = Path(results_dir) / "details" / folder / PAGE
    atomic_write_text(path, render_details_page(str(views[0].score.model or folder), views))
    return path


def write_model_page(results_dir: Path, model: str) -> Path | None:
    """Write ``details/<model>/index.html`` from the model's series on disk; None when it has none yet."""
    views = load_model(Path(results_dir), safe_name(model))
    if not views:
        return None
    write_assets(Path(results_dir))  # the formulas' renderer; left alone when unchanged
    return _write(Path(results_dir), safe_name(model), views)


def write_details_pages(results_dir: Path) -> list[Path]:
    """Rewrite the page of every model folder under ``results_dir/details`` whose series changed since its page was
    written (a results directory of many models is not read whole at the end of every run)."""
    stale = {folder: series for folder, series in _grouped(Path(results_dir)).items() if _stale(series)}
    if stale:
        write_assets(Path(results_dir))  # the formulas' renderer; left alone when unchanged
    return [_write(Path(results_dir), folder, _views(series)) for folder, series in stale.items()]


def _stale(series: Sequence[SeriesPaths]) -> bool:
    page = _mtime(series[0].dir / PAGE)
    return page is None or any((_mtime(f) or 0) >= page for p in series for f in (p.jsonl, p.meta))


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


# ---------------------------------------------------------------------------------------------------- rendering

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 4px;overflow-wrap:anywhere} h2{font-size:16px;margin:26px 0 8px}
.sub{color:#57606a;margin:0 0 14px} a{color:#0969da}
table{border-collapse:collapse;font-variant-numeric:tabular-nums} .wrap{overflow-x:auto;max-width:100%}
th,td{padding:4px 8px;border-bottom:1px solid #d8dee4;text-align:right;white-space:nowrap}
th{background:#f6f8fa} th:first-child,td:first-child{text-align:left}
.filters{position:sticky;top:0;background:#fff;padding:8px 0;border-bottom:1px solid #d8dee4;z-index:2;
display:flex;flex-wrap:wrap;gap:8px;align-items:center}
.filters select,.filters input{font:inherit;padding:3px 6px} .filters input{min-width:18em} #shown{color:#57606a}
.p{border-bottom:1px solid #eaeef2} .p>summary,.head{display:grid;gap:10px;padding:5px 4px;align-items:baseline;
grid-template-columns:7em minmax(12em,3fr) minmax(5em,1fr) minmax(5em,1fr) 11em 5em 4.5em}
.p>summary{cursor:pointer;list-style:none} .p>summary::-webkit-details-marker{display:none}
.p>summary:hover{background:#f6f8fa} .p[open]>summary{background:#eef4fb}
.head{font-weight:600;background:#f6f8fa;border-bottom:1px solid #d8dee4}
.c{overflow:hidden;text-overflow:ellipsis;white-space:nowrap} .n{text-align:right;font-variant-numeric:tabular-nums}
.id{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
.v{font-size:12px;padding:1px 6px;border-radius:9px;background:#eaeef2;white-space:nowrap;justify-self:start}
.v.correct{background:#dafbe1;color:#116329} .v.incorrect{background:#ffebe9;color:#a40e26}
.v.unparsed{background:#fff8c5;color:#7d4e00} .v.timeout,.v.error{background:#fff1e5;color:#953800}
.t{font-size:11px;color:#953800;margin-left:4px} .t.f{color:#6639ba} .j{font-size:11px;color:#57606a;margin-left:4px}
.j.dis{color:#8250df;font-weight:600}
.body{padding:6px 12px 14px;background:#fbfcfd} .body h4{margin:10px 0 4px;font-size:13px;color:#57606a}
pre{white-space:pre-wrap;overflow-wrap:anywhere;font:13px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace;
margin:0;padding:8px;background:#fff;border:1px solid #d8dee4;border-radius:6px;max-height:40em;overflow:auto}
details.r>summary{cursor:pointer;color:#57606a;font-size:13px;margin-top:10px} .facts{color:#57606a;font-size:12px}
.cut{color:#953800;font-size:12px}
"""

SCRIPT = """
(function(){
var items=[].slice.call(document.querySelectorAll('details.p'));
var text=items.map(function(e){return e.textContent.toLowerCase();});
var v=document.getElementById('verdict'),d=document.getElementById('dataset'),q=document.getElementById('q');
var shown=document.getElementById('shown'),j=document.getElementById('jd');
function keep(e,i){var want=v.value,ds=d.value,s=q.value.trim().toLowerCase();
if(want&&!(e.dataset.v===want||(want==='truncated'&&e.dataset.t==='1')||(want==='forced'&&e.dataset.f==='1')
||(want==='answer in reasoning'&&e.dataset.a==='1')))return false;
if(j&&j.checked&&e.dataset.j!=='1')return false;
if(ds&&e.dataset.d!==ds)return false;return !s||text[i].indexOf(s)>=0;}
function apply(){var n=0;items.forEach(function(e,i){var k=keep(e,i);e.hidden=!k;if(k)n++;});
document.querySelectorAll('section.ds').forEach(function(sec){var m=0;
sec.querySelectorAll('details.p').forEach(function(e){if(!e.hidden)m++;});
sec.querySelector('.count').textContent=m+' shown';});
shown.textContent=n+' of '+items.length+' answers shown';
var h=[];if(v.value)h.push('v='+encodeURIComponent(v.value));if(d.value)h.push('d='+encodeURIComponent(d.value));
if(q.value)h.push('q='+encodeURIComponent(q.value));if(j&&j.checked)h.push('j=1');
if(history.replaceState)history.replaceState(null,'',h.length?'#'+h.join('&'):location.pathname+location.search);}
function load(){location.hash.replace(/^#/,'').split('&').forEach(function(kv){var p=kv.split('=');
var val=decodeURIComponent(p[1]||'');if(p[0]==='v')v.value=val;if(p[0]==='d')d.value=val;if(p[0]==='q')q.value=val;
if(p[0]==='j'&&j)j.checked=val==='1';});}
load();[v,d,j].forEach(function(el){if(el)el.addEventListener('change',apply);});q.addEventListener('input',apply);
apply();
})();
"""


def _short(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _full(text: str, math: bool = True) -> str:
    """``text`` escaped in a ``<pre>`` (of class ``m``: formulas rendered), cut at ``FULL_CHARS`` with a note."""
    pre = '<pre class="m">' if math else "<pre>"
    if len(text) <= FULL_CHARS:
        return f"{pre}{escape(text)}</pre>"
    return (
        f'{pre}{escape(text[:FULL_CHARS])}</pre><p class="cut">cut at {FULL_CHARS:,} of {len(text):,} '
        "characters; the .jsonl next to this page holds it whole</p>"
    )


def _summary_row(view: SeriesView) -> str:
    found = counts(view.records)
    cell = Cell.of(view.score)
    tds = [
        f'<td><a href="#ds-{escape(safe_name(view.dataset))}">{escape(dataset_title(view.dataset))}</a></td>',
        f"<td>{escape(cell_text(cell))}</td>",
        f"<td>{view.score.answered}/{view.score.total}</td>",
    ]
    tds += [f"<td>{found.get(name, 0)}</td>" for name in COUNTS]
    tds += [f"<td>{view.score.completion_tokens:,}</td>"]
    return "<tr>" + "".join(tds) + "</tr>"


def _summary(views: Sequence[SeriesView]) -> str:
    head = ["Dataset", "Accuracy", "Answered/Total", *[c.capitalize() for c in COUNTS], "Tokens"]
    ths = "".join(f"<th>{escape(h)}</th>" for h in head)
    rows = "".join(_summary_row(v) for v in views)
    return f'<div class="wrap"><table><thead><tr>{ths}</tr></thead><tbody>{rows}</tbody></table></div>'


def _filters(views: Sequence[SeriesView]) -> str:
    marks = [(m, m) for m in MARKS]
    verdicts = [("", "every verdict")] + [(c, c) for c in COUNTS] + marks + [("not graded", "not graded")]
    options = "".join(f'<option value="{escape(v)}">{escape(label)}</option>' for v, label in verdicts)
    sets = "".join(f'<option value="{escape(v.dataset)}">{escape(dataset_title(v.dataset))}</option>' for v in views)
    return (
        '<div class="filters"><label>Verdict <select id="verdict">' + options + "</select></label>"
        '<label>Dataset <select id="dataset"><option value="">every dataset</option>' + sets + "</select></label>"
        '<input id="q" type="search" placeholder="search id, task, answer, response…" aria-label="search">'
        + _judge_filter(views)
        + '<label class="raw"><input id="raw" type="checkbox"> raw LaTeX</label><span id="shown"></span></div>'
    )


def _judge_filter(views: Sequence[SeriesView]) -> str:
    """The "judge disagrees" checkbox, on a page where the judge was asked about some answer."""
    if not any(getattr(r, "judge", None) for v in views for r in v.records):
        return ""
    return '<label class="judge"><input id="jd" type="checkbox"> judge disagrees</label>'


def _judge_badge(rec: AnswerRecord) -> str:
    """The judge's verdict beside the grader's (``judge: correct``), marked when the two disagree."""
    if not rec.judge:
        return ""
    cls = "j dis" if disagrees(rec) else "j"
    reason = escape(_short(str(rec.judge.get("reason", "")), 300))
    return f'<span class="{cls}" title="{reason}">judge: {escape(str(rec.judge.get("verdict", "")))}</span>'


def _cell(text: str, classes: str = "c") -> str:
    return f'<span class="{classes}" title="{escape(_short(text, 300))}">{escape(_short(text, CELL_CHARS))}</span>'


def _problem(rec: AnswerRecord) -> str:
    verdict = verdict_of(rec)
    cut = '<span class="t">truncated</span>' if truncated(rec) else ""
    cut += '<span class="t f">forced</span>' if rec.forced else ""
    cut += '<span class="t">answer in reasoning</span>' if rec.answer_in_reasoning else ""
    extracted = rec.extracted or DASH
    summary = "".join(
        [
            f'<span class="c id" title="{escape(rec.id)}">{escape(_short(rec.id, 40))}</span>',
            f'<span class="c m">{escape(_short(rec.task, TASK_CHARS))}</span>',
            _cell(rec.reference, "c m mx"),
            _cell(extracted, "c m mx"),
            f'<span><span class="v {escape(verdict.replace(" ", "-"))}">{escape(verdict)}</span>{cut}'
            f"{_judge_badge(rec)}</span>",
            f'<span class="n">{rec.completion_tokens:,}</span>',
            f'<span class="n">{rec.latency_s:.1f} s</span>',
        ]
    )
    return (
        f'<details class="p" data-v="{escape(verdict)}" data-t="{int(truncated(rec))}" data-f="{int(rec.forced)}" '
        f'data-a="{int(rec.answer_in_reasoning)}" data-j="{int(disagrees(rec))}" data-d="{escape(rec.dataset)}">'
        f'<summary>{summary}</summary><div class="body">{_body(rec)}</div></details>'
    )


def _body(rec: AnswerRecord) -> str:
    parts = ["<h4>Task</h4>", _full(rec.task), "<h4>Response</h4>", _full(rec.response or "")]
    if rec.graded_tail:
        parts += [
            "<h4>Graded: the reasoning's last part (grade_reasoning_tail)</h4>",
            _full(reasoning_tail(rec.reasoning)),
        ]
    if rec.reasoning:
        size = f"{rec.reasoning_tokens:,} tokens, " if rec.reasoning_tokens else ""
        forced = "; forced to answer at the budget" if rec.forced else ""
        parts.append(
            f'<details class="r"><summary>Reasoning ({size}{len(rec.reasoning):,} characters{forced})</summary>'
            f"{_full(rec.reasoning)}</details>"
        )
    if rec.error is not None:
        parts += ["<h4>Error</h4>", _full(rec.error, math=False)]
    if rec.judge:
        judge = rec.judge
        parts += [
            f"<h4>Judge ({escape(str(judge.get('model', '')))}): {escape(str(judge.get('verdict', '')))}</h4>",
            _full(str(judge.get("reason", "")), math=False),
        ]
    facts = (
        f"reference: {rec.reference}; extracted: {rec.extracted or DASH}; verdict: {verdict_of(rec)}"
        f"{' (approximate)' if rec.approximate else ''}; finish: {rec.finish_reason or DASH}; tokens: prompt "
        f"{rec.prompt_tokens:,}, completion {rec.completion_tokens:,}; latency {rec.latency_s:.2f} s"
    )
    parts.append(f'<p class="facts">{escape(facts)}</p>')
    return "".join(parts)


def _section(view: SeriesView) -> str:
    head = (
        '<div class="head"><span>Id</span><span>Task</span><span>Reference</span><span>Extracted</span>'
        '<span>Verdict</span><span class="n">Tokens</span><span class="n">Latency</span></div>'
    )
    problems = "".join(_problem(r) for r in view.records) or "<p>no answer yet</p>"
    title = f"{dataset_title(view.dataset)}: {pct(Cell.of(view.score).accuracy)}"
    return (
        f'<section class="ds" id="ds-{escape(safe_name(view.dataset))}"><h2>{escape(title)} '
        f'<small class="count"></small></h2>{head}{problems}</section>'
    )


def render_details_page(model: str, views: Sequence[SeriesView]) -> str:
    """The whole page of ``model`` over its datasets ``views``."""
    answered = sum(v.score.answered for v in views)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width,initial-scale=1">',
            f"<title>{escape(model)}: answers (DeathMath)</title>",
            f"<style>{CSS}{MATH_CSS}</style>{head_html('../../')}</head><body>",
            f"<h1>{escape(model)}</h1>",
            f'<p class="sub">{answered} answer(s) over {len(views)} dataset(s). '
            '<a href="../../leaderboard.html">leaderboard</a> · <a href="../../status.html">run status</a> · '
            "click a row to read the whole answer</p>",
            _summary(views),
            _filters(views),
            *[_section(v) for v in views],
            f"<script>{SCRIPT}</script>",
            "</body></html>",
            "",
        ]
    )


__all__ = [
    "COUNTS",
    "SeriesView",
    "counts",
    "load_model",
    "render_details_page",
    "truncated",
    "verdict_of",
    "write_details_pages",
    "write_model_page",
]
