"""The HTML pages in a real headless Chromium (tests.support.browser): the leaderboard, a model's answers page and the
run status page render; the answers page's filters work as a user drives them (the LLM judge's "judge disagrees"
too); a `<script>` in a model's answer, its reasoning, its extracted answer or the model's name stays text and never
runs; the status page reloads itself from
a static file server. Each test writes a screenshot of its page under its temporary directory."""

from __future__ import annotations

import functools
import http.server
import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.contract import AnswerRecord, RunPhase
from orchestrator.leaderboard import write_leaderboard
from orchestrator.results import SeriesPaths, SeriesStore, load_scores, rewrite_series
from orchestrator.status.file import RunStatus
from orchestrator.status.progress import Progress
from orchestrator.status.view import render_status_html
from orchestrator.status.writer import StatusWriter
from tests.support.browser import Browser

EVIL_MODEL = 'evil"><script>window.__pwned="model"</script>'
INJECTED = "<script>window.__pwned='response'</script><img src=x onerror=\"window.__pwned='img'\">"


def record(model: str, dataset: str, n: int, verdict: str, **extra) -> AnswerRecord:
    fields = {
        "id": f"{dataset[:4]}-{n:03d}",
        "dataset": dataset,
        "model": model,
        "task": f"Найдите значение выражения \\frac{{{n}}}{{2}} + \\sqrt{{{n}}}, задача номер {n}. " * 2,
        "reference": f"\\frac{{{n}}}{{2}}",
        "response": f"Решение.\nОтвет: \\boxed{{{n}}}",
        "extracted": str(n),
        "verdict": verdict,
        "finish_reason": "stop",
        "prompt_tokens": 80,
        "completion_tokens": 100 + n,
        "latency_s": 1.5 + n / 10,
        "settings_hash": "h",
        "reasoning": f"Думаю о задаче {n}...\n" * 3,
    }
    fields.update(extra)
    return AnswerRecord(**fields)


def write_series(results: Path, model: str, dataset: str, records: list[AnswerRecord], total: int) -> None:
    store = SeriesStore(results, model, dataset, "h", meta={"total": total, "model_name": model})
    for rec in records:
        store.append(rec)
    store.add_eval_seconds(12.0)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """Two models on two datasets: every verdict, a truncated answer, a failed request, an unanswered problem; the
    second model's name and answers carry scripts."""
    root = tmp_path / "results"
    verdicts = ["correct", "correct", "incorrect", "unparsed", "timeout", "correct"]
    math = [record("good-model", "sample-math", i, v) for i, v in enumerate(verdicts)]
    math[5] = record("good-model", "sample-math", 5, "incorrect", finish_reason="length")
    math.append(record("good-model", "sample-math", 6, "", error="HTTP 500 after 5 retries", response=""))
    write_series(root, "good-model", "sample-math", math, total=8)
    physics = [record("good-model", "sample-physics", i, "correct" if i % 2 else "incorrect") for i in range(4)]
    write_series(root, "good-model", "sample-physics", physics, total=4)
    evil = [
        record(
            EVIL_MODEL,
            "sample-math",
            0,
            "incorrect",
            response=INJECTED,
            reasoning=INJECTED,
            extracted="</span></details><script>window.__pwned='extracted'</script>",
            id='q"><script>window.__pwned="id"</script>',
        )
    ]
    write_series(root, EVIL_MODEL, "sample-math", evil, total=1)
    write_leaderboard(root, load_scores(root))
    return root


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with Browser(tmp_path / "chromium-profile") as b:
        yield b


def shown(browser: Browser) -> int:
    return browser.js("document.querySelectorAll('details.p:not([hidden])').length")


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_leaderboard_renders_and_links_each_model_to_its_answers_page(
    results: Path, browser: Browser, tmp_path: Path
) -> None:
    browser.open((results / "leaderboard.html").as_uri())
    assert browser.js("document.querySelectorAll('tbody tr').length") == 2
    assert browser.js("document.querySelectorAll('svg rect').length") >= 1
    link = browser.js("[].map.call(document.querySelectorAll('td a'),a=>a.href).find(h=>h.includes('good-model'))")
    assert link.endswith("/details/good-model/index.html")
    assert_png(browser.screenshot(tmp_path / "leaderboard.png"))
    browser.open(link)
    assert browser.js("document.querySelector('h1').textContent") == "good-model"


