"""Client throughput against a real vLLM (CPU) server on the tiny smoke model, in one run:

  (a) our client -- ``run_series`` with ``ChatClient`` and a real ``SeriesStore``, the production path -- at
      concurrency 64;
  (b) vLLM's own ``vllm bench serve`` (``vllm.benchmarks.serve.main``, streaming, aiohttp) on the same prompts, the
      same max_tokens and the same concurrency;
  (c) our client at concurrency 4, the original DeathMath runner's thread count (``--baseline 0``: left out);
  (d) our client at concurrency 64 with requests' own JSON, the codec before issue 18 (a managed server's client now
      uses msgspec, ``jsoncodec.codec_named(None)``; (a) does too): the CPU path must stay at least as fast.

Every request uses ``ignore_eos`` so all outputs are exactly ``--max-tokens`` long. Prefix caching is off, so every
pass does the same prefill work (otherwise whichever pass comes first pays for everyone's cached prompts). Rounds
alternate the passes so that load from other processes on the machine hits all of them alike; the table gives every
pass, the medians and the per-round ratios.

    python -m benchmarks.client_throughput [--prompts 128] [--max-tokens 96] [--rounds 5] [--baseline 4]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.client import ChatClient, ManagedServer, run_series
from orchestrator.client.jsoncodec import JsonCodec, codec_named
from orchestrator.contract import Problem, Sampling, ServerSpec
from orchestrator.prompts import build_messages
from orchestrator.results import SeriesStore

log = logging.getLogger("benchmarks.client_throughput")

REPO = Path(__file__).resolve().parents[1]
UPSTREAM = REPO.parent / "shared" / "upstream-data" / "VikhrModels_DeathMath" / "russianmath_190_extracted.jsonl"
RESULT = REPO / "benchmarks" / "results" / "client_throughput.md"
SERVED = "tiny-llama"
JSON_LABEL = "ours, requests json"

_BENCH = """
import sys
from vllm.utils.argparse_utils import FlexibleArgumentParser
from vllm.benchmarks.serve import add_cli_args, main
parser = FlexibleArgumentParser()
add_cli_args(parser)
main(parser.parse_args(sys.argv[1:]))
"""


@dataclass(frozen=True)
class Measure:
    """One timed pass: who, at what concurrency, how many output tokens in how many seconds."""

    label: str
    concurrency: int
    requests: int
    output_tokens: int
    seconds: float

    @property
    def tok_s(self) -> float:
        return self.output_tokens / self.seconds if self.seconds else 0.0


def load_problems(n: int, model: Path, tasks: Sequence[str] = ()) -> list[Problem]:
    """``n`` DeathMath tasks: ``tasks``, else the eval-only upstream copy (read by path), else synthetic ones.

    Only prompts that ``vllm bench serve``'s ShareGPT loader keeps (at most 1024 prompt tokens) are used, so both
    clients send exactly the same requests.
    """
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    tasks = list(tasks)
    if not tasks and UPSTREAM.is_file():
        lines = UPSTREAM.read_text(encoding="utf-8").splitlines()
        tasks = [json.loads(line)["task"] for line in lines if line]
    tasks = tasks or [f"Найдите сумму первых {k} натуральных чисел." for k in range(1, 200)]
    problems = [
        Problem(id=f"q{i}", dataset="bench", domain="math", task=task, reference="0") for i, task in enumerate(tasks)
    ]
    fits = [p for p in problems if len(tokenizer.encode(build_messages(p)[-1]["content"]).ids) < 1000]
    return [dataclasses.replace(fits[i % len(fits)], id=f"q{i}") for i in range(n)]


def ours(
    server,
    problems: Sequence[Problem],
    max_tokens: int,
    concurrency: int,
    work: Path,
    tag: str,
    served: str = SERVED,
    codec: JsonCodec | None = None,
) -> Measure:
    """Run the problems through ``run_series`` as the runner does for a managed server (``alive``, context clamp,
    checkpointing into a fresh store) and time it; ``codec`` is ``ChatClient``'s (None: requests' own JSON)."""
    store = SeriesStore(work / tag, served, "bench", "0" * 16, meta={"total": len(problems)})
    with ChatClient(
        server.endpoint,
        served,
        Sampling(max_tokens=max_tokens),
        server=ManagedServer.of(server),
        context_len=server.max_model_len(),
        extra_body={"ignore_eos": True},
        codec=codec,
    ) as client:
        started = time.perf_counter()
        run_series(problems, client, store, build_messages, parallel=concurrency)
        seconds = time.perf_counter() - started
    recs = store.records()
    failed = [r.error for r in recs if r.error]
    if failed or len(recs) != len(problems):
        raise RuntimeError(f"our client: {len(failed)} errors, {len(recs)}/{len(problems)} answers: {failed[:1]}")
    return Measure("ours", concurrency, len(recs), sum(r.completion_tokens for r in recs), seconds)


def vllm_bench(
    port: int,
    model: Path,
    problems: Sequence[Problem],
    max_tokens: int,
    concurrency: int,
    work: Path,
    tag: str,
    served: str = SERVED,
    timeout: float = 1800,
) -> Measure:
    """``vllm bench serve`` (openai-chat backend, custom dataset of the same user messages) and its own timing."""
    data = work / "prompts.json"
    if not data.exists():  # ShareGPT layout: its loader needs no pandas; the human turn goes out as the user message
        convs = [
            {
                "conversations": [
                    {"from": "human", "value": build_messages(p)[-1]["content"]},
                    {"from": "gpt", "value": "-"},
                ]
            }
            for p in problems
        ]
        data.write_text(json.dumps(convs, ensure_ascii=False), encoding="utf-8")
    argv = [
        "--backend",
        "openai-chat",
        "--endpoint",
        "/v1/chat/completions",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--model",
        str(model),
        "--served-model-name",
        served,
        "--tokenizer",
        str(model),
        "--dataset-name",
        "sharegpt",
        "--dataset-path",
        str(data),
        "--disable-shuffle",
        "--no-oversample",
        "--sharegpt-output-len",
        str(max_tokens),
        "--ignore-eos",
        "--temperature",
        "0",
        "--num-prompts",
        str(len(problems)),
        "--max-concurrency",
        str(concurrency),
        "--disable-tqdm",
        "--save-result",
        "--result-dir",
        str(work),
        "--result-filename",
        f"{tag}.json",
    ]
    run = subprocess.run(
        [sys.executable, "-c", _BENCH, *argv], capture_output=True, text=True, timeout=timeout, cwd=work
    )
    if run.returncode != 0:
        raise RuntimeError(f"vllm bench serve failed ({run.returncode}): {run.stderr[-2000:]}")
    out = json.loads((work / f"{tag}.json").read_text())
    if out["completed"] != len(problems):
        raise RuntimeError(f"vllm bench serve completed {out['completed']}/{len(problems)} requests")
    return Measure("vllm bench serve", concurrency, out["completed"], out["total_output_tokens"], out["duration"])


def _start(model: Path, work: Path):
    from orchestrator.serving.server import start_server

    spec = ServerSpec(
        name="bench-client",
        model=str(model),
        served_name=SERVED,
        python=sys.executable,
        max_model_len=4096,
        startup_timeout=900,
        args=("--no-enable-prefix-caching",),
    )
    return start_server(spec, f"bench-{int(time.time())}", work / "logs")


def measure(
    problems: Sequence[Problem], model: Path, work: Path, max_tokens: int, concurrency: int, baseline: int, rounds: int
) -> list[list[Measure]]:
    """Start the server, warm it up, run the rounds (one list of passes each), always stop the server."""
    server = _start(model, work)
    try:
        ours(server, problems[:concurrency], 8, concurrency, work, "warmup")
        results = []
        for r in range(rounds):
            results.append(_round(server, model, problems, work, r, max_tokens, concurrency, baseline))
            log.info(
                "round %d: %s", r + 1, ", ".join(f"{m.label}@{m.concurrency} {m.tok_s:.0f} tok/s" for m in results[-1])
            )
        return results
    finally:
        server.stop()


def _round(
    server,
    model: Path,
    problems: Sequence[Problem],
    work: Path,
    r: int,
    max_tokens: int,
    concurrency: int,
    baseline: int,
) -> list[Measure]:
    """Passes (a) to (d) of the module docstring, in that order."""
    managed = codec_named(None)  # what a managed server's client uses
    passes = [
        ours(server, problems, max_tokens, concurrency, work, f"ours-{r}", codec=managed),
        vllm_bench(server.spec.port, model, problems, max_tokens, concurrency, work, f"vllm-{r}"),
    ]
    if baseline:
        passes.append(ours(server, problems, max_tokens, baseline, work, f"ours4-{r}", codec=managed))
    json_pass = ours(server, problems, max_tokens, concurrency, work, f"json-{r}", codec=None)
    return passes + [dataclasses.replace(json_pass, label=JSON_LABEL)]


def render(rounds: Sequence[Sequence[Measure]], command: str, prompts: int, max_tokens: int) -> str:
    """The markdown fragment: every pass, the medians and the per-round ratios."""
    results = [m for passes in rounds for m in passes]
    kinds = sorted({(m.label, m.concurrency) for m in results}, key=lambda k: (k[0] != "ours", -k[1]))
    med = {k: statistics.median(m.tok_s for m in results if (m.label, m.concurrency) == k) for k in kinds}
    ours_hi = next(k for k in kinds if k[0] == "ours")
    rows = [
        f"| {r + 1} | {m.label} | {m.concurrency} | {m.requests} | {m.output_tokens} | {m.seconds:.2f} "
        f"| {m.tok_s:.0f} |"
        for r, passes in enumerate(rounds)
        for m in passes
    ]
    lines = [
        f"- ours @ {ours_hi[1]} / {label} @ {c}: **{med[ours_hi] / med[(label, c)]:.2f}** on medians; per round: "
        f"{_per_round(rounds, ours_hi, (label, c))}{' (target >= 0.95)' if label == 'vllm bench serve' else ''}"
        for label, c in kinds
        if (label, c) != ours_hi
    ]
    return "\n".join(
        [
            "## Client throughput (real vLLM CPU server, tiny smoke model)",
            "",
            f"Command: `{command}`",
            "",
            f"{prompts} DeathMath prompts, max_tokens {max_tokens} with ignore_eos (every output the same length), "
            "greedy; one vLLM CPU server (prefix caching off) on this machine's 2 cores, shared with the clients and "
            "with other work on the machine. Passes alternate in the order of the table. `ours` uses the codec of a "
            f"managed server's client (msgspec); `{JSON_LABEL}` is the same client with requests' own JSON, the codec "
            "before issue 18.",
            "",
            "| round | client | concurrency | requests | output tokens | seconds | output tok/s |",
            "|---:|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "| median output tok/s | value |",
            "|---|---:|",
            *[f"| {label} @ {c} | {med[(label, c)]:.0f} |" for label, c in kinds],
            "",
            *lines,
            "- `vllm bench serve` streams (one SSE event per token, aiohttp); our client asks without streaming, which "
            "costs the server's API process less per token, and includes its checkpoint writes in its time.",
            "",
        ]
    )


def _per_round(rounds: Sequence[Sequence[Measure]], num: tuple[str, int], den: tuple[str, int]) -> str:
    """Each round's ratio of two passes, and their median and spread."""

    def pick(passes: Sequence[Measure], kind: tuple[str, int]) -> float:
        return next(m.tok_s for m in passes if (m.label, m.concurrency) == kind)

    ratios = [pick(passes, num) / pick(passes, den) for passes in rounds]
    return (
        ", ".join(f"{r:.2f}" for r in ratios) + f" (median {statistics.median(ratios):.2f}, "
        f"spread {max(ratios) - min(ratios):.2f})"
    )


def main(argv: Sequence[str] | None = None) -> str:
    """Run the benchmark, print and write the markdown fragment, return it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--baseline", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", type=Path, default=None, help="a model dir (default: write the smoke model)")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    command = "python -m benchmarks.client_throughput " + " ".join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="client-bench-") as tmp:
        work = Path(tmp)
        model = args.model
        if model is None:
            from orchestrator.smoke_model import write_smoke_model

            model = write_smoke_model(work / "model")
        results = measure(
            load_problems(args.prompts, model),
            model,
            work,
            args.max_tokens,
            args.concurrency,
            args.baseline,
            args.rounds,
        )
    fragment = render(results, command.strip(), args.prompts, args.max_tokens)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(fragment, encoding="utf-8")
    print(fragment)
    return fragment


if __name__ == "__main__":
    main()
