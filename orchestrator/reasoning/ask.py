"""Ask with a thinking budget over HTTP (``requests``): the client's two phases, or vLLM's own budget.

``BudgetAsker(api_base, model)`` talks to one OpenAI-compatible endpoint (``api_base`` ends in ``/v1`` as the
``Endpoint``'s does; vLLM's ``/tokenize`` is taken from the root without it):

* ``ask(messages, max_tokens, budget=None, answer_tokens=...)``: no budget is one chat completion (any endpoint:
  an API's ``reasoning`` / ``reasoning_content`` is read too). With a budget, a managed vLLM server:
  phase 1 is a chat completion with ``max_tokens=budget`` and ``return_token_ids``; if it stopped at that limit,
  phase 2 is a ``/v1/completions`` continuation of the same token sequence (``forced.continuation_ids``):
  - thinking still open: closed with the end tag and the answer lead, ``max_tokens=answer_tokens`` (``FORCED``);
  - thinking closed (or off): the cut answer goes on with the rest of ``max_tokens`` (``CONTINUED``).
  An answer so never takes more than ``budget + answer_tokens`` tokens when forced, nor ``max_tokens`` otherwise.
* ``ask_engine(messages, budget, answer_tokens, exact=)``: one chat completion with vLLM's ``thinking_token_budget`` (a
  top-level request field of vLLM >= 0.11 with ``--reasoning-parser``; ``engine_launch_args`` gives the server flags
  that make it force ``closing_text`` -- tag and lead -- at the budget) and ``max_tokens = budget + closing +
  answer_tokens``.

``post`` (a seam): how a request travels, ``(url, body) -> reply JSON``; the chat client passes its own (retries,
a managed server's liveness watch). ``counts`` and ``tag_ids`` serve a client that counts thinking tokens itself.
``token_ids=False`` for an API (OpenAI refuses fields it does not know, such as vLLM's ``return_token_ids``): its
answers are single requests, the budget left to ``effort`` or the API's own limits.
``chat_fields`` (``settings.request_fields``) go to chat requests only; ``sampling`` (temperature, top_p, seed) to
both phases. A non-2xx reply raises ``EndpointError`` naming the path and the server's message (no retries here:
the caller's client owns retries).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests

from ..contract import public_url
from ..errors import EndpointError
from .forced import (
    THINK,
    BudgetedAnswer,
    Ending,
    ThinkTags,
    closing_text,
    continuation_ids,
    find_last,
    reasoning_tokens,
    split_reasoning,
    thinking_open,
)
from .forced import engine_launch_args as engine_launch_args
from .settings import ANSWER_LEAD

TIMEOUT = 600.0


Poster = Callable[[str, Mapping[str, Any]], Mapping[str, Any]]  # (url, body) -> the reply's JSON; raises on failure


class BudgetAsker:
    """Asks one model on one server; thread-safe (the tokenised tags are fetched once, under a lock)."""

    def __init__(
        self,
        api_base: str,
        model: str,
        *,
        session: requests.Session | None = None,
        headers: Mapping[str, str] | None = None,
        tags: ThinkTags = THINK,
        lead: str = ANSWER_LEAD,
        timeout: float = TIMEOUT,
        token_ids: bool = True,
        post: Poster | None = None,
    ) -> None:
        self.api_base, self.model = api_base.rstrip("/"), model
        self.root = self.api_base.removesuffix("/v1")
        self.session = session or requests.Session()
        self.headers = dict(headers or {})
        self.tags, self.lead, self.timeout = tags, lead, timeout
        self._ids: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._ids_field = {"return_token_ids": True} if token_ids else {}
        self.post: Poster = post or self._post
        self._offsets: dict[str, int] = {}

    def ask(
        self,
        messages: Sequence[Mapping[str, Any]],
        max_tokens: int,
        *,
        budget: int | None = None,
        answer_tokens: int = 1024,
        sampling: Mapping[str, Any] | None = None,
        chat_fields: Mapping[str, Any] | None = None,
    ) -> BudgetedAnswer:
        """One answer; with ``budget``, thinking past it is closed and the answer asked (module docstring)."""
        sampling = dict(sampling or {})
        limit = budget if budget is not None else max_tokens
        body = {**(chat_fields or {}), **sampling, "model": self.model, "messages": list(messages)}
        data = self.post(self.api_base + "/chat/completions", {**body, "max_tokens": limit, **self._ids_field})
        first = _reply(data)
        if budget is None or first["finish"] != "length" or first["output_ids"] is None:
            return self._single(first)
        start, end, closing = self.tag_ids()
        ids = [*first["prompt_ids"], *first["output_ids"]]
        if thinking_open(ids, start, end):
            cont = continuation_ids(first["prompt_ids"], first["output_ids"], closing)
            second = self._complete(cont, answer_tokens, sampling)
            # with no parser on the server the thinking is in the content: split it off as the client does
            whole = first["content"] + closing_text(self.tags, self.lead) + second["text"]
            content, reasoning = split_reasoning(whole, first["reasoning"])
            return self._joined(first, second, content, reasoning, Ending.FORCED)
        room = max_tokens - len(first["output_ids"])
        if room <= 0:
            return self._single(first)
        second = self._complete(continuation_ids(first["prompt_ids"], first["output_ids"]), room, sampling)
        if first["content"]:
            return self._joined(first, second, first["content"] + second["text"], first["reasoning"], Ending.CONTINUED)
        return self._joined(first, second, "", first["reasoning"] + second["text"], Ending.CONTINUED)

    def ask_engine(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        budget: int,
        answer_tokens: int,
        sampling: Mapping[str, Any] | None = None,
        chat_fields: Mapping[str, Any] | None = None,
        exact: bool = False,
    ) -> BudgetedAnswer:
        """One answer with vLLM's own ``thinking_token_budget`` (the server started with ``engine_launch_args``).

        vLLM counts the thinking tokens a template's generation prompt writes after its start tag (a ``\\n``) against
        the budget; ``exact`` adds them (``prompt_offset``), so the model generates ``budget`` thinking tokens as
        with ``ask``."""
        _, _, closing = self.tag_ids()
        offset = self.prompt_offset(chat_fields) if exact else 0
        body = {**(chat_fields or {}), **(sampling or {}), "model": self.model, "messages": list(messages)}
        body.update(max_tokens=budget + len(closing) + answer_tokens, thinking_token_budget=budget + offset)
        reply = _reply(self.post(self.api_base + "/chat/completions", {**body, "return_token_ids": True}))
        answer = self._single(reply)
        start, end, _ = self.tag_ids()
        prompt_think = _think_in_prompt(reply["prompt_ids"] or [], start, end)
        forced = prompt_think + answer.reasoning_tokens >= budget + offset and answer.answer_tokens > 0
        return BudgetedAnswer(
            content=answer.content,
            reasoning=answer.reasoning,
            finish_reason=answer.finish_reason,
            reasoning_tokens=answer.reasoning_tokens,
            answer_tokens=answer.answer_tokens,
            prompt_tokens=answer.prompt_tokens,
            ending=Ending.FORCED if forced else Ending.NATURAL,
        )

    # -- helpers --------------------------------------------------------------------------------------------------
    def _single(self, reply: dict[str, Any]) -> BudgetedAnswer:
        if reply["output_ids"] is not None and reply["prompt_ids"] is not None:
            thought, after = self.counts(reply["prompt_ids"], reply["output_ids"])
        else:  # an API: its own count where it gives one
            thought = reply["reported_reasoning"]
            after = reply["completion_tokens"] - thought
        return BudgetedAnswer(
            content=reply["content"],
            reasoning=reply["reasoning"],
            finish_reason=reply["finish"],
            reasoning_tokens=thought,
            answer_tokens=max(0, after),
            prompt_tokens=reply["prompt_tokens"],
        )

    def _joined(
        self, first: dict[str, Any], second: dict[str, Any], content: str, reasoning: str, ending: Ending
    ) -> BudgetedAnswer:
        thought, after = self.counts(first["prompt_ids"], first["output_ids"])
        return BudgetedAnswer(
            content=content,
            reasoning=reasoning,
            finish_reason=second["finish"],
            reasoning_tokens=thought,
            answer_tokens=(after if ending is Ending.CONTINUED else 0) + second["completion_tokens"],
            prompt_tokens=first["prompt_tokens"],
            ending=ending,
            requests=2,
        )

    def counts(self, prompt_ids: Sequence[int], output_ids: Sequence[int]) -> tuple[int, int]:
        """(thinking tokens, tokens after the thinking block's end tag) of one generation."""
        start, end, _ = self.tag_ids()
        thought = reasoning_tokens(prompt_ids, output_ids, start, end)
        closed = find_last(output_ids, end) >= 0
        return thought, max(0, len(output_ids) - thought - (len(end) if closed else 0))

    def _complete(self, prompt: list[int], max_tokens: int, sampling: Mapping[str, Any]) -> dict[str, Any]:
        body = {**sampling, "model": self.model, "prompt": prompt, "max_tokens": max_tokens, "return_token_ids": True}
        data = self.post(self.api_base + "/completions", body)
        choice = (data.get("choices") or [{}])[0]
        usage = data.get("usage") or {}
        return {
            "text": str(choice.get("text") or ""),
            "finish": choice.get("finish_reason"),
            "output_ids": choice.get("token_ids"),
            "completion_tokens": int(usage.get("completion_tokens") or len(choice.get("token_ids") or [])),
        }

    def prompt_offset(self, chat_fields: Mapping[str, Any] | None = None) -> int:
        """Thinking tokens the chat template writes after an open start tag in its generation prompt (``0`` when it
        opens none), from ``/tokenize`` of a one-message chat with ``chat_fields``' template kwargs; once per kwargs."""
        kwargs = dict((chat_fields or {}).get("chat_template_kwargs") or {})
        key = json.dumps(kwargs, sort_keys=True)
        if key not in self._offsets:
            start, end, _ = self.tag_ids()
            body = {"model": self.model, "messages": [{"role": "user", "content": "?"}], "add_generation_prompt": True}
            data = self.post(self.root + "/tokenize", {**body, **({"chat_template_kwargs": kwargs} if kwargs else {})})
            ids = [int(t) for t in data.get("tokens") or []]
            with self._lock:
                self._offsets[key] = _think_in_prompt(ids, start, end)
        return self._offsets[key]

    def tag_ids(self) -> tuple[list[int], list[int], list[int]]:
        with self._lock:
            for text in (self.tags.start, self.tags.end, closing_text(self.tags, self.lead)):
                if text not in self._ids:
                    self._ids[text] = self._tokenize(text)
            return (
                self._ids[self.tags.start],
                self._ids[self.tags.end],
                self._ids[closing_text(self.tags, self.lead)],
            )

    def _tokenize(self, text: str) -> list[int]:
        data = self.post(self.root + "/tokenize", {"model": self.model, "prompt": text, "add_special_tokens": False})
        return [int(t) for t in data.get("tokens") or []]

    def _post(self, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
        path = url.removeprefix(self.root)
        try:
            reply = self.session.post(url, json=body, headers=self.headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise EndpointError(
                f"POST {path}: {type(exc).__name__}; is the server at {public_url(self.root)} up?"
            ) from None
        if not reply.ok:
            raise EndpointError(f"POST {path}: HTTP {reply.status_code}: {_message(reply)}")
        return reply.json()


def _reply(data: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a chat completion this module uses (vLLM's token ids when it returned them)."""
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    usage = data.get("usage") or {}
    details = usage.get("completion_tokens_details") or {}
    return {
        "content": str(message.get("content") or ""),
        "reasoning": str(message.get("reasoning_content") or message.get("reasoning") or ""),
        "finish": choice.get("finish_reason"),
        "prompt_ids": data.get("prompt_token_ids"),
        "output_ids": choice.get("token_ids"),
        "prompt_tokens": int(usage.get("prompt_tokens") or 0),
        "completion_tokens": int(usage.get("completion_tokens") or 0),
        "reported_reasoning": int(details.get("reasoning_tokens") or 0),
    }


def _think_in_prompt(prompt_ids: Sequence[int], start: Sequence[int], end: Sequence[int]) -> int:
    """Thinking tokens already in the prompt after an open start tag (vLLM's budget counts them)."""
    if not thinking_open(prompt_ids, start, end):
        return 0
    return len(prompt_ids) - find_last(prompt_ids, start) - len(start)


def _message(reply: requests.Response) -> str:
    try:
        body = reply.json()
    except ValueError:
        return reply.text[:200]
    err = body.get("error") if isinstance(body, Mapping) else None
    text = err.get("message") if isinstance(err, Mapping) else err or (body.get("message") if body else "")
    return " ".join(str(text or body).split())[:200]
