"""The chaos soak's short form (``make chaos`` runs the long one): two scripted rounds that inject every fault kind
into real orchestrator runs on real vLLM CPU servers, then check that nothing was lost, doubled, torn or orphaned.

Round 0: the port of chaos-a taken by a stranger before vLLM binds it; chaos-b's API server SIGKILLed; chaos-a's
engine SIGSTOPped (a hung server, found through the request timeout and the probe, then restarted).
Round 1: chaos-a's VLLM::Worker and chaos-b's engine SIGKILLed (each at its model's first answers, while it has the
most work left); the orchestrator SIGTERMed (exit 143, then a new run); the orchestrator SIGKILLed (then `cleanup`
and a new run that resumes).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.chaos.checks import check_answers, read_details
from benchmarks.chaos.driver import Settings
from benchmarks.chaos.faults import KINDS, Fault
from benchmarks.chaos.soak import render, soak

SCRIPT = [
    [("port_taken", "chaos-a"), ("kill_api", "chaos-b"), ("hang_engine", "chaos-a")],
    [("kill_worker", "chaos-a"), ("kill_engine", "chaos-b"), ("term_orchestrator", None), ("kill_orchestrator", None)],
]


@pytest.mark.vllm
@pytest.mark.timeout(1800)  # about 8 minutes alone on 2 cores; much more on a loaded machine
def test_short_chaos_soak_loses_nothing_and_leaves_no_process(tiny_model: Path, tmp_path: Path) -> None:
    from tests.support.vllm_servers import vllm_available

    if not vllm_available():
        pytest.skip("vllm is not importable in this environment")
    rounds = [[Fault(kind=k, model=m, delay=0.5) for k, m in faults] for faults in SCRIPT]
    settings = Settings(model_dir=tiny_model, workdir=tmp_path, limit=8, max_tokens=32)
    summary = soak(settings, seed=0, scripted=rounds)
    report = render(summary, "pytest tests/e2e/test_chaos.py")
    assert summary.violations == [], report
    assert summary.lost == 0 and summary.orphans == 0, report
    assert set(summary.injected()) == set(KINDS), report  # every kind really happened
    assert all(f.recovery_s is not None for f in summary.faults), report
    assert summary.rounds[0].server_starts >= 4 and summary.rounds[1].invocations == 3, report


def test_check_answers_finds_lost_doubled_stray_and_torn(tmp_path: Path) -> None:
    path = tmp_path / "details" / "m" / "d.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"id": "a"}\n{"id": "a"}\n{"id": "b", "error": "timeout"}\n{"id": "z"}\n{"id": "c"')
    violations, lost, dupes = check_answers(tmp_path, {("m", "d"): ["a", "b", "c"]})
    assert (lost, dupes) == (2, 1)
    text = " ".join(violations)
    assert "torn" in text and "never answered" in text and "more than once" in text and "not asked" in text
    assert [r["id"] for r in read_details(path)[0]] == ["a", "a", "b", "z"]
