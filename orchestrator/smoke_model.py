"""A tiny random Llama with a real BPE tokenizer and chat template: offline, deterministic, loads in vLLM (CPU).

``write_smoke_model(out)`` writes ``config.json``, ``generation_config.json``, ``model.safetensors``,
``tokenizer.json`` and ``tokenizer_config.json``. Nothing is downloaded. The same seed gives byte-identical files.

The weights are random, so the text is gibberish; the output rows of the special tokens are zero so that a greedy
decode never picks them (answers run to ``max_tokens``) and a sampled one rarely does.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

log = logging.getLogger(__name__)

HIDDEN = 128
LAYERS = 2
HEADS = 2
KV_HEADS = 1
HEAD_DIM = HIDDEN // HEADS      # 64: vLLM's CPU attention rejects head_dim 16
INTERMEDIATE = 256
MAX_POSITIONS = 4096
VOCAB_TARGET = 1024

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


def write_smoke_model(out: Path, seed: int = 0) -> Path:
    """Write the tiny model into ``out`` (created if needed) and return ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer()
    vocab = tokenizer.get_vocab_size()
    special_ids = {tok: tokenizer.token_to_id(tok) for tok in SPECIAL_TOKENS}
    tokenizer.save(str(out / "tokenizer.json"))
    _write_json(out / "tokenizer_config.json", _tokenizer_config(special_ids))
    _write_json(out / "config.json", _model_config(vocab, special_ids))
    _write_json(out / "generation_config.json", _generation_config(special_ids))
    save_file(_weights(vocab, sorted(special_ids.values()), seed), str(out / "model.safetensors"),
              metadata={"format": "pt"})
    os.chmod(out / "model.safetensors", 0o644)  # safetensors writes 0600; the model is no secret
    log.info("wrote smoke model (vocab %d, seed %d) to %s", vocab, seed, out)
    return out


def _train_tokenizer() -> Tokenizer:
    """A byte-level BPE trained on ``CORPUS``: any UTF-8 text is encodable, Cyrillic/LaTeX merge well."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_TARGET, min_frequency=1, show_progress=False,
        special_tokens=list(SPECIAL_TOKENS), initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(CORPUS * 2, trainer=trainer)
    return tokenizer


def _tokenizer_config(ids: dict[str, int]) -> dict:
    added = {str(i): {"content": tok, "special": True, "lstrip": False, "rstrip": False,
                      "normalized": False, "single_word": False} for tok, i in sorted(ids.items(), key=lambda x: x[1])}
    return {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": BOS, "eos_token": IM_END,
            "pad_token": PAD, "unk_token": None, "add_bos_token": False, "add_eos_token": False,
            "clean_up_tokenization_spaces": False, "model_max_length": MAX_POSITIONS,
            "added_tokens_decoder": added, "chat_template": CHAT_TEMPLATE}


def _model_config(vocab: int, ids: dict[str, int]) -> dict:
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": HIDDEN,
            "intermediate_size": INTERMEDIATE, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
            "num_key_value_heads": KV_HEADS, "head_dim": HEAD_DIM, "hidden_act": "silu",
            "max_position_embeddings": MAX_POSITIONS, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "rope_scaling": None, "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
            "vocab_size": vocab, "bos_token_id": ids[BOS], "eos_token_id": [ids[IM_END], ids[EOS]],
            "pad_token_id": ids[PAD], "torch_dtype": "bfloat16", "dtype": "bfloat16", "initializer_range": 0.02,
            "use_cache": True}


def _generation_config(ids: dict[str, int]) -> dict:
    return {"bos_token_id": ids[BOS], "eos_token_id": [ids[IM_END], ids[EOS]], "pad_token_id": ids[PAD],
            "do_sample": False}


def _weights(vocab: int, special_ids: list[int], seed: int) -> dict[str, torch.Tensor]:
    """Seeded normal weights (bfloat16, std 0.02, norms 1) drawn in a fixed order: same seed, same bytes."""
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def rand(*shape: int, std: float = 0.02) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen, dtype=torch.float32) * std).to(torch.bfloat16).contiguous()

    kv = KV_HEADS * HEAD_DIM
    tensors = {"model.embed_tokens.weight": rand(vocab, HIDDEN, std=1.0)}
    for layer in range(LAYERS):
        p = f"model.layers.{layer}."
        tensors.update({
            p + "self_attn.q_proj.weight": rand(HEADS * HEAD_DIM, HIDDEN),
            p + "self_attn.k_proj.weight": rand(kv, HIDDEN),
            p + "self_attn.v_proj.weight": rand(kv, HIDDEN),
            p + "self_attn.o_proj.weight": rand(HIDDEN, HEADS * HEAD_DIM),
            p + "mlp.gate_proj.weight": rand(INTERMEDIATE, HIDDEN),
            p + "mlp.up_proj.weight": rand(INTERMEDIATE, HIDDEN),
            p + "mlp.down_proj.weight": rand(HIDDEN, INTERMEDIATE),
            p + "input_layernorm.weight": torch.ones(HIDDEN, dtype=torch.bfloat16),
            p + "post_attention_layernorm.weight": torch.ones(HIDDEN, dtype=torch.bfloat16),
        })
    tensors["model.norm.weight"] = torch.ones(HIDDEN, dtype=torch.bfloat16)
    head = rand(vocab, HIDDEN, std=0.2)
    head[special_ids] = 0.0
    tensors["lm_head.weight"] = head
    return tensors


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
