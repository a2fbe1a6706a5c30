"""Leaderboard: Wilson intervals, series selection, Combined, and the md / json / html renderings on disk."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

from orchestrator.contract import SeriesScore
from orchestrator.errors import ResultsError
from orchestrator.leaderboard import (
    aggregate,
    render_html,
    render_json,
    render_markdown,
    wilson,
    wilson_p,
    write_leaderboard,
)

DATASETS = ["russianmath", "russianphysics"]
EVIL = '<img src=x onerror=alert(1)>|*"model"*'


def score(
    model: str,
    dataset: str,
    correct: int,
    total: int = 100,
    answered: int | None = None,
    settings: str = "h1",
    completion: int = 1000,
    seconds: float = 10.0,
) -> SeriesScore:
    return SeriesScore(
        model=model,
        dataset=dataset,
        settings_hash=settings,
        total=total,
        answered=total if answered is None else answered,
        correct=correct,
        errors=0,
        prompt_tokens=500,
        completion_tokens=completion,
        eval_seconds=seconds,
    )


# ---------------------------------------------------------------------------------------------------- wilson


@pytest.mark.parametrize(
    "correct,n,low,high",
    [
        (5, 10, 0.2366, 0.7634),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
    ],
)
def test_wilson_matches_published_values(correct: int, n: int, low: float, high: float) -> None:
    got = wilson(correct, n)
    assert got == pytest.approx((low, high), abs=5e-4)


def test_wilson_of_nothing_is_total_uncertainty() -> None:
    assert wilson(0, 0) == (0.0, 1.0)


# ---------------------------------------------------------------------------------------------------- aggregate


def test_latest_complete_series_wins_never_the_best() -> None:
    scores = [
        score("m", "russianmath", 90, settings="old"),  # better, but older
        score("m", "russianmath", 60, settings="new"),
        score("m", "russianmath", 99, answered=50, settings="newest-partial"),
    ]
    (row,) = aggregate(scores, ["russianmath"])
    cell = row.cells["russianmath"]
    assert (cell.settings_hash, cell.accuracy, cell.complete) == ("new", 0.6, True)


def test_incomplete_series_is_shown_marked_and_left_out_of_combined() -> None:
    scores = [score("m", "russianmath", 70), score("m", "russianphysics", 35, total=190, answered=85)]
    (row,) = aggregate(scores, DATASETS)
    phys = row.cells["russianphysics"]
    assert not phys.complete and phys.accuracy == pytest.approx(35 / 85)
    assert row.combined == pytest.approx(0.70) and row.combined_over == ("russianmath",)
    assert (row.answered, row.total) == (185, 290)
    md = render_markdown([row], DATASETS)
    assert "41.2% (85/190, incomplete)" in md and "70.0% (1/2: RussianMath)" in md


def test_combined_is_the_mean_over_completed_datasets_and_rows_sort_by_it() -> None:
    scores = [
        score("low", "russianmath", 20),
        score("low", "russianphysics", 40),
        score("high", "russianmath", 80),
        score("high", "russianphysics", 60),
        score("none", "russianmath", 10, answered=20),
    ]
    rows = aggregate(scores, DATASETS)
    assert [r.model for r in rows] == ["high", "low", "none"]
    assert rows[0].combined == pytest.approx(0.70) and rows[0].combined_over == tuple(DATASETS)
    assert rows[2].combined is None and rows[2].ci_low is None


def test_combined_interval_is_pooled_wilson_for_equal_sizes_and_centred_otherwise() -> None:
    (equal,) = aggregate([score("m", "russianmath", 80), score("m", "russianphysics", 60)], DATASETS)
    assert (equal.ci_low, equal.ci_high) == pytest.approx(wilson(140, 200))
    (unequal,) = aggregate([score("m", "russianmath", 99, total=190), score("m", "russianphysics", 99)], DATASETS)
    pooled = wilson(198, 290)
    assert unequal.combined == pytest.approx((99 / 190 + 0.99) / 2)
    assert not pooled[0] <= unequal.combined <= pooled[1]  # the pooled interval would miss the mean shown
    assert unequal.ci_low < unequal.combined < unequal.ci_high
    n_eff = 4 / (1 / 190 + 1 / 100)
    assert (unequal.ci_low, unequal.ci_high) == pytest.approx(wilson_p(unequal.combined, n_eff))


def test_tokens_time_rate_and_details_link() -> None:
    scores = [
        score("org/model v2", "russianmath", 50, completion=3000, seconds=20.0),
        score("org/model v2", "russianphysics", 50, completion=1000, seconds=20.0),
    ]
    (row,) = aggregate(scores)
    assert (row.completion_tokens, row.prompt_tokens, row.eval_seconds, row.tokens_per_s) == (4000, 1000, 40.0, 100.0)
    assert row.details == "details/org_model_v2/"
    assert list(row.cells) == DATASETS  # datasets default to first appearance


def test_datasets_argument_picks_and_orders_the_columns() -> None:
    scores = [score("m", "russianmath", 50), score("m", "russianphysics", 50), score("m", "extra", 10)]
    (row,) = aggregate(scores, ["russianphysics", "russianmath"])
    assert list(row.cells) == ["russianphysics", "russianmath"]
    header = render_markdown([row], ["russianphysics", "russianmath"]).splitlines()[2]
    assert header == (
        "| Model | Combined | RussianPhysics | RussianMath | 95% CI | Answered/Total | Tokens | "
        "Eval time | Tokens/s | Details |"
    )


# ---------------------------------------------------------------------------------------------------- renderings


def _table_cells(line: str) -> list[str]:
    cells, cur, i = [], "", 1
    while i < len(line) - 1:
        if line[i] == "\\":
            cur += line[i : i + 2]
            i += 2
            continue
        if line[i] == "|":
            cells.append(cur.strip())
            cur = ""
        else:
            cur += line[i]
        i += 1
    return cells + [cur.strip()]


def test_markdown_row_layout_survives_a_hostile_model_name() -> None:
    rows = aggregate(
        [
            score(EVIL, "russianmath", 61, seconds=3725.0),
            score(EVIL, "russianphysics", 40),
            score("other", "russianmath", 10),
        ],
        DATASETS,
    )
    lines = render_markdown(rows, DATASETS).splitlines()
    head = _table_cells(lines[2])
    for line in lines[4:6]:
        assert len(_table_cells(line)) == len(head)
    cells = dict(zip(head, _table_cells(lines[4]), strict=True))
    assert cells["Model"] == r'\<img src=x onerror=alert(1)\>\|\*"model"\*'
    assert cells["Combined"] == "50.5%" and cells["RussianMath"] == "61.0%" and cells["Eval time"] == "1h 02m"
    assert cells["Details"].startswith("[details](details/_img_src_x_onerror_alert_1_") and "<" not in cells["Details"]


def test_json_has_the_same_rows_with_per_dataset_intervals() -> None:
    rows = aggregate([score("a", "russianmath", 80), score("b", "russianmath", 20, answered=40)], ["russianmath"])
    data = json.loads(render_json(rows, ["russianmath"]))
    assert data["datasets"] == [{"name": "russianmath", "title": "RussianMath"}]
    assert [r["model"] for r in data["rows"]] == ["a", "b"]
    cell = data["rows"][1]["datasets"]["russianmath"]
    assert (cell["complete"], cell["answered"], cell["accuracy"]) == (False, 40, 0.5)
    assert cell["ci95"] == pytest.approx(list(wilson(20, 40)))
    assert data["rows"][0]["prompt_tokens"] == 500 and data["rows"][1]["combined"] is None


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_self_contained_escaped_and_charts_combined_with_whiskers() -> None:
    rows = aggregate(
        [
            score(EVIL, "russianmath", 60),
            score(EVIL, "russianphysics", 40),
            score("partial", "russianmath", 30),
            score("nothing", "russianmath", 5, answered=10),
        ],
        DATASETS,
    )
    page = render_html(rows, DATASETS)
    parser = _Collect()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags and "img" not in tags  # the hostile name stayed text
    assert EVIL in "".join(parser.text)
    assert not any(a.get("src") for _, a in parser.tags) and "<link" not in page and "@import" not in page
    assert tags.count("svg") == 1 and tags.count("rect") == 2  # one bar per model with a Combined
    bars = [a for t, a in parser.tags if t == "rect"]
    assert float(bars[0]["width"] or 0) > float(bars[1]["width"] or 0)
    assert tags.count("line") == 6 + 3 * 2  # 6 grid lines + 3 per whisker
    assert "no complete dataset" in page and "41.7% (10/100, incomplete)" not in page
    assert "50.0% (10/100, incomplete)" in page and "95% " in page


# ---------------------------------------------------------------------------------------------------- files


def test_write_leaderboard_writes_three_files_atomically(tmp_path: Path) -> None:
    scores = [score("m", "russianmath", 50), score("m", "russianphysics", 25)]
    paths = write_leaderboard(tmp_path / "results", scores)
    assert {k: p.name for k, p in paths.items()} == {
        "md": "leaderboard.md",
        "json": "leaderboard.json",
        "html": "leaderboard.html",
    }
    assert json.loads(paths["json"].read_text())["rows"][0]["combined"] == pytest.approx(0.375)
    assert "| m | 37.5% |" in paths["md"].read_text()
    paths["md"].write_text("stale")
    write_leaderboard(tmp_path / "results", scores)
    assert "stale" not in paths["md"].read_text()
    assert sorted(os.listdir(tmp_path / "results")) == ["leaderboard.html", "leaderboard.json", "leaderboard.md"]


def test_write_leaderboard_failure_is_a_one_line_results_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ResultsError) as err:
        write_leaderboard(blocker / "results", [score("m", "russianmath", 1)])
    assert "\n" not in str(err.value) and "results" in str(err.value)


def test_empty_leaderboard_renders(tmp_path: Path) -> None:
    paths = write_leaderboard(tmp_path, [], DATASETS)
    assert "no results yet" in paths["html"].read_text()
    assert json.loads(paths["json"].read_text())["rows"] == []
