"""The leaderboard: series scores -> rows -> ``results/leaderboard.md`` / ``.json`` / ``.html``, and a page of
answers per model (``results/details/<model>/index.html``, linked from the HTML leaderboard).

Per (model, dataset) the cell comes from the latest complete series (``scores`` are read in order, later is
newer), never the best of several; with no complete series the latest one is shown marked incomplete, scored over
the problems answered so far, and left out of Combined. Combined is the mean accuracy over the datasets a model
completed and names them. Its 95% interval is the Wilson interval at the Kish effective sample size of that mean
(k^2 / sum(1/n_i)); with equal-size datasets this is exactly the Wilson interval of the pooled answers, and unlike
the pooled interval it is always centred on the mean shown.

With k > 1 samples per problem a cell is avg@k with a seeded bootstrap interval over problems, and pass@k / maj@k
are shown (``stats``, ``results.samples``); every pair of models is compared on the problems both answered with a
paired interval (``compare``), in all three files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..contract import SeriesScore
from ..errors import ResultsError
from ..fileio import atomic_write_text
from .compare import Comparison, pairwise
from .details_page import write_details_pages, write_model_page
from .page import render_html
from .render import render_json, render_markdown
from .rows import Cell, Row, aggregate, dataset_title, details_link, select_series, wilson, wilson_p

FILES = {"md": "leaderboard.md", "json": "leaderboard.json", "html": "leaderboard.html"}


def write_leaderboard(
    results_dir: Path, scores: Sequence[SeriesScore], datasets: Sequence[str] | None = None
) -> dict[str, Path]:
    """Write leaderboard.md/.json/.html under ``results_dir`` atomically (``fileio.atomic_write_text``), and the
    answers page of every model (``details/<model>/index.html``, see ``details_page``)."""
    names = list(datasets) if datasets is not None else list(dict.fromkeys(s.dataset for s in scores))
    rows = aggregate(scores, names)
    comparisons = pairwise(rows)
    results_dir = Path(results_dir)
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsError(
            f"cannot create {results_dir}: {exc.strerror or exc}; choose a writable --results-dir"
        ) from None
    texts = {
        "md": render_markdown(rows, names, comparisons),
        "json": render_json(rows, names, comparisons),
        "html": render_html(rows, names, comparisons),
    }
    paths = {kind: results_dir / FILES[kind] for kind in texts}
    for kind, text in texts.items():
        atomic_write_text(paths[kind], text)
    write_details_pages(results_dir)
    return paths


__all__ = [
    "Cell",
    "Comparison",
    "Row",
    "pairwise",
    "aggregate",
    "dataset_title",
    "details_link",
    "render_html",
    "render_json",
    "render_markdown",
    "select_series",
    "wilson",
    "wilson_p",
    "write_details_pages",
    "write_leaderboard",
    "write_model_page",
]
