"""Formulas on the answers page in a real headless Chromium (tests/browser.py), from ``file://`` with MathJax from
``results/assets/``: every formula of the sample datasets (tasks, references, answers in ``$...$``, ``\\[...\\]`` and
``\\boxed{}``) renders with no error node; the "raw LaTeX" toggle shows the text as written and the search still reads
the raw text; a hostile answer (``\\href{javascript:...}``, ``\\htmlClass``, a broken formula, markup inside ``$``)
renders nothing that runs or links, shows what it cannot render as raw text, and leaves the rest of the page working.
The first test writes a screenshot of the page (docs/answers-page.png is a copy of it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import datasets as ds
from orchestrator.contract import AnswerRecord
from orchestrator.leaderboard import write_leaderboard
from orchestrator.leaderboard.mathassets import mathjax_dir
from orchestrator.results import SeriesStore, load_scores
from tests.support.browser import Browser

HOSTILE = (
    "$\\href{javascript:window.__pwned='href'}{\\text{click}}$, $\\htmlClass{evil}{x}$, \\(\\class{evil}{y}\\), "
    "$\\bbox[background-image:url(javascript:window.__pwned='bbox')]{z}$, $<img src=x onerror=window.__pwned=1>$, "
    "$\\frac{1}{$ and at last $a^2 + b^2$"
)


def answer(problem, response: str, extracted: str, verdict: str = "correct") -> AnswerRecord:
    return AnswerRecord(
        id=problem.id,
        dataset=problem.dataset,
        model="math-model",
        task=problem.task,
        reference=problem.reference,
        response=response,
        extracted=extracted,
        verdict=verdict,
        finish_reason="stop",
        prompt_tokens=50,
        completion_tokens=120,
        latency_s=2.0,
        settings_hash="h",
    )


def worked(problem) -> str:
    ref = problem.reference.replace("%", "\\%")
    return (
        "Решение.\n\nПо формуле \\[ S = \\sum_{k=1}^{n} a_k = \\frac{n(n+1)}{2} \\]"
        f" получаем $x = {ref}$, то есть \\(x \\ge 0\\).\n\nОтвет: \\boxed{{{ref}}}"
    )


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Every problem of sample-math and sample-physics answered with formulas in every delimiter."""
    assert mathjax_dir() is not None, "django-static-mathjax is not installed: run `make install`"
    root = tmp_path / "results"
    for name in ("sample-math", "sample-physics"):
        problems = ds.load(ds.REGISTRY[name])
        store = SeriesStore(root, "math-model", name, "h", meta={"total": len(problems), "model_name": "math-model"})
        for problem in problems:
            store.append(answer(problem, worked(problem), problem.reference))
    write_leaderboard(root, load_scores(root))
    return root


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with Browser(tmp_path / "chromium-profile") as b:
        yield b


def render_all(browser: Browser) -> dict:
    return browser.js("window.deathmathMath.ready.then(m=>m.renderAll())")


def test_every_formula_of_the_sample_datasets_renders_without_an_error(
    results: Path, browser: Browser, tmp_path: Path
) -> None:
    browser.open((results / "details" / "math-model" / "index.html").as_uri())
    browser.js("document.querySelectorAll('details.p')[2].open=true")
    counts = render_all(browser)
    bad = browser.js("[].map.call(document.querySelectorAll('.m-bad'),e=>e.title+': '+e.textContent)")
    assert counts["failed"] == 0 and not bad and counts["rendered"] > 300
    assert browser.js("document.querySelectorAll('mjx-container').length") == counts["rendered"]
    assert browser.js("document.querySelectorAll('mjx-merror, .m-bad').length") == 0
    fonts = browser.js("document.fonts.ready.then(()=>[...document.fonts].filter(f=>f.status==='loaded').length)")
    assert fonts > 0  # MathJax's fonts load from results/assets over file://
    assert browser.js("document.querySelectorAll('mjx-container[display=true]').length") > 0  # \[...\] as display
    boxed = browser.js("document.querySelectorAll('details.p')[2].querySelector('.body pre:nth-of-type(2) menclose')")
    assert boxed is not None  # \boxed{} outside any delimiter renders as a box
    time.sleep(0.3)
    browser.screenshot(tmp_path / "answers-page.png", full_page=False)
    assert (tmp_path / "answers-page.png").stat().st_size > 10_000


def test_raw_toggle_shows_the_text_as_written_and_search_reads_the_raw_text(results: Path, browser: Browser) -> None:
    browser.open((results / "details" / "math-model" / "index.html").as_uri())
    render_all(browser)
    first = "document.querySelector('details.p .c.m')"
    assert browser.js(f"getComputedStyle({first}.querySelector('.m-raw')).display") == "none"
    browser.js("document.getElementById('raw').click()")
    assert browser.js(f"getComputedStyle({first}.querySelector('.m-out')).display") == "none"
    assert (
        browser.js(f"{first}.querySelector('.m-raw').innerText")
        == "Найдите сумму всех натуральных делителей числа $360$ (включая $1$ и само число)."
    )
    browser.js("document.getElementById('raw').click()")
    assert browser.js(f"getComputedStyle({first}.querySelector('.m-raw')).display") == "none"
    browser.type_into("#q", "$7^{2025}$")
    assert browser.js("document.querySelectorAll('details.p:not([hidden])').length") == 1


def test_hostile_tex_renders_nothing_that_runs_or_links_and_shows_what_fails_raw(
    tmp_path: Path, browser: Browser
) -> None:
    root = tmp_path / "results"
    problem = ds.load(ds.REGISTRY["sample-math"])[0]
    store = SeriesStore(root, "evil-model", "sample-math", "h", meta={"total": 1, "model_name": "evil-model"})
    store.append(answer(problem, HOSTILE, "\\href{javascript:window.__pwned='extracted'}{1}", verdict="incorrect"))
    write_leaderboard(root, load_scores(root))
    browser.open((root / "details" / "evil-model" / "index.html").as_uri())
    browser.js("document.querySelectorAll('details').forEach(d=>d.open=true)")
    counts = render_all(browser)
    browser.js("document.querySelectorAll('.m-out a, .m-out [href], mjx-container *').forEach(e=>e.click&&e.click())")
    time.sleep(0.3)  # an injected handler or a followed javascript: link would have run by now
    assert browser.js("typeof window.__pwned") == "undefined"
    assert (
        browser.js(
            "[].filter.call(document.querySelectorAll('[href]'),e=>/javascript/i.test(e.getAttribute('href'))).length"
        )
        == 0
    )
    assert (
        browser.js(
            "[].filter.call(document.querySelectorAll('[style]'),"
            "e=>/url|javascript/i.test(e.getAttribute('style'))).length"
        )
        == 0
    )
    assert browser.js("document.querySelectorAll('.evil').length") == 0 and browser.js("document.images.length") == 0
    bad = browser.js("[].map.call(document.querySelectorAll('.m-bad'),e=>e.textContent)")
    assert (
        "$\\htmlClass{evil}{x}$" in bad
        and "$\\frac{1}{$" in bad
        and "\\href{javascript:window.__pwned='extracted'}{1}" in bad
    )
    assert counts["failed"] == len(bad) and counts["rendered"] >= 3  # the task's formulas, the bbox, a^2 + b^2
    last = browser.js(
        "[].slice.call(document.querySelectorAll('.body pre:nth-of-type(2) mjx-container')).pop().textContent"
    )
    assert "a" in last and "b" in last
