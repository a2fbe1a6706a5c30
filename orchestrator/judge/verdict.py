"""The judge's reply, read strictly, and the record kept of it.

``read_reply`` accepts exactly one JSON object ``{"verdict": "correct" | "incorrect", "reason": str}`` -- the whole
reply, or the whole reply inside one Markdown code fence, as API models that ignore ``response_format`` write it.
Anything else (prose, a second object, another verdict word, extra keys) is ``unparsed``: recorded, never raised.

``judge_hash`` names what was judged: the prompt version, the judge model and the answer (task, reference,
response). A regrade changes none of them, so it keeps the judge's verdicts; a new response or judge asks again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..contract import JudgeVerdict
from .prompt import PROMPT_VERSION

__all__ = ["JudgeRecord", "JudgeReply", "JudgeVerdict", "judge_hash", "read_reply"]

REASON_CHARS = 400
_FENCE = re.compile(r"\A```(?:json)?\s*\n?(.*?)\n?```\Z", re.S)


@dataclass(frozen=True)
class JudgeReply:
    verdict: JudgeVerdict
    reason: str


@dataclass(frozen=True)
class JudgeRecord:
    """One judged answer: its key in the series, and what the judge said (a details line's ``judge`` field)."""

    key: str
    model: str
    verdict: JudgeVerdict
    reason: str
    hash: str

    def field(self) -> dict[str, str]:
        """The ``judge`` field of the answer's details line."""
        return {"model": self.model, "verdict": self.verdict.value, "reason": self.reason, "hash": self.hash}

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, **self.field()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JudgeRecord | None:
        """The record of a checkpoint line, or None for a line that is not one."""
        try:
            return cls(
                key=str(data["key"]),
                model=str(data["model"]),
                verdict=JudgeVerdict(data["verdict"]),
                reason=str(data.get("reason", "")),
                hash=str(data["hash"]),
            )
        except (KeyError, ValueError, TypeError):
            return None


def read_reply(text: str | None) -> JudgeReply:
    """The verdict and reason of a judge's reply; ``UNPARSED`` (with the reply's start as reason) when it is not
    exactly the JSON object asked for."""
    body = (text or "").strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        data = json.loads(body)
    except ValueError:
        return _unparsed(text)
    if not isinstance(data, dict) or set(data) - {"verdict", "reason"}:
        return _unparsed(text)
    reason = data.get("reason", "")
    try:
        verdict = JudgeVerdict(data.get("verdict"))
    except ValueError:
        return _unparsed(text)
    if verdict is JudgeVerdict.UNPARSED or not isinstance(reason, str):
        return _unparsed(text)
    return JudgeReply(verdict, reason.strip()[:REASON_CHARS])


def _unparsed(text: str | None) -> JudgeReply:
    shown = " ".join((text or "").split())[:120]
    return JudgeReply(JudgeVerdict.UNPARSED, f"reply not the JSON asked for: {shown!r}")


def judge_hash(judge_model: str, task: str, reference: str, response: str) -> str:
    """What a judge verdict was given for (see the module docstring); 16 hex digits."""
    payload = json.dumps([PROMPT_VERSION, judge_model, task, reference, response], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]
