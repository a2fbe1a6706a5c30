"""The engine's ceiling for s4: offline ``vllm.LLM.chat`` over the same conversations, in one long-lived process.

    python3 -m benchmarks.gpu.offline --model DIR --prompts convs.jsonl --max-tokens 256 --max-num-seqs 256

Same engine settings as the s4 server (max_model_len 4096, no prefix caching, ``max_num_seqs`` = the clients'
concurrency, the same ``max_num_batched_tokens`` and ``gpu_memory_utilization``), greedy, ``ignore_eos``. The
engine loads once and warms up, then answers on stdin: each line ``{"tag": ...}`` runs one timed ``chat`` over
every conversation; an empty line or end of input ends it. Replies are stdout lines that start with ``MARK``
(everything else on stdout is vLLM's log). ``OfflineEngine`` is the controlling side: s4 keeps one engine loaded
next to its server and runs one offline pass per round, so each round's ratio has its own ceiling.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MARK = "@@offline "


def _reply(data: dict[str, Any]) -> None:
    print(MARK + json.dumps(data), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", type=Path, required=True, help="JSONL: one list of chat messages a line")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--max-num-seqs", type=int, default=256)
    parser.add_argument("--max-num-batched-tokens", type=int, default=8192)
    parser.add_argument("--gpu-memory-utilization", type=float, default=None)
    parser.add_argument("--load-format", default=None, help="dummy: random weights of config.json's shape")
    args = parser.parse_args()
    convs = [json.loads(line) for line in args.prompts.read_text(encoding="utf-8").splitlines() if line.strip()]
    began = time.perf_counter()
    from vllm import LLM, SamplingParams

    extra = {
        k: v
        for k, v in (("gpu_memory_utilization", args.gpu_memory_utilization), ("load_format", args.load_format))
        if v is not None
    }
    llm = LLM(
        model=args.model,
        max_model_len=4096,
        enable_prefix_caching=False,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        seed=0,
        **extra,
    )
    llm.chat(convs[: args.max_num_seqs], SamplingParams(temperature=0.0, max_tokens=8, ignore_eos=True), use_tqdm=False)
    _reply({"ready": True, "startup_s": time.perf_counter() - began})
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, ignore_eos=True)
    for line in sys.stdin:
        if not line.strip():
            break
        tag = json.loads(line).get("tag", "")
        started = time.perf_counter()
        outs = llm.chat(convs, params, use_tqdm=False)
        seconds = time.perf_counter() - started
        tokens = sum(len(o.outputs[0].token_ids) for o in outs)
        _reply(
            {
                "tag": tag,
                "requests": len(outs),
                "output_tokens": tokens,
                "seconds": seconds,
                "tok_s": tokens / seconds if seconds else 0.0,
                "prompt_tokens": sum(len(o.prompt_token_ids or []) for o in outs),
            }
        )


class OfflineEngine:
    """The controlling side: the engine in a session of its own, its log in a file, one pass per ``run()``."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log: Path, cwd: Path) -> None:
        self._log = open(log, "a", encoding="utf-8")
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(cwd),
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._pumping = threading.Thread(target=self._pump, daemon=True)
        self._pumping.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(MARK):
                self._replies.put(json.loads(line[len(MARK) :]))
            else:
                self._log.write(line)
                self._log.flush()
        self._replies.put(None)

    def wait(self, timeout: float) -> dict[str, Any]:
        """The next reply; ``RuntimeError`` when the engine exited, ``TimeoutError`` after ``timeout``."""
        try:
            reply = self._replies.get(timeout=max(timeout, 0.1))
        except queue.Empty:
            raise TimeoutError(f"no reply from the offline engine within {timeout:.0f} s") from None
        if reply is None:
            raise RuntimeError(f"the offline engine exited with code {self.proc.wait()}; see its log")
        return reply

    def run(self, tag: str, timeout: float) -> dict[str, Any]:
        """One timed pass over every conversation."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"tag": tag}) + "\n")
        self.proc.stdin.flush()
        return self.wait(timeout)

    def stop(self, grace: float = 30.0) -> None:
        """End of input, then TERM and KILL to its whole process group."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        for sig, wait in ((None, grace), (signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            if sig is not None:
                try:
                    os.killpg(self.proc.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # leftovers of the group (engine core, workers)
        except (ProcessLookupError, PermissionError):
            pass
        self._pumping.join(timeout=5.0)  # the rest of its output reaches the log before it closes
        if not self._pumping.is_alive():
            self._log.close()

    def __enter__(self) -> OfflineEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
