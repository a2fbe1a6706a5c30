"""Webhooks told when a model ends and when the run ends: the ``notify:`` block of run.yaml.

    notify:
      - url: env:SLACK_WEBHOOK_URL                   # Slack incoming webhook: the URL is the secret
      - url: https://hooks.example.org/deathmath
        headers: {Authorization: env:HOOK_TOKEN}     # a header value may be env:NAME, as api_key is

``parse_notify(raw, path, env)`` validates the block (one ``ConfigError`` line naming ``notify[i].field``, exit 2) and
resolves ``env:NAME`` in ``url`` and header values. ``Notifier`` sends, from one background thread so that a slow
hook never slows the run, a JSON POST to every hook:

- ``event: model_end`` when a model finishes, fails or is interrupted: ``model``, ``state``, ``scores`` (per dataset:
  accuracy, correct, answered, total, complete), ``error`` (its first line), ``details`` (the model's answers page)
  and ``leaderboard`` (``leaderboard.html``);
- ``event: run_end`` once: ``state`` (finished, failed, interrupted), ``exit_code``, ``models`` (each one's state
  and error line) and ``leaderboard``.

Every payload has ``text``, one readable line, which is what Slack's incoming webhooks and Telegram's ``sendMessage``
(``chat_id`` in the URL's query) show. A delivery that fails (connection, timeout, a status >= 400) is retried
``attempts`` times; the first failure of a hook is logged once as a warning (later ones at debug level), and nothing
a hook does fails the run. ``close(wait)`` waits at most ``wait`` seconds for what is queued. Logs name a hook by
its position and host only; secrets (the URL's path and query, header values) never reach logs, results or the
manifest (``redact``).
"""

from __future__ import annotations

import difflib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from .errors import ConfigError
from .results import safe_name

log = logging.getLogger(__name__)

HOOK_KEYS = {"url", "headers"}
TIMEOUT_S = 10.0  # per request: connect and read
ATTEMPTS = 3
BACKOFF_S = 1.0  # before the 2nd attempt; doubles after
CLOSE_WAIT_S = 30.0  # what the run waits at its end for queued messages
INTERRUPTED_WAIT_S = 5.0  # the same after a signal: the user wants the prompt back
REDACTED = "<redacted>"
ERROR_CHARS = 2000  # of the error line in a message (Telegram takes 4096 characters, Slack more)


@dataclass(frozen=True)
class Webhook:
    """One hook, secrets resolved; ``label`` (position and host) is what logs may show."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    label: str = "notify"

    def __repr__(self) -> str:  # never the URL's path or a header value
        return f"Webhook({self.label})"


# ------------------------------------------------------------------------------------------------------ config


def parse_notify(raw: Any, path: Path | str, env: Mapping[str, str]) -> tuple[Webhook, ...]:
    """The hooks of a ``notify:`` value (None: none); ``ConfigError`` naming ``notify[i].field`` otherwise."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(path, "notify", f"expected a list of webhooks, got {_kind(raw)}", "write `notify: [{url: ...}]`")
    return tuple(_hook(path, env, f"notify[{i}]", item) for i, item in enumerate(raw))


