"""``TokenBudget``: the ``max_tokens`` a request may ask for, given the server's context.

* No context known, or a prompt that surely fits (``prompt_bound``: every UTF-8 byte a token, plus room for the
  chat template) next to the whole budget: the budget as configured, and the prompt is not counted (no round trip).
* Otherwise the prompt is counted (the caller's ``count``: vLLM's ``POST /tokenize``). A prompt that alone fills the
  context is an error (the request is not sent); else ``max_tokens`` is cut to what the context leaves.
* A cut is logged once per model, budget and context in the whole process (``report_clamp``), not once per
  request; the chat client also reports here the cuts that a 400 "maximum context length" reply forces.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

TEMPLATE_TOKENS = 256  # what a chat template may add (role tags, a default system prompt)
_REPORTED: set[tuple[str, int, int]] = set()  # (model, max_tokens, context): "once per model", per process
_REPORTED_LOCK = threading.Lock()


class TokenBudget:
    """The budget of one model's requests against one context length (``None``: unknown, never clamped)."""

    def __init__(self, model_name: str, max_tokens: int, context_len: int | None) -> None:
        self.model_name, self.max_tokens, self.context_len = model_name, max_tokens, context_len

    def of(self, messages: list[dict], count: Callable[[], int | None]) -> tuple[int, int | None, str | None]:
        """(max_tokens to send, prompt tokens if counted, error if the prompt alone does not fit)."""
        limit = self.max_tokens
        if not self.context_len or limit + prompt_bound(messages) <= self.context_len:
            return limit, None, None
        prompt = count()
        if prompt is None:
            return limit, None, None
        if prompt >= self.context_len:
            return (
                limit,
                prompt,
                (
                    f"prompt is {prompt} tokens but the server's context is {self.context_len}; "
                    "raise vllm.max_model_len or shorten the prompt"
                ),
            )
        if self.context_len - prompt < limit:
            self.report_clamp(self.context_len - prompt, prompt)
        return min(limit, self.context_len - prompt), prompt, None

    def report_clamp(self, allowed: int, prompt: int | None) -> None:
        """Say once per model (and budget and context) that ``max_tokens`` was cut to fit the context."""
        key = (self.model_name, self.max_tokens, self.context_len or 0)
        with _REPORTED_LOCK:
            if key in _REPORTED:
                return
            _REPORTED.add(key)
        context = f"the context of {self.context_len} tokens" if self.context_len else "the server's context"
        log.warning(
            "%s: max_tokens %d does not fit %s with the prompt (%s tokens): cut to %d; answers to long "
            "prompts may be truncated (said once per model); raise vllm.max_model_len or lower max_tokens",
            self.model_name,
            self.max_tokens,
            context,
            prompt if prompt is not None else "?",
            allowed,
        )


def prompt_bound(messages: list[dict]) -> int:
    """An upper bound of the prompt's tokens: a token covers at least one UTF-8 byte, plus room for the template."""
    text = sum(len(str(m.get("content") or "").encode("utf-8")) for m in messages)
    return text + TEMPLATE_TOKENS + 8 * len(messages)
