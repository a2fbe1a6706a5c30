"""Per-model reasoning settings: parse and validate the ``reasoning:`` block and ``extra_body``.

A run config may carry a top-level ``reasoning:`` block (the default for every model) and one per model (overriding
it key by key; ``template_kwargs`` merge key by key, the model's winning; an explicit ``null`` clears a default)::

    reasoning:
      parser: qwen3            # vLLM --reasoning-parser of a managed server, or "auto" (``auto.pick_parser``)
      template_kwargs: {enable_thinking: true}   # sent as chat_template_kwargs
      effort: high             # low | medium | high: API models that take a reasoning effort
      budget: 8192             # thinking tokens at most; then the answer is forced (``forced.py``)
      answer_tokens: 1024      # tokens for the final answer after a forced stop
      grade_reasoning_tail: false   # grade the reasoning's last part when the content is empty
      budget_by: auto          # engine (vLLM's thinking_token_budget) | client (two phases) | auto: engine if it has it
    extra_body: {...}          # per model: passed through to the endpoint as is

Contract:

* ``parse_reasoning(raw, where, max_tokens, context, default=...)`` is pure apart from reading which parsers the
  installed vLLM registers (``installed_parsers``; a seam: ``parsers=``). Every problem raises ``ConfigError`` with
  one line ``<where>.<key>: <problem>; <fix>`` naming the value: unknown keys (with a did-you-mean), an unknown parser
  (listing the known ones), a budget not smaller than ``max_tokens`` or the context, ``answer_tokens`` out of bounds,
  an effort outside low|medium|high, a parser or effort where the model cannot use it.
* ``answer_tokens`` left out is ``min(DEFAULT_ANSWER_TOKENS, max_tokens - budget)``: a forced answer never takes more
  than ``max_tokens`` in all (thinking ``budget`` + answer ``answer_tokens``); set explicitly it must fit there.
* ``parse_extra_body`` refuses keys the client sets itself and keys that a reasoning setting owns (naming it).
* ``ReasoningSettings.hash_fields()`` is what enters the settings hash: ``{}`` for a model without any, so the hashes
  of existing series do not move; ``grade_reasoning_tail`` is left out (it changes grading, not the answers asked).
* ``request_fields(settings, api_type, extra_body)`` is what a request adds to its body for those settings.
* ``budget_by`` is resolved here: ``engine`` where the model is managed, has a parser and the installed vLLM has
  ``thinking_token_budget`` (``engine_has_budget``), else ``client``; ``None`` without a budget. It stays out of the
  hash: both ways give the same tokens (``ask.BudgetAsker.ask_engine(exact=True)``).
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import re
from collections.abc import Collection, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..contract import ANSWER_LEAD as ANSWER_LEAD
from ..contract import DEFAULT_ANSWER_TOKENS as DEFAULT_ANSWER_TOKENS
from ..contract import ReasoningSettings as ReasoningSettings
from ..errors import ConfigError

AUTO = "auto"
EFFORTS = ("low", "medium", "high")
REASONING_KEYS = frozenset(
    {"parser", "template_kwargs", "effort", "budget", "answer_tokens", "grade_reasoning_tail", "budget_by"}
)
BUDGET_BY = ("auto", "engine", "client")  # who forces the answer at the budget (``budget_by``)
# parsers of vLLM 0.32 (vllm/reasoning/__init__.py), used when no vLLM is importable here
BUILTIN_PARSERS = (
    "cohere_command3", "cohere_command4", "deepseek_r1", "deepseek_v3", "deepseek_v4", "deepseek_v41", "ernie45",
    "gemma4", "glm45", "glm47", "granite", "granite_thinking_parser", "hf", "holo2", "hunyuan_a13b", "hy_v3", "hy_v4",
    "inkling", "k2_horizon", "kimi_k2", "kimi_k3", "ling3", "mimo", "minicpmv", "minimax_m2",
    "minimax_m2_append_think", "minimax_m3", "mistral", "muse_glimmer", "nemotron_v3", "olmo3", "openai_gptoss",
    "plamo3", "poolside_v1", "qwen3", "seed_oss", "step3", "step3p5",
)  # fmt: skip
# body keys the client sets itself: extra_body may not carry them
CLIENT_KEYS = {
    "model": "the model block's model_name",
    "messages": "the dataset and system_prompt",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "n": "samples",
    "stream": "nothing (the client streams API answers itself)",
    "stream_options": "nothing (the client streams API answers itself)",
}
# body keys a reasoning setting writes
OWNED_KEYS = {
    "chat_template_kwargs": "reasoning.template_kwargs",
    "reasoning": "reasoning.effort",
    "reasoning_effort": "reasoning.effort",
    "thinking_token_budget": "reasoning.budget",
}
EFFORT_API_TYPES = ("openai", "openrouter")


def parse_reasoning(
    raw: Mapping[str, Any] | None,
    where: str,
    max_tokens: int,
    context: int | None,
    *,
    default: Mapping[str, Any] | None = None,
    default_where: str = "reasoning",
    managed: bool | None = None,
    api_type: str = "openai",
    parsers: Collection[str] | None = None,
    extra_body: Mapping[str, Any] | None = None,
) -> ReasoningSettings:
    """Validate one model's ``reasoning`` block over the top-level ``default``; ``ConfigError`` on the first problem.

    ``where``/``default_where`` prefix the field paths in messages (``"<file>: <model>.reasoning"``); ``managed``
    None means unknown (parser and effort are then not checked against the kind of model). ``extra_body`` is the
    model's block, checked by ``parse_extra_body`` under ``where`` without its ``.reasoning``.
    """
    fields = _Layers(raw, where, default, default_where)
    parser = _parser(fields, managed, parsers)
    effort = _effort(fields, managed, api_type)
    budget = _budget(fields, max_tokens, context)
    return ReasoningSettings(
        parser=parser,
        template_kwargs=_template_kwargs(fields),
        effort=effort,
        budget=budget,
        answer_tokens=_answer_tokens(fields, budget, max_tokens, context),
        grade_reasoning_tail=_flag(fields, "grade_reasoning_tail"),
        budget_by=_budget_by(fields, budget, parser, managed),
        extra_body=parse_extra_body(extra_body, where.removesuffix(".reasoning") + ".extra_body"),
    )


def parse_extra_body(raw: Any, where: str) -> dict[str, Any]:
    """A model's ``extra_body``: a JSON mapping without keys the client or a reasoning setting writes."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
        raise ConfigError(f"{where}: expected a mapping of request fields, got {_kind(raw)}; e.g. {{top_k: 20}}")
    for key in raw:
        if key in CLIENT_KEYS:
            raise ConfigError(f"{where}.{key}: the client sets this field itself; set it through {CLIENT_KEYS[key]}")
        if key in OWNED_KEYS:
            raise ConfigError(f"{where}.{key}: a reasoning setting writes this field; use {OWNED_KEYS[key]} instead")
    try:
        json.dumps(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: not JSON ({exc}); use strings, numbers, booleans, lists and mappings") from None
    return dict(raw)


def request_fields(settings: ReasoningSettings, api_type: str, *, engine_budget: bool = False) -> dict[str, Any]:
    """The body fields a chat request adds for ``settings`` (``extra_body`` last, as is).

    ``engine_budget``: ask vLLM's own ``thinking_token_budget`` (``forced.engine_request``) instead of the client's
    two-phase budget.
    """
    body: dict[str, Any] = {}
    if settings.template_kwargs:
        body["chat_template_kwargs"] = dict(settings.template_kwargs)
    if settings.effort is not None:
        if api_type == "openrouter":
            body["reasoning"] = {"effort": settings.effort}
        else:
            body["reasoning_effort"] = settings.effort
    if engine_budget and settings.budget is not None:
        body["thinking_token_budget"] = settings.budget
    return {**body, **settings.extra_body}


@lru_cache(maxsize=1)
def installed_parsers() -> tuple[str, ...]:
    """The reasoning parser names the vLLM importable here registers, read from its source without importing it
    (importing vLLM takes seconds); ``BUILTIN_PARSERS`` when there is none or its registry cannot be read."""
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        return BUILTIN_PARSERS
    folder = Path(next(iter(spec.submodule_search_locations))) / "reasoning"
    names = _registry_names(folder / "__init__.py") | _decorated_names(folder)
    return tuple(sorted(names)) or BUILTIN_PARSERS


def _registry_names(init: Path) -> set[str]:
    """Keys of ``_REASONING_PARSERS_TO_REGISTER = {...}`` (vLLM >= 0.11's lazy registry)."""
    try:
        tree = ast.parse(init.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            if any(isinstance(t, ast.Name) and t.id == "_REASONING_PARSERS_TO_REGISTER" for t in node.targets):
                return {k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return set()


_DECORATOR = re.compile(r"register_module\(\s*\[?\s*([^)\]]*)")


def _decorated_names(folder: Path) -> set[str]:
    """Names given to ``@ReasoningParserManager.register_module(...)`` (older vLLM)."""
    names: set[str] = set()
    for path in folder.glob("*.py") if folder.is_dir() else ():
        for match in _DECORATOR.finditer(path.read_text(encoding="utf-8", errors="replace")):
            names |= set(re.findall(r"[\"']([\w.-]+)[\"']", match.group(1)))
    return names


class _Layers:
    """The model block over the top-level default: ``get`` answers (value, field path) of the layer that set it."""

    def __init__(self, raw: Any, where: str, default: Any, default_where: str) -> None:
        self.layers = [(self._block(default, default_where), default_where), (self._block(raw, where), where)]
        self.where = where

    @staticmethod
    def _block(raw: Any, where: str) -> Mapping[str, Any]:
        if raw is None:
            return {}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {_kind(raw)}; e.g. reasoning: {{parser: qwen3}}")
        for key in raw:
            if key not in REASONING_KEYS:
                close = difflib.get_close_matches(str(key), sorted(REASONING_KEYS), n=1, cutoff=0.6)
                fix = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(sorted(REASONING_KEYS))}"
                raise ConfigError(f"{where}.{key}: unknown key; {fix}")
        return raw

    def get(self, key: str) -> tuple[Any, str]:
        value, where = None, f"{self.where}.{key}"
        for block, prefix in self.layers:
            if key in block:
                value, where = block[key], f"{prefix}.{key}"
        return value, where

    def merged(self, key: str) -> tuple[dict[str, Any], str]:
        out: dict[str, Any] = {}
        where = f"{self.where}.{key}"
        for block, prefix in self.layers:
            value = block.get(key)
            if key in block and value is None:
                out = {}
            elif value is not None:
                if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                    raise ConfigError(
                        f"{prefix}.{key}: expected a mapping of template variables, got {_kind(value)}; "
                        "e.g. {enable_thinking: true}"
                    )
                out.update(value)
                where = f"{prefix}.{key}"
        return out, where


def _parser(fields: _Layers, managed: bool | None, parsers: Collection[str] | None) -> str | None:
    value, where = fields.get("parser")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a parser name, got {value!r:.60}; e.g. parser: qwen3 (or auto)")
    if managed is False:
        raise ConfigError(
            f"{where}: {value!r} is set for an API model; a reasoning parser is a flag of a managed vLLM server: "
            "remove it (the API returns reasoning apart by itself)"
        )
    known = tuple(parsers) if parsers is not None else installed_parsers()
    if value != AUTO and value not in known:
        close = difflib.get_close_matches(value, known, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"{where}: unknown reasoning parser {value!r}; {hint}use auto or one the installed vLLM knows: "
            + ", ".join(sorted(known))
        )
    return value


def _effort(fields: _Layers, managed: bool | None, api_type: str) -> str | None:
    value, where = fields.get("effort")
    if value is None:
        return None
    if value not in EFFORTS:
        raise ConfigError(f"{where}: unknown effort {value!r:.60}; use one of {', '.join(EFFORTS)}")
    if managed is False and api_type not in EFFORT_API_TYPES:
        raise ConfigError(
            f"{where}: {api_type} takes no reasoning effort; remove it (it applies to {' and '.join(EFFORT_API_TYPES)})"
        )
    return value


def _budget(fields: _Layers, max_tokens: int, context: int | None) -> int | None:
    value, where = fields.get("budget")
    if value is None:
        return None
    _whole(value, where, "a number of thinking tokens such as 8192")
    if value < 1:
        raise ConfigError(f"{where}: {value} is out of range; use at least 1 thinking token, or null for no budget")
    if value >= max_tokens:
        raise ConfigError(
            f"{where}: {value} is not smaller than max_tokens {max_tokens}, so it never applies; "
            f"lower the budget or raise max_tokens to at least budget + answer_tokens ({value + DEFAULT_ANSWER_TOKENS})"
        )
    if context is not None and value >= context:
        raise ConfigError(
            f"{where}: {value} is not smaller than the context ({context} tokens), so the answer never fits; "
            "lower the budget or raise the server's max_model_len"
        )
    return value


def _answer_tokens(fields: _Layers, budget: int | None, max_tokens: int, context: int | None) -> int:
    value, where = fields.get("answer_tokens")
    room = max_tokens - budget if budget is not None else max_tokens
    if value is None:
        return min(DEFAULT_ANSWER_TOKENS, room)
    _whole(value, where, "a number of answer tokens such as 1024")
    if value < 1:
        raise ConfigError(f"{where}: {value} is out of range; use at least 1 token for the final answer")
    if value > room:
        raise ConfigError(
            f"{where}: {value} does not fit max_tokens {max_tokens} after a budget of {budget} thinking tokens; "
            f"use at most {room}, or raise max_tokens to {budget + value}"
        )
    if context is not None and budget is not None and budget + value >= context:
        raise ConfigError(
            f"{where}: budget {budget} + {value} answer tokens leave no room for the prompt in the context "
            f"({context} tokens); lower them or raise the server's max_model_len"
        )
    return value


def _budget_by(fields: _Layers, budget: int | None, parser: str | None, managed: bool | None) -> str | None:
    value, where = fields.get("budget_by")
    if value is not None and value not in BUDGET_BY:
        raise ConfigError(f"{where}: unknown value {value!r:.60}; use one of {', '.join(BUDGET_BY)}")
    if budget is None:
        return None
    engine = managed is not False and parser is not None and engine_has_budget()
    if value == "engine" and not engine:
        why = "no reasoning.parser is set" if parser is None else "the installed vLLM has no thinking_token_budget"
        raise ConfigError(f"{where}: engine, but {why}; use budget_by: client (or auto)")
    if value == "client" or not engine:
        return "client"
    return "engine"


@lru_cache(maxsize=1)
def engine_has_budget() -> bool:
    """Whether the vLLM importable here takes ``thinking_token_budget`` with ``--reasoning-config`` (read from its
    source without importing it, as ``installed_parsers``)."""
    spec = importlib.util.find_spec("vllm")
    if spec is None or not spec.submodule_search_locations:
        return False
    root = Path(next(iter(spec.submodule_search_locations)))
    try:
        args = (root / "engine" / "arg_utils.py").read_text(encoding="utf-8", errors="replace")
        params = (root / "sampling_params.py").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "--reasoning-config" in args and "thinking_token_budget" in params


def _template_kwargs(fields: _Layers) -> dict[str, Any]:
    value, where = fields.merged("template_kwargs")
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: not JSON ({exc}); use strings, numbers, booleans, lists and mappings") from None
    return value


def _flag(fields: _Layers, key: str) -> bool:
    value, where = fields.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r:.60}; write true or false")
    return value


def _whole(value: Any, where: str, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected a whole number, got {value!r:.60}; write {example}")


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )
