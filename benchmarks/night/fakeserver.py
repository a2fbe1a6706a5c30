"""A fake vLLM server that keeps a measured generation rate, with time compressed: the night benchmark's GPUs.

It is started exactly as vLLM is (``python -m vllm.entrypoints.openai.api_server --model ... --port ...``): its
package shadows the real one through PYTHONPATH (``install(folder)`` writes it). It serves ``/health``,
``/v1/models``, ``/metrics`` (vLLM's token counters, which the orchestrator's liveness watch reads) and
``/v1/chat/completions``. Generation is processor sharing (``Engine``): with ``n`` sequences running, each gets
``rate(n) / n`` tokens per simulated second, where ``rate`` interpolates the ``(in_flight, tok_s)`` points it is
given on the log of the in-flight count; ``--max-num-seqs`` caps ``n`` (the rest wait, as in vLLM's queue). Each
of a request's ``n`` choices is its own sequence, whose slot is freed when it ends. Each answer's length is
drawn from a lognormal around ``mean_tokens`` (seeded by the request's messages, capped at ``max_tokens``) and its
text is ``Ответ: 4``. Start-up takes ``startup_s``. Every simulated second lasts ``1 / scale`` real seconds.

Knobs come from the environment variable ``NIGHT_FAKE`` (JSON): points, mean_tokens, sigma, startup_s, scale,
noise (a multiplier on every request's length: the model's own deviation from its estimate). With ``NIGHT_EVENTS``
set (a file path) the server appends one JSON line when it is ready and one when it is told to stop (SIGTERM):
its wall-clock start, ready and last-answer times, the tokens it generated, the seconds it had work and the
tokens and seconds between the first and the last request (``Engine.snapshot``), which the night benchmark reads.
The engine does no work between events (an end, an arrival), so a server's cost is per request, not per second:
``benchmarks/night/fidelity.py`` compares its first-arrival-to-last-end time under the real client with the same
requests replayed by a client without overhead.
"""

from __future__ import annotations

import collections
import hashlib
import heapq
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

SHADOW = "vllm/entrypoints/openai/api_server.py"


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
    """The processor-sharing clock, event-driven: every running sequence gets ``rate(n) / n`` tokens per simulated
    second, so one virtual clock (the tokens each running sequence has received) orders every end; the engine sleeps
    until the next end or the next arrival, with no per-tick work. Each of a request's ``n`` choices is its own
    sequence: it frees its slot when it ends (as vLLM does), and the waiting sequence first in line takes it.

    Besides the counters, it keeps what the fidelity check needs: the seconds the batch was full, and the tokens
    and seconds between the first and the last arrival (the client still had requests to send: the batch should be
    full then)."""

    def __init__(
        self,
        points: list[tuple[float, float]],
        max_seqs: int,
        scale: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.points, self.max_seqs, self.scale, self.clock = points, max_seqs, scale, clock
        self.lock = threading.Condition()
        self.running: list[tuple[float, int, threading.Event]] = []  # heap of (virtual end, id, done)
        self.waiting: collections.deque[tuple[float, int, threading.Event]] = collections.deque()
        self.virtual = 0.0  # tokens each running sequence has received so far
        self.then = clock()
        self.generated = 0.0
        self.prompt = 0
        self.busy_s = 0.0  # simulated seconds with at least one sequence running
        self.full_s = 0.0  # of which with the batch full (max_seqs running)
        self.last_done = 0.0  # wall clock of the last finished sequence
        self.first: tuple[float, float] | None = None  # (tokens generated, simulated seconds) at the first arrival
        self.last = (0.0, 0.0)  # and at the last arrival
        self.sim = 0.0  # simulated seconds since start
        self.peak_waiting = 0
        self.requests: list[list[int]] = []  # each request's choices' lengths, in order of arrival
        self.last_done_sim = 0.0
        self._next = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def rate(self, n: int) -> float:
        return rate_at(self.points, n)

    def generate(self, tokens: int, prompt: int) -> None:
        self.generate_all([tokens], prompt)

    def generate_all(self, lengths: list[int], prompt: int) -> None:
        """Queue ``lengths`` sequences (one request's ``n`` choices); returns when all are done."""
        done = [threading.Event() for _ in lengths]
        with self.lock:
            self._advance()
            self.last = (self.generated, self.sim)
            self.first = self.first or self.last
            self.requests.append(list(lengths))
            for tokens, event in zip(lengths, done):
                self._next += 1
                self.waiting.append((float(tokens), self._next, event))
            self.prompt += prompt * len(lengths)
            self._admit()
            self.peak_waiting = max(self.peak_waiting, len(self.waiting))
            self.lock.notify()
        for event in done:
            event.wait()

    def snapshot(self) -> dict:
        """The counters now; ``fed_tokens`` and ``fed_s``: generated between the first and the last arrival."""
        with self.lock:
            self._advance()
            first = self.first or self.last
            return {
                "tokens": self.generated,
                "busy_s": self.busy_s,
                "full_s": self.full_s,
                "fed_tokens": self.last[0] - first[0],
                "fed_s": self.last[1] - first[1],
                "full_rate": self.rate(self.max_seqs),
                "max_seqs": self.max_seqs,
                "peak_waiting": self.peak_waiting,
                "served_s": self.last_done_sim - first[1],  # first arrival to last end
                "requests": self.requests,
            }

    def _advance(self) -> None:
        now = self.clock()
        step, self.then = (now - self.then) * self.scale, now
        n = len(self.running)
        self.sim += step
        if n:
            rate = self.rate(n)
            self.virtual += rate / n * step
            self.generated += rate * step
            self.busy_s += step
            self.full_s += step if n >= self.max_seqs else 0.0

    def _admit(self) -> None:
        while self.waiting and len(self.running) < self.max_seqs:
            tokens, rid, event = self.waiting.popleft()
            heapq.heappush(self.running, (self.virtual + tokens, rid, event))

    def _loop(self) -> None:
        with self.lock:
            while True:
                self._advance()
                while self.running and self.running[0][0] <= self.virtual + 1e-6:
                    heapq.heappop(self.running)[2].set()
                    self.last_done, self.last_done_sim = time.time(), self.sim
                self._admit()
                if not self.running:
                    self.lock.wait()
                    continue
                n = len(self.running)
                left = (self.running[0][0] - self.virtual) / (self.rate(n) / n) / self.scale
                self.lock.wait(max(left, 1e-4))


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
            line = {
                "event": kind,
                "model": name,
                "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
                "began": began,
                "ready": ready,
                "last_done": engine.last_done,
                **engine.snapshot(),
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
                    engine._advance()
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
