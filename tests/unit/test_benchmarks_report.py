"""BENCHMARKS.md as run_all assembles it: one table of headline figures read from the stored results, one current
section per benchmark, superseded runs in BENCHMARKS-archive.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

from benchmarks import headlines, run_all

LIFECYCLE = """## Server lifecycle overhead (vLLM CPU, tiny smoke model)

Command: `x`. Baseline = the same vLLM command started by hand, `/health` polled every 20 ms.

- Orchestration overhead, in-run, median: **0.159 s**; target <= 1 s: met. Across separate starts it is +5.63 s.
- Teardown through `stop()` (SIGTERM to the group), median: **1.59 s** (same signal by hand: 1.89 s); target < 5 s: met.
"""


def _results(tmp_path: Path) -> Path:
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "lifecycle.md").write_text(LIFECYCLE)
    (results / "gpu.md").write_text("## GPU runs: the orchestrator with real vLLM on real GPUs\n\ncurrent s4\n")
    (results / "gpu-archive.md").write_text("## GPU runs superseded by the current ones\n\nold s4 run\n")
    (results / "runs.json").write_text(json.dumps({"lifecycle": {"date": "2030-01-02", "machine": "box, 64 cores"}}))
    return results


def test_the_report_opens_with_headline_figures_read_from_the_sections_and_links_the_archive(tmp_path: Path) -> None:
    lost = run_all.assemble(root=tmp_path, results=_results(tmp_path))
    text = (tmp_path / "BENCHMARKS.md").read_text()
    archive = (tmp_path / run_all.ARCHIVE).read_text()
    assert lost == []
    rows = [line for line in text.splitlines() if line.startswith("| Server")]
    assert rows == [
        "| Server start: orchestration overhead (in-run, median) | 0.159 s | the same vLLM command started by hand "
        "| <= 1 s | box, 64 cores | 2030-01-02 |",
        "| Server teardown through `stop()` (median) | 1.59 s | same signal by hand: 1.89 s | < 5 s | box, 64 cores "
        "| 2030-01-02 |",
    ]
    assert text.index("## Headline figures") < text.index("## Server lifecycle") < text.index("## GPU runs")
    assert "[BENCHMARKS-archive.md](BENCHMARKS-archive.md)" in text
    assert "old s4 run" in archive and "old s4 run" not in text and "current s4" not in archive
    assert text.count("## Server lifecycle overhead") == 1


def test_a_section_whose_words_changed_is_named_instead_of_losing_its_figure(tmp_path: Path) -> None:
    results = _results(tmp_path)
    (results / "lifecycle.md").write_text(LIFECYCLE.replace("in-run, median", "median in the run"))
    lost = run_all.assemble(root=tmp_path, results=results)
    assert lost == ["Server start: orchestration overhead (in-run, median)"]
    assert "| Server start: orchestration overhead (in-run, median) | ? |" in (tmp_path / "BENCHMARKS.md").read_text()


def test_every_headline_of_the_stored_results_is_found_and_each_of_its_numbers_stands_in_its_section() -> None:
    runs = {rule.name: {"date": "d"} for rule in headlines.RULES}
    rows = headlines.cpu_headlines(run_all.RESULTS, runs, "m")
    assert headlines.missing(rows) == []
    assert {r.name for r in headlines.RULES} <= {p.stem for p in run_all.RESULTS.glob("*.md")}
    for rule, row in zip(headlines.RULES, rows):
        section = (run_all.RESULTS / f"{rule.name}.md").read_text()
        for cell in (row.figure, row.baseline, row.target):
            for number in re.findall(r"\d+(?:\.\d+)?", cell):
                assert number in section, (rule.measure, number)


def test_assembling_again_from_the_stored_results_reproduces_the_committed_report_byte_for_byte(
    tmp_path: Path,
) -> None:
    committed = run_all.ROOT / "BENCHMARKS.md"
    (tmp_path / "BENCHMARKS.md").write_bytes(committed.read_bytes())
    run_all.assemble(keep_machine=True, root=tmp_path)
    for name in ("BENCHMARKS.md", run_all.ARCHIVE):
        assert (tmp_path / name).read_bytes() == (run_all.ROOT / name).read_bytes(), f"{name}: run --assemble-only"


def test_every_section_in_the_report_has_its_run_date_and_machine_recorded_not_read_from_git() -> None:
    runs = headlines.recorded_runs(run_all.RUNS)
    assert {r.name for r in headlines.RULES} <= set(runs)
    assert all(set(run) == {"date", "machine"} for run in runs.values())
