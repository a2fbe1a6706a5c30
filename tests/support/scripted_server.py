"""An OpenAI-compatible HTTP server on 127.0.0.1 whose replies follow a script (then a default), for client, runner
and liveness tests: ``FakeServer(script, default, tokenize)`` records every request (path, body, headers, raw
bytes, time) and how many were in flight at most; ``Reply`` is one scripted answer (status, body, headers, delay, a
dropped connection, or server-sent events); ``ok(...)`` and ``error(...)`` build the common ones.

The ``serve`` fixture (registered for every test by ``tests/conftest.py``) starts servers and closes them after the
test: ``srv = serve(script, default=...)``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False  # close the connection without a reply
    events: tuple = ()  # a streamed reply: server-sent events (dicts, or raw "data:" text), one per event_delay
    event_delay: float = 0.0


def ok(
    content: str | None = "ОТВЕТ: 4", *, prompt: int = 11, completion: int = 7, finish: str = "stop", **message: Any
) -> Reply:
    msg = {"role": "assistant", "content": content, **message}
    return Reply(
        body={
            "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
        }
    )


def error(status: int, message: str, **kw: Any) -> Reply:
    return Reply(status=status, body={"error": {"message": message, "type": "Error", "code": status}}, **kw)


class FakeServer:
    """An OpenAI-compatible server whose replies follow a script (then ``default``); records every request."""

    def __init__(
        self,
        script: list[Reply] | None = None,
        default: Reply | Callable[[dict], Reply] | None = None,
        tokenize: Reply | Callable[[dict], Reply] | None = None,
    ) -> None:
        self.script, self.default, self.tokenize = deque(script or []), default or ok(), tokenize
        self.requests: list[dict] = []
        self.inflight = self.max_inflight = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *a: None  # a client that timed out closed its socket: fine
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def chats(self) -> list[dict]:
        return [r for r in self.requests if r["path"] == "/v1/chat/completions"]

    def reply_for(self, path: str, body: dict) -> Reply:
        with self.lock:
            if path == "/tokenize":
                chosen = self.tokenize or Reply(status=404, body={"detail": "Not Found"})
            else:
                chosen = self.script.popleft() if self.script else self.default
        return chosen(body) if callable(chosen) else chosen

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            body = json.loads(raw)
            with server.lock:
                server.requests.append(
                    {"path": self.path, "body": body, "headers": dict(self.headers), "raw": raw, "t": time.monotonic()}
                )
                server.inflight += 1
                server.max_inflight = max(server.max_inflight, server.inflight)
            try:
                self._reply(server.reply_for(self.path, body))
            finally:
                with server.lock:
                    server.inflight -= 1

        def _reply(self, reply: Reply) -> None:
            time.sleep(reply.delay)
            if reply.drop:
                self.close_connection = True
                return
            if reply.events:
                return self._stream(reply)
            data = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
            raw = data.encode("utf-8")
            self.send_response(reply.status)
            for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _stream(self, reply: Reply) -> None:
            self.send_response(reply.status)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for event in reply.events:
                time.sleep(reply.event_delay)
                text = event if isinstance(event, str) else "data: " + json.dumps(event, ensure_ascii=False)
                self.wfile.write((text + "\n\n").encode("utf-8"))
                self.wfile.flush()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def serve():
    servers: list[FakeServer] = []

    def start(*args: Any, **kw: Any) -> FakeServer:
        servers.append(FakeServer(*args, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.close()
