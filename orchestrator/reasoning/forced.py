"""A thinking budget that still answers: the pure part (token sequences, counts, the typed result).

When a model has thought for ``budget`` tokens without closing its thinking, the client closes it and asks for the
final answer as a continuation of the same assistant turn through ``/v1/completions`` (``ask.py`` does the HTTP):

    prompt = prompt_ids + output_ids + closing_ids          (``continuation_ids``)

* ``prompt_ids`` and ``output_ids`` are what the server itself rendered and generated: vLLM returns them with
  ``return_token_ids: true`` (``prompt_token_ids``, ``choices[0].token_ids``). That is exact by construction, which
  neither alternative is: ``POST /tokenize`` with ``messages`` renders the same template again (a second render that
  must be given the same ``chat_template_kwargs`` and server defaults), and the tokenizer's template applied locally
  with transformers can differ from the server's (``--chat-template``, ``--default-chat-template-kwargs``, another
  transformers version); both would also re-tokenise the reasoning text, which need not give back the generated ids.
* ``closing_ids`` are the tokens of ``closing_text(tags, lead)``: the parser's end tag and an answer lead
  (``settings.ANSWER_LEAD``, "\\n\\nОтвет:"), tokenised once by the server's ``/tokenize`` (no special tokens).

Whether the thinking is still open is read from the ids (``thinking_open``): the last start tag after the last end
tag of prompt + output. A template that opens ``<think>`` in its generation prompt (DeepSeek-R1 distills, QwQ) and a
model that writes it itself (Qwen3) are the same case; a template that closed an empty block (thinking off) is not.

``answer_in_reasoning``: the content is empty and the reasoning's last part (``reasoning_tail``) holds an answer
(an ``Ответ:``/``Answer:`` marker or a ``\\boxed{}``, as the grader finds them). ``truncated``: the last request
stopped at a token limit (``finish_reason == "length"``, the same test as ``results/series.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from ..grading.cleaning import boxes
from .settings import ANSWER_LEAD

TAIL_CHARS = 2000  # the part of a reasoning looked at for an answer (and graded with grade_reasoning_tail)
_ANSWER_MARKER = re.compile(r"(?i)(?<!\w)(?:ответ|answer)\w{0,2}[ \t]*(?:\*\*|__)?[ \t]*[:：]")


@dataclass(frozen=True)
class ThinkTags:
    """The strings a reasoning parser splits on (``auto.tags_for`` gives them per parser)."""

    start: str = "<think>"
    end: str = "</think>"


THINK = ThinkTags()  # <think>...</think>: deepseek_r1, qwen3 and most parsers


class Ending(Enum):
    """How an answer asked with a budget ended."""

    NATURAL = "natural"  # finished within the budget (or cut at max_tokens with no budget asked)
    FORCED = "forced"  # thinking reached the budget: closed, and the answer asked with answer_tokens
    CONTINUED = "continued"  # thinking had closed, the answer was cut at the budget and continued to max_tokens


@dataclass(frozen=True)
class BudgetedAnswer:
    """One answer asked with (or without) a thinking budget."""

    content: str
    reasoning: str
    finish_reason: str | None
    reasoning_tokens: int  # generated inside the thinking block
    answer_tokens: int  # generated after it (with the engine's budget: the forced lead included)
    prompt_tokens: int = 0
    ending: Ending = Ending.NATURAL
    requests: int = 1

    @property
    def forced(self) -> bool:
        return self.ending is Ending.FORCED

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    @property
    def answer_in_reasoning(self) -> bool:
        return not self.content.strip() and answer_like(reasoning_tail(self.reasoning))

    @property
    def completion_tokens(self) -> int:
        return self.reasoning_tokens + self.answer_tokens


def closing_text(tags: ThinkTags = THINK, lead: str = ANSWER_LEAD) -> str:
    """What closes a thinking block at the budget: the end tag and the answer lead."""
    return tags.end + lead


def engine_launch_args(parser: str, tags: ThinkTags = THINK, lead: str = ANSWER_LEAD) -> list[str]:
    """vLLM flags for the engine's own budget: the parser, and a reasoning config that forces tag + lead."""
    config = {"reasoning_start_str": tags.start, "reasoning_end_str": closing_text(tags, lead)}
    return ["--reasoning-parser", parser, "--reasoning-config", json.dumps(config, ensure_ascii=False)]


