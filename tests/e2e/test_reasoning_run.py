"""Reasoning through the real orchestrator: one CLI run on real vLLM CPU servers of the tiny thinking model
(``thinking_model``: ``<think>`` opened by its template, never closed by the model) with ``--reasoning-parser`` from
``reasoning.parser``. With ``budget`` every answer is forced and answered within budget + answer tokens (vLLM's own
budget here, the installed vLLM has it: ``budget_by: auto``); without one every answer is cut at max_tokens with an
empty content, and the leaderboard counts them so."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.reasoning.thinking_model import write_thinking_model

pytestmark = pytest.mark.vllm
LIMIT, BUDGET, ANSWER, FREE_MAX = 4, 24, 8, 32
LEAD_TOKENS = 4  # "\n\nОтвет:" after </think> in the tiny tokenizer: the engine writes it, the client sends it


@pytest.fixture(scope="module")
def run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("vllm")
    tmp = tmp_path_factory.mktemp("reasoning-run")
    model = write_thinking_model(tiny_model, tmp / "tiny-thinking")
    server = f"vllm: {{model: {model}, max_model_len: 1024, startup_timeout: 400}}"
    config = tmp / "run.yaml"
    config.write_text(
        textwrap.dedent(f"""
        model_list: [think-budget, think-free]
        reasoning: {{parser: deepseek_r1}}
        think-budget:
          {server}
          parallel: 4
          max_tokens: 64
          reasoning: {{budget: {BUDGET}, answer_tokens: {ANSWER}}}
        think-free:
          {server}
          parallel: 4
          max_tokens: {FREE_MAX}
        datasets: {{sample-math: {{}}}}
        temperature: 0.0
        """)
    )
    cmd = [sys.executable, "-m", "orchestrator.cli", "run", "--config", str(config), "--limit", str(LIMIT)]
    cmd += ["--results-dir", str(tmp / "results"), "--logs-dir", str(tmp / "logs")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return tmp / "results"


def answers(results: Path, model: str) -> list[dict]:
    lines = (results / "details" / model / "sample-math.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def board_row(results: Path, model: str) -> dict:
    rows = json.loads((results / "leaderboard.json").read_text())["rows"]
    return next(r for r in rows if r["model"] == model)


def test_with_a_budget_every_answer_is_forced_and_answered_within_budget_and_answer_tokens(run: Path) -> None:
    recs = answers(run, "think-budget")
    assert len(recs) == LIMIT and all(r["error"] is None for r in recs)
    for r in recs:
        assert r["forced"] and r["reasoning"] and r["response"].startswith("Ответ:")
        assert r["reasoning_tokens"] == BUDGET and 0 < r["answer_tokens"] <= LEAD_TOKENS + ANSWER
        assert r["completion_tokens"] <= BUDGET + LEAD_TOKENS + ANSWER + 1  # + the </think> the engine writes
        assert not r["answer_in_reasoning"]
    thinking = board_row(run, "think-budget")["reasoning"]
    cut = sum(r["finish_reason"] == "length" for r in recs) / LIMIT  # the random model answers to answer_tokens
    assert thinking["forced_share"] == 1.0 and thinking["truncated_share"] == cut
    assert thinking["reasoning_tokens_mean"] == BUDGET and thinking["reasoning_tokens_p95"] == BUDGET


def test_without_a_budget_every_answer_is_truncated_with_an_empty_content_and_counted_so(run: Path) -> None:
    recs = answers(run, "think-free")
    assert len(recs) == LIMIT
    for r in recs:
        assert r["finish_reason"] == "length" and r["response"] == "" and not r["forced"]
        assert (r["reasoning_tokens"], r["answer_tokens"]) == (FREE_MAX, 0)
        assert r["verdict"] == "unparsed"  # an empty content is graded as empty
    row = board_row(run, "think-free")
    assert row["truncated"] == LIMIT and row["reasoning"]["truncated_share"] == 1.0
    md = (run / "leaderboard.md").read_text()
    assert "## Reasoning" in md and "| think-free | 32 | 32 | 0.0% | 0.0% | 100.0% |" in md
    html = (run / "details" / "think-budget" / "index.html").read_text()
    assert f"Reasoning ({BUDGET} tokens" in html and 'data-f="1"' in html
