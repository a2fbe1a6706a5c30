"""s4's variants and what they are measured against: the client variants (``CLIENTS``; the first is managed GPU
servers' default), and ``compare``, which turns the recorded passes into per-variant ratios to the offline engine
(each client pass divided by the mean of the offline passes next to it), their median and spread, and the targets
of issue 18. Pure: it reads and writes only the ``Recorder``'s figures and checks.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.client.jsoncodec import JsonCodec, codec_named
from orchestrator.serving import queueahead
from orchestrator.serving.apiserver import DEFAULT_GPU_API_SERVERS

from .bare import LABEL as BARE
from .common import Recorder

TARGET = 0.95  # issue 18: ours / offline, median of the per-round ratios
STATS_OFF = "--disable-log-stats"


@dataclass(frozen=True)
class Server:
    """A server variant, one phase of s4: its API processes, and ``stats`` -- whether the engine keeps the statistics
    that ``/metrics`` serves (``--disable-log-stats`` turns them off, as the offline engine runs; the managed servers
    keep them: their liveness watch reads the token counters)."""

    api_servers: int = 1
    stats: bool = True

    @property
    def label(self) -> str:
        return f"--api-server-count {self.api_servers}" + ("" if self.stats else f", {STATS_OFF}")

    @property
    def args(self) -> tuple[str, ...]:
        return () if self.stats else (STATS_OFF,)


def servers(api_counts: tuple[int, ...], stats_off: bool) -> list[Server]:
    """The phases of a run: one per API process count, then, if asked, the first count with statistics off."""
    phases = [Server(n) for n in api_counts]
    return phases + ([Server(api_counts[0] if api_counts else 1, stats=False)] if stats_off else [])


def server_of(row: dict) -> str:
    """A pass's server variant; passes recorded before variants had labels name only their API process count."""
    return row.get("server") or Server(row["api_servers"]).label


@dataclass(frozen=True)
class Client:
    """A client variant: its JSON codec, and ``queued``, the share of the server's ``max_num_seqs`` it keeps in flight
    beyond it (``orchestrator.serving.queueahead``: the managed default on a GPU; above 0 the server holds a queue of
    waiting requests, as the offline engine does, so that a batch that ends all at once -- equal lengths under
    ``ignore_eos`` -- is refilled from that queue instead of as the client sends); ``bare``: not our client but
    ``bare.py``'s asyncio one (no store, no watch), the same number of requests in flight."""

    key: str  # its name on the command line (``--s4-clients``)
    codec: Callable[[], JsonCodec | None]
    queued: float = queueahead.DEFAULT_GPU_QUEUE_AHEAD
    bare: bool = False


CLIENTS = {  # the first is managed GPU servers' default (job/series.py: msgspec, queueahead.DEFAULT_GPU_QUEUE_AHEAD)
    f"msgspec codec, queue_ahead {queueahead.DEFAULT_GPU_QUEUE_AHEAD:g} (managed default)": Client(
        "queue", lambda: codec_named("msgspec")
    ),
    "msgspec codec, nothing queued (max_num_seqs in flight)": Client("noqueue", lambda: codec_named("msgspec"), 0.0),
    "bare asyncio client (aiohttp, no store), nothing queued": Client("bare", lambda: None, 0.0, bare=True),
}
DEFAULT_CLIENT = next(iter(CLIENTS))
CLIENT_LABELS = ("ours", BARE)  # Measure labels of the client passes (the rest: offline, vllm bench serve)


def clients(keys: tuple[str, ...]) -> list[str]:
    """The client variants a run measures, by key (all of them when none is named), in ``CLIENTS``' order."""
    return [name for name, c in CLIENTS.items() if not keys or c.key in keys]


