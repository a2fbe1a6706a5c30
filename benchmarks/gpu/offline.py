"""The engine's ceiling for s4: offline ``vllm.LLM.chat`` over the same conversations, in a process of its own.

    python3 -m benchmarks.gpu.offline --model DIR --prompts convs.jsonl --max-tokens 256 --max-num-seqs 256 --out r.json

Same engine settings as the s4 server (max_model_len 4096, no prefix caching, ``max_num_seqs`` = the clients'
concurrency, the same ``max_num_batched_tokens``), greedy, ``ignore_eos``; one warm-up pass, then one timed ``chat``
over every conversation.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", type=Path, required=True, help="JSONL: one list of chat messages a line")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--max-num-seqs", type=int, default=256)
    parser.add_argument("--max-num-batched-tokens", type=int, default=8192)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    convs = [json.loads(line) for line in args.prompts.read_text(encoding="utf-8").splitlines() if line.strip()]
    began = time.perf_counter()
    from vllm import LLM, SamplingParams
    llm = LLM(model=args.model, max_model_len=4096, enable_prefix_caching=False, max_num_seqs=args.max_num_seqs,
              max_num_batched_tokens=args.max_num_batched_tokens, seed=0)
    startup = time.perf_counter() - began
    llm.chat(convs[:args.max_num_seqs], SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True),
             use_tqdm=False)
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, ignore_eos=True)
    started = time.perf_counter()
    outs = llm.chat(convs, params, use_tqdm=False)
    seconds = time.perf_counter() - started
    tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    result = {"requests": len(outs), "output_tokens": tokens, "seconds": seconds,
              "tok_s": tokens / seconds if seconds else 0.0, "startup_s": startup,
              "prompt_tokens": sum(len(o.prompt_token_ids or []) for o in outs)}
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"offline: {tokens} output tokens in {seconds:.2f} s = {result['tok_s']:.0f} tok/s "
          f"(engine start {startup:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
