"""Pure helpers and result types of the chat client: what an attempt came to (``Attempt`` of ``Outcome``), a request
given up because its series stopped (``Halted``); classify replies, parse context-length errors, split reasoning,
scrub secrets."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..contract import AnswerRecord, Problem
from ..reasoning.forced import split_reasoning as split_reasoning

MAX_ERROR_CHARS = 300

_CONTEXT = re.compile(r"maximum context length is (\d+)")
_PROMPT_PATTERNS = (
    re.compile(r"\((\d+) in the messages"),  # vLLM <= 0.9, OpenAI
    re.compile(r"your request has (\d+) input tokens"),  # vLLM 0.10 - 0.2x
    re.compile(r"prompt contains (?:at least )?(\d+) input tokens"),  # vLLM renderer: prompt alone too long
)
_OVER_MODEL_LEN = re.compile(r"max_(?:completion_)?tokens=(\d+) cannot be greater than max_model_len=(\d+)")
_AT_MOST = re.compile(r"at most (\d+) completion tokens")

_BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\",;]+")
_KEY_PARAM = re.compile(r"(?i)((?:api[_-]?key|key|token|access_token)=)[^\s&'\",;]+")
_USERINFO = re.compile(r"(//)[^/@\s]+@")


class Attempt(StrEnum):
    """What one HTTP attempt came to."""

    OK = "ok"  # an answer
    RETRY = "retry"  # a connection error, 429 or 5xx: asked again after a backoff (the next endpoint, if several)
    TIMEOUT = "timeout"  # no answer within the limits: final for this run (the series' retry pass asks again)
    FATAL = "fatal"  # another 4xx, or a prompt that does not fit: final
    CLAMP = "clamp"  # a context-length 400 that names a smaller max_tokens: asked again with it
    REAUTH = "reauth"  # a 401 that fresh credentials may cure: asked once more
    HALTED = "halted"  # the series stopped while the request waited to start: given up unstored


@dataclass(frozen=True)
class Outcome:
    """What one HTTP attempt came to (``kind``), with the reply, the error text or the hints that go with it."""

    kind: Attempt
    data: Mapping[str, Any] | None = None
    error: str = ""
    retry_after: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class Halted:
    """Not an answer and never stored: the series stopped while this request of ``problem`` waited (its
    rate-limited start, or a retry's backoff). The problem stays missing and is asked again on resume."""

    problem: Problem
    reason: str = "the series stopped while this request waited (its rate-limited start, or a retry's backoff)"


class Scrubber:
    """Removes API keys (and anything shaped like a credential) from text, and flattens it to one short line.

    ``more`` gives secrets that appear during the run (GigaChat's access tokens); it is asked at every call.
    """

    def __init__(self, secrets: Iterable[str | None], more: Callable[[], Iterable[str]] | None = None) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._more = more

    def __call__(self, text: object) -> str:
        out = str(text)
        extra = [s for s in self._more() if s] if self._more is not None else []
        for secret in sorted(extra, key=len, reverse=True) + self._secrets:
            out = out.replace(secret, "***")
        out = _USERINFO.sub(r"\1***@", _KEY_PARAM.sub(r"\1***", _BEARER.sub(r"\1***", out)))
        flat = " ".join(out.split())
        return flat if len(flat) <= MAX_ERROR_CHARS else flat[: MAX_ERROR_CHARS - 3] + "..."


def error_message(body: Any, fallback: str) -> str:
    """The ``message`` of an OpenAI / vLLM error body (``{"error": {"message"}}`` or ``{"message"}``)."""
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        if body.get("message"):
            return str(body["message"])
    return fallback


def clamp_from_message(message: str, max_tokens: int, prompt_tokens: int | None) -> int | None:
    """The ``max_tokens`` a context-length 400 asks for, if it says; ``0`` when the prompt alone does not fit."""
    ctx = _CONTEXT.search(message)
    prompt = next((m for m in (p.search(message) for p in _PROMPT_PATTERNS) if m), None)
    if ctx and prompt:
        return max(0, int(ctx.group(1)) - int(prompt.group(1)))
    over = _OVER_MODEL_LEN.search(message)
    if over:
        return max(0, int(over.group(2)) - (prompt_tokens or 0))
    at_most = _AT_MOST.search(message)
    if at_most and int(at_most.group(1)) < max_tokens:
        return int(at_most.group(1))
    return None


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (HTTP dates are ignored)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def valid_reply(data: Any, *, text: bool = False) -> bool:
    """Whether a 200 body has a first choice with a message (``text``: a completion's ``text``)."""
    if not isinstance(data, Mapping):
        return False
    choices = data.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], Mapping):
        return False
    return isinstance(choices[0].get("text"), str) if text else isinstance(choices[0].get("message"), Mapping)


def usage_tokens(data: Mapping[str, Any]) -> tuple[int | None, int]:
    """(prompt_tokens, completion_tokens) of a reply's ``usage``."""
    usage = data.get("usage") or {}
    prompt = usage.get("prompt_tokens")
    return (int(prompt) if prompt is not None else None), int(usage.get("completion_tokens") or 0)


def choices_in_order(data: Mapping[str, Any], n: int) -> tuple[Mapping[str, Any] | None, str | None]:
    """The reply with its ``n`` choices sorted by index, or an error when it has not ``n`` choices with a message."""
    choices = data.get("choices") or []
    if len(choices) != n or not all(isinstance(c, Mapping) and isinstance(c.get("message"), Mapping) for c in choices):
        return None, f"asked for n={n} choices in one request, got {len(choices)} usable ones"
    return {**data, "choices": sorted(choices, key=lambda c: c.get("index", 0))}, None


def fill_record(rec: AnswerRecord, data: Mapping[str, Any], index: int = 0, of: int = 1) -> None:
    """Fill ``rec`` from choice ``index`` of ``of``; usage is shared: completion tokens split evenly."""
    choice = data["choices"][index]
    message = choice["message"]
    content = message.get("content") or ""
    reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
    rec.response, rec.reasoning = split_reasoning(content, reasoning)
    rec.finish_reason = choice.get("finish_reason")
    prompt, completion = usage_tokens(data)
    rec.completion_tokens = completion // of + (index < completion % of)
    rec.prompt_tokens = prompt if prompt is not None else rec.prompt_tokens
