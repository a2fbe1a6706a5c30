"""Config loading: the original DeathMath format, the vllm: block, and a table of errors with their messages."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.config import load_config
from orchestrator.config import managed as vllm_block
from orchestrator.errors import ConfigError

ORIGINAL = """
model_list:
  - gpt-4o
gpt-4o:
  model_name: gpt-4o
  endpoints:
    - api_base: https://api.openai.com/v1
      api_key: sk-literal-secret-123
  api_type: openai
  parallel: 4
  system_prompt: "You are a helpful math assistant. Answer in Russian."
  max_tokens: 2048
  request_delay: 0.5
temperature: 0.0
max_tokens: 2048
num_examples: 190
"""


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    path = tmp_path / "tiny"
    path.mkdir()
    (path / "config.json").write_text("{}")
    return path


def test_original_format_loads_unchanged(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, ORIGINAL))
    (model,) = cfg.models
    assert model.key == "gpt-4o" and not model.managed
    assert model.endpoints[0].api_key == "sk-literal-secret-123"
    assert model.parallel == 4 and model.transport.request_delay == 0.5
    assert model.sampling.system_prompt.startswith("You are")
    assert cfg.num_examples == 190
    assert "sk-literal-secret-123" not in repr(model) and "sk-literal" not in str(cfg.redacted())


def test_vllm_block_and_defaults(tmp_path: Path, model_dir: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            f"""
        model_list: [m]
        m:
          model_name: served
          vllm: {{model: {model_dir}, tensor_parallel_size: 2, max_model_len: 4096, args: ["--dtype", "bfloat16"],
                  env: {{A: "1"}}}}
        max_tokens: 512
    """,
        )
    )
    (model,) = cfg.models
    assert model.managed and model.vllm.gpus_needed == 2 and model.vllm.args == ("--dtype", "bfloat16")
    assert model.vllm.env == (("A", "1"),) and model.vllm.max_restarts == 2
    assert model.parallel == 64 and model.sampling.max_tokens == 512
    assert model.model_name == "served"


def test_env_key_is_resolved_and_redacted(tmp_path: Path) -> None:
    text = ORIGINAL.replace("sk-literal-secret-123", "env:MY_KEY")
    cfg = load_config(write(tmp_path, text), env={"MY_KEY": "sk-from-env"})
    assert cfg.models[0].endpoints[0].api_key == "sk-from-env"
    assert cfg.redacted()["gpt-4o"]["endpoints"][0]["api_key"] == "env:MY_KEY"


def test_default_config_is_valid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "models" / "tiny-llama").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    cfg = load_config(root / "configs" / "run.yaml")
    assert [m.key for m in cfg.models] == ["tiny-llama"]
    assert set(cfg.datasets) == {"sample-math", "sample-physics"}


ERRORS = [
    # (yaml text, expected fragments of the one-line message)
    (
        "model_list: [a]\na:\n  model_name: a\n  endpoints: [{api_base: http://x/v1}]\n  paralel: 4\n",
        ["a.paralel", "unknown key", "did you mean 'parallel'"],
    ),
    (
        "model_list: [a]\nmodel_lsit: 1\na: {endpoints: [{api_base: 'http://x/v1'}]}\n",
        ["model_lsit", "did you mean 'model_list'"],
    ),
    (
        "model_list: [a]\na:\n  endpoints: [{api_base: http://x/v1}]\n  parallel: four\n",
        ["a.parallel", "expected an integer", "'four'"],
    ),
    ("model_list: [a, a]\na: {endpoints: [{api_base: 'http://x/v1'}]}\n", ["listed twice"]),
    ("model_list: [a, b]\na: {endpoints: [{api_base: 'http://x/v1'}]}\n", ["'b' has no block"]),
    ("a: {endpoints: [{api_base: 'http://x/v1'}]}\n", ["model_list", "missing"]),
    ("model_list: [a]\na: {model_name: a}\n", ["neither `endpoints` nor `vllm`"]),
    ("model_list: [a]\na: {vllm: {model: /no/such/dir}}\n", ["a.vllm.model", "does not exist"]),
    ("model_list: [a]\na: {vllm: {model: ./rel/missing}}\n", ["a.vllm.model", "does not exist"]),
    (
        "model_list: [a]\na: {vllm: {model: Org/Model, tensor_parallel_size: 0}}\n",
        ["a.vllm.tensor_parallel_size", "out of range"],
    ),
    (
        "model_list: [a]\na: {vllm: {model: Org/Model, gpu_memory_utilization: 1.5}}\n",
        ["gpu_memory_utilization", "above 1.0"],
    ),
    ("model_list: [a]\na: {vllm: {model: Org/Model, tensorparallel: 2}}\n", ["did you mean 'tensor_parallel_size'"]),
    (
        "model_list: [a]\na: {vllm: {model: Org/Model, api_server_count: 0}}\n",
        ["a.vllm.api_server_count", "out of range", "between 1 and 64"],
    ),
    (
        "model_list: [a]\na: {vllm: {model: Org/Model, api_server_count: two}}\n",
        ["a.vllm.api_server_count", "expected an integer"],
    ),
    (
        "model_list: [a]\na: {vllm: {model: Org/Model, client_codec: ujson}}\n",
        ["a.vllm.client_codec", "unknown codec 'ujson'", "msgspec, json, requests"],
    ),
    (
        "model_list: [a]\na: {vllm: {model: Org/Model, args: [--api-server-count, '4']}}\n",
        ["a.vllm.args", "sets --api-server-count", "api_server_count: N"],
    ),
    (
        "model_list: [a]\na: {endpoints: [{api_base: 'http://x/v1', api_key: 'env:NOPE_UNSET_VAR'}]}\n",
        ["a.endpoints[0].api_key", "NOPE_UNSET_VAR", "is not set"],
    ),
    ("model_list: [a]\na: {endpoints: [{api_base: 'ftp://x'}]}\n", ["a.endpoints[0].api_base", "http(s) URL"]),
    ("model_list: [a]\na: {endpoints: [{api_base: 'http://x/v1'}], api_type: claude}\n", ["a.api_type", "unsupported"]),
    (
        "model_list: [a]\na: {endpoints: [{api_base: 'http://x/v1'}]}\ndatasets: {mine: {domain: math}}\n",
        ["datasets.mine", "no `path`"],
    ),
    (
        "model_list: [a]\na: {endpoints: [{api_base: 'http://x/v1'}]}\ndatasets: {mine: {path: nope.jsonl}}\n",
        ["datasets.mine.path", "does not exist"],
    ),
    (
        "model_list: [a]\na: {endpoints: [{api_base: 'http://x/v1'}]}\ndatasets: {sample-math: {domain: chem}}\n",
        ["datasets.sample-math.domain", "math or physics"],
    ),
    ("model_list: [a]\na:\n\tmodel_name: a\n", ["line 3", "tabs"]),
    ("model_list: [a\n", ["line", "YAML"]),
    ("- just\n- a list\n", ["top level", "mapping"]),
    ("", ["empty"]),
]


@pytest.mark.parametrize("text, fragments", ERRORS, ids=[f"e{i}" for i in range(len(ERRORS))])
def test_config_errors_are_one_clear_line(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ("model_list: [a]\n".encode("utf-16"), "UTF-16"),
        (b"\xef\xbb\xbfmodel_list: [a]\n", "byte-order mark"),
        (b"model_list: [a]\n\xff\xfe\xfa\n", "not valid UTF-8"),
        (b"\x7fELF\x00\x00\x01", "binary"),
        (
            b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
            b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
            b"f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
            "alias",
        ),
        (b"# x\n" * 300_000, "too large"),
    ],
)
def test_hostile_config_files(tmp_path: Path, payload: bytes, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(payload)
    with pytest.raises(ConfigError, match=fragment):
        load_config(path, env={})


def test_cli_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "model_list: [a]\na: {vllm: {model: /no/such/dir}}\n")
    before = path.read_bytes()
    result = CliRunner().invoke(main, ["run", "--config", str(path), "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "a.vllm.model" in lines[0]
    assert "Traceback" not in result.output
    assert path.read_bytes() == before and not (tmp_path / "r").exists()


def test_cli_missing_config_and_bad_flags(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["--config", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    good = write(tmp_path, ORIGINAL)
    bad_gpus = runner.invoke(main, ["run", "--config", str(good), "--gpus", "0,x"])
    assert bad_gpus.exit_code == 2 and "--gpus" in bad_gpus.output
    bad_model = runner.invoke(main, ["run", "--config", str(good), "--models", "nope", "--dry-run"])
    assert bad_model.exit_code == 2 and "'nope' is not in model_list" in bad_model.output
    bad_ds = runner.invoke(main, ["run", "--config", str(good), "--dataset", "nope", "--dry-run"])
    assert bad_ds.exit_code == 2 and "unknown dataset 'nope'" in bad_ds.output


def test_one_secret_rule_masks_keys_and_tokens_but_not_tokenizer(tmp_path: Path, model_dir: Path) -> None:
    from orchestrator.contract import is_secret_name
    from orchestrator.status.manifest import Manifest

    assert all(map(is_secret_name, ["api_key", "HF_TOKEN", "--api-key", "--hf-token", "Authorization"]))
    assert not any(map(is_secret_name, ["tokenizer", "max_tokens", "--tokenizer-mode", "keyword"]))
    cfg = load_config(
        write(
            tmp_path,
            f"""
        model_list: [m]
        m:
          vllm:
            model: {model_dir}
            args: ["--tokenizer", "tok-dir", "--api-key", "sk-arg-secret"]
            env: {{HF_TOKEN: hf-literal-secret, tokenizer: keep-me}}
    """,
        )
    )
    dumped = str(cfg.redacted())
    assert "hf-literal-secret" not in dumped and "keep-me" in dumped
    manifest = Manifest(tmp_path / "results", "r1", cfg.redacted(), cfg.models, [])
    text = manifest.save().read_text()
    assert "sk-arg-secret" not in text and "hf-literal-secret" not in text and "tok-dir" in text


def test_client_codec_msgspec_without_msgspec_installed_names_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vllm_block, "MSGSPEC_INSTALLED", False)
    path = tmp_path / "run.yaml"
    path.write_text("model_list: [a]\na: {vllm: {model: Org/Model, client_codec: msgspec}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "a.vllm.client_codec" in str(info.value) and "client_codec: json" in str(info.value)
    path.write_text("model_list: [a]\na: {vllm: {model: Org/Model, client_codec: json}}\n")
    assert load_config(path).models[0].vllm.client_codec == "json"
