"""Scenario sj: two managed models and a managed LLM judge on one GPU, in turn (issue 30).

The judge is the profile's model under another served name (a random model: its replies are noise, read strictly,
mostly ``unparsed``; what matters is that each is recorded once). Checks: exit code 0; the two models and the judge
finished; the three servers never held the GPU at once and the judge's started after both models' ended; every
answer the rule grader did not mark correct was judged exactly once (``audited_once``: one line per answer in the
judge's checkpoint, its verdict on the details line); a rerun asks nothing and starts no judge server; GPU memory is
back to what it was and nvidia-smi lists no process afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import smi
from .common import Deadline, Profile, Recorder, write_config
from .scenarios import SAMPLES, check_no_leftovers, fresh, need_gpus, record_timings, statuses, watched_run

MODELS = ("llama-a", "llama-b")
JUDGE = "judge"  # the judge's job and server name (orchestrator.judge.settings.JUDGE_KEY)


def audited_once(results: Path, models: tuple[str, ...] = MODELS) -> dict[str, Any]:
    """Per model and dataset: the answers that needed judging (not correct, with a response, no error), those with a
    verdict on their details line, and the checkpoint's lines per answer key (each must be 1)."""
    out: dict[str, Any] = {"needed": 0, "judged": 0, "asked_twice": [], "missing": []}
    for model in models:
        for details in sorted((results / "details" / model).glob("*.jsonl")):
            lines = [json.loads(x) for x in details.read_text(encoding="utf-8").splitlines() if x.strip()]
            needed = {_key(ln) for ln in lines if _needs_judging(ln)}
            judged = {_key(ln) for ln in lines if ln.get("judge")}
            store = results / "details" / model / "judge" / details.name
            keys = [json.loads(x)["key"] for x in store.read_text().splitlines()] if store.exists() else []
            out["needed"] += len(needed)
            out["judged"] += len(needed & judged)
            out["asked_twice"] += sorted({k for k in keys if keys.count(k) > 1})
            out["missing"] += sorted(needed - set(keys))
    return out


def _key(line: dict[str, Any]) -> str:
    return line["id"] if not line.get("sample") else f"{line['id']}#{line['sample']}"


def _needs_judging(line: dict[str, Any]) -> bool:
    """As ``orchestrator.judge.select`` with no share of correct answers: rejected, answered, no error."""
    rejected = line.get("verdict") in ("incorrect", "unparsed")
    return rejected and line.get("error") is None and bool(str(line.get("response", "")).strip())


def judge_config(p: Profile, d: Path) -> Path:
    """Eager engines (no compile, no CUDA graphs): the point is the order of the three servers and the audit, and
    three compiled start-ups would not fit a call next to another scenario."""
    judge = p.model_block("gpu-judge", eager=True)
    judge["max_tokens"] = 64
    return write_config(
        d / "run.yaml",
        {m: p.model_block(f"gpu-{m}", eager=True) for m in MODELS},
        SAMPLES,
        num_examples=p.limit,
        judge={"model": "judge-block", "sample_correct": 0.0},
        **{"judge-block": judge},
    )


def sj(p: Profile, dl: Deadline, rec: Recorder) -> None:
    """Two models and a managed judge on GPU 0, in turn; every non-correct answer judged once; GPU empty after."""
    dl.need(170 if not p.dry_run else 360, "sj")
    need_gpus(1)
    d = fresh(p.work / "sj")
    cfg = judge_config(p, d)
    before = smi.snapshot()
    rec.figure("memory_before_mib", smi.used_by_index(before))
    run = watched_run(p, dl, rec, d, cfg, "0", before)
    seen, after = run.seen, run.after or {}
    rec.figure("gpu_samples", {k: v for k, v in seen.items() if k != "double_booked"})
    rec.figure("memory_after_mib", after.get("used_mib"))
    rec.check("exit code 0", run.code == 0, f"exit {run.code}")
    rec.check(
        "both models and the judge finished",
        all(run.summary.get(k, {}).get("status") == "finished" for k in (*MODELS, JUDGE)),
        statuses(run.summary),
    )
    servers = seen["servers"]
    rec.check(
        "never two servers on the GPU at once",
        seen["double_booked_count"] == 0 and all(smi.overlap(servers, JUDGE, m) == 0 for m in MODELS),
        f"{seen['double_booked_count']} double-booked sample(s)",
    )
    if JUDGE in servers and all(m in servers for m in MODELS):
        last = max(servers[m]["last"] for m in MODELS)
        rec.check("the judge's server started after both models' ended", servers[JUDGE]["first"] >= last, "")
    found = audited_once(d / "results")
    rec.figure("judged", found)
    rec.check(
        "every non-correct answer judged exactly once",
        found["needed"] > 0
        and found["judged"] == found["needed"]
        and not found["asked_twice"]
        and not found["missing"],
        json.dumps(found)[:600],
    )
    rec.check(
        "GPU memory back to before, nvidia-smi lists nothing",
        bool(after.get("back")) and not after.get("apps") and not after.get("error"),
        json.dumps(after)[:600],
    )
    check_no_leftovers(rec, run.left)
    record_timings(rec, d)
    _rerun(p, dl, rec, d, cfg)


def _rerun(p: Profile, dl: Deadline, rec: Recorder, d: Path, cfg: Path) -> None:
    """A second run on the same results: every answer and verdict is in its checkpoint, so no server starts."""
    logs = set((d / "logs").rglob("*.log"))
    run = watched_run(p, dl, rec, d, cfg, "0")
    new = sorted(str(x) for x in set((d / "logs").rglob("*.log")) - logs)
    found = audited_once(d / "results")
    rec.check("a rerun exits 0, starts no server and asks the judge nothing", run.code == 0 and not new, str(new))
    rec.check("after the rerun still nothing asked twice", not found["asked_twice"], str(found["asked_twice"]))
