"""Reasoning settings: the ``reasoning:`` block and ``extra_body`` parsed, merged over the top-level default,
refused in one line naming field, value and fix, and hashed only when set."""

from __future__ import annotations

import pytest

from orchestrator.errors import ConfigError
from orchestrator.reasoning.settings import (
    ANSWER_LEAD,
    BUILTIN_PARSERS,
    DEFAULT_ANSWER_TOKENS,
    ReasoningSettings,
    installed_parsers,
    parse_extra_body,
    parse_reasoning,
    request_fields,
)

WHERE = "run.yaml: qwen.reasoning"
PARSERS = ("deepseek_r1", "qwen3", "granite")


def parse(raw, max_tokens=16384, context=32768, **kw):
    return parse_reasoning(raw, WHERE, max_tokens, context, parsers=kw.pop("parsers", PARSERS), **kw)


def refused(raw, **kw) -> str:
    with pytest.raises(ConfigError) as err:
        parse(raw, **kw)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_no_block_gives_the_defaults_and_an_empty_hash():
    settings = parse(None)
    assert settings == ReasoningSettings(answer_tokens=DEFAULT_ANSWER_TOKENS)
    assert settings.hash_fields() == {}


def test_a_full_block_is_read_whole():
    settings = parse(
        {
            "parser": "qwen3",
            "template_kwargs": {"enable_thinking": True},
            "effort": "high",
            "budget": 8192,
            "answer_tokens": 512,
            "grade_reasoning_tail": True,
        }
    )
    assert (settings.parser, settings.effort, settings.budget, settings.answer_tokens) == ("qwen3", "high", 8192, 512)
    assert dict(settings.template_kwargs) == {"enable_thinking": True}
    assert settings.grade_reasoning_tail is True


def test_auto_is_a_parser_value():
    assert parse({"parser": "auto"}).parser == "auto"


def test_an_unknown_parser_names_the_path_the_value_a_suggestion_and_the_known_ones():
    message = refused({"parser": "qwen-3"})
    assert message.startswith(f"{WHERE}.parser: unknown reasoning parser 'qwen-3'")
    assert "did you mean 'qwen3'?" in message
    assert "deepseek_r1, granite, qwen3" in message


def test_the_installed_vllm_registry_is_read_without_importing_vllm():
    names = installed_parsers()
    assert {"deepseek_r1", "qwen3"} <= set(names)
    assert set(names) <= set(BUILTIN_PARSERS) | set(names)  # a tuple of names either way
    assert parse_reasoning({"parser": "deepseek_r1"}, WHERE, 4096, None).parser == "deepseek_r1"


def test_a_parser_for_an_api_model_is_refused():
    assert "is set for an API model" in refused({"parser": "qwen3"}, managed=False)


@pytest.mark.parametrize("budget", [16384, 20000])
def test_a_budget_not_smaller_than_max_tokens_is_refused_with_the_fix(budget):
    message = refused({"budget": budget})
    assert message.startswith(f"{WHERE}.budget: {budget} is not smaller than max_tokens 16384")
    assert "raise max_tokens" in message


def test_a_budget_not_smaller_than_the_context_is_refused():
    message = refused({"budget": 4096}, max_tokens=10000, context=4096)
    assert "not smaller than the context (4096 tokens)" in message and "max_model_len" in message


@pytest.mark.parametrize("budget", [0, -5, 1.5, True, "8k"])
def test_a_budget_must_be_a_positive_whole_number(budget):
    assert refused({"budget": budget}).startswith(f"{WHERE}.budget:")


def test_answer_tokens_default_to_what_max_tokens_leaves_after_the_budget():
    assert parse({"budget": 8192}, max_tokens=8192 + 300).answer_tokens == 300
    assert parse({"budget": 1000}, max_tokens=16384).answer_tokens == DEFAULT_ANSWER_TOKENS


def test_answer_tokens_over_what_max_tokens_leaves_are_refused_with_both_fixes():
    message = refused({"budget": 8192, "answer_tokens": 2048}, max_tokens=9216)
    assert message.startswith(f"{WHERE}.answer_tokens: 2048 does not fit max_tokens 9216")
    assert "use at most 1024" in message and "raise max_tokens to 10240" in message


def test_budget_and_answer_tokens_must_leave_room_for_the_prompt():
    message = refused({"budget": 3000, "answer_tokens": 1096}, max_tokens=8000, context=4096)
    assert "leave no room for the prompt" in message


