"""``results/leaderboard.html``: one self-contained page (inline CSS, inline SVG chart, no JavaScript).

Every string from the results (model names, dataset names) is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .compare import Comparison, pairwise
from .matrix import CSS as PAIRS_CSS
from .matrix import comparison_html
from .render import cell_text, combined_text, headers, interval, judged, notes, pct, row_texts, sampled
from .rows import Row, dataset_title
from .thinking import html_section

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1b1f24;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px} .sub{color:#57606a;margin:0 0 16px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
.wrap{overflow-x:auto;max-width:100%} th,td{padding:5px 8px;border-bottom:1px solid #d8dee4;text-align:right}
th,td.num{white-space:nowrap} td.ds{min-width:7em;max-width:11em}
th{background:#f6f8fa;position:sticky;top:0} th:first-child,td:first-child{text-align:left}
tr:nth-child(even) td{background:#fafbfc} td.model{font-weight:600;max-width:22em;overflow-wrap:anywhere}
.ci{display:block;font-size:11px;color:#6e7781} .inc{color:#9a6700;font-style:italic}
ul.notes{color:#57606a;font-size:12px;padding-left:18px} svg text{font:12px system-ui,sans-serif;fill:#1b1f24}
"""
BAR, BAR_PARTIAL = "#3b6fb6", "#9cbbe3"
LABEL_W, PLOT_W, VALUE_W, ROW_H, TOP, BOTTOM = 250, 460, 70, 26, 28, 34
NAME_CHARS = 34


def render_html(rows: Sequence[Row], datasets: Sequence[str], comparisons: Sequence[Comparison] | None = None) -> str:
    """The whole page: title, bar chart of Combined with 95% whiskers, the table, which differences are real,
    the notes."""
    comparisons = pairwise(rows) if comparisons is None else comparisons
    names = ", ".join(dataset_title(d) for d in datasets) or "no dataset"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width,initial-scale=1">',
            "<title>DeathMath leaderboard</title>",
            f"<style>{CSS}{PAIRS_CSS}</style></head><body>",
            "<h1>DeathMath leaderboard</h1>",
            f'<p class="sub">{len(rows)} model(s); datasets: {escape(names)}</p>',
            "<h2>Combined accuracy with 95% interval</h2>",
            chart_svg(rows, datasets),
            "<h2>Results</h2>",
            _table(rows, datasets),
            comparison_html(rows, comparisons),
            html_section(rows),
            '<ul class="notes">' + "".join(f"<li>{escape(n.replace('`', ''))}</li>" for n in notes(rows)) + "</ul>",
            "</body></html>",
            "",
        ]
    )


def _table(rows: Sequence[Row], datasets: Sequence[str]) -> str:
    samples, judge = sampled(rows), judged(rows)
    head = "".join(f"<th>{escape(h)}</th>" for h in headers(datasets, samples, judge))
    body = "".join(_tr(row, datasets, samples, judge) for row in rows)
    if not rows:
        body = f'<tr><td colspan="{len(headers(datasets, samples, judge))}">no results yet</td></tr>'
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _tr(row: Row, datasets: Sequence[str], samples: bool, judge: bool = False) -> str:
    texts = row_texts(row, datasets, samples, judge)
    tds = [
        f'<td class="model" title="{escape(row.model)}">{escape(row.model)}</td>',
        f'<td class="ds">{escape(combined_text(row, datasets))}</td>',
    ]
    tds += [_dataset_td(row, d) for d in datasets]
    tds += [f'<td class="num">{escape(t)}</td>' for t in texts[1 + len(datasets) :]]
    tds.append(f'<td><a href="{escape(row.details)}index.html">details</a></td>')  # details_page.PAGE
    return "<tr>" + "".join(tds) + "</tr>"


def _dataset_td(row: Row, dataset: str) -> str:
    cell = row.cells.get(dataset)
    if cell is None:
        return f'<td class="ds">{escape(cell_text(None))}</td>'
    ci = f'<span class="ci">95% {escape(interval(cell.ci_low, cell.ci_high))}</span>'
    cls = "ds" if cell.complete else "ds inc"
    return f'<td class="{cls}">{escape(cell_text(cell))}{ci}</td>'


# ---------------------------------------------------------------------------------------------------- chart


def _x(value: float) -> float:
    return LABEL_W + PLOT_W * min(max(value, 0.0), 1.0)


def chart_svg(rows: Sequence[Row], datasets: Sequence[str]) -> str:
    """Horizontal bars of Combined (pale: over fewer datasets than all) with Wilson 95% whiskers."""
    width, height = LABEL_W + PLOT_W + VALUE_W, TOP + ROW_H * max(len(rows), 1) + BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Combined accuracy by model">'
    ]
    parts += _axis(height)
    for i, row in enumerate(rows):
        parts += _bar(row, TOP + i * ROW_H, len(datasets))
    if not rows:
        parts.append(f'<text x="{LABEL_W + 8}" y="{TOP + 17}">no results yet</text>')
    return "".join(parts) + "</svg>"


def _axis(height: int) -> list[str]:
    bottom = height - BOTTOM
    out = []
    for tick in range(0, 101, 20):
        x = _x(tick / 100)
        out.append(f'<line x1="{x:.1f}" y1="{TOP - 6}" x2="{x:.1f}" y2="{bottom}" stroke="#d8dee4"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{tick}%</text>')
    out.append(
        f'<text x="{LABEL_W + PLOT_W / 2:.1f}" y="{bottom + 31}" text-anchor="middle" fill="#57606a">'
        "Combined accuracy; whiskers: 95% interval; pale bar: over fewer datasets than all</text>"
    )
    return out


def _short(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"


def _bar(row: Row, y: int, n_datasets: int) -> list[str]:
    mid = y + ROW_H / 2
    out = [
        f'<text x="{LABEL_W - 8}" y="{mid + 4:.1f}" text-anchor="end"><title>{escape(row.model)}</title>'
        f"{escape(_short(row.model))}</text>"
    ]
    if row.combined is None:
        return out + [f'<text x="{LABEL_W + 6}" y="{mid + 4:.1f}" fill="#6e7781">no complete dataset</text>']
    color = BAR if len(row.combined_over) >= n_datasets else BAR_PARTIAL
    out.append(
        f'<rect x="{LABEL_W}" y="{y + 5}" width="{_x(row.combined) - LABEL_W:.1f}" height="{ROW_H - 10}" '
        f'fill="{color}"><title>{escape(row.model)}: {pct(row.combined)}</title></rect>'
    )
    out += _whisker(row.ci_low or 0.0, row.ci_high or 0.0, mid)
    label_x = max(_x(row.combined), _x(row.ci_high or 0.0)) + 6
    out.append(f'<text x="{label_x:.1f}" y="{mid + 4:.1f}">{pct(row.combined)}</text>')
    return out


def _whisker(low: float, high: float, mid: float) -> list[str]:
    x1, x2 = _x(low), _x(high)
    style = 'stroke="#1b1f24" stroke-width="1.5"'
    return [
        f'<line x1="{x1:.1f}" y1="{mid:.1f}" x2="{x2:.1f}" y2="{mid:.1f}" {style}/>',
        f'<line x1="{x1:.1f}" y1="{mid - 5:.1f}" x2="{x1:.1f}" y2="{mid + 5:.1f}" {style}/>',
        f'<line x1="{x2:.1f}" y1="{mid - 5:.1f}" x2="{x2:.1f}" y2="{mid + 5:.1f}" {style}/>',
    ]
