"""A thinking variant of a smoke model: ``<think>`` tags in its vocabulary and a chat template that opens them.

``write_thinking_model(source, out)`` copies the smoke model at ``source`` (``orchestrator/smoke_model.py`` writes
one) into ``out`` and makes it a reasoning model the way DeepSeek-R1 distills and Qwen3 are:

* ``<think>`` and ``</think>`` become added, non-special tokens (so detokenised text keeps them and vLLM's
  ``deepseek_r1`` / ``qwen3`` reasoning parsers find them as single tokens); the embedding and the output head grow
  by two rows. The output rows are zero, like those of the other special tokens, so a greedy decode never closes its
  thinking: every answer thinks until a limit stops it (what the budget tests need).
* The chat template (``THINKING_TEMPLATE``) opens ``<think>\\n`` in the generation prompt; with
  ``chat_template_kwargs: {enable_thinking: false}`` it writes an empty, closed block instead (Qwen3's convention).
  Earlier assistant turns are rendered without their reasoning.

The source folder is read only; the same source gives the same files.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

THINK_START, THINK_END = "<think>", "</think>"

THINKING_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{% set text = message['content'] %}"
    "{% else %}{% set text = message['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text')"
    " | join('') %}{% endif %}"
    "{% if message['role'] == 'assistant' and '</think>' in text %}{% set text = text.split('</think>')[-1]"
    " | trim %}{% endif %}"
    "{{ text }}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\\n\\n</think>\\n\\n' }}"
    "{% else %}{{ '<think>\\n' }}{% endif %}{% endif %}"
)


def write_thinking_model(source: Path, out: Path) -> Path:
    """Write the thinking variant of the smoke model at ``source`` into ``out`` (created) and return ``out``."""
    from safetensors.torch import load_file, save_file  # heavy, optional: only where a model is written
    from tokenizers import AddedToken, Tokenizer

    source, out = Path(source), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    tokenizer.add_tokens([AddedToken(tag, special=False, normalized=False) for tag in (THINK_START, THINK_END)])
    ids = {tag: tokenizer.token_to_id(tag) for tag in (THINK_START, THINK_END)}
    tokenizer.save(str(out / "tokenizer.json"))
    vocab = max(ids.values()) + 1
    _rewrite_json(source / "tokenizer_config.json", out / "tokenizer_config.json", _tokenizer_config(ids))
    _rewrite_json(source / "config.json", out / "config.json", lambda cfg: {**cfg, "vocab_size": vocab})
    shutil.copy2(source / "generation_config.json", out / "generation_config.json")
    tensors = load_file(str(source / "model.safetensors"))
    save_file(_grown(tensors, vocab), str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "model.safetensors").chmod(0o644)
    return out


def _tokenizer_config(ids: dict[str, int]):
    def edit(cfg: dict) -> dict:
        added = dict(cfg.get("added_tokens_decoder") or {})
        for tag, i in ids.items():
            added[str(i)] = {
                "content": tag,
                "special": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "single_word": False,
            }
        return {**cfg, "added_tokens_decoder": added, "chat_template": THINKING_TEMPLATE}

    return edit


def _grown(tensors: dict, vocab: int) -> dict:
    """The embedding gets fixed rows for the new tokens, the output head zero rows (never generated)."""
    import torch

    embed, head = tensors["model.embed_tokens.weight"], tensors["lm_head.weight"]
    extra = vocab - embed.shape[0]
    gen = torch.Generator().manual_seed(vocab)
    new_rows = torch.randn(extra, embed.shape[1], generator=gen).to(embed.dtype)
    return {
        **tensors,
        "model.embed_tokens.weight": torch.cat([embed, new_rows]).contiguous(),
        "lm_head.weight": torch.cat([head, torch.zeros(extra, head.shape[1], dtype=head.dtype)]).contiguous(),
    }


def _rewrite_json(src: Path, dst: Path, edit) -> None:
    data = edit(json.loads(src.read_text(encoding="utf-8")))
    dst.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
