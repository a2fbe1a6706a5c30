"""Reasoning in the chat client: request fields, thinking counted, a budget that still answers, nothing lost.

``Reasoning`` (a ``ChatClient`` keyword) is what the client knows of a model's reasoning:

* ``settings`` (``contract.ReasoningSettings``): ``request_fields`` go into every chat request (template kwargs as
  ``chat_template_kwargs``, ``effort`` in the API's dialect, ``extra_body``).
* ``tags``: the thinking tags of a managed server's parser (``reasoning.auto.tags_for``); with them the server is
  asked for its token ids (``return_token_ids``) and each answer's thinking is counted from them exactly
  (``BudgetAsker.counts``); without them (an API) ``usage.completion_tokens_details.reasoning_tokens`` is read.
* ``way``: how a ``settings.budget`` is kept on a managed server (``BudgetWay``): ``ENGINE``, one request with vLLM's
  own ``thinking_token_budget`` (``BudgetAsker.ask_engine(exact=True)``, the server started with its flags), or
  ``CLIENT``, two phases (``BudgetAsker.ask``: a chat cut at the budget, then the forced answer through
  ``/v1/completions``). Both give the same tokens (tests/e2e/test_reasoning_vllm.py); the engine's is one request.

``mark(rec, settings)`` records what "nothing lost" needs on every answer: ``answer_in_reasoning`` (content empty,
the reasoning's last part states an answer) and ``graded_tail`` (``grade_reasoning_tail``: that part is graded).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..contract import AnswerRecord, ReasoningSettings
from ..reasoning.ask import BudgetAsker
from ..reasoning.forced import BudgetedAnswer, ThinkTags, answer_like, reasoning_tail
from ..reasoning.settings import request_fields


class BudgetWay(StrEnum):
    """How a thinking budget is kept."""

    NONE = "none"  # no budget (or an API model: its effort and max_tokens bound it)
    ENGINE = "engine"  # vLLM's own thinking_token_budget: one request
    CLIENT = "client"  # two phases: the chat cut at the budget, the answer forced through /v1/completions


@dataclass(frozen=True)
class Reasoning:
    """A model's reasoning as its client asks it (see the module docstring)."""

    settings: ReasoningSettings = field(default_factory=ReasoningSettings)
    api_type: str = "openai"
    tags: ThinkTags | None = None
    way: BudgetWay = BudgetWay.NONE

    @classmethod
    def of(cls, settings: ReasoningSettings, api_type: str, tags: ThinkTags | None, engine: bool) -> Reasoning:
        """The client's view for a model: a budget is kept only where tags are known (a managed server's parser),
        by the engine where the server was started with its budget flags (``ServerSpec.engine_budget``)."""
        if settings.budget is None or tags is None:
            way = BudgetWay.NONE
        else:
            way = BudgetWay.ENGINE if engine else BudgetWay.CLIENT
        return cls(settings=settings, api_type=api_type, tags=tags, way=way)

    def fields(self) -> dict[str, Any]:
        """What every chat request adds (``settings.request_fields``; the token ids where thinking is counted)."""
        ids = {"return_token_ids": True} if self.tags is not None else {}
        return {**request_fields(self.settings, self.api_type), **ids}


def ask_budgeted(
    asker: BudgetAsker,
    reasoning: Reasoning,
    messages: list[dict],
    max_tokens: int,
    sampling: Mapping[str, Any],
    chat_fields: Mapping[str, Any],
) -> BudgetedAnswer:
    """One answer within ``settings.budget`` thinking tokens and ``answer_tokens`` after them, the way ``way`` says.

    ``max_tokens`` (what the context leaves) bounds both: a budget that no longer fits with its answer shrinks."""
    s = reasoning.settings
    assert s.budget is not None
    budget = max(1, min(s.budget, max_tokens - s.answer_tokens))
    fields = {k: v for k, v in chat_fields.items() if k != "return_token_ids"}
    if reasoning.way is BudgetWay.ENGINE:
        return asker.ask_engine(
            messages, budget=budget, answer_tokens=s.answer_tokens, sampling=sampling, chat_fields=fields, exact=True
        )
    return asker.ask(
        messages, max_tokens, budget=budget, answer_tokens=s.answer_tokens, sampling=sampling, chat_fields=fields
    )


def fill_budgeted(rec: AnswerRecord, answer: BudgetedAnswer) -> None:
    """``rec`` from an answer asked with a budget (the response without the blank lines the engine's forced lead
    starts with, so both ways store the same text)."""
    rec.response, rec.reasoning, rec.finish_reason = answer.content.lstrip(), answer.reasoning, answer.finish_reason
    rec.completion_tokens = answer.completion_tokens
    rec.reasoning_tokens, rec.answer_tokens, rec.forced = answer.reasoning_tokens, answer.answer_tokens, answer.forced
    rec.prompt_tokens = answer.prompt_tokens or rec.prompt_tokens


def count_thinking(rec: AnswerRecord, data: Mapping[str, Any], index: int, of: int, asker: BudgetAsker | None) -> None:
    """``reasoning_tokens`` / ``answer_tokens`` of choice ``index`` of ``of``: from the server's token ids with the
    parser's tags (``asker``), else the API's ``completion_tokens_details.reasoning_tokens`` (split like usage)."""
    choice = data["choices"][index]
    prompt_ids, output_ids = data.get("prompt_token_ids"), choice.get("token_ids")
    if asker is not None and isinstance(prompt_ids, list) and isinstance(output_ids, list):
        rec.reasoning_tokens, rec.answer_tokens = asker.counts(prompt_ids, output_ids)
        return
    details = (data.get("usage") or {}).get("completion_tokens_details") or {}
    thought = int(details.get("reasoning_tokens") or 0)
    rec.reasoning_tokens = thought // of + (index < thought % of)
    rec.answer_tokens = max(0, rec.completion_tokens - rec.reasoning_tokens)


def mark(rec: AnswerRecord, settings: ReasoningSettings) -> None:
    """``answer_in_reasoning`` and ``graded_tail`` of an answer (module docstring)."""
    rec.answer_in_reasoning = not rec.response.strip() and answer_like(reasoning_tail(rec.reasoning))
    rec.graded_tail = rec.answer_in_reasoning and settings.grade_reasoning_tail
