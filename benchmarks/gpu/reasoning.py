"""s6 -- a thinking budget that still answers, at scale (issue 31), the two ways compared.

The random model made thinking (``orchestrator.reasoning.thinking_model``: ``<think>`` opened by its template, its
output rows for the tags zero, so it never closes its thinking) through the orchestrator's model job
(``benchmarks.slow_server.managed_run``: ``run_model`` with ``--reasoning-parser deepseek_r1``), ``ignore_eos``,
128 concurrent answers with ``budget`` 4096 and ``answer_tokens`` 256, once per way:

* ``client`` -- two phases: the chat cut at the budget, the answer forced through ``/v1/completions``;
* ``engine`` -- vLLM's own ``thinking_token_budget`` with ``--reasoning-config`` (skipped, and said, when the
  installed vLLM has none).

Required per way: every answer stored, every one forced, none over the budget (thinking) nor over answer tokens (+
the lead the engine writes itself). Reported: wall time and completion tokens per second of each way, and their
ratio (engine / client). The CPU dry run runs the same code on the tiny model (16 answers, budget 24).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from benchmarks.slow_server import Asking, ManagedRun, managed_run
from orchestrator.contract import ReasoningSettings, Sampling, ServerSpec, Timeouts, Transport
from orchestrator.reasoning.settings import engine_has_budget

from .common import Deadline, Profile, Recorder
from .longgen import long_model, problems
from .scenarios import fresh, need_gpus

SERVED = "gpu-llama-thinking"
PARSER = "deepseek_r1"
LEAD_TOKENS = 8  # at most, "\n\nОтвет:" in the 32k BPE (4 in the tiny tokenizer): the engine's forced lead


def sizes(p: Profile) -> dict[str, int]:
    """Answers, budget and answer tokens: the issue's on a GPU, small on the CPU dry run."""
    return {"answers": 16, "budget": 24, "answer_tokens": 8} if p.dry_run else {
        "answers": 128, "budget": 4096, "answer_tokens": 256,
    }  # fmt: skip


def thinking_model(p: Profile, positions: int) -> Path:
    """The thinking variant of the suite's model, declaring ``positions`` positions (``longgen.long_model``)."""
    from orchestrator.reasoning.thinking_model import write_thinking_model

    out = p.work / "s6" / "thinking-model"
    if not (out / "model.safetensors").is_file():
        write_thinking_model(p.model, out)
    return long_model(out, positions, p.work / "s6-long")


def spec_for(p: Profile, dl: Deadline, model: Path, way: str, context: int) -> ServerSpec:
    gpus = () if p.dry_run else (0,)
    return ServerSpec(
        name=f"s6-{way}",
        model=str(model),
        served_name=SERVED,
        gpus=gpus,
        python=p.python,
        max_model_len=context,
        startup_timeout=dl.cap(p.startup_timeout, margin=150),
        env=tuple({**({"CUDA_DEVICE_ORDER": "PCI_BUS_ID"} if gpus else {}), **p.server_env}.items()),
        reasoning_parser=PARSER,
        engine_budget=way == "engine",
    )


def summarize(done: ManagedRun, total: int, budget: int, answer_tokens: int) -> dict[str, Any]:
    """The figures of one way's run (pure: the suite's CPU tests use it on made-up runs)."""
    ok = [r for r in done.records if r.get("error") is None]
    over = [
        r
        for r in ok
        if (r.get("reasoning_tokens") or 0) > budget or (r.get("answer_tokens") or 0) > answer_tokens + LEAD_TOKENS
    ]
    tokens = sum(r.get("completion_tokens") or 0 for r in ok)
    return {
        "status": done.outcome.status,
        "error": done.outcome.error,
        "stored": len({r["id"] for r in ok}),
        "total": total,
        "forced": sum(1 for r in ok if r.get("forced")),
        "over_budget": len(over),
        "max_reasoning_tokens": max((r.get("reasoning_tokens") or 0 for r in ok), default=0),
        "max_answer_tokens": max((r.get("answer_tokens") or 0 for r in ok), default=0),
        "completion_tokens": tokens,
        "wall_s": round(done.seconds, 1),
        "tokens_per_s": round(tokens / done.seconds, 1) if done.seconds > 0 else None,
    }


def check_way(rec: Recorder, way: str, f: dict[str, Any]) -> None:
    rec.check(f"{way}: the model finished", f["status"] == "finished", f"{f['status']}: {f['error']}")
    rec.check(f"{way}: every answer stored", f["stored"] == f["total"], f"{f['stored']}/{f['total']}")
    rec.check(f"{way}: every answer forced", f["forced"] == f["total"], f"{f['forced']}/{f['total']}")
    rec.check(
        f"{way}: none over budget + answer tokens",
        f["over_budget"] == 0,
        f"{f['over_budget']} over; max thinking {f['max_reasoning_tokens']}, max answer {f['max_answer_tokens']}",
    )


def s6(p: Profile, dl: Deadline, rec: Recorder) -> None:
    """128 x budget 4096 under a thinking template, client's two phases then the engine's own budget."""
    dl.need(300, "s6")
    if not p.dry_run:
        need_gpus(1)
    n = sizes(p)
    max_tokens = n["budget"] + n["answer_tokens"]
    context = max_tokens + 1024
    model = thinking_model(p, context)
    rec.figure("setup", {**n, "max_tokens": max_tokens, "parser": PARSER, "ignore_eos": True})
    asking = Asking(Sampling(max_tokens=max_tokens), Transport(Timeouts.within(60.0), max_retries=2), n["answers"])
    settings = ReasoningSettings(parser=PARSER, budget=n["budget"], answer_tokens=n["answer_tokens"])
    figures: dict[str, dict[str, Any]] = {}
    for way in p.s6_ways:
        if way == "engine" and not engine_has_budget():
            rec.note("the installed vLLM has no thinking_token_budget: the engine's way is not measured")
            continue
        dl.need(150, f"s6 {way}")
        done = managed_run(
            spec_for(p, dl, model, way, context),
            problems(n["answers"]),
            asking,
            fresh(p.work / "s6" / way),
            max_restarts=0,
            deadline_s=dl.cap(p.run_timeout, margin=30),
            reasoning=dataclasses.replace(settings, budget_by=way),
        )
        figures[way] = summarize(done, n["answers"], n["budget"], n["answer_tokens"])
        rec.figure(way, figures[way])
        check_way(rec, way, figures[way])
    if len(figures) == 2 and figures["client"]["tokens_per_s"]:
        ratio = (figures["engine"]["tokens_per_s"] or 0) / figures["client"]["tokens_per_s"]
        rec.figure("engine_over_client_tokens_per_s", round(ratio, 3))
