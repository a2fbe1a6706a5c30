"""A loopback LLM judge that enforces what a judge request must be, as vLLM's OpenAI server takes it.

``POST /v1/chat/completions`` must carry ``Authorization: Bearer <key>`` (else 401), the served model name (else
404), ``temperature`` 0, two messages (system, user) and a ``response_format`` of type ``json_schema`` whose schema
requires ``verdict`` in {correct, incorrect} and ``reason`` (else 400, as vLLM rejects a malformed schema). The
verdict comes from ``decide(user_text)``, which returns the reply's content: by default ``correct`` when the
extracted answer named in the prompt equals the reference, else ``incorrect``. ``status`` scripts failures (a 500,
a 429) for the next requests. ``schema_status`` set (say 500) stands for a server whose structured-output backend
fails: a request with ``response_format`` gets that status and vLLM's message, one without it is answered (and
then the reply is whatever ``decide`` says). Every request is recorded.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY = "sk-judge-secret-0123456789"
MODEL = "judge-model"


def by_extracted(user: str) -> str:
    reference = re.search(r"Эталонный ответ: (.*)", user)
    extracted = re.search(r"Ответ, который извлёк автоматический проверяющий: (.*)", user)
    same = reference and extracted and reference.group(1).strip() == extracted.group(1).strip()
    verdict = "correct" if same else "incorrect"
    return json.dumps({"verdict": verdict, "reason": "сравнил с эталоном"}, ensure_ascii=False)


class JudgeStandIn:
    def __init__(self, decide: Callable[[str], str] = by_extracted) -> None:
        self.decide = decide
        self.status: deque[int] = deque()
        self.schema_status: int | None = None
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, headers: dict, body: dict) -> tuple[int, dict]:
        with self.lock:
            self.requests.append(body)
            scripted = self.status.popleft() if self.status else None
        if scripted is not None:
            return scripted, {"error": {"message": "scripted failure"}}
        if headers.get("authorization") != f"Bearer {KEY}":
            return 401, {"error": {"message": "bad key"}}
        if body.get("model") != MODEL:
            return 404, {"error": {"message": f"model {body.get('model')!r} not served"}}
        if self.schema_status is not None and "response_format" in body:
            return self.schema_status, {"message": "grammar rejected tokens [31999]. Terminating request."}
        problem = _invalid(body, schema=self.schema_status is None)
        if problem:
            return 400, {"error": {"message": problem}}
        content = self.decide(body["messages"][1]["content"])
        message = {"role": "assistant", "content": content}
        return 200, {"choices": [{"index": 0, "finish_reason": "stop", "message": message}]}


def _invalid(body: dict, *, schema: bool = True) -> str:
    if body.get("temperature") != 0:
        return "temperature must be 0"
    messages = body.get("messages")
    if not isinstance(messages, list) or [m.get("role") for m in messages] != ["system", "user"]:
        return "expected a system and a user message"
    if not schema:
        return ""
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") or {}
    if fmt.get("type") != "json_schema" or set(schema.get("required", ())) != {"verdict", "reason"}:
        return "response_format must be a json_schema requiring verdict and reason"
    if schema["properties"]["verdict"].get("enum") != ["correct", "incorrect"]:
        return "verdict must be an enum of correct, incorrect"
    return ""


def _handler(standin: JudgeStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                body = {}
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, reply = standin.answer(headers, body) if self.path == "/v1/chat/completions" else (404, {})
            data = json.dumps(reply, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
