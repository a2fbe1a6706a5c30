"""``parser: auto``: the reasoning parser picked from a local model folder's config and chat template, with why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.reasoning.auto import chat_template, pick_parser, tags_for
from orchestrator.reasoning.forced import ThinkTags
from orchestrator.reasoning.thinking_model import THINKING_TEMPLATE

QWEN3 = (
    "{%- for message in messages %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{%- if enable_thinking is defined and enable_thinking is "
    "false %}<think>\n\n</think>\n\n{%- endif %}{%- endif %}"
)
R1_DISTILL = "{{ bos_token }}{% for m in messages %}<｜User｜>{{ m.content }}{% endfor %}<｜Assistant｜><think>\n"
QWQ = "<|im_start|>assistant\n<think>\n"
HARMONY = "<|start|>assistant<|channel|>analysis<|message|>"
V31 = "{% if thinking %}<｜Assistant｜><think>{% else %}<｜Assistant｜></think>{% endif %}"
PLAIN = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
ALL = ("deepseek_r1", "deepseek_v3", "qwen3", "openai_gptoss", "glm45", "seed_oss")


def folder(tmp_path: Path, model_type: str, arch: str, template: str | None, where: str = "tokenizer_config") -> Path:
    out = tmp_path / f"{model_type}-{arch}"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"model_type": model_type, "architectures": [arch]}))
    if template is not None and where == "tokenizer_config":
        (out / "tokenizer_config.json").write_text(json.dumps({"chat_template": template}))
    elif template is not None:
        (out / "chat_template.jinja").write_text(template)
    return out


@pytest.mark.parametrize(
    ("model_type", "arch", "template", "parser", "said"),
    [
        ("qwen3", "Qwen3ForCausalLM", QWEN3, "qwen3", "model_type qwen3"),
        ("qwen3_moe", "Qwen3MoeForCausalLM", QWEN3, "qwen3", "<think> in its chat template"),
        ("qwen2", "Qwen2ForCausalLM", R1_DISTILL, "deepseek_r1", "DeepSeek-R1 style"),
        ("llama", "LlamaForCausalLM", R1_DISTILL, "deepseek_r1", "DeepSeek-R1 style"),
        ("qwen2", "Qwen2ForCausalLM", QWQ, "deepseek_r1", "QwQ"),
        ("gpt_oss", "GptOssForCausalLM", HARMONY, "openai_gptoss", "harmony"),
        ("deepseek_v3", "DeepseekV3ForCausalLM", V31, "deepseek_v3", "`thinking` switch"),
        ("deepseek_v3", "DeepseekV3ForCausalLM", "<｜Assistant｜><think>\n", "deepseek_r1", "DeepSeek-R1 style"),
        ("glm4_moe", "Glm4MoeForCausalLM", "<think></think>", "glm45", "model_type glm4_moe"),
        ("llama", "LlamaForCausalLM", PLAIN, None, "no thinking markers"),
        ("qwen3", "Qwen3ForCausalLM", PLAIN, None, "no thinking markers"),
    ],
)
def test_the_parser_follows_the_architecture_and_the_template(tmp_path, model_type, arch, template, parser, said):
    picked, why = pick_parser(folder(tmp_path, model_type, arch, template), parsers=ALL)
    assert picked == parser
    assert said in why and arch in why and "\n" not in why


def test_a_template_with_enable_thinking_says_how_to_switch_it(tmp_path):
    _, why = pick_parser(folder(tmp_path, "qwen3", "Qwen3ForCausalLM", QWEN3), parsers=ALL)
    assert "enable_thinking" in why and "template_kwargs" in why


def test_chat_template_jinja_is_read_before_tokenizer_config(tmp_path):
    model = folder(tmp_path, "qwen2", "Qwen2ForCausalLM", QWQ, where="jinja")
    (model / "tokenizer_config.json").write_text(json.dumps({"chat_template": PLAIN}))
    assert chat_template(model) == QWQ
    assert pick_parser(model, parsers=ALL)[0] == "deepseek_r1"


def test_named_templates_are_all_read(tmp_path):
    model = folder(tmp_path, "qwen2", "Qwen2ForCausalLM", None)
    named = [{"name": "default", "template": PLAIN}, {"name": "think", "template": QWQ}]
    (model / "tokenizer_config.json").write_text(json.dumps({"chat_template": named}))
    assert pick_parser(model, parsers=ALL)[0] == "deepseek_r1"


def test_a_folder_without_a_template_or_a_hub_id_gives_no_parser_and_says_why(tmp_path):
    assert pick_parser(folder(tmp_path, "llama", "LlamaForCausalLM", None), parsers=ALL) == (
        None,
        "LlamaForCausalLM: no chat template found in the folder, so no sign of thinking: no parser",
    )
    picked, why = pick_parser("Qwen/QwQ-32B", parsers=ALL)
    assert picked is None and "not a local model folder" in why and "set parser explicitly" in why


def test_a_pick_the_installed_vllm_lacks_falls_back_to_the_generic_think_parser(tmp_path):
    model = folder(tmp_path, "seed_oss", "SeedOssForCausalLM", "<seed:think><think>")
    picked, why = pick_parser(model, parsers=("deepseek_r1",))
    assert picked == "deepseek_r1" and "has no 'seed_oss' parser" in why


def test_the_smoke_model_is_plain_and_its_thinking_variant_thinks(tiny_model, tmp_path):
    assert pick_parser(tiny_model)[0] is None
    thinking = folder(tmp_path, "llama", "LlamaForCausalLM", THINKING_TEMPLATE)
    assert pick_parser(thinking)[0] == "deepseek_r1"


def test_tags_follow_the_parser():
    assert tags_for("qwen3") == tags_for("deepseek_r1") == ThinkTags("<think>", "</think>")
    assert tags_for("seed_oss") == ThinkTags("<seed:think>", "</seed:think>")
    assert tags_for("openai_gptoss") is None and tags_for(None) is None