def test_answers_page_shows_counts_and_filters_by_verdict_dataset_and_text(
    results: Path, browser: Browser, tmp_path: Path
) -> None:
    page = results / "details" / "good-model" / "index.html"
    browser.open(page.as_uri())
    summary = browser.js("[].map.call(document.querySelectorAll('tbody tr'),r=>[].map.call(r.cells,c=>c.textContent))")
    assert summary[0][:9] == [
        "sample-math",
        "33.3% (6/8, incomplete, 1 truncated)",
        "6/8",
        "2",
        "2",
        "1",
        "1",
        "1",
        "1",
    ]
    assert summary[1][:4] == ["sample-physics", "50.0%", "4/4", "2"]
    assert (
        shown(browser) == 11 and browser.js("document.getElementById('shown').textContent") == "11 of 11 answers shown"
    )
    browser.select("#verdict", "incorrect")
    assert shown(browser) == 4
    browser.select("#dataset", "sample-physics")
    assert shown(browser) == 2
    browser.select("#verdict", "")
    browser.select("#dataset", "")
    browser.select("#verdict", "truncated")
    assert (
        shown(browser) == 1 and browser.js("document.querySelector('details.p:not([hidden])').dataset.v") == "incorrect"
    )
    browser.select("#verdict", "error")
    assert shown(browser) == 1
    browser.select("#verdict", "")
    browser.type_into("#q", "задача номер 3")
    assert (
        shown(browser) == 2
        and browser.js("location.hash")
        == "#q=" + "%D0%B7%D0%B0%D0%B4%D0%B0%D1%87%D0%B0%20%D0%BD%D0%BE%D0%BC%D0%B5%D1%80%203"
    )
    browser.open(page.as_uri() + "#v=correct&d=sample-math")  # a linked filter is applied on load
    assert shown(browser) == 2 and browser.js("document.getElementById('verdict').value") == "correct"
    browser.open(page.as_uri())
    browser.js("document.querySelector('details.p summary').click()")
    opened = browser.js(
        "(function(d){return [d.open, d.querySelector('details.r').open,"
        "d.querySelector('.body pre:nth-of-type(2)').textContent,"
        "d.querySelector('details.r summary').textContent]})(document.querySelector('details.p'))"
    )
    assert opened[:2] == [True, False] and "\\boxed{0}" in opened[2] and opened[3].startswith("Reasoning (")
    assert_png(browser.screenshot(tmp_path / "details.png"))


def test_a_script_in_an_answer_or_a_model_name_stays_text(results: Path, browser: Browser, tmp_path: Path) -> None:
    folder = next(p for p in (results / "details").iterdir() if p.name.startswith("evil"))
    browser.open((folder / "index.html").as_uri())
    browser.js("document.querySelectorAll('details').forEach(d=>d.open=true)")
    time.sleep(0.3)  # an injected <img onerror> would have fired by now; nothing must have run
    assert browser.js("typeof window.__pwned") == "undefined"
    scripts = browser.js("[].map.call(document.scripts,s=>s.src)")  # the page's own, and the formulas' assets
    assert scripts.count("") == 1 and all(s.startswith((results / "assets").as_uri()) for s in scripts if s)
    assert browser.js("document.images.length") == 0
    text = browser.js("document.body.innerText")
    assert INJECTED in text and "<script>window.__pwned='extracted'</script>" in text
    assert browser.js("document.querySelector('h1').textContent") == EVIL_MODEL
    assert_png(browser.screenshot(tmp_path / "evil.png"))
    browser.open((results / "leaderboard.html").as_uri())
    assert browser.js("typeof window.__pwned") == "undefined" and EVIL_MODEL in browser.js("document.body.innerText")


