"""The formulas' assets (orchestrator/leaderboard/mathassets.py): written once under results/assets/ by the
leaderboard writer, left alone when unchanged, repaired when changed; pages load them by relative path; an install
without MathJax still writes every page (formulas raw) and says so once; the page marks what holds formulas."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from orchestrator.contract import AnswerRecord
from orchestrator.leaderboard import mathassets, write_leaderboard
from orchestrator.results import SeriesStore, load_scores


def store(results: Path, n: int, **extra) -> None:
    fields = {
        "id": f"q{n}",
        "dataset": "sample-math",
        "model": "m",
        "task": f"Найдите $\\frac{{{n}}}{{2}}$.",
        "reference": f"\\frac{{{n}}}{{2}}",
        "response": f"Ответ: \\boxed{{{n}/2}}",
        "extracted": f"{n}/2",
        "verdict": "correct",
        "finish_reason": "stop",
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "latency_s": 1.0,
        "settings_hash": "h",
    }
    fields.update(extra)
    SeriesStore(results, "m", "sample-math", "h", meta={"total": 5, "model_name": "m"}).append(AnswerRecord(**fields))


def page(results: Path) -> str:
    return (results / "details" / "m" / "index.html").read_text()


def test_the_leaderboard_writes_mathjax_and_the_renderer_where_the_page_loads_them(tmp_path: Path) -> None:
    assert mathassets.mathjax_dir() is not None, "django-static-mathjax is not installed: run `make install`"
    store(tmp_path, 1)
    write_leaderboard(tmp_path, load_scores(tmp_path))
    html = page(tmp_path)
    for src in ('"../../assets/math.js"', f'"../../assets/mathjax/{mathassets.COMPONENT}"'):
        assert f"<script src={src}" in html
        assert (tmp_path / "details" / "m" / src.strip('"')).resolve().is_file()
    assets = tmp_path / "assets"
    assert (assets / "mathjax" / "ui" / "safe.js").is_file()
    assert len(list((assets / "mathjax" / mathassets.FONTS).glob("*.woff"))) >= 20
    assert (assets / "math.js").read_bytes() == mathassets.RENDERER.read_bytes()
    assert "http://" not in html and "https://" not in html  # no CDN


def test_assets_are_not_rewritten_when_unchanged_and_are_repaired_when_changed(tmp_path: Path) -> None:
    store(tmp_path, 1)
    write_leaderboard(tmp_path, load_scores(tmp_path))
    files = sorted(p for p in (tmp_path / "assets").rglob("*") if p.is_file())
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files}
    store(tmp_path, 2)  # the page is stale now and is rewritten; the assets are not
    write_leaderboard(tmp_path, load_scores(tmp_path))
    assert "q2" in page(tmp_path)
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files} == before
    (tmp_path / "assets" / "math.js").write_text("tampered")
    assert mathassets.write_assets(tmp_path) == [tmp_path / "assets" / "math.js"]
    assert (tmp_path / "assets" / "math.js").read_bytes() == mathassets.RENDERER.read_bytes()


def test_without_mathjax_pages_are_written_with_raw_formulas_and_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(mathassets, "mathjax_dir", lambda: None)
    monkeypatch.setattr(mathassets, "_warned", [])
    store(tmp_path, 1)
    with caplog.at_level(logging.WARNING, logger="orchestrator.leaderboard.mathassets"):
        write_leaderboard(tmp_path, load_scores(tmp_path))
        store(tmp_path, 2)
        write_leaderboard(tmp_path, load_scores(tmp_path))
    assert "\\frac{1}{2}" in page(tmp_path) and not (tmp_path / "assets" / "mathjax").exists()
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "django-static-mathjax" in caplog.records[0].message


def test_formulas_are_marked_for_rendering_but_markup_in_them_stays_escaped_text(tmp_path: Path) -> None:
    store(tmp_path, 1, response="$<script>alert(1)</script>$ \\(x\\)", error=None)
    store(tmp_path, 2, response="", error="HTTP 500: $x$", verdict="")
    write_leaderboard(tmp_path, load_scores(tmp_path))
    html = page(tmp_path)
    assert '<pre class="m">$&lt;script&gt;alert(1)&lt;/script&gt;$ \\(x\\)</pre>' in html
    assert "<pre>HTTP 500: $x$</pre>" in html  # an error line is not math
    assert '<span class="c m mx" title="\\frac{1}{2}">\\frac{1}{2}</span>' in html
    assert '<input id="raw" type="checkbox">' in html