def continuation_ids(
    prompt_ids: Sequence[int], output_ids: Sequence[int], closing_ids: Sequence[int] = ()
) -> list[int]:
    """The prompt that continues the same assistant turn: rendered prompt, what was generated, the closing."""
    return [*prompt_ids, *output_ids, *closing_ids]


def find_last(ids: Sequence[int], needle: Sequence[int]) -> int:
    """The index of the last occurrence of ``needle`` in ``ids``, -1 if none (or ``needle`` is empty)."""
    n = len(needle)
    if not n:
        return -1
    for i in range(len(ids) - n, -1, -1):
        if list(ids[i : i + n]) == list(needle):
            return i
    return -1


def thinking_open(ids: Sequence[int], start_ids: Sequence[int], end_ids: Sequence[int]) -> bool:
    """Is a thinking block open at the end of ``ids`` (its last start tag after its last end tag)?"""
    return find_last(ids, start_ids) > find_last(ids, end_ids)


def reasoning_tokens(
    prompt_ids: Sequence[int], output_ids: Sequence[int], start_ids: Sequence[int], end_ids: Sequence[int]
) -> int:
    """How many of ``output_ids`` lie inside a thinking block (opened in the prompt or in the output).

    An end tag with no start tag anywhere counts what precedes it (R1 distills that omit ``<think>``).
    vLLM's ``usage.completion_tokens_details.reasoning_tokens`` counts only blocks opened in the output: 0 for a
    template that opens ``<think>`` in its generation prompt.
    """
    open_in_prompt = thinking_open(prompt_ids, start_ids, end_ids)
    start = find_last(output_ids, start_ids)
    end = _find_first(output_ids, end_ids, max(start, 0))
    if start >= 0 and not open_in_prompt:
        first = start + len(start_ids)
        return (end if end >= 0 else len(output_ids)) - first
    if open_in_prompt or (end >= 0 and find_last(prompt_ids, start_ids) < 0):
        return end if end >= 0 else len(output_ids)
    return 0


def graded_text(response: str, reasoning: str, graded_tail: bool) -> str:
    """What the grader reads of an answer: its response, or with ``graded_tail`` (``grade_reasoning_tail`` and the
    answer in the reasoning) the reasoning's last part."""
    return reasoning_tail(reasoning) if graded_tail else response


def answer_like(text: str) -> bool:
    """Does ``text`` state an answer (an ``Ответ:``/``Answer:`` marker or a ``\\boxed{}``)?"""
    return bool(_ANSWER_MARKER.search(text)) or bool(boxes(text))


def reasoning_tail(reasoning: str, chars: int = TAIL_CHARS) -> str:
    """The last part of a reasoning: its last ``chars`` characters, from a paragraph start where there is one."""
    text = reasoning.rstrip()
    if len(text) <= chars:
        return text.strip()
    tail = text[-chars:]
    cut = tail.find("\n\n")
    return (tail[cut:] if 0 <= cut < chars // 2 else tail).strip()


def split_reasoning(content: str, reasoning: str) -> tuple[str, str]:
    """Move a ``<think>...</think>`` block left in the content (no reasoning parser on the server) into reasoning."""
    if "</think>" not in content:
        return content, reasoning
    head, _, tail = content.partition("</think>")
    head = head.strip()
    head = head[len("<think>") :].strip() if head.startswith("<think>") else head
    return tail.strip(), "\n".join(part for part in (reasoning, head) if part)


def _find_first(ids: Sequence[int], needle: Sequence[int], start: int = 0) -> int:
    n = len(needle)
    if not n:
        return -1
    for i in range(start, len(ids) - n + 1):
        if list(ids[i : i + n]) == list(needle):
            return i
    return -1
