"""s5a / s5b -- long generations (issue 12): slow is not dead, a hung engine is still found.

Both run a managed model through the orchestrator's model job (``orchestrator.job.run_model``: start the
server with ``orchestrator.serving.server.start_server``, watch it, restart it, checkpoint every answer), on GPU 0, with
the client as the runner builds it plus ``ignore_eos`` (every answer runs its whole budget):

* s5a -- 256 concurrent generations of 8k tokens each, ``request_timeout`` 60 s, well under the time one answer
  takes. Required: every answer stored, no error record, the model finished (the CLI's exit 0), no restart; the
  longest answer is reported against the limit.
* s5b -- 256 concurrent generations of 2k tokens (two server starts and the whole generation again after the
  restart must fit one 10-minute call), ``request_timeout`` 60 s, with ``VLLM::EngineCore`` SIGSTOPped mid-run (a
  quarter of the tokens in, read from its ``/metrics``). Required: the hang found and the server restarted, within
  ``request_timeout`` + 30 s of the SIGSTOP; then every answer stored, the model finished.

The CPU dry run (``--cpu-dry-run``) runs the same code on the tiny model with small sizes (16 x 48 tokens, 1 s).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.slow_server import Asking, ManagedRun, managed_run
from orchestrator.contract import Problem, Sampling, ServerSpec, Timeouts, Transport

from .common import Deadline, Profile, Recorder
from .scenarios import fresh, need_gpus
from .throughput import sample_tasks

SERVED = "gpu-llama-long"
RESTART_SLACK = 30.0  # target: restart within request_timeout + this


def problems(count: int) -> list[Problem]:
    """``count`` prompts: the built-in samples' tasks, cycled."""
    tasks = sample_tasks()
    return [
        Problem(id=f"L{i}", dataset="bench", domain="math", task=tasks[i % len(tasks)], reference="0")
        for i in range(count)
    ]


