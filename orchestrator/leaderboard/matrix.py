"""The HTML section "Which differences are real": a matrix of pairwise differences, and who beats whom.

Cell (row A, column B) is A's accuracy minus B's in points over their common problems, green when A beats B with
95% confidence, red when B beats A, grey otherwise; its title holds the paired 95% interval and the test. Columns
are numbered by leaderboard rank to keep the table narrow. Every model name is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .compare import Comparison, beaten_by
from .rows import Row

CSS = """
table.pairs td,table.pairs th{padding:3px 6px;font-size:12px} td.win{background:#dafbe1!important;color:#116329}
td.loss{background:#ffebe9!important;color:#a40e26} td.tie{color:#6e7781} td.self{background:#f6f8fa!important}
table.pairs td.model,table.pairs th:nth-child(2),table.pairs th:last-child{text-align:left}
"""


def comparison_html(rows: Sequence[Row], comparisons: Sequence[Comparison]) -> str:
    """The section's HTML (empty when fewer than two models can be compared)."""
    if not comparisons:
        return ""
    found = {(c.a, c.b): c for c in comparisons}
    found.update({(c.b, c.a): c.flipped() for c in comparisons})
    head = "".join(f'<th title="{escape(r.model)}">{i}</th>' for i, r in enumerate(rows, 1))
    body = "".join(_tr(i, row, rows, found, comparisons) for i, row in enumerate(rows, 1))
    return (
        "<h2>Which differences are real</h2>"
        '<p class="sub">Row minus column, accuracy points on the problems both answered; green: the row '
        "model is better with 95% confidence, red: worse, grey: cannot be told apart.</p>"
        f'<div class="wrap"><table class="pairs"><thead><tr><th>#</th><th>Model</th>{head}<th>Beats</th>'
        f"</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _tr(rank: int, row: Row, rows: Sequence[Row], found: dict, comparisons: Sequence[Comparison]) -> str:
    tds = [f"<td>{rank}</td>", f'<td class="model">{escape(row.model)}</td>']
    for other in rows:
        tds.append(_td(found.get((row.model, other.model)), row.model == other.model))
    beaten = beaten_by(comparisons, row.model)
    tds.append(f'<td class="model">{escape(", ".join(beaten)) if beaten else "—"}</td>')
    return "<tr>" + "".join(tds) + "</tr>"


def _td(c: Comparison | None, same: bool) -> str:
    if same:
        return '<td class="self"></td>'
    if c is None:
        return '<td class="tie" title="no common complete dataset">—</td>'
    cls = "tie" if c.winner is None else "win" if c.winner == c.a else "loss"
    test = f"McNemar p = {c.p_value:.3g}" if c.p_value is not None else "paired bootstrap"
    title = (
        f"{c.a} − {c.b}: {100 * c.diff:+.1f} points, 95% [{100 * c.ci_low:+.1f}, {100 * c.ci_high:+.1f}] "
        f"over {c.problems} problems; {test}"
    )
    return f'<td class="{cls}" title="{escape(title)}">{100 * c.diff:+.1f}</td>'
