"""A tiny random Llama with a real BPE tokenizer and chat template: offline, deterministic, loads in vLLM (CPU).

``write_smoke_model(out)`` writes ``config.json``, ``generation_config.json``, ``model.safetensors``,
``tokenizer.json`` and ``tokenizer_config.json``. Nothing is downloaded. The same seed gives byte-identical files.
``size=`` makes a bigger one of the same family (``GPU_0_8B``: the 0.8B-parameter Llama of the GPU benchmarks,
``benchmarks/gpu/make_model.py``), ``device="cuda"`` draws its weights on the GPU.

The weights are random, so the text is gibberish; the output rows of the special tokens are zero so that a greedy
decode never picks them (answers run to ``max_tokens``) and a sampled one rarely does.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

log = logging.getLogger(__name__)

HIDDEN = 128
LAYERS = 2
HEADS = 2
KV_HEADS = 1
HEAD_DIM = HIDDEN // HEADS  # 64: vLLM's CPU attention rejects head_dim 16
INTERMEDIATE = 256
MAX_POSITIONS = 4096
VOCAB_TARGET = 1024


@dataclass(frozen=True)
class Size:
    """The shape of a smoke model; the defaults are the tiny CPU one."""

    hidden: int = HIDDEN
    layers: int = LAYERS
    heads: int = HEADS
    kv_heads: int = KV_HEADS
    intermediate: int = INTERMEDIATE
    vocab: int = VOCAB_TARGET  # the tokenizer's target; config.json gets what the BPE training reaches
    max_positions: int = MAX_POSITIONS

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


TINY = Size()
# 0.8B parameters: the random Llama of the GPU benchmarks (hidden 2048, 16 layers, 16 heads, 8 KV heads, 32k vocab).
GPU_0_8B = Size(hidden=2048, layers=16, heads=16, kv_heads=8, intermediate=4864, vocab=32000)

BOS, EOS, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = (BOS, EOS, PAD, IM_START, IM_END)

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Russian and English olympiad-style text with LaTeX: every character class the benchmark sends.
CORPUS = (
    "Решите уравнение $x^2 - 5x + 6 = 0$. Ответ: $x_1 = 2$, $x_2 = 3$.",
    "Найдите значение выражения \\frac{1}{2} + \\frac{1}{3} и запишите ответ в виде \\boxed{\\frac{5}{6}}.",
    "Тело массой $m = 2$ кг движется со скоростью $v = 3$ м/с. Найдите кинетическую энергию $E = \\frac{mv^2}{2}$.",
    "Докажите, что \\sqrt{2} иррационально. Пусть \\sqrt{2} = \\frac{p}{q}, где $p, q \\in \\mathbb{N}$.",
    "Вычислите интеграл \\int_0^1 x^3 \\, dx = \\frac{1}{4}. Итоговый ответ: \\boxed{0.25}.",
    "Сколько существует натуральных чисел $n \\le 100$, таких что $n^2 + 1$ делится на 5? Ответ: 40.",
    "Ёлка, щука, цапля, чайка, жёлудь, объём, подъезд, эхо, юла, яма, ГЛАВНЫЙ ОТВЕТ, Эйлер, Ньютон.",
    "Solve the equation $\\sin x = \\frac{\\sqrt{3}}{2}$ on $[0, 2\\pi]$. Answer: \\{\\pi/3, 2\\pi/3\\}.",
    "The answer is \\boxed{42}. Let $f(x) = e^{x} \\cdot \\ln(x)$, then $f'(x) = e^x (\\ln x + 1/x)$.",
    "Сила тока $I = U / R = 12 / 4 = 3$ А; мощность $P = I^2 R = 36$ Вт (ватт).",
    "Ответ: $\\left( \\frac{a+b}{2} \\right)^2 \\ge ab$ при $a, b > 0$; равенство при $a = b$.",
    "Цифры 0 1 2 3 4 5 6 7 8 9; знаки + - * / = < > ( ) [ ] { } | ! ? , . ; : % & # @ ~ ` ' \" \\ ^ _ $.",
    "Ускорение свободного падения $g \\approx 9.81$ м/с^2; путь $s = \\frac{g t^2}{2}$ за $t = 2$ с.",
    "Matrix $A = \\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}$, $\\det A = -2$, $A^{-1}$ exists.",
)


def write_smoke_model(out: Path, seed: int = 0, size: Size = TINY, device: str = "cpu") -> Path:
    """Write the model into ``out`` (created if needed) and return ``out``; ``device`` draws the weights there."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer(size.vocab)
    vocab = tokenizer.get_vocab_size()
    special_ids = {tok: tokenizer.token_to_id(tok) for tok in SPECIAL_TOKENS}
    tokenizer.save(str(out / "tokenizer.json"))
    _write_json(out / "tokenizer_config.json", _tokenizer_config(special_ids, size))
    _write_json(out / "config.json", _model_config(vocab, special_ids, size))
    _write_json(out / "generation_config.json", _generation_config(special_ids))
    save_file(
        _weights(vocab, sorted(special_ids.values()), seed, size, device),
        str(out / "model.safetensors"),
        metadata={"format": "pt"},
    )
    os.chmod(out / "model.safetensors", 0o644)  # safetensors writes 0600; the model is no secret
    log.info("wrote smoke model (vocab %d, seed %d) to %s", vocab, seed, out)
    return out


