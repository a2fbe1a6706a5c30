"""Streamed chat completions (server-sent events) for API models: slow is not dead.

An API model's answer is asked with ``"stream": true`` (and ``stream_options.include_usage``), so the read timeout
(``request_timeout``) is an inactivity limit: a long answer still arriving is never cut off, a dead or silent
endpoint still fails within it. ``read_stream(lines)`` folds the events into the body a non-streamed request would
have had (``choices[0].message`` with ``content`` and ``reasoning_content``, ``finish_reason``, ``usage``), so one
code path fills the record. A server that answers a streamed request with plain JSON is read as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DONE = "[DONE]"


class StreamError(Exception):
    """The stream carried an error event or ended before the answer was complete."""


@dataclass
class _Answer:
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Mapping[str, Any] | None = None
    chunks: int = 0

    def add(self, event: Mapping[str, Any]) -> None:
        if event.get("error"):
            raise StreamError(_error_text(event["error"]))
        if isinstance(event.get("usage"), Mapping):
            self.usage = event["usage"]
        for choice in event.get("choices") or ():
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            self.chunks += 1
            delta = choice.get("delta") or choice.get("message") or {}
            if isinstance(delta, Mapping):
                self.content.append(str(delta.get("content") or ""))
                self.reasoning.append(str(delta.get("reasoning_content") or delta.get("reasoning") or ""))
            self.finish_reason = choice.get("finish_reason") or self.finish_reason

    def body(self) -> dict[str, Any]:
        message = {"role": "assistant", "content": "".join(self.content)}
        reasoning = "".join(self.reasoning)
        if reasoning:
            message["reasoning_content"] = reasoning
        body: dict[str, Any] = {"choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}]}
        if self.usage is not None:
            body["usage"] = dict(self.usage)
        return body


def read_stream(lines: Iterable[bytes | str]) -> dict[str, Any]:
    """The completion body that the SSE ``lines`` of a streamed chat completion add up to.

    Raises ``StreamError`` on an error event, or when the stream ends with neither ``[DONE]`` nor a finish reason
    (the connection was cut mid-answer).
    """
    answer, done = _Answer(), False
    for raw in lines:
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not line.startswith("data:"):
            continue  # blank separators, ": keep-alive" comments, event: / id: fields
        data = line[5:].strip()
        if data == DONE:
            done = True
            break
        try:
            event = json.loads(data)
        except ValueError:
            continue
        if isinstance(event, Mapping):
            answer.add(event)
    if not done and answer.finish_reason is None:
        raise StreamError(f"the stream ended before the answer was complete ({answer.chunks} chunks)")
    return answer.body()


def _error_text(error: Any) -> str:
    if isinstance(error, Mapping):
        return str(error.get("message") or error)
    return str(error)
