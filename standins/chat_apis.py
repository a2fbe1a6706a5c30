"""Loopback stand-ins for GigaChat (OAuth + chat) and OpenRouter that enforce each protocol as the real ones do.

``GigaChatStandIn`` (one server, two paths):

* ``POST /api/v2/oauth``: ``Authorization: Basic <credentials>`` must match (else 401), ``RqUID`` must be a UUID
  (else 400), the body must be the form ``scope=...`` with the scope the credentials were issued for (else 400).
  It answers ``{"access_token", "expires_at"}`` with ``expires_at`` in milliseconds (``ttl`` seconds from now).
* ``POST /api/v1/token`` (with ``login=(user, password)``): HTTP basic auth of exactly that login (else 401), as
  the vendor's SDK logs in; it answers ``{"tok", "exp"}``, ``exp`` in milliseconds. Tokens from either path serve.
* ``POST /api/v1/chat/completions``: ``Authorization: Bearer <token>`` of a token it issued and that has not expired
  (``expire_tokens()`` expires every token issued so far; a token past ``expires_at`` is expired too; with
  ``expire_after`` a token expires once it has served that many chats): else 401.
  ``temperature`` must be > 0 and ``top_p`` within [0, 1] (else 422, as GigaChat). ``script`` replies come first
  (a 429 with ``Retry-After``, say).

``OpenRouterStandIn``: ``POST /api/v1/chat/completions`` with ``Authorization: Bearer <key>`` (else 401) and a model
id ``vendor/model`` (else 400); it records ``HTTP-Referer`` / ``X-Title`` and answers with a ``reasoning`` field.

Both answer ``Ответ: 4`` and record every request (path, headers, body, time).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import ssl
import subprocess
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

ANSWER = "Решение: 2 + 2 = 4.\nОтвет: 4"


@dataclass
class Canned:
    status: int
    body: Any
    headers: dict = field(default_factory=dict)


def completion(model: str, **message: Any) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER, **message}}
        ],
        "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29},
    }


class StandIn:
    """A ThreadingHTTPServer on 127.0.0.1 that hands each POST to ``handle`` and records it."""

    def __init__(self, script: list[Canned] | None = None, tls: tuple[Path, Path] | None = None) -> None:
        self.script = deque(script or [])
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:  # (certificate, key): serve HTTPS
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
            self.httpd.handle_error = lambda *a: None  # a client that refuses the certificate: fine
            self.scheme = "https"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def root(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def chats(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]

    def scripted(self) -> Canned | None:
        with self.lock:
            return self.script.popleft() if self.script else None

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> Canned:
        raise NotImplementedError

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class GigaChatStandIn(StandIn):
    def __init__(
        self,
        credentials: str,
        scope: str = "GIGACHAT_API_PERS",
        ttl: float = 1800.0,
        script: list[Canned] | None = None,
        token_delay: float = 0.0,
        expire_after: int | None = None,
        tls: tuple[Path, Path] | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(script, tls)
        self.credentials, self.scope, self.ttl, self.token_delay = credentials, scope, ttl, token_delay
        self.login = login
        self.expire_after = expire_after
        self.tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self.served: dict[str, int] = {}  # token -> chats answered with it
        self.rquids: list[str] = []

    @property
    def api_base(self) -> str:
        return self.root + "/api/v1"

    @property
    def auth_url(self) -> str:
        return self.root + "/api/v2/oauth"

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)

    def token_fetches(self) -> int:
        return sum(r["path"] in ("/api/v2/oauth", "/api/v1/token") for r in self.requests)

    def refusals(self) -> int:
        return sum(r.get("status") == 401 for r in self.chats())

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> Canned:
        if path == "/api/v2/oauth":
            return self._oauth(headers, raw)
        if path == "/api/v1/token" and self.login is not None:
            return self._login(headers)
        if path == "/api/v1/chat/completions":
            return self._chat(headers, json.loads(raw))
        return Canned(404, {"status": 404, "message": "Not Found"})

    def _oauth(self, headers: dict[str, str], raw: bytes) -> Canned:
        time.sleep(self.token_delay)
        if headers.get("Authorization") != f"Basic {self.credentials}":
            return Canned(401, {"code": 6, "message": "credentials doesn't match db data"})
        try:
            uuid.UUID(headers.get("RqUID", ""))
        except ValueError:
            return Canned(400, {"code": 5, "message": "RqUID header is missing or is not a UUID"})
        form = parse_qs(raw.decode())
        if not headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded") or form.get("scope") != [
            self.scope
        ]:
            return Canned(400, {"code": 7, "message": "scope from db not fully includes consumed scope"})
        token, expiry = secrets.token_urlsafe(24), time.time() + self.ttl
        with self.lock:
            self.rquids.append(headers["RqUID"])
            self.tokens[token] = expiry
        return Canned(200, {"access_token": token, "expires_at": int(expiry * 1000)})

    def _login(self, headers: dict[str, str]) -> Canned:
        assert self.login is not None
        expected = base64.b64encode(":".join(self.login).encode()).decode()
        if headers.get("Authorization") != f"Basic {expected}":
            return Canned(401, {"status": 401, "message": "Unauthorized"})
        token, expiry = secrets.token_urlsafe(24), time.time() + self.ttl
        with self.lock:
            self.tokens[token] = expiry
        return Canned(200, {"tok": token, "exp": int(expiry * 1000)})

    def _chat(self, headers: dict[str, str], body: dict) -> Canned:
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        with self.lock:
            expiry = self.tokens.get(token)
            used = self.served[token] = self.served.get(token, 0) + 1
        if expiry is None or expiry <= time.time() or (self.expire_after is not None and used > self.expire_after):
            return Canned(401, {"status": 401, "message": "Token has expired"})
        temperature, top_p = body.get("temperature", 1.0), body.get("top_p", 0.47)
        if not (isinstance(temperature, (int, float)) and temperature > 0):
            return Canned(422, {"status": 422, "message": "Invalid params: temperature must be in range (0, +inf)"})
        if not (isinstance(top_p, (int, float)) and 0 <= top_p <= 1):
            return Canned(422, {"status": 422, "message": "Invalid params: top_p must be in range [0, 1]"})
        return self.scripted() or Canned(200, completion(body["model"]))


class OpenRouterStandIn(StandIn):
    def __init__(self, key: str, script: list[Canned] | None = None) -> None:
        super().__init__(script)
        self.key = key

    @property
    def api_base(self) -> str:
        return self.root + "/api/v1"

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> Canned:
        if path != "/api/v1/chat/completions":
            return Canned(404, {"error": {"message": "Not Found", "code": 404}})
        if headers.get("Authorization") != f"Bearer {self.key}":
            return Canned(401, {"error": {"message": "No auth credentials found", "code": 401}})
        body = json.loads(raw)
        if not re.fullmatch(r"[\w.-]+/[\w.:-]+", str(body.get("model"))):
            return Canned(400, {"error": {"message": f"{body.get('model')} is not a valid model ID", "code": 400}})
        return self.scripted() or Canned(200, completion(body["model"], reasoning="2 + 2: складываем."))


class ScriptedVllm(StandIn):
    """A vLLM with token ids: ``/tokenize`` of a text from ``tokens`` (of a chat: ``chat_prompt``), chat and
    completion replies from ``replies`` (path suffix -> queue; a ``Canned`` in a queue is sent as it is)."""

    def __init__(
        self, replies: dict[str, list], tokens: dict[str, list[int]], chat_prompt: list[int] | None = None
    ) -> None:
        super().__init__()
        self.replies, self.tokens, self.chat_prompt = replies, tokens, chat_prompt or []

    @property
    def api_base(self) -> str:
        return self.root + "/v1"

    def bodies(self, suffix: str) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests if r["path"].endswith(suffix)]

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> Canned:
        body = json.loads(raw)
        if path == "/tokenize":
            ids = self.chat_prompt if "messages" in body else self.tokens[body["prompt"]]
            return Canned(200, {"tokens": ids, "count": len(ids)})
        for suffix, queue in self.replies.items():
            if path.endswith(suffix) and queue:
                reply = queue.pop(0)
                return reply if isinstance(reply, Canned) else Canned(200, reply)
        return Canned(404, {"error": {"message": f"nothing scripted for {path}"}})


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself (no system CA trusts it) and its key, made by ``openssl``."""
    cert, key = directory / "standin.pem", directory / "standin.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def _handler(server: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = dict(self.headers)
            reply = server.handle(self.path, headers, raw)
            with server.lock:
                server.requests.append(
                    {
                        "path": self.path,
                        "headers": headers,
                        "body": raw.decode(),
                        "status": reply.status,
                        "t": time.monotonic(),
                    }
                )
            data = json.dumps(reply.body, ensure_ascii=False).encode()
            self.send_response(reply.status)
            for name, value in {"Content-Type": "application/json", **reply.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
