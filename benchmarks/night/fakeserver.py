"""A fake vLLM server that keeps a measured generation rate, with time compressed: the night benchmark's GPUs.

It is started exactly as vLLM is (``python -m vllm.entrypoints.openai.api_server --model ... --port ...``): its
package shadows the real one through PYTHONPATH (``install(folder)`` writes it). It serves ``/health``,
``/v1/models``, ``/metrics`` (vLLM's token counters, which the orchestrator's liveness watch reads) and
``/v1/chat/completions``. Generation is processor sharing: with ``n`` requests running, each gets ``rate(n) / n``
tokens per simulated second, where ``rate`` interpolates the ``(in_flight, tok_s)`` points it is given on the log of
the in-flight count; ``--max-num-seqs`` caps ``n`` (the rest wait, as in vLLM's queue). Each answer's length is
drawn from a lognormal around ``mean_tokens`` (seeded by the request's messages, capped at ``max_tokens``) and its
text is ``Ответ: 4``. Start-up takes ``startup_s``. Every simulated second lasts ``1 / scale`` real seconds.

Knobs come from the environment variable ``NIGHT_FAKE`` (JSON): points, mean_tokens, sigma, startup_s, scale,
noise (a multiplier on every request's length: the model's own deviation from its estimate). With ``NIGHT_EVENTS``
set (a file path) the server appends one JSON line when it is ready and one when it is told to stop (SIGTERM):
its wall-clock start, ready and last-answer times, the tokens it generated and the seconds it had work, which the
night benchmark reads (``Engine.stats``). A request's ``n`` choices join the engine together, with no thread each:
the per-request overhead stays small against a request's length (the benchmark's verification measures the
achieved rate against the target under the real client).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

SHADOW = "vllm/entrypoints/openai/api_server.py"
TICK = 0.005  # real seconds between advances of the processor-sharing clock


def install(folder: Path) -> Path:
    """Write the shadow package under ``folder`` (put it first on PYTHONPATH); returns ``folder``."""
    target = Path(folder) / SHADOW
    target.parent.mkdir(parents=True, exist_ok=True)
    for pkg in (Path(folder) / "vllm", Path(folder) / "vllm/entrypoints", target.parent):
        (pkg / "__init__.py").write_text("")
    target.write_text("from benchmarks.night.fakeserver import main\nmain()\n")
    return Path(folder)


def rate_at(points: list[tuple[float, float]], n: int) -> float:
    """Output tok/s of the whole server with ``n`` running (proportional below the first point, flat after the
    last)."""
    points = sorted(points)
    if n <= 0:
        return 0.0
    if n <= points[0][0]:
        return points[0][1] * n / points[0][0]
    if n >= points[-1][0]:
        return points[-1][1]
    for (lo, rlo), (hi, rhi) in zip(points, points[1:]):
        if lo <= n <= hi:
            t = (math.log(n) - math.log(lo)) / (math.log(hi) - math.log(lo))
            return rlo + t * (rhi - rlo)
    return points[-1][1]


class Engine:
    """The processor-sharing clock: requests join with a token count and are woken when they have it."""

    def __init__(self, points: list[tuple[float, float]], max_seqs: int, scale: float) -> None:
        self.points, self.max_seqs, self.scale = points, max_seqs, scale
        self.lock = threading.Lock()
        self.running: dict[int, list] = {}  # id -> [tokens left, event, tokens]
        self.waiting: list[tuple[int, list]] = []
        self.generated = 0.0
        self.prompt = 0
        self.busy_s = 0.0  # simulated seconds with at least one sequence running
        self.full_s = 0.0  # of which with the batch full (max_seqs running)
        self.last_done = 0.0  # wall clock of the last finished sequence
        self._next = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def generate(self, tokens: int, prompt: int) -> None:
        self.generate_all([tokens], prompt)

    def generate_all(self, lengths: list[int], prompt: int) -> None:
        """Run ``lengths`` sequences together (one request's ``n`` choices); returns when all are done."""
        entries = [[float(t), threading.Event(), t] for t in lengths]
        with self.lock:
            for entry in entries:
                self._next += 1
                self.waiting.append((self._next, entry))
            self.prompt += prompt * len(lengths)
            self._admit()
        for entry in entries:
            entry[1].wait()

    def _admit(self) -> None:
        while self.waiting and len(self.running) < self.max_seqs:
            rid, entry = self.waiting.pop(0)
            self.running[rid] = entry

    def _loop(self) -> None:
        last = time.monotonic()
        while True:
            time.sleep(TICK)
            now = time.monotonic()
            step, last = (now - last) * self.scale, now
            with self.lock:
                n = len(self.running)
                if not n:
                    continue
                self.busy_s += step
                self.full_s += step if n >= self.max_seqs else 0.0
                share = rate_at(self.points, n) / n * step
                for rid, entry in list(self.running.items()):
                    used = min(share, entry[0])
                    entry[0] -= used
                    self.generated += used
                    if entry[0] <= 1e-9:
                        del self.running[rid]
                        entry[1].set()
                        self.last_done = time.time()
                self._admit()


def answer_tokens(messages: object, mean: float, sigma: float, noise: float, cap: int) -> int:
    digest = hashlib.sha256(json.dumps(messages, ensure_ascii=False).encode()).digest()
    u1 = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 2)
    u2 = (int.from_bytes(digest[8:16], "big") + 1) / (2**64 + 2)
    z = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
    return max(1, min(cap, round(mean * noise * math.exp(sigma * z - sigma * sigma / 2))))