@pytest.mark.parametrize("value", [0, -1, "many"])
def test_answer_tokens_must_be_positive(value):
    assert refused({"budget": 100, "answer_tokens": value}).startswith(f"{WHERE}.answer_tokens:")


def test_an_effort_outside_low_medium_high_is_refused():
    message = refused({"effort": "extreme"})
    assert message == f"{WHERE}.effort: unknown effort 'extreme'; use one of low, medium, high"


def test_gigachat_takes_no_effort():
    assert "gigachat takes no reasoning effort" in refused({"effort": "low"}, managed=False, api_type="gigachat")


def test_an_unknown_key_gets_a_did_you_mean():
    assert refused({"bugdet": 10}) == f"{WHERE}.bugdet: unknown key; did you mean 'budget'?"


def test_a_block_that_is_not_a_mapping_is_refused():
    assert refused(["qwen3"]).startswith(f"{WHERE}: expected a mapping, got a list")


def test_grade_reasoning_tail_must_be_a_boolean():
    assert refused({"grade_reasoning_tail": "yes"}).startswith(f"{WHERE}.grade_reasoning_tail: expected true or false")


def test_the_model_block_overrides_the_default_key_by_key_and_merges_template_kwargs():
    default = {"parser": "deepseek_r1", "budget": 4096, "template_kwargs": {"enable_thinking": True, "a": 1}}
    settings = parse({"parser": "qwen3", "template_kwargs": {"a": 2}}, default=default)
    assert (settings.parser, settings.budget) == ("qwen3", 4096)
    assert dict(settings.template_kwargs) == {"enable_thinking": True, "a": 2}


def test_an_explicit_null_in_the_model_block_clears_the_default():
    settings = parse({"budget": None, "template_kwargs": None}, default={"budget": 4096, "template_kwargs": {"x": 1}})
    assert settings.budget is None and dict(settings.template_kwargs) == {}


def test_an_error_in_the_default_names_the_top_level_path():
    message = refused({}, default={"budget": 99999})
    assert message.startswith("reasoning.budget: 99999 is not smaller than max_tokens")


def test_extra_body_passes_through_and_refuses_what_the_client_or_a_setting_writes():
    assert parse_extra_body({"top_k": 20, "repetition_penalty": 1.05}, "m.extra_body") == {
        "top_k": 20,
        "repetition_penalty": 1.05,
    }
    with pytest.raises(ConfigError, match=r"^m\.extra_body\.max_tokens: the client sets this field itself"):
        parse_extra_body({"max_tokens": 5}, "m.extra_body")
    with pytest.raises(ConfigError, match=r"use reasoning\.template_kwargs instead$"):
        parse_extra_body({"chat_template_kwargs": {}}, "m.extra_body")
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_extra_body([1], "m.extra_body")


def test_extra_body_is_checked_under_the_model_path():
    with pytest.raises(ConfigError, match=r"^run\.yaml: qwen\.extra_body\.thinking_token_budget: "):
        parse({}, extra_body={"thinking_token_budget": 5})


def test_the_hash_holds_what_changes_the_answers_and_not_the_grading_switch():
    base = parse({"budget": 2048, "template_kwargs": {"enable_thinking": True}}, extra_body={"top_k": 5})
    fields = base.hash_fields()
    assert fields == {
        "chat_template_kwargs": {"enable_thinking": True},
        "thinking_budget": {"budget": 2048, "answer_tokens": DEFAULT_ANSWER_TOKENS, "lead": ANSWER_LEAD},
        "extra_body": {"top_k": 5},
    }
    tail = parse({"budget": 2048, "template_kwargs": {"enable_thinking": True}, "grade_reasoning_tail": True})
    assert "grade_reasoning_tail" not in str(tail.hash_fields())
    assert parse({"budget": 2049}).hash_fields() != parse({"budget": 2048}).hash_fields()


def test_request_fields_speak_each_api_s_dialect():
    settings = parse({"effort": "high", "template_kwargs": {"enable_thinking": False}}, extra_body={"top_k": 3})
    assert request_fields(settings, "openrouter") == {
        "chat_template_kwargs": {"enable_thinking": False},
        "reasoning": {"effort": "high"},
        "top_k": 3,
    }
    assert request_fields(settings, "openai")["reasoning_effort"] == "high"
    budgeted = parse({"budget": 100})
    assert request_fields(budgeted, "openai") == {}
    assert request_fields(budgeted, "openai", engine_budget=True) == {"thinking_token_budget": 100}