def compare(rec: Recorder) -> None:
    """Per variant: per-round ratios to the offline passes around each of its passes (the mean of the one just
    before it and the next one; only the first when none follows), their median and spread; then targets.

    A pass's place is its ``slot`` (the offline pass before it has the same slot, the one after it the next); runs
    recorded before passes had slots bracketed whole rounds, and their ``round`` stands in for it. The profiled pass
    (round 0) is outside the rounds: a row with no ratio."""
    passes = rec.data["figures"].get("passes", [])
    offline = {(server_of(x), place(x)): x["tok_s"] for x in passes if x["client"] == "offline"}
    variants = []
    for server, client in dict.fromkeys(
        (server_of(x), x["client"]) for x in passes if x["label"] in CLIENT_LABELS
    ).keys():
        mine = [x for x in passes if (server_of(x), x["client"]) == (server, client) and x["label"] in CLIENT_LABELS]
        ratios = [
            x["tok_s"] / ceiling for x in mine if x["round"] >= 1 and (ceiling := bracket(offline, server, place(x)))
        ]
        row: dict[str, Any] = {
            "variant": f"{server}, {client}",
            "server": server,
            "api_servers": mine[0]["api_servers"],
            "client": client,
            "label": mine[0]["label"],
            "rounds": len(mine),
            "median_tok_s": round(statistics.median(x["tok_s"] for x in mine)),
            **_engine_cores(mine),
        }
        if ratios:
            row.update(
                {
                    "ratios": [round(v, 3) for v in ratios],
                    "median_ratio": round(statistics.median(ratios), 3),
                    "spread": round(max(ratios) - min(ratios), 3),
                    "target": f">= {TARGET}",
                    "met": statistics.median(ratios) >= TARGET,
                }
            )
        variants.append(row)
    rec.figure("variants", variants)
    cores = _engine_cores([x for x in passes if x["client"] == "offline"])
    if cores:
        rec.figure("offline_engine_cores", cores["engine_cores"])
    _targets(rec, passes, variants)


def place(row: dict) -> int:
    """Where a pass lies among the offline passes (see ``compare``)."""
    return row.get("slot", row["round"])


def bracket(offline: dict[tuple[str, int], int], server: str, r: int) -> float | None:
    """The mean of offline pass ``r`` and the next one (``None``: there is no pass ``r``)."""
    if not offline.get((server, r)):
        return None
    around = [offline[(server, r)], *([offline[(server, r + 1)]] if offline.get((server, r + 1)) else [])]
    return statistics.fmean(around)


def _engine_cores(passes: list[dict]) -> dict[str, float]:
    """The median CPU cores the engine used over passes that were sampled (none: nothing)."""
    cores = [x["cpu"]["engine_cores"] for x in passes if x.get("cpu")]
    return {"engine_cores": round(statistics.median(cores), 2)} if cores else {}


def default_variant(variants: list[dict]) -> dict | None:
    """The default client on the default server (its API processes, statistics on), else on the first phase."""
    mine = [v for v in variants if v["client"] == DEFAULT_CLIENT and "ratios" in v]
    default = Server(DEFAULT_GPU_API_SERVERS).label
    return next((v for v in mine if v.get("server", default) == default), mine[0] if mine else None)


def adoptable(variant: dict) -> bool:
    """Could a managed server run like this? Not with the bare client (no store, no watch), nor with statistics off
    (the liveness watch reads them): those rows are measurements, never the "best variant"."""
    return variant.get("label") != BARE and not variant.get("server", "").endswith(STATS_OFF)


def _targets(rec: Recorder, passes: list[dict], variants: list[dict]) -> None:
    base = default_variant(variants)
    best = max(
        (v for v in variants if "median_ratio" in v and adoptable(v)), key=lambda v: v["median_ratio"], default=None
    )
    bench = [x["tok_s"] for x in passes if x["label"] == "vllm bench serve"]
    offline = [x["tok_s"] for x in passes if x["client"] == "offline"]
    rec.figure(
        "median_tok_s",
        {
            "ours (default client)": base["median_tok_s"] if base else None,
            "vllm bench serve": statistics.median(bench) if bench else None,
            "offline vllm.LLM": round(statistics.median(offline)) if offline else None,
        },
    )
    targets = {}
    for name, v in (("ours / offline, default client", base), ("ours / offline, best variant", best)):
        if v and "median_ratio" in v:
            targets[name] = {
                "value": v["median_ratio"],
                "target": f">= {TARGET}",
                "met": v["met"],
                "variant": v["variant"],
                "spread": v["spread"],
            }
    if base and bench:
        value = base["median_tok_s"] / statistics.median(bench)
        targets["ours / vllm bench serve"] = {"value": round(value, 3), "target": "> 1.0", "met": value > 1.0}
    rec.figure("targets", targets)
    for name, t in targets.items():
        rec.log(
            f"{name}: {t['value']:.2f} (target {t['target']}: {'met' if t['met'] else 'missed'})"
            + (f", {t['variant']}, per-round spread {t['spread']:.3f}" if "variant" in t else "")
        )
    rec.check(
        "every planned pass of the default client completed (ours and offline, every round)",
        bool(base and "median_ratio" in base and base["rounds"] == len(base["ratios"])),
        json.dumps(base or {}),
    )
    size = rec.data["figures"]["setup"]["prompts"]
    rec.check(
        "our client completed every request of every round without an error",
        bool(variants) and all(x["requests"] == size for x in passes if x["label"] in CLIENT_LABELS),
    )
