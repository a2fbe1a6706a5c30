"""k samples per problem: ``n`` = k in one request against k separate requests (seeds seed+i), on a real vLLM CPU
server with the tiny smoke model, in one run.

Both passes send the same prompts through the same plain HTTP code (a thread pool of ``requests`` sessions) with
temperature 0.7, ``max_tokens`` with ``ignore_eos`` (every sample the same length) and the same number of sequences
in flight: ``concurrency`` requests of ``n`` = k, or ``concurrency`` x k requests of one sample. Prefix caching is on
(vLLM's default, what a managed server runs with), so the k separate requests of one problem share its prompt's
cache as the ``n`` = k request does. Chunked prefill is off (``launch.CPU_SEEDED_ARGS``): vLLM's CPU build kills its
engine on a seeded request whose prefill is chunked, so the orchestrator turns it off for seeded CPU servers. Rounds
alternate the two passes (which one goes first alternates too), so load from other processes hits both alike; the table
gives every pass, the medians and the per-round ratios.

    python -m benchmarks.samples_requests [--prompts 16] [--k 4] [--max-tokens 48] [--rounds 9]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks import publish
from benchmarks.client_throughput import load_problems
from orchestrator.contract import Problem, ServerSpec
from orchestrator.prompts import build_messages
from orchestrator.serving.launch import CPU_SEEDED_ARGS
from orchestrator.smoke_model import write_smoke_model

log = logging.getLogger("benchmarks.samples_requests")

REPO = Path(__file__).resolve().parents[1]
RESULT = REPO / "benchmarks" / "results" / "samples_requests.md"
RAW = REPO / "benchmarks" / "results" / "samples_requests.json"
SERVED = "tiny-llama"
SEED = 1234


@dataclass(frozen=True)
class Pass:
    """One timed pass: how the samples were asked, how many sequences, how many output tokens in how long."""

    mode: str  # "n=k" or "k requests"
    requests: int
    samples: int
    output_tokens: int
    seconds: float

    @property
    def tok_s(self) -> float:
        return self.output_tokens / self.seconds if self.seconds else 0.0


def _post(session: requests.Session, url: str, body: dict) -> tuple[int, int]:
    resp = session.post(url, json=body, timeout=1800)
    if resp.status_code != 200:
        raise RuntimeError(f"HTTP {resp.status_code} for n={body.get('n', 1)}: {resp.text[:800]}")
    data = resp.json()
    return len(data["choices"]), int(data["usage"]["completion_tokens"])


def timed_pass(
    url: str, problems: Sequence[Problem], k: int, max_tokens: int, concurrency: int, one_request: bool
) -> Pass:
    """Ask k samples of every problem, as one ``n`` = k request each or as k requests (seeds SEED+i)."""
    base = {"model": SERVED, "temperature": 0.7, "max_tokens": max_tokens, "ignore_eos": True}
    if one_request:
        bodies = [{**base, "messages": build_messages(p), "n": k, "seed": SEED} for p in problems]
        workers = concurrency
    else:
        bodies = [{**base, "messages": build_messages(p), "seed": SEED + i} for p in problems for i in range(k)]
        workers = concurrency * k
    sessions: dict[int, requests.Session] = {}

    def ask(body: dict) -> tuple[int, int]:
        session = sessions.setdefault(threading.get_ident(), requests.Session())
        session.trust_env = False
        return _post(session, url, body)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(ask, bodies))
    seconds = time.perf_counter() - started
    for session in sessions.values():
        session.close()
    samples, tokens = sum(d[0] for d in done), sum(d[1] for d in done)
    if samples != len(problems) * k:
        raise RuntimeError(f"{samples} samples came back, expected {len(problems) * k}")
    return Pass("n=k" if one_request else "k requests", len(bodies), samples, tokens, seconds)


def _start(model: Path, work: Path):
    from orchestrator.serving.server import start_server

    spec = ServerSpec(
        name="bench-samples",
        model=str(model),
        served_name=SERVED,
        python=sys.executable,
        max_model_len=4096,
        startup_timeout=900,
        args=CPU_SEEDED_ARGS,
    )
    return start_server(spec, f"bench-samples-{int(time.time())}", work / "logs")


def measure(
    problems: Sequence[Problem], model: Path, work: Path, k: int, max_tokens: int, concurrency: int, rounds: int
) -> list[Pass]:
    """Start the server, warm it up, alternate the two passes for ``rounds`` rounds, always stop the server."""
    server = _start(model, work)
    url = server.endpoint.api_base + "/chat/completions"
    try:
        timed_pass(url, problems[:concurrency], k, 8, concurrency, True)
        timed_pass(url, problems[:concurrency], k, 8, concurrency, False)
        results: list[Pass] = []
        for r in range(rounds):
            order = (True, False) if r % 2 == 0 else (False, True)
            pair = {one: timed_pass(url, problems, k, max_tokens, concurrency, one) for one in order}
            results += [pair[True], pair[False]]
            log.info("round %d: n=k %.0f tok/s, k requests %.0f tok/s", r + 1, pair[True].tok_s, pair[False].tok_s)
        return results
    finally:
        server.stop()


def render(
    results: Sequence[Pass], command: str, prompts: int, k: int, max_tokens: int, concurrency: int, load: str = ""
) -> str:
    """The markdown section: every pass, the medians, the per-round ratios and the verdict."""
    one = [p for p in results if p.mode == "n=k"]
    many = [p for p in results if p.mode != "n=k"]
    ratios = [a.tok_s / b.tok_s for a, b in zip(one, many)]
    med_one, med_many = statistics.median(p.tok_s for p in one), statistics.median(p.tok_s for p in many)
    ratio = statistics.median(ratios)
    rows = [
        f"| {i // 2 + 1} | {p.mode} | {p.requests} | {p.samples} | {p.output_tokens} | {p.seconds:.2f} "
        f"| {p.tok_s:.0f} |"
        for i, p in enumerate(results)
    ]
    verdict = (
        "no consistent winner: the rounds fall on both sides of 1, the difference is below this shared machine's noise"
        if min(ratios) < 0.95 and max(ratios) > 1.05
        else "`n` = k keeps the server busier"
        if ratio > 1.05
        else "k separate requests keep the server busier"
        if ratio < 0.95
        else "the two keep the server about equally busy (within 5%)"
    )
    return "\n".join(
        [
            "## k samples per problem: `n` = k in one request vs k requests (real vLLM CPU server, tiny smoke model)",
            "",
            f"Command: `{command}`",
            "",
            f"{prompts} DeathMath prompts x k = {k} samples, temperature 0.7, seeded, max_tokens {max_tokens} with "
            f"ignore_eos; {concurrency} requests of `n` = {k} in flight against {concurrency * k} requests of one "
            "sample (seed + i) in flight: the same number of sequences. Prefix caching on (vLLM's default), chunked "
            "prefill off (seeded requests need it off on vLLM's CPU build). One vLLM CPU server on this machine's 2 "
            "cores, shared with the client and with other work; the two passes alternate, the first one alternating."
            + (f" Load average (1 min) at start and end: {load}." if load else ""),
            "",
            "| round | mode | requests | samples | output tokens | seconds | output tok/s |",
            "|---:|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"- `n` = k / k requests, output tok/s per round: {', '.join(f'{r:.2f}' for r in ratios)}; median "
            f"**{ratio:.2f}** (spread {min(ratios):.2f}-{max(ratios):.2f}); median tok/s `n` = k {med_one:.0f}, "
            f"k requests {med_many:.0f}",
            f"- verdict: {verdict}.",
            "- What the orchestrator does: a managed vLLM server gets one request per problem with `n` = its "
            "consecutive missing samples and the first one's seed; API models (many reject `n`) get one request per "
            "sample with seed + i. vLLM seeds choice i of a request with seed + i, so both give the same answers "
            "(tests/e2e/test_sampling_vllm.py) and each sample stays its own checkpoint. Where throughput ties, `n` "
            "wins on what it does by construction: the prompt is prefilled once even with prefix caching off, and k "
            "times fewer requests cross HTTP.",
            f"- raw passes: `benchmarks/results/{RAW.name}`",
            "",
        ]
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag, default in (("--prompts", 16), ("--k", 4), ("--max-tokens", 48), ("--concurrency", 16), ("--rounds", 9)):
        parser.add_argument(flag, type=int, default=default)
    parser.add_argument("--model", type=Path, default=None, help="a model dir (default: write the smoke model)")
    parser.add_argument("--out", type=Path, default=RESULT)
    parser.add_argument("--from-raw", type=Path, default=None, help="render the section again from a raw JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> str:
    """Run the benchmark; print and write its section; return it."""
    args = _parser().parse_args(argv)
    if args.from_raw is not None:
        raw = json.loads(args.from_raw.read_text(encoding="utf-8"))
        passes = [Pass(**p) for p in raw["passes"]]
        k, load = passes[0].samples // passes[0].requests, raw["load_average"]
        return publish(
            args.out,
            render(
                passes,
                raw["command"],
                raw["prompts"],
                k,
                raw["max_tokens"],
                raw["concurrency"],
                f"{load[0]:.1f} and {load[1]:.1f}",
            ),
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    command = "python -m benchmarks.samples_requests " + " ".join(argv if argv is not None else sys.argv[1:])
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="samples-bench-") as tmp:
        model = args.model or write_smoke_model(Path(tmp) / "model")
        results = measure(
            load_problems(args.prompts, model), model, Path(tmp), args.k, args.max_tokens, args.concurrency, args.rounds
        )
    load.append(os.getloadavg()[0])
    args.out.with_suffix(".json").write_text(
        json.dumps(
            {
                "command": command.strip(),
                "load_average": load,
                "prompts": args.prompts,
                "max_tokens": args.max_tokens,
                "concurrency": args.concurrency,
                "passes": [dataclasses.asdict(p) for p in results],
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    return publish(
        args.out,
        render(
            results,
            command.strip(),
            args.prompts,
            args.k,
            args.max_tokens,
            args.concurrency,
            f"{load[0]:.1f} and {load[1]:.1f}",
        ),
    )


if __name__ == "__main__":
    main()