def long_model(model: Path, positions: int, where: Path) -> Path:
    """``model`` declaring at least ``positions`` positions: links to its files and its config.json rewritten.

    The random model declares 4096 (make_model). vLLM's VLLM_ALLOW_LONG_MAX_MODEL_LEN does not help on a GPU: the
    rotary cache is sized by max_position_embeddings, and a longer sequence trips a device-side assert (seen on an
    H200). A RoPE model's weights do not depend on the number of positions, so declaring more is enough."""
    out = where / "long-model"
    out.mkdir(parents=True, exist_ok=True)
    for item in Path(model).iterdir():
        if item.name != "config.json" and not (out / item.name).exists():
            (out / item.name).symlink_to(item.resolve())
    config = json.loads((Path(model) / "config.json").read_text(encoding="utf-8"))
    config["max_position_embeddings"] = max(positions, int(config.get("max_position_embeddings") or 0))
    (out / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return out


def server_spec(p: Profile, dl: Deadline, name: str, max_tokens: int) -> ServerSpec:
    gpus = () if p.dry_run else (0,)
    model = long_model(p.model, max_tokens + 1024, p.work / name)
    return ServerSpec(
        name=name,
        model=str(model),
        served_name=SERVED,
        gpus=gpus,
        python=p.python,
        max_model_len=max_tokens + 1024,
        startup_timeout=dl.cap(p.startup_timeout, margin=150),
        args=("--max-num-seqs", str(p.s5_concurrency)),
        env=tuple({**({"CUDA_DEVICE_ORDER": "PCI_BUS_ID"} if gpus else {}), **p.server_env}.items()),
    )


def asking(p: Profile, max_tokens: int) -> Asking:
    return Asking(
        Sampling(max_tokens=max_tokens), Transport(Timeouts.within(p.s5_timeout), max_retries=2), p.s5_concurrency
    )


def summarize(done: ManagedRun, total: int, max_tokens: int) -> dict[str, Any]:
    """The figures of one run (pure: the suite's CPU tests use it on made-up runs)."""
    ok = [r for r in done.records if r.get("error") is None]
    latest = {r["id"]: r for r in done.records}
    return {
        "status": done.outcome.status,
        "error": done.outcome.error,
        "restarts": done.outcome.restarts,
        "answered": done.answered,
        "total": total,
        "error_records": sum(1 for r in done.records if r.get("error")),
        "unanswered": sum(1 for r in latest.values() if r.get("error") is not None),
        "full_length": sum(1 for r in ok if r.get("completion_tokens") == max_tokens),
        "longest_answer_s": round(max((r.get("latency_s") or 0.0 for r in ok), default=0.0), 1),
        "wall_s": round(done.seconds, 1),
        "sigstop_to_restart_s": None if done.to_restart is None else round(done.to_restart, 1),
    }


def check_complete(rec: Recorder, f: dict[str, Any], limit: float) -> None:
    rec.check("the model finished (the CLI would exit 0)", f["status"] == "finished", f"{f['status']}: {f['error']}")
    rec.check("every answer stored", f["answered"] == f["total"], f"{f['answered']}/{f['total']}")
    rec.check(
        "every answer ran its whole budget (ignore_eos)",
        f["full_length"] == f["total"],
        f"{f['full_length']}/{f['total']}",
    )
    if f["longest_answer_s"] <= limit:
        rec.note(
            f"the longest answer took {f['longest_answer_s']} s, not more than request_timeout {limit:g} s: "
            "this run did not test a limit shorter than an answer"
        )


def s5a(p: Profile, dl: Deadline, rec: Recorder) -> None:
    """256 x 8k tokens at request_timeout 60 s: every answer stored, no error, no restart."""
    dl.need(360 if not p.dry_run else 300, "s5a")
    if not p.dry_run:
        need_gpus(1)
    d = fresh(p.work / "s5a")
    rec.figure(
        "setup",
        {
            "prompts": p.s5_concurrency,
            "max_tokens": p.s5_max_tokens,
            "parallel": p.s5_concurrency,
            "request_timeout": p.s5_timeout,
            "ignore_eos": True,
        },
    )
    done = managed_run(
        server_spec(p, dl, "s5a", p.s5_max_tokens),
        problems(p.s5_concurrency),
        asking(p, p.s5_max_tokens),
        d,
        max_restarts=0,
        deadline_s=dl.cap(p.run_timeout * 2, margin=30),
    )
    f = summarize(done, p.s5_concurrency, p.s5_max_tokens)
    rec.figure("run", f)
    check_complete(rec, f, p.s5_timeout)
    rec.check(
        "no error record and no restart",
        f["error_records"] == 0 and f["restarts"] == 0,
        f"{f['error_records']} error record(s), {f['restarts']} restart(s)",
    )


def s5b(p: Profile, dl: Deadline, rec: Recorder) -> None:
    """The same run with the engine SIGSTOPped mid-run: hang found, server restarted, every answer stored."""
    dl.need(420 if not p.dry_run else 420, "s5b")
    if not p.dry_run:
        need_gpus(1)
    d = fresh(p.work / "s5b")
    tokens = p.s5b_max_tokens
    stop_at = p.s5_concurrency * tokens / 4
    rec.figure(
        "setup",
        {
            "prompts": p.s5_concurrency,
            "max_tokens": tokens,
            "parallel": p.s5_concurrency,
            "request_timeout": p.s5_timeout,
            "ignore_eos": True,
            "sigstop_at_tokens": stop_at,
        },
    )
    done = managed_run(
        server_spec(p, dl, "s5b", tokens),
        problems(p.s5_concurrency),
        asking(p, tokens),
        d,
        stop_at=stop_at,
        max_restarts=1,
        deadline_s=dl.cap(p.run_timeout * 2, margin=30),
    )
    f = summarize(done, p.s5_concurrency, tokens)
    rec.figure("run", f)
    restart = f["sigstop_to_restart_s"]
    rec.check(
        "the SIGSTOPped engine was found hung and the server restarted",
        f["restarts"] >= 1 and restart is not None,
        f"{f['restarts']} restart(s); SIGSTOP at {stop_at:.0f} tokens "
        + ("sent" if done.stopped_at is not None else "never reached"),
    )
    rec.check(
        f"restarted within request_timeout + {RESTART_SLACK:g} s of the SIGSTOP",
        restart is not None and restart <= p.s5_timeout + RESTART_SLACK,
        f"{restart} s",
    )
    check_complete(rec, f, p.s5_timeout)
    rec.check("no answer left as an error", f["unanswered"] == 0, f"{f['unanswered']} problem(s) left unanswered")