def _hook(path: Path | str, env: Mapping[str, str], where: str, item: Any) -> Webhook:
    if not isinstance(item, dict):
        raise _fail(path, where, f"expected a mapping, got {_kind(item)}", "write `{url: https://..., headers: {}}`")
    for key in item:
        if key not in HOOK_KEYS:
            close = difflib.get_close_matches(str(key), sorted(HOOK_KEYS), n=1, cutoff=0.6)
            fix = f"did you mean {close[0]!r}?" if close else "allowed keys: headers, url"
            raise _fail(path, f"{where}.{key}", "unknown key", fix)
    url = _resolve(path, env, f"{where}.url", item.get("url"))
    if url is None:
        raise _fail(path, f"{where}.url", "missing", "add `url: https://...` or `url: env:NAME`")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        whose = f"the value of {item['url']}" if str(item["url"]).startswith("env:") else "the value"
        problem = f"{whose} is not an http(s) URL with a host (scheme {parts.scheme or 'missing'})"
        raise _fail(path, f"{where}.url", problem, "write it as https://host/path")  # never the value: it may be secret
    headers = item.get("headers")
    if headers is None:
        headers = {}
    if not isinstance(headers, dict):
        raise _fail(path, f"{where}.headers", f"expected a mapping, got {_kind(headers)}", "write `{Name: value}`")
    resolved = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not name.strip():
            raise _fail(path, f"{where}.headers", f"header name {name!r:.40} is not a string", "write `{Name: value}`")
        resolved[name] = _resolve(path, env, f"{where}.headers.{name}", value) or ""
    return Webhook(url=url, headers=resolved, label=f"{where} ({parts.scheme}://{parts.hostname})")


