"""Reasoning wired into the config, the settings hash, the server's argv, the dry run, the records and the
leaderboard: a top-level ``reasoning:`` default under each model's own, ``extra_body`` per model, one-line errors,
``--reasoning-parser`` (``auto`` picked from the model folder, and why), the engine budget's flags, old lines read."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.config import load_config
from orchestrator.contract import AnswerRecord, SeriesScore
from orchestrator.errors import ConfigError
from orchestrator.leaderboard import aggregate
from orchestrator.leaderboard.render import render_json, render_markdown
from orchestrator.results import settings_hash
from orchestrator.serving import launch

THINK_TEMPLATE = "{{ '<|im_start|>assistant\\n<think>\\n' }}"


def folder(tmp_path: Path, template: str = THINK_TEMPLATE, name: str = "m") -> Path:
    path = tmp_path / name
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    (path / "tokenizer_config.json").write_text(json.dumps({"chat_template": template}))
    return path


def config(tmp_path: Path, body: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "run.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def two_models(tmp_path: Path, model: Path, top: str = "", own: str = "") -> Path:
    return config(
        tmp_path,
        f"""
        model_list: [a, b]
        max_tokens: 8192
        {top}
        a:
          vllm: {{model: {model}, max_model_len: 16384}}
          {own}
        b: {{vllm: {{model: {model}}}}}
        """,
    )


def test_a_top_level_default_applies_to_every_model_and_a_model_overrides_it_key_by_key(tmp_path: Path) -> None:
    path = two_models(
        tmp_path,
        folder(tmp_path),
        top="reasoning: {parser: deepseek_r1, budget: 4096, template_kwargs: {enable_thinking: true}}",
        own="reasoning: {budget: 2048, answer_tokens: 512, template_kwargs: {x: 1}}\n          extra_body: {top_k: 20}",
    )
    a, b = load_config(path).models
    assert (a.reasoning.parser, a.reasoning.budget, a.reasoning.answer_tokens) == ("deepseek_r1", 2048, 512)
    assert a.reasoning.template_kwargs == {"enable_thinking": True, "x": 1} and a.reasoning.extra_body == {"top_k": 20}
    assert (b.reasoning.budget, b.reasoning.answer_tokens, b.reasoning.extra_body) == (4096, 1024, {})


@pytest.mark.parametrize(
    ("top", "own", "fragment"),
    [
        ("reasoning: {bugdet: 10}", "", "run.yaml: reasoning.bugdet: unknown key; did you mean 'budget'?"),
        ("", "reasoning: {budget: 9000}", "run.yaml: a.reasoning.budget: 9000 is not smaller than max_tokens 8192"),
        ("", "extra_body: {max_tokens: 5}", "run.yaml: a.extra_body.max_tokens: the client sets this field itself"),
        ("", "reasoning: {budget_by: gpu}", "run.yaml: a.reasoning.budget_by: unknown value 'gpu'"),
    ],
)
def test_reasoning_mistakes_are_one_line_errors_naming_file_and_field(tmp_path, top, own, fragment) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(two_models(tmp_path, folder(tmp_path), top=top, own=own))
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_a_parser_in_both_vllm_args_and_reasoning_and_a_budget_for_an_api_model_are_refused(tmp_path: Path) -> None:
    model = folder(tmp_path)
    both = config(
        tmp_path,
        f"""
        model_list: [a]
        a: {{vllm: {{model: {model}, args: [--reasoning-parser, qwen3]}}, reasoning: {{parser: qwen3}}}}
        """,
    )
    with pytest.raises(ConfigError, match=r"a\.vllm\.args: --reasoning-parser is set here and in reasoning\.parser"):
        load_config(both)
    api = config(
        tmp_path,
        """
        model_list: [a]
        a: {endpoints: [{api_base: "http://127.0.0.1:9/v1"}], max_tokens: 4096, reasoning: {budget: 100}}
        """,
    )
    with pytest.raises(ConfigError, match=r"a\.reasoning\.budget: 100 is set for an API model"):
        load_config(api)


def test_reasoning_enters_the_settings_hash_only_when_set_and_budget_by_never(tmp_path: Path) -> None:
    model = load_config(two_models(tmp_path, folder(tmp_path))).models[0]
    plain = settings_hash(model, "d", "v1", "p")
    assert settings_hash(dataclasses.replace(model, reasoning=type(model.reasoning)()), "d", "v1", "p") == plain
    thinking = dataclasses.replace(model.reasoning, template_kwargs={"enable_thinking": True})
    assert settings_hash(dataclasses.replace(model, reasoning=thinking), "d", "v1", "p") != plain
    budget = dataclasses.replace(model.reasoning, budget=100, budget_by="client")
    engine = dataclasses.replace(budget, budget_by="engine")
    assert settings_hash(dataclasses.replace(model, reasoning=budget), "d", "v1", "p") == settings_hash(
        dataclasses.replace(model, reasoning=engine), "d", "v1", "p"
    )


def spec_of(tmp_path: Path, reasoning: str, model: Path | None = None):
    path = config(
        tmp_path,
        f"""
        model_list: [a]
        max_tokens: 4096
        a: {{vllm: {{model: {model or folder(tmp_path)}}}, reasoning: {reasoning}}}
        """,
    )
    return launch.server_spec(load_config(path).models[0], (), 8000, "python3")


def test_the_server_gets_the_parser_and_with_the_engine_s_budget_its_reasoning_config(tmp_path: Path) -> None:
    words = launch.command(spec_of(tmp_path, "{parser: qwen3}"))
    assert words[words.index("--reasoning-parser") + 1] == "qwen3" and "--reasoning-config" not in words
    engine = launch.command(spec_of(tmp_path / "x", "{parser: deepseek_r1, budget: 100, budget_by: engine}"))
    config_json = json.loads(engine[engine.index("--reasoning-config") + 1])
    assert config_json == {"reasoning_start_str": "<think>", "reasoning_end_str": "</think>\n\nОтвет:"}
    client = launch.command(spec_of(tmp_path / "y", "{parser: deepseek_r1, budget: 100, budget_by: client}"))
    assert "--reasoning-config" not in client and "deepseek_r1" in client


def test_a_server_for_the_engine_s_budget_runs_vllm_s_v1_model_runner_unless_told_otherwise(tmp_path: Path) -> None:
    """vLLM's V2 model runner (the GPU default) refuses thinking_token_budget with HTTP 400 (the GPU scenario s6)."""
    engine = spec_of(tmp_path / "x", "{parser: deepseek_r1, budget: 100, budget_by: engine}")
    client = spec_of(tmp_path / "y", "{parser: deepseek_r1, budget: 100, budget_by: client}")
    assert launch.environment(engine, "run", "s", 1, None, base={})["VLLM_USE_V2_MODEL_RUNNER"] == "0"
    assert "VLLM_USE_V2_MODEL_RUNNER" not in launch.environment(client, "run", "s", 1, None, base={})
    told = launch.environment(engine, "run", "s", 1, None, base={"VLLM_USE_V2_MODEL_RUNNER": "1"})
    assert told["VLLM_USE_V2_MODEL_RUNNER"] == "1"


