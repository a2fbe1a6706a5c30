"""The fake vLLM's API process, run exactly as vLLM's is: ``python -m vllm.entrypoints.openai.api_server --model M
--served-model-name N --host H --port P [--max-model-len L]`` with ``standins/fake_vllm`` first on PYTHONPATH.

What it keeps of vLLM's protocol: it prints to stdout while starting, listens only after a delay, runs an "engine"
child in its session retitled with setproctitle (which blanks its ``/proc/<pid>/environ``, as vLLM's
``VLLM::EngineCore``'s is); ``GET /health`` answers 200 while that child lives and 503 once it is dead, while
``GET /v1/models`` keeps answering ``{"data": [{"id": <served name>, "max_model_len": L}]}``; with ``VLLM_API_KEY``
set, ``/v1/models`` and every POST need ``Authorization: Bearer <key>`` (else 401). Every POST is answered with a
chat completion of ``n`` choices, as vLLM answers (``Ответ: \\boxed{4}``, finish_reason ``stop``, 5 prompt and 4
completion tokens per choice).

Knobs (environment): ``FAKE_VLLM_DELAY`` (seconds before it listens, default 0.2), ``FAKE_VLLM_FAIL`` (print it to
stderr and exit 1 instead of serving), ``FAKE_VLLM_IGNORE_TERM=1`` (the API process and its engine ignore SIGTERM),
``FAKE_VLLM_SETSID=1`` (the engine leaves the session and keeps its environment: no retitling),
``FAKE_VLLM_HANG_AFTER=<k>`` (chat requests after the k-th are never answered: a server stuck mid-run),
``FAKE_VLLM_HOLD_UNTIL=<path>`` (each chat request is answered only once that file exists: a model a test keeps
running until it says so).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ENGINE = (
    "import os, signal, time, setproctitle\n"
    "if os.environ.get('FAKE_VLLM_SETSID'): os.setsid()\n"
    "else: setproctitle.setproctitle('FAKE::EngineCore')\n"  # like vLLM: this blanks /proc/<pid>/environ
    "if os.environ.get('FAKE_VLLM_IGNORE_TERM'): signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "time.sleep(3600)\n"
)

ap = argparse.ArgumentParser()
for flag in ("--model", "--served-model-name", "--host", "--port", "--max-model-len"):
    ap.add_argument(flag)
args, _ = ap.parse_known_args()
print("fake vLLM starting", flush=True)
if os.environ.get("FAKE_VLLM_IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.environ.get("FAKE_VLLM_FAIL"):
    print(os.environ["FAKE_VLLM_FAIL"], file=sys.stderr, flush=True)
    sys.exit(1)
engine = subprocess.Popen([sys.executable, "-c", ENGINE])
time.sleep(float(os.environ.get("FAKE_VLLM_DELAY", "0.2")))
KEY = os.environ.get("VLLM_API_KEY")
NAME = args.served_model_name or args.model
HANG_AFTER, ASKED, LOCK = os.environ.get("FAKE_VLLM_HANG_AFTER"), 0, threading.Lock()
HOLD_UNTIL = os.environ.get("FAKE_VLLM_HOLD_UNTIL")


class Handler(BaseHTTPRequestHandler):
    def _send(self, code, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self):
        return KEY is None or self.headers.get("Authorization") == "Bearer " + KEY

    def do_GET(self):
        if self.path == "/health":
            return self._send(200 if engine.poll() is None else 503)
        if self.path == "/v1/models":
            if not self._authorized():
                return self._send(401, {"error": "unauthorized"})
            return self._send(200, {"data": [{"id": NAME, "max_model_len": int(args.max_model_len or 4096)}]})
        self._send(404)

    def do_POST(self):
        global ASKED
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if not self._authorized():
            return self._send(401, {"error": "unauthorized"})
        with LOCK:
            ASKED += self.path.endswith("/chat/completions")
            hang = HANG_AFTER is not None and ASKED > int(HANG_AFTER)
        while hang:
            time.sleep(3600)
        while HOLD_UNTIL and not os.path.exists(HOLD_UNTIL):
            time.sleep(0.05)
        n = int(body.get("n") or 1)
        message = {"role": "assistant", "content": "Ответ: \\boxed{4}"}
        choices = [{"index": i, "finish_reason": "stop", "message": message} for i in range(n)]
        self._send(200, {"choices": choices, "usage": {"prompt_tokens": 5, "completion_tokens": 4 * n}})

    def log_message(self, *a):
        pass


server = ThreadingHTTPServer((args.host, int(args.port)), Handler)
print("fake vLLM listening on port", args.port, flush=True)
server.serve_forever()
