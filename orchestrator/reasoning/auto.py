"""``parser: auto``: the vLLM ``--reasoning-parser`` for a model, read from its local folder, and why.

``pick_parser(folder, parsers=installed_parsers())`` returns ``(parser or None, why)``; ``why`` is one line for
``--dry-run``. It reads ``config.json`` (``model_type``, ``architectures``) and the chat template
(``chat_template.jinja``, ``chat_template.json`` or ``tokenizer_config.json``'s ``chat_template``, a string or a
list of named templates). Nothing is downloaded: a folder without them gives ``None`` and says so.

Order (vLLM's "Reasoning Outputs" table, docs.vllm.ai/en/stable/features/reasoning_outputs):

1. a gpt-oss harmony template (``<|channel|>``) or ``model_type: gpt_oss`` -> ``openai_gptoss``;
2. a known reasoning architecture whose template thinks (``ARCH_PARSERS``): Qwen3 -> ``qwen3``, GLM-4.5 -> ``glm45``,
   Hunyuan A13B -> ``hunyuan_a13b``, ERNIE-4.5 -> ``ernie45``, MiniMax-M2 -> ``minimax_m2_append_think``, Seed-OSS ->
   ``seed_oss``, OLMo-3 -> ``olmo3``, MiMo -> ``mimo``, Kimi K2 -> ``kimi_k2``; DeepSeek-V3 architecture with a
   ``thinking`` switch (V3.1) -> ``deepseek_v3``; Granite with a ``thinking`` switch -> ``granite``;
3. any other template with ``<think>``/``</think>`` -> ``deepseek_r1``: DeepSeek-R1 and its Qwen/Llama distills,
   QwQ-32B (vLLM lists QwQ under deepseek_r1), and the thinking variants of other families; that parser also takes
   a ``<think>`` opened by the template's generation prompt;
4. else ``None``: the model is not a reasoning model (no parser is passed).

A pick the installed vLLM does not know falls back to ``deepseek_r1`` for ``<think>`` templates, else ``None``.
``tags_for(parser)`` gives the tags the client's forced budget closes (``None``: not tag-based, no forced budget).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from .forced import THINK, ThinkTags
from .settings import installed_parsers

GENERIC = "deepseek_r1"
# model_type -> parser, for families whose templates think (vLLM's table, and the registry of vLLM 0.32)
ARCH_PARSERS = {
    "qwen3": "qwen3",
    "qwen3_moe": "qwen3",
    "qwen3_next": "qwen3",
    "glm4_moe": "glm45",
    "hunyuan_v1_moe": "hunyuan_a13b",
    "ernie4_5": "ernie45",
    "ernie4_5_moe": "ernie45",
    "minimax_m2": "minimax_m2_append_think",
    "seed_oss": "seed_oss",
    "olmo3": "olmo3",
    "mimo": "mimo",
    "kimi_k2": "kimi_k2",
}
SWITCHED = {"deepseek_v3": "deepseek_v3", "granite": "granite"}  # model_type -> parser when the template has `thinking`
TAGS = {"seed_oss": ThinkTags("<seed:think>", "</seed:think>")}
UNTAGGED = frozenset({"openai_gptoss", "granite", "granite_thinking_parser", "mistral", "hf"})
_THINKING_SWITCH = re.compile(r"\bthinking\b")


def pick_parser(folder: str | Path, parsers: Collection[str] | None = None) -> tuple[str | None, str]:
    """The reasoning parser for the model in ``folder`` (or None) and one line saying why."""
    folder = Path(folder)
    known = tuple(parsers) if parsers is not None else installed_parsers()
    if not folder.is_dir():
        return None, f"{folder} is not a local model folder: auto reads its chat template; set parser explicitly"
    config = _json(folder / "config.json")
    model_type = str(config.get("model_type") or "").lower()
    arch = ",".join(str(a) for a in config.get("architectures") or []) or "unknown architecture"
    template = chat_template(folder)
    thinks = "<think>" in template or "</think>" in template
    parser, why = _rule(model_type, arch, template, thinks)
    if parser is not None and parser not in known:
        fallback = GENERIC if thinks and GENERIC in known else None
        return fallback, f"{why}, but the installed vLLM has no {parser!r} parser; " + (
            f"using {fallback} for its <think> tags" if fallback else "no parser"
        )
    switch = "; its template takes enable_thinking (set template_kwargs to switch)"
    return parser, why + (switch if "enable_thinking" in template else "")


def tags_for(parser: str | None) -> ThinkTags | None:
    """The strings the parser splits on, for the client's forced budget; None for parsers without tags."""
    if parser is None or parser in UNTAGGED:
        return None
    return TAGS.get(parser, THINK)


def chat_template(folder: Path) -> str:
    """The model's chat template text (all named templates joined), '' when it has none."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8", errors="replace")
    for name in ("chat_template.json", "tokenizer_config.json"):
        value = _json(folder / name).get("chat_template")
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return "\n".join(str(t.get("template", "")) for t in value if isinstance(t, dict))
    return ""


def _rule(model_type: str, arch: str, template: str, thinks: bool) -> tuple[str | None, str]:
    if model_type == "gpt_oss" or "<|channel|>" in template:
        return "openai_gptoss", f"{arch}: a gpt-oss harmony chat template (<|channel|>)"
    if model_type in ARCH_PARSERS and thinks:
        return ARCH_PARSERS[model_type], f"{arch} (model_type {model_type}) with <think> in its chat template"
    if model_type in SWITCHED and _THINKING_SWITCH.search(template) and (thinks or model_type == "granite"):
        return SWITCHED[model_type], f"{arch} (model_type {model_type}) with a `thinking` switch in its template"
    if thinks:
        kind = "a DeepSeek-R1 style template" if "｜Assistant｜" in template else "<think> tags in its chat template"
        return GENERIC, f"{arch}: {kind} (DeepSeek-R1 and distills, QwQ and other <think> models use {GENERIC})"
    if not template:
        return None, f"{arch}: no chat template found in the folder, so no sign of thinking: no parser"
    return None, f"{arch}: its chat template has no thinking markers: not a reasoning model, no parser"


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
