"""A loopback stand-in for the Hugging Face hub: the HTTP protocol ``huggingface_hub`` 2.4's ``snapshot_download``
speaks, serving repositories of files (e.g. the smoke model) under hub ids, throttled like a real link.

Routes (``HF_ENDPOINT`` = ``HubStub.url``):
    HEAD /                                            the reachability probe (hubnet)
    GET  /api/models/{repo}[/revision/{rev}]          {"id", "sha"}: the revision resolved to its commit
    GET  /api/models/{repo}/tree/{rev}[?recursive]    [{"type": "file", "path", "size", "oid"}]
    HEAD /{repo}/resolve/{rev}/{path}                 X-Repo-Commit, ETag, Content-Length (no X-Xet-Hash)
    GET  /{repo}/resolve/{rev}/{path}                 the bytes; ``Range: bytes=N-`` answers 206 (resume)
Every name in ``revisions`` is a commit of its own with the same files (blobs shared in the cache).
Errors as the hub sends them: 404 + ``X-Error-Code: RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``,
401 + ``GatedRepo`` for a gated repository's files without ``Authorization: Bearer <token>``.

Knobs: ``rate`` (bytes/s shared by all transfers, like one link), ``cut`` ({path: n}: the first GET of that file
stops after n bytes and the stub then answers 500 until ``down`` is cleared), ``down`` (500 for everything).
Counters: ``served[(repo, path)]`` GETs with a body, ``ranges`` the Range headers seen, ``bytes_sent``, and
``first_get[repo]`` (``time.monotonic()`` of a repository's first file GET: the order downloads began).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

CHUNK = 16 * 1024


def commit_of(repo: str, revision: str = "main") -> str:
    return hashlib.sha1(f"{repo}@{revision}".encode()).hexdigest()


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class HubStub:
    def __init__(
        self,
        repos: dict[str, dict[str, bytes]],
        *,
        rate: float | None = None,
        gated: set[str] = frozenset(),
        token: str = "hf_stubtoken123",
        revisions: tuple[str, ...] = ("main",),
    ) -> None:
        self.repos, self.rate, self.gated, self.token, self.revisions = repos, rate, set(gated), token, revisions
        self.cut: dict[str, int] = {}
        self.down = False
        self.served: dict[tuple[str, str], int] = {}
        self.ranges: list[str] = []
        self.bytes_sent = 0
        self.first_get: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_free = 0.0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HubStub:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def commit(self, repo: str, rev: str) -> str:
        """Each of ``revisions`` is its own commit (same files); a commit hash stands for itself."""
        return commit_of(repo, rev) if rev in self.revisions else rev

    def gets(self, repo: str) -> dict[str, int]:
        return {path: n for (r, path), n in self.served.items() if r == repo}

    def throttle(self, n: int) -> None:
        """Sleep as a link of ``rate`` bytes/s shared by every transfer would take to carry ``n`` bytes."""
        if not self.rate:
            return
        with self._lock:
            start = max(time.monotonic(), self._next_free)
            self._next_free = start + n / self.rate
            until = self._next_free
        time.sleep(max(0.0, until - time.monotonic()))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def error(self, status: int, code: str) -> None:
                self.reply(
                    status, json.dumps({"error": code}).encode(), {"X-Error-Code": code, "X-Error-Message": code}
                )

            def do_HEAD(self) -> None:
                self.route()

            def do_GET(self) -> None:
                self.route()

            def route(self) -> None:
                path = unquote(self.path.split("?")[0])
                if stub.down:
                    return self.error(500, "Down")
                if path == "/":
                    return self.reply(200)
                parts = path.strip("/").split("/")
                if parts[:2] == ["api", "models"]:
                    return self.api(parts[2:])
                if len(parts) >= 5 and parts[2] == "resolve":
                    return self.resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]))
                self.error(404, "EntryNotFound")

            def known(self, repo: str, rev: str) -> bool:
                if repo not in stub.repos:
                    self.error(404, "RepoNotFound")
                    return False
                if rev not in stub.revisions and rev not in {commit_of(repo, r) for r in stub.revisions}:
                    self.error(404, "RevisionNotFound")
                    return False
                return True

            def api(self, parts: list[str]) -> None:
                repo, rest = "/".join(parts[:2]), parts[2:]
                rev = rest[1] if len(rest) >= 2 else "main"
                if not self.known(repo, rev):
                    return
                if not rest or rest[0] == "revision":
                    return self.reply(
                        200,
                        json.dumps({"id": repo, "sha": stub.commit(repo, rev)}).encode(),
                        {"Content-Type": "application/json"},
                    )
                tree = [
                    {"type": "file", "path": name, "size": len(body), "oid": hashlib.sha1(body).hexdigest()}
                    for name, body in stub.repos[repo].items()
                ]
                self.reply(200, json.dumps(tree).encode(), {"Content-Type": "application/json"})

            def resolve(self, repo: str, rev: str, name: str) -> None:
                if not self.known(repo, rev):
                    return
                if repo in stub.gated and self.headers.get("Authorization") != f"Bearer {stub.token}":
                    return self.error(401, "GatedRepo")
                body = stub.repos[repo].get(name)
                if body is None:
                    return self.error(404, "EntryNotFound")
                head = {
                    "X-Repo-Commit": stub.commit(repo, rev),
                    "ETag": f'"{hashlib.sha256(body).hexdigest()}"',
                    "Accept-Ranges": "bytes",
                }
                if self.command == "HEAD":
                    return self.reply(200, body, head)  # reply() sends the headers only
                self.send_body(repo, name, body, head)

            def send_body(self, repo: str, name: str, body: bytes, head: dict) -> None:
                start, status = 0, 200
                wanted = self.headers.get("Range")
                if wanted:
                    stub.ranges.append(f"{name}: {wanted}")
                    start, status = int(wanted.split("=")[1].split("-")[0]), 206
                    head["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                with stub._lock:
                    stub.served[(repo, name)] = stub.served.get((repo, name), 0) + 1
                    stub.first_get.setdefault(repo, time.monotonic())
                    cut = stub.cut.pop(name, None)
                self.send_response(status)
                for key, value in {**head, "Content-Length": str(len(body) - start)}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.stream(body[start:], cut)

            def stream(self, data: bytes, cut: int | None) -> None:
                for offset in range(0, len(data), CHUNK):
                    piece = data[offset : offset + CHUNK]
                    if cut is not None and offset + len(piece) > cut:
                        piece = piece[: max(0, cut - offset)]
                        stub.down = True  # the link breaks: nothing more answers until the test mends it
                    stub.throttle(len(piece))
                    self.wfile.write(piece)
                    with stub._lock:
                        stub.bytes_sent += len(piece)
                    if cut is not None and stub.down:
                        self.close_connection = True
                        return

        return Handler