def _resolve(path: Path | str, env: Mapping[str, str], where: str, raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise _fail(path, where, f"expected a string, got {_kind(raw)}", "quote it")
    if raw.startswith("env:"):
        var = raw[4:].strip()
        if not var or not env.get(var):
            raise _fail(path, where, f"environment variable {var!r} is not set", f"export {var}=... before the run")
        return env[var]
    return raw


def _fail(path: Path | str, where: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {problem}; {fix}")


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def _public(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/..." if parts.path.strip("/") or parts.query else url


def redact(raw: Any) -> Any:
    """The ``notify:`` value as the manifest may keep it: ``env:`` references stay, literal URLs keep their scheme
    and host only, literal header values become ``<redacted>``."""
    if not isinstance(raw, list):
        return raw
    return [_redact_hook(item) for item in raw]


def _redact_hook(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    out = dict(item)
    url = out.get("url")
    if isinstance(url, str) and not url.startswith("env:"):
        out["url"] = _public(url)
    if isinstance(out.get("headers"), dict):
        out["headers"] = {
            k: v if isinstance(v, str) and v.startswith("env:") else REDACTED for k, v in out["headers"].items()
        }
    return out


# ------------------------------------------------------------------------------------------------------ payloads


def model_payload(run_id: str, outcome: Any, results_dir: Path, details: Path | None = None) -> dict[str, Any]:
    """The ``model_end`` message of a ``job.ModelOutcome``."""
    scores = [
        {
            "dataset": s.dataset,
            "accuracy": round(s.accuracy, 4),
            "correct": s.correct,
            "answered": s.answered,
            "total": s.total,
            "complete": s.complete,
        }
        for s in outcome.scores
    ]
    error = _first_line(outcome.error)
    shown = ", ".join(f"{s['dataset']} {s['accuracy']:.1%}" for s in scores) or "no score"
    text = f"deathmath {run_id}: {outcome.model} {outcome.status}: {shown}" + (f"; {error}" if error else "")
    return {
        "event": "model_end",
        "run_id": run_id,
        "model": outcome.model,
        "state": outcome.status,
        "scores": scores,
        "error": error,
        "seconds": round(outcome.seconds, 1),
        "details": str(details) if details else None,
        "leaderboard": str(Path(results_dir).resolve() / "leaderboard.html"),
        "text": text,
    }


def run_payload(run_id: str, state: str, exit_code: int, outcomes: Sequence[Any], results_dir: Path) -> dict[str, Any]:
    """The ``run_end`` message."""
    models = [{"model": o.model, "state": o.status, "error": _first_line(o.error)} for o in outcomes]
    counts: dict[str, int] = {}
    for m in models:
        counts[m["state"]] = counts.get(m["state"], 0) + 1
    board = Path(results_dir).resolve() / "leaderboard.html"
    tally = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no model"
    return {
        "event": "run_end",
        "run_id": run_id,
        "state": state,
        "exit_code": exit_code,
        "models": models,
        "leaderboard": str(board),
        "text": f"deathmath {run_id} {state} (exit {exit_code}): {tally}; leaderboard {board}",
    }


def _first_line(text: str | None) -> str | None:
    return text.strip().splitlines()[0][:ERROR_CHARS] if text and text.strip() else None


# ------------------------------------------------------------------------------------------------------ sending


Post = Callable[..., Any]  # requests.post's shape: post(url, data=, headers=, timeout=) -> response


class Notifier:
    """Posts payloads to every hook from one background thread; see the module docstring."""

    def __init__(
        self,
        hooks: Iterable[Webhook],
        *,
        timeout: float = TIMEOUT_S,
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF_S,
        post: Post = requests.post,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.hooks = tuple(hooks)
        self.timeout, self.attempts, self.backoff, self._post, self._sleep = timeout, attempts, backoff, post, sleep
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._failed: set[int] = set()  # the hooks (by position) whose failure was logged already
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered = 0

    def send(self, payload: Mapping[str, Any]) -> None:
        """Queue ``payload`` for every hook; returns at once."""
        if not self.hooks:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="notify", daemon=True)
                self._thread.start()
        self._queue.put(dict(payload))

    def close(self, wait: float = CLOSE_WAIT_S) -> bool:
        """Stop after what is queued, waiting at most ``wait`` seconds; False when messages were left unsent."""
        if self._thread is None:
            return True
        self._queue.put(None)
        self._thread.join(wait)
        if self._thread.is_alive():
            log.warning("notify: gave up waiting for the webhooks after %.0f s; some messages were not sent", wait)
            return False
        return True

    def _work(self) -> None:
        while True:
            payload = self._queue.get()
            if payload is None:
                return
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            for index, hook in enumerate(self.hooks):
                self._deliver(index, hook, body)

    def _deliver(self, index: int, hook: Webhook, body: bytes) -> None:
        headers = {"Content-Type": "application/json; charset=utf-8", **hook.headers}
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._post(hook.url, data=body, headers=headers, timeout=self.timeout)
            except Exception as exc:  # noqa: BLE001 -- never the exception's text: it carries the URL
                problem = type(exc).__name__
                continue
            if response.status_code < 400:
                self.delivered += 1
                return
            problem = f"HTTP {response.status_code}"
        self._report(index, hook, f"{problem} after {self.attempts} attempt(s)")

    def _report(self, index: int, hook: Webhook, problem: str) -> None:
        if index in self._failed:
            log.debug("notify: %s: %s", hook.label, problem)
            return
        self._failed.add(index)
        log.warning("notify: %s: %s; the run goes on (later failures of this hook are not logged)", hook.label, problem)


class RunNotices:
    """A run's messages: each model's end once (``model_ended``, ``RunContext.on_outcome``), then the run's end
    (``run_ended``), which also tells the models that ended without an outcome (an exception) and closes."""

    def __init__(self, notifier: Notifier, run_id: str, results_dir: Path) -> None:
        self.notifier, self.run_id, self.results_dir = notifier, run_id, Path(results_dir)
        self._told: set[str] = set()
        self._lock = threading.Lock()

    def model_ended(self, outcome: Any) -> None:
        with self._lock:
            if outcome.model in self._told:
                return
            self._told.add(outcome.model)
        details = self.results_dir.resolve() / "details" / safe_name(outcome.model) / "index.html"
        self.notifier.send(model_payload(self.run_id, outcome, self.results_dir, details))

    def run_ended(self, state: str, exit_code: int, outcomes: Sequence[Any], wait: float = CLOSE_WAIT_S) -> None:
        for outcome in outcomes:
            self.model_ended(outcome)
        self.notifier.send(run_payload(self.run_id, state, exit_code, outcomes, self.results_dir))
        self.notifier.close(wait)


__all__ = ["Notifier", "RunNotices", "Webhook", "model_payload", "parse_notify", "redact", "run_payload"]