class Facts:
    def __init__(self, path: Path) -> None:
        self.path = path

    def model_facts(self) -> dict:
        return {"good-model": {"gpus": [0], "port": 8101}, "next-model": {}}


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def served(results: Path) -> Iterator[str]:
    """``results`` served by a plain static file server on loopback."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(results)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_status_page_renders_and_reloads_itself_from_a_static_server(
    results: Path, served: str, browser: Browser, tmp_path: Path
) -> None:
    progress = Progress(stream=io.StringIO())
    progress.add_total("good-model", 12)
    progress.set_status("good-model", RunPhase.RUNNING)
    for correct in (True, False, True):
        progress.record("good-model", "sample-math", correct=correct, tokens=120, error=False)
    progress.note_error("good-model", "<b>HTTP 500</b> on sample-math q7")
    status = StatusWriter(
        results, "20260101-000000-abcdef", progress, Facts(results / "m.json"), {"good-model": 12, "next-model": 12}
    )
    status.write()
    browser.open(served + "/status.html")
    rows = browser.js("[].map.call(document.querySelectorAll('tbody tr'),r=>[].map.call(r.cells,c=>c.textContent))")
    assert [r[:5] for r in rows] == [
        ["good-model", "running", "0", "8101", "3/12"],
        ["next-model", "queued", "—", "—", "0/12"],
    ]
    heads = browser.js("[].map.call(document.querySelectorAll('thead th'),c=>c.textContent)")
    assert rows[0][heads.index("ACC")] == "66.7%"
    assert rows[0][heads.index("LAST ERROR")] == "<b>HTTP 500</b> on sample-math q7"  # shown as text, not markup
    assert browser.js("document.querySelector('td.model a').getAttribute('href')") == "details/good-model/index.html"
    assert browser.js("document.querySelector('.warn.stale').hidden") is True
    assert_png(browser.screenshot(tmp_path / "status.png"))

    progress.record("good-model", "sample-math", correct=True, tokens=120, error=False)
    first = (results / "status.html").stat().st_mtime
    while int(time.time()) == int(first):  # HTTP's Last-Modified counts seconds: a rewrite within one is a 304
        time.sleep(0.05)
    status.finish("finished", 0)
    browser._wait(lambda m: m.get("method") == "Page.loadEventFired", "the page reloading itself")
    assert browser.js("document.querySelector('tbody tr').cells[4].textContent") == "4/12"
    assert "exit code 0" in browser.js("document.querySelector('h2').textContent")
    assert browser.js("document.querySelector('meta[http-equiv=refresh]')") is None


def test_status_page_warns_when_the_run_stopped_updating(results: Path, browser: Browser, tmp_path: Path) -> None:
    updated = time.time() - 3600
    data = {
        "format": 1,
        "run_id": "r-remote",
        "host": "another-box",
        "pid": 4242,
        "started_at": updated - 60,
        "updated_at": updated,
        "interval": 2.0,
        "state": "running",
        "models": [],
    }
    (results / "stale.html").write_text(render_status_html([RunStatus(data)], now=updated + 1))
    browser.open((results / "stale.html").as_uri())
    assert browser.js("document.querySelector('.warn.stale').hidden") is False
    assert "another-box" in browser.js("document.querySelector('.warn.stale').textContent")


def test_the_judge_disagrees_filter_shows_only_the_answers_where_the_judge_and_the_grader_differ(
    tmp_path: Path, browser: Browser
) -> None:
    root = tmp_path / "judged"
    judge = {"correct": "correct", "incorrect": "incorrect"}
    verdicts = [("correct", "incorrect"), ("incorrect", "correct"), ("incorrect", "incorrect"), ("unparsed", None)]
    records = [
        record(
            "judged-model",
            "sample-math",
            i,
            rule,
            judge=None if said is None else {"model": "j", "verdict": judge[said], "reason": f"довод {i}", "hash": "x"},
        )
        for i, (rule, said) in enumerate(verdicts)
    ]
    write_series(root, "judged-model", "sample-math", records, total=4)
    paths = SeriesPaths.of(root, "judged-model", "sample-math")
    rewrite_series(paths, lambda lines: lines, {"judge": {"model": "j", "mode": "audit"}})
    write_leaderboard(root, load_scores(root))
    browser.open((root / "leaderboard.html").as_uri())
    assert "Rule ✗ judge ✓" in browser.js("document.querySelector('thead').textContent")
    page = root / "details" / "judged-model" / "index.html"
    browser.open(page.as_uri())
    assert shown(browser) == 4
    browser.js("document.getElementById('jd').click()")
    assert shown(browser) == 2 and browser.js("location.hash") == "#j=1"
    reasons = browser.js("[].map.call(document.querySelectorAll('details.p:not([hidden]) .j'),e=>e.title)")
    assert reasons == ["довод 0", "довод 1"]
    browser.select("#verdict", "incorrect")
    assert shown(browser) == 1
    browser.open(page.as_uri() + "#j=1")  # a linked filter is applied on load
    assert shown(browser) == 2 and browser.js("document.getElementById('jd').checked") is True
    browser.js("document.querySelector('details.p:not([hidden]) summary').click()")
    assert "Judge (j): incorrect" in browser.js("document.querySelector('details.p[open] .body').textContent")
