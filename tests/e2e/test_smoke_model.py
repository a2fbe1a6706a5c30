"""The smoke model: deterministic, a real tokenizer for Russian + LaTeX, a chat template, and vLLM serves it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import requests
from safetensors import safe_open
from transformers import AutoTokenizer

from orchestrator import smoke_model
from orchestrator.smoke_model import write_smoke_model

FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
SAMPLE = "Решите: $\\frac{x^2}{2} + y_1 = \\sqrt{3}$, ответ \\boxed{42}; Ёж {a|b} 0123456789"


def digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_smoke_model(tmp_path_factory.mktemp("m") / "tiny", seed=0)


def test_same_seed_same_bytes_other_seed_other_weights(model: Path, tmp_path: Path) -> None:
    again = digests(write_smoke_model(tmp_path / "again", seed=0))
    other = digests(write_smoke_model(tmp_path / "other", seed=1))
    assert digests(model) == again
    assert other["model.safetensors"] != again["model.safetensors"]
    assert other["tokenizer.json"] == again["tokenizer.json"]


def test_architecture_is_the_tiny_llama_vllm_cpu_can_run(model: Path) -> None:
    config = json.loads((model / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert (config["hidden_size"], config["num_hidden_layers"]) == (128, 2)
    assert (config["num_attention_heads"], config["num_key_value_heads"]) == (2, 1)
    assert config["hidden_size"] // config["num_attention_heads"] == config["head_dim"] == 64
    assert config["max_position_embeddings"] == 4096
    with safe_open(str(model / "model.safetensors"), "pt") as f:
        assert f.get_tensor("model.embed_tokens.weight").shape == (config["vocab_size"], 128)
        assert f.get_tensor("model.layers.0.self_attn.k_proj.weight").shape == (64, 128)
        assert f.get_tensor("lm_head.weight").shape == (config["vocab_size"], 128)


def test_tokenizer_round_trips_russian_and_latex(model: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(model))
    ids = tok(SAMPLE, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == SAMPLE
    assert len(ids) < len(SAMPLE.encode("utf-8"))  # BPE merges happened: not one token per byte
    assert len(tok) == json.loads((model / "config.json").read_text())["vocab_size"]


def test_chat_template_renders_roles_and_generation_prompt(model: Path) -> None:
    tok = AutoTokenizer.from_pretrained(str(model))
    messages = [{"role": "system", "content": "Ты математик."}, {"role": "user", "content": "2+2?"}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|begin_of_text|><|im_start|>system\nТы математик.<|im_end|>\n"
        "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert tok.eos_token == "<|im_end|>"
    special = {tok.convert_tokens_to_ids(t) for t in smoke_model.SPECIAL_TOKENS}
    assert len(special) == len(smoke_model.SPECIAL_TOKENS) and tok.unk_token_id not in special


def test_special_tokens_never_win_a_greedy_step(model: Path) -> None:
    """Their output rows are zero, so random gibberish runs to max_tokens instead of stopping at once."""
    config = json.loads((model / "config.json").read_text())
    with safe_open(str(model / "model.safetensors"), "pt") as f:
        head = f.get_tensor("lm_head.weight")
    for token_id in config["eos_token_id"]:
        assert not head[token_id].any()
    assert head.abs().sum(dim=1).count_nonzero() == head.shape[0] - len(smoke_model.SPECIAL_TOKENS)


@pytest.mark.vllm
def test_vllm_serves_a_chat_completion(vllm_server) -> None:
    resp = requests.post(
        vllm_server.endpoint.api_base + "/chat/completions",
        timeout=120,
        json={
            "model": vllm_server.spec.served_name,
            "max_tokens": 16,
            "temperature": 0,
            "messages": [{"role": "user", "content": SAMPLE}],
        },
    )
    assert resp.status_code == 200, resp.text
    choice = resp.json()["choices"][0]
    assert choice["message"]["content"].strip()
    assert choice["finish_reason"] == "length"
    assert resp.json()["usage"]["completion_tokens"] == 16


def test_a_bigger_size_has_its_shape_and_reaches_its_vocabulary(tmp_path: Path) -> None:
    """``size=`` (what benchmarks/gpu/make_model.py uses for the 0.8B GPU model) shapes config, weights, tokenizer."""
    size = smoke_model.Size(hidden=256, layers=3, heads=4, kv_heads=2, intermediate=512, vocab=4096, max_positions=8192)
    out = write_smoke_model(tmp_path / "bigger", size=size)
    config = json.loads((out / "config.json").read_text())
    assert config["vocab_size"] == 4096  # made-up words give the BPE enough to merge past the corpus's 1024
    assert (config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]) == (256, 3, 512)
    assert (config["num_attention_heads"], config["num_key_value_heads"], config["head_dim"]) == (4, 2, 64)
    assert config["max_position_embeddings"] == 8192
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert f.get_tensor("model.embed_tokens.weight").shape == (4096, 256)
        assert f.get_tensor("model.layers.2.self_attn.q_proj.weight").shape == (256, 256)
        assert f.get_tensor("model.layers.2.self_attn.k_proj.weight").shape == (128, 256)
        assert f.get_tensor("model.layers.2.mlp.down_proj.weight").shape == (256, 512)
    tok = AutoTokenizer.from_pretrained(str(out))
    assert len(tok) == 4096 and tok.decode(tok(SAMPLE, add_special_tokens=False)["input_ids"]) == SAMPLE


def test_the_gpu_size_is_the_0_8b_llama() -> None:
    size = smoke_model.GPU_0_8B
    assert (size.hidden, size.layers, size.heads, size.kv_heads, size.head_dim) == (2048, 16, 16, 8, 128)
    per_layer = (
        size.hidden * (2 * size.heads * size.head_dim + 2 * size.kv_heads * size.head_dim)
        + 3 * size.hidden * size.intermediate
    )
    params = 2 * size.vocab * size.hidden + size.layers * per_layer
    assert 0.75e9 < params < 0.85e9