def main() -> None:
    import argparse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    ap = argparse.ArgumentParser()
    for flag in ("--model", "--served-model-name", "--host", "--port", "--max-model-len", "--max-num-seqs"):
        ap.add_argument(flag)
    args, _ = ap.parse_known_args()
    knobs = json.loads(os.environ.get("NIGHT_FAKE", "{}"))
    scale = float(knobs.get("scale", 100.0))
    began = time.time()
    time.sleep(float(knobs.get("startup_s", 0.0)) / scale)
    engine = Engine([tuple(p) for p in knobs.get("points", [[1, 50.0]])], int(args.max_num_seqs or 256), scale)
    name = args.served_model_name or args.model
    events = os.environ.get("NIGHT_EVENTS")
    ready = time.time()

    def note(kind: str) -> None:
        if events:
            with engine.lock:
                line = {
                    "event": kind,
                    "model": name,
                    "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
                    "began": began,
                    "ready": ready,
                    "last_done": engine.last_done,
                    "tokens": engine.generated,
                    "busy_s": engine.busy_s,
                    "full_s": engine.full_s,
                }
            with open(events, "a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")

    def on_term(signum: int, frame: object) -> None:
        note("end")
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    note("ready")
    key = os.environ.get("VLLM_API_KEY")
    mean, sigma, noise = float(knobs.get("mean_tokens", 500)), float(knobs.get("sigma", 0.5)), knobs.get("noise", 1.0)
    night = knobs.get("night", 0)  # the night's seed: each night's answers have their own lengths

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, code: int, body: object = None, text: str | None = None) -> None:
            data = text.encode() if text is not None else json.dumps(body).encode() if body is not None else b""
            self.send_response(code)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                return self._send(200)
            if self.path == "/v1/models":
                return self._send(200, {"data": [{"id": name, "max_model_len": int(args.max_model_len or 32768)}]})
            if self.path == "/metrics":
                with engine.lock:
                    gen, prompt, running = engine.generated, engine.prompt, len(engine.running)
                    waiting = len(engine.waiting)
                return self._send(
                    200,
                    text=(
                        f"vllm:generation_tokens_total {gen}\nvllm:prompt_tokens_total {prompt}\n"
                        f"vllm:num_requests_running {running}\nvllm:num_requests_waiting {waiting}\n"
                    ),
                )
            self._send(404)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            if key is not None and self.headers.get("Authorization") != "Bearer " + key:
                return self._send(401, {"error": "unauthorized"})
            n = int(body.get("n") or 1)
            cap = int(body.get("max_tokens") or 4096)
            lengths = [
                answer_tokens([body.get("messages"), body.get("seed"), i, night], mean, sigma, noise, cap)
                for i in range(n)
            ]
            engine.generate_all(lengths, 30)
            choices = [
                {
                    "index": i,
                    "finish_reason": "length" if tokens >= cap else "stop",
                    "message": {"role": "assistant", "content": "Решение.\nОтвет: 4"},
                }
                for i, tokens in enumerate(lengths)
            ]
            total = sum(lengths)
            self._send(200, {"choices": choices, "usage": {"prompt_tokens": 30 * n, "completion_tokens": total}})

        def log_message(self, *a: object) -> None:
            pass

    server = ThreadingHTTPServer((args.host or "127.0.0.1", int(args.port)), Handler)
    server.daemon_threads = True
    print("fake vLLM (night) listening on port", args.port, flush=True)
    server.serve_forever()