def test_auto_picks_the_parser_from_the_model_folder_and_none_for_a_template_without_thinking(tmp_path) -> None:
    picked = spec_of(tmp_path, "{parser: auto}")
    parser, why = launch.reasoning_parser(picked)
    assert parser == "deepseek_r1" and why.startswith("auto: ") and "<think>" in why
    assert "deepseek_r1" in launch.command(picked)
    plain = spec_of(tmp_path / "p", "{parser: auto}", folder(tmp_path, "{{ messages }}", name="plain"))
    assert launch.reasoning_parser(plain)[0] is None and "--reasoning-parser" not in launch.command(plain)


def test_the_dry_run_prints_the_auto_choice_and_why(tmp_path: Path) -> None:
    model = folder(tmp_path)
    path = config(tmp_path, f"model_list: [a]\na: {{vllm: {{model: {model}}}, reasoning: {{parser: auto}}}}\n")
    result = CliRunner().invoke(main, ["--config", str(path), "--dry-run", "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "--reasoning-parser deepseek_r1" in result.output
    assert "reasoning parser: deepseek_r1 (auto: LlamaForCausalLM: <think> tags in its chat template" in result.output


def test_lines_written_before_read_with_no_reasoning_and_new_ones_keep_it() -> None:
    old = {"id": "1", "dataset": "d", "model": "m", "task": "t", "reference": "4", "response": "Ответ: 4"}
    rec = AnswerRecord.from_dict(old)
    assert (rec.reasoning_tokens, rec.answer_tokens, rec.forced, rec.answer_in_reasoning) == (0, 0, False, False)
    rec.forced, rec.reasoning_tokens = True, 7
    assert AnswerRecord.from_dict(rec.to_dict()) == rec


def score(model: str, tokens: tuple[int, ...], forced: int = 0, inside: int = 0, truncated: int = 0) -> SeriesScore:
    n = len(tokens)
    return SeriesScore(
        model, "d", "h", n, n, 0, 0, 0, 0, 1.0, truncated=truncated, reasoning_tokens=tokens, forced=forced,
        answer_in_reasoning=inside,
    )  # fmt: skip


def test_the_leaderboard_shows_thinking_tokens_mean_and_p95_and_the_shares_per_model() -> None:
    tokens = tuple(range(1, 21))  # mean 10.5, p95 19 (nearest rank)
    rows = aggregate([score("thinker", tokens, forced=5, inside=2, truncated=10), score("plain", (0, 0))])
    md = render_markdown(rows, ["d"])
    assert "## Reasoning" in md and "| thinker | 10 | 19 | 25.0% | 10.0% | 50.0% |" in md
    assert "| plain |" not in md.split("## Reasoning")[1]
    data = {r["model"]: r["reasoning"] for r in json.loads(render_json(rows, ["d"]))["rows"]}
    assert data["thinker"]["reasoning_tokens_p95"] == 19 and data["thinker"]["forced_share"] == 0.25
    assert data["plain"]["reasoning_tokens_mean"] == 0
    assert "## Reasoning" not in render_markdown(aggregate([score("plain", (0,))]), ["d"])