def _train_tokenizer(vocab_target: int = VOCAB_TARGET) -> Tokenizer:
    """A byte-level BPE trained on ``CORPUS``: any UTF-8 text is encodable, Cyrillic/LaTeX merge well.

    A vocabulary larger than ``CORPUS`` yields is trained on made-up words as well (deterministic).
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_target,
        min_frequency=1,
        show_progress=False,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = list(CORPUS * 2) + (_made_up_lines(vocab_target * 7) if vocab_target > VOCAB_TARGET else [])
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return tokenizer


def _made_up_lines(words: int) -> list[str]:
    """``words`` random Cyrillic/Latin/digit words, 64 to a line: enough distinct pairs for a large BPE vocab."""
    rng = random.Random(0)
    letters = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяabcdefghijklmnopqrstuvwxyz0123456789"
    made = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(words)]
    return [" ".join(made[i : i + 64]) for i in range(0, words, 64)]


def _tokenizer_config(ids: dict[str, int], size: Size = TINY) -> dict:
    added = {
        str(i): {
            "content": tok,
            "special": True,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "single_word": False,
        }
        for tok, i in sorted(ids.items(), key=lambda x: x[1])
    }
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": IM_END,
        "pad_token": PAD,
        "unk_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": size.max_positions,
        "added_tokens_decoder": added,
        "chat_template": CHAT_TEMPLATE,
    }


def _model_config(vocab: int, ids: dict[str, int], size: Size = TINY) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": size.hidden,
        "intermediate_size": size.intermediate,
        "num_hidden_layers": size.layers,
        "num_attention_heads": size.heads,
        "num_key_value_heads": size.kv_heads,
        "head_dim": size.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": size.max_positions,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "vocab_size": vocab,
        "bos_token_id": ids[BOS],
        "eos_token_id": [ids[IM_END], ids[EOS]],
        "pad_token_id": ids[PAD],
        "torch_dtype": "bfloat16",
        "dtype": "bfloat16",
        "initializer_range": 0.02,
        "use_cache": True,
    }


def _generation_config(ids: dict[str, int]) -> dict:
    return {
        "bos_token_id": ids[BOS],
        "eos_token_id": [ids[IM_END], ids[EOS]],
        "pad_token_id": ids[PAD],
        "do_sample": False,
    }


def _weights(
    vocab: int, special_ids: list[int], seed: int, size: Size = TINY, device: str = "cpu"
) -> dict[str, torch.Tensor]:
    """Seeded normal weights (bfloat16, std 0.02, norms 1) drawn in a fixed order: same seed, same bytes."""
    gen = torch.Generator(device=device).manual_seed(seed)
    hidden, inter, q_dim, kv = size.hidden, size.intermediate, size.heads * size.head_dim, size.kv_heads * size.head_dim

    def rand(*shape: int, std: float = 0.02) -> torch.Tensor:
        drawn = torch.randn(*shape, generator=gen, dtype=torch.float32, device=device) * std
        return drawn.to(torch.bfloat16).cpu().contiguous()

    def ones(n: int) -> torch.Tensor:
        return torch.ones(n, dtype=torch.bfloat16)

    tensors = {"model.embed_tokens.weight": rand(vocab, hidden, std=1.0)}
    for layer in range(size.layers):
        p = f"model.layers.{layer}."
        tensors.update(
            {
                p + "self_attn.q_proj.weight": rand(q_dim, hidden),
                p + "self_attn.k_proj.weight": rand(kv, hidden),
                p + "self_attn.v_proj.weight": rand(kv, hidden),
                p + "self_attn.o_proj.weight": rand(hidden, q_dim),
                p + "mlp.gate_proj.weight": rand(inter, hidden),
                p + "mlp.up_proj.weight": rand(inter, hidden),
                p + "mlp.down_proj.weight": rand(hidden, inter),
                p + "input_layernorm.weight": ones(hidden),
                p + "post_attention_layernorm.weight": ones(hidden),
            }
        )
    tensors["model.norm.weight"] = ones(hidden)
    head = rand(vocab, hidden, std=0.2)
    head[special_ids] = 0.0
    tensors["lm_head.weight"] = head
    return tensors


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
