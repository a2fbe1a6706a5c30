"""s4's variants and what they are measured against: the client variants (``CLIENTS``; the first is managed GPU
servers' default), and ``compare``, which turns the recorded passes into per-variant ratios to the offline engine
(each client pass divided by the mean of the offline passes next to it), their median and spread, and the targets
of issue 18. Pure: it reads and writes only the ``Recorder``'s figures and checks.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from typing import Any, Callable

from orchestrator import queueahead
from orchestrator.apiserver import DEFAULT_GPU_API_SERVERS
from orchestrator.client.jsoncodec import JsonCodec, codec_named

from .bare import LABEL as BARE
from .common import Recorder

TARGET = 0.95          # issue 18: ours / offline, median of the per-round ratios


@dataclass(frozen=True)
class Client:
    """A client variant: its JSON codec, and ``queued``, the share of the server's ``max_num_seqs`` it keeps in flight
    beyond it (``orchestrator.queueahead``: the managed default on a GPU; above 0 the server holds a queue of
    waiting requests, as the offline engine does, so that a batch that ends all at once -- equal lengths under
    ``ignore_eos`` -- is refilled from that queue instead of as the client sends); ``bare``: not our client but
    ``bare.py``'s asyncio one (no store, no watch), the same number of requests in flight."""

    codec: Callable[[], JsonCodec | None]
    queued: float = queueahead.DEFAULT_GPU_QUEUE_AHEAD
    bare: bool = False


CLIENTS = {  # the first is managed GPU servers' default (job.py: msgspec, queueahead.DEFAULT_GPU_QUEUE_AHEAD)
    f"msgspec codec, queue_ahead {queueahead.DEFAULT_GPU_QUEUE_AHEAD:g} (managed default)":
        Client(lambda: codec_named("msgspec")),
    "msgspec codec, nothing queued (max_num_seqs in flight)": Client(lambda: codec_named("msgspec"), 0.0),
    "bare asyncio client (aiohttp, no store), nothing queued": Client(lambda: None, 0.0, bare=True)}
DEFAULT_CLIENT = next(iter(CLIENTS))
CLIENT_LABELS = ("ours", BARE)  # Measure labels of the client passes (the rest: offline, vllm bench serve)


def compare(rec: Recorder) -> None:
    """Per variant: per-round ratios to the offline passes around each of its passes (the mean of the one just
    before it and the next one; only the first when none follows), their median and spread; then targets.

    A pass's place is its ``slot`` (the offline pass before it has the same slot, the one after it the next); runs
    recorded before passes had slots bracketed whole rounds, and their ``round`` stands in for it. The profiled pass
    (round 0) is outside the rounds: a row with no ratio."""
    passes = rec.data["figures"].get("passes", [])
    offline = {(x["api_servers"], place(x)): x["tok_s"] for x in passes if x["client"] == "offline"}
    variants = []
    for count, client in dict.fromkeys((x["api_servers"], x["client"]) for x in passes
                                       if x["label"] in CLIENT_LABELS).keys():
        mine = [x for x in passes if (x["api_servers"], x["client"]) == (count, client)
                and x["label"] in CLIENT_LABELS]
        ratios = [x["tok_s"] / ceiling for x in mine if x["round"] >= 1 and (ceiling := bracket(offline, count, place(x)))]
        row: dict[str, Any] = {"variant": f"--api-server-count {count}, {client}", "api_servers": count,
                               "client": client, "label": mine[0]["label"], "rounds": len(mine),
                               "median_tok_s": round(statistics.median(x["tok_s"] for x in mine))}
        if ratios:
            row.update({"ratios": [round(v, 3) for v in ratios], "median_ratio": round(statistics.median(ratios), 3),
                        "spread": round(max(ratios) - min(ratios), 3), "target": f">= {TARGET}",
                        "met": statistics.median(ratios) >= TARGET})
        variants.append(row)
    rec.figure("variants", variants)
    _targets(rec, passes, variants)


def place(row: dict) -> int:
    """Where a pass lies among the offline passes (see ``compare``)."""
    return row.get("slot", row["round"])


def bracket(offline: dict[tuple[int, int], int], count: int, r: int) -> float | None:
    """The mean of offline pass ``r`` and the next one (``None``: there is no pass ``r``)."""
    if not offline.get((count, r)):
        return None
    around = [offline[(count, r)], *([offline[(count, r + 1)]] if offline.get((count, r + 1)) else [])]
    return statistics.fmean(around)


def default_variant(variants: list[dict]) -> dict | None:
    """The default client on the default number of API processes, else on the run's first phase."""
    mine = [v for v in variants if v["client"] == DEFAULT_CLIENT and "ratios" in v]
    return next((v for v in mine if v["api_servers"] == DEFAULT_GPU_API_SERVERS), mine[0] if mine else None)


def _targets(rec: Recorder, passes: list[dict], variants: list[dict]) -> None:
    base = default_variant(variants)
    best = max((v for v in variants if "median_ratio" in v and v.get("label") != BARE), key=lambda v: v["median_ratio"], default=None)
    bench = [x["tok_s"] for x in passes if x["label"] == "vllm bench serve"]
    offline = [x["tok_s"] for x in passes if x["client"] == "offline"]
    rec.figure("median_tok_s", {"ours (default client)": base["median_tok_s"] if base else None,
                                "vllm bench serve": statistics.median(bench) if bench else None,
                                "offline vllm.LLM": round(statistics.median(offline)) if offline else None})
    targets = {}
    for name, v in (("ours / offline, default client", base), ("ours / offline, best variant", best)):
        if v and "median_ratio" in v:
            targets[name] = {"value": v["median_ratio"], "target": f">= {TARGET}", "met": v["met"],
                             "variant": v["variant"], "spread": v["spread"]}
    if base and bench:
        value = base["median_tok_s"] / statistics.median(bench)
        targets["ours / vllm bench serve"] = {"value": round(value, 3), "target": "> 1.0", "met": value > 1.0}
    rec.figure("targets", targets)
    for name, t in targets.items():
        rec.log(f"{name}: {t['value']:.2f} (target {t['target']}: {'met' if t['met'] else 'missed'})"
                + (f", {t['variant']}, per-round spread {t['spread']:.3f}" if "variant" in t else ""))
    rec.check("every planned pass of the default client completed (ours and offline, every round)",
              bool(base and "median_ratio" in base and base["rounds"] == len(base["ratios"])),
              json.dumps(base or {}))
    size = rec.data["figures"]["setup"]["prompts"]
    rec.check("our client completed every request of every round without an error",
              bool(variants) and all(x["requests"] == size for x in passes if x["label"] in CLIENT_LABELS))
