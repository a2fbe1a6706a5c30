"""``api_type: gigachat`` and ``openrouter`` in the config, and an original-format config with a GigaChat and an
OpenRouter model run end to end through ``python runner.py`` and ``deathmath-orchestrate`` against the loopback
stand-ins of standins/chat_apis.py: every answer stored, no credential or token in any file or output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.errors import ConfigError
from orchestrator.results import settings_hash, settings_payload
from standins.chat_apis import ANSWER, GigaChatStandIn, OpenRouterStandIn

REPO = Path(__file__).resolve().parents[2]
CREDENTIALS = "ZTJlLWNsaWVudDplMmUtc2VjcmV0LTAxMjM0NTY3ODlhYmNkZWY="
OR_KEY = "sk-or-v1-e2e" + "7" * 40
SAMPLES = 4


def config_text(giga: str, giga_auth: str, openrouter: str) -> str:
    """The original DeathMath format (no `vllm:`, no `datasets:`), pointed at the stand-ins."""
    return textwrap.dedent(f"""
        temperature: 0.0
        max_tokens: 2048
        num_examples: {SAMPLES}

        model_list:
          - GigaChat-2-Max
          - qwen3-8b

        GigaChat-2-Max:
            model_name: "GigaChat-2-Max"
            endpoints:
                - credentials: "env:DM_GIGACHAT_CREDENTIALS"
                  scope: "GIGACHAT_API_PERS"
                  base_url: "{giga}"
                  auth_url: "{giga_auth}"
                  profanity_check: false
                  timeout: 60
            api_type: gigachat
            parallel: 4
            system_prompt: "You are a helpful math assistant. Answer in Russian."
            max_tokens: 2048
            request_delay: 0.05

        qwen3-8b:
            model_name: "qwen/qwen3-8b"
            endpoints:
                - api_base: "{openrouter}"
                  api_key: "env:OPENROUTER_API_KEY"
                  x_title: "DeathMath"
            api_type: openrouter
            parallel: 4
            system_prompt: "You are a helpful math assistant. Answer in Russian."
    """)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- config -------------------------------------------------------------------------------------------------------
def test_gigachat_block_loads_with_the_originals_keys_and_defaults(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """
        model_list: [g]
        g:
          model_name: GigaChat-2-Pro
          api_type: gigachat
          endpoints: [{credentials: env:GC, timeout: 90}]
    """,
        ),
        env={"GC": CREDENTIALS},
    )
    (model,) = cfg.models
    (ep,) = model.endpoints
    assert model.api_type == "gigachat" and ep.api_base == "https://gigachat.devices.sberbank.ru/api/v1"
    assert ep.gigachat is not None and ep.gigachat.credentials == CREDENTIALS
    assert ep.gigachat.scope == "GIGACHAT_API_CORP" and ep.gigachat.profanity_check is True
    assert ep.gigachat.auth_url == "https://ngw.devices.sberbank.ru:9443/api/v2/oauth"
    assert ep.verify is True and ep.api_key is None and model.transport.timeouts.stall == 90.0
    assert CREDENTIALS not in repr(model) + str(cfg.redacted())


def test_a_literal_credential_is_redacted_and_ca_bundle_is_resolved(tmp_path: Path) -> None:
    (tmp_path / "russian_trusted_root_ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    cfg = load_config(
        write(
            tmp_path,
            f"""
        model_list: [g]
        g: {{api_type: gigachat, endpoints: [{{credentials: "{CREDENTIALS}", api_base: "https://giga.lab/api/v1",
             ca_bundle: russian_trusted_root_ca.pem, scope: GIGACHAT_API_B2B}}]}}
    """,
        )
    )
    (ep,) = cfg.models[0].endpoints
    assert ep.verify == str((tmp_path / "russian_trusted_root_ca.pem").resolve()) and ep.api_base.startswith(
        "https://giga"
    )
    assert cfg.redacted()["g"]["endpoints"][0]["credentials"] == "<redacted>"


def test_openrouter_needs_no_endpoints_block(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """
        model_list: [q]
        q: {model_name: qwen/qwen3-8b, api_type: openrouter}
    """,
        ),
        env={"OPENROUTER_API_KEY": OR_KEY},
    )
    (ep,) = cfg.models[0].endpoints
    assert (ep.api_base, ep.api_key, ep.headers) == ("https://openrouter.ai/api/v1", OR_KEY, ())


@pytest.mark.parametrize(
    "block, fragments",
    [
        (
            "{api_type: openrouter}",
            ["q.endpoints[0].api_key", "'OPENROUTER_API_KEY' is not set", "export OPENROUTER_API_KEY"],
        ),
        ("{api_type: gigachat}", ["q", "neither `endpoints` nor `vllm`", "credentials: env:GIGACHAT_CREDENTIALS"]),
        (
            "{api_type: gigachat, endpoints: [{credentials: x, verify_ssl_certs: 'no'}]}",
            ["q.endpoints[0].verify_ssl_certs", "expected true or false"],
        ),
        (
            "{api_type: gigachat, endpoints: [{credentials: x, ca_bundle: /no/such.pem}]}",
            ["q.endpoints[0].ca_bundle", "does not exist"],
        ),
        (
            "{api_type: gigachat, endpoints: [{credentials: x, api_base: 'https://a/v1', base_url: 'https://b/v1'}]}",
            ["q.endpoints[0].base_url", "keep one of them"],
        ),
        ("{api_type: gigachat, endpoints: [{credentials: x, login: me}]}", ["q.endpoints[0].login", "unknown key"]),
        (
            "{api_type: gigachat, endpoints: [{credentials: x, user: me}]}",
            ["q.endpoints[0].user", "given together with credentials", "or `user` and `password`"],
        ),
        (
            "{api_type: gigachat, endpoints: [{user: me}]}",
            ["q.endpoints[0].password", "missing (`user` is given)", "password: env:GIGACHAT_PASSWORD"],
        ),
        ("{api_type: gigachat, endpoints: [{password: pw}]}", ["q.endpoints[0].user", "missing (`password` is given)"]),
        (
            "{api_type: gigachat, endpoints: [{scope: GIGACHAT_API_PERS}]}",
            ["q.endpoints[0].credentials", "missing", "or `user` and `password: env:GIGACHAT_PASSWORD`"],
        ),
        (
            "{api_type: openrouter, endpoints: [{api_key: k, credentials: x}]}",
            ["q.endpoints[0].credentials", "not a key of api_type openrouter"],
        ),
        ("{api_type: claude, endpoints: [{api_base: 'http://x/v1'}]}", ["q.api_type", "openrouter or gigachat"]),
    ],
)
def test_bad_api_type_blocks_are_one_line_naming_the_field(tmp_path: Path, block: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, f"model_list: [q]\nq: {block}\n"), env={})
    message = str(err.value)
    assert "\n" not in message and all(f in message for f in fragments), message


# -- end to end ---------------------------------------------------------------------------------------------------
@pytest.fixture
def standins():
    giga = GigaChatStandIn(CREDENTIALS, expire_after=3)  # tokens run out mid-run: 401, renewal, on
    router = OpenRouterStandIn(OR_KEY)
    yield giga, router
    giga.close()
    router.close()


@pytest.mark.parametrize("entry", ["runner.py", "deathmath-orchestrate"])
def test_an_original_config_with_gigachat_and_openrouter_runs_unchanged_and_writes_no_secret(
    tmp_path: Path, standins, entry: str
) -> None:
    giga, router = standins
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "run.yaml").write_text(config_text(giga.api_base, giga.auth_url, router.api_base))
    console = Path(sys.executable).with_name("deathmath-orchestrate")
    command = [sys.executable, str(REPO / "runner.py")] if entry == "runner.py" else [str(console), "run", "-vv"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "DM_GIGACHAT_CREDENTIALS": CREDENTIALS, "OPENROUTER_API_KEY": OR_KEY}
    command += ["--dataset", "sample-math,sample-physics"]  # the built-in samples: no hub here
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for model in ("GigaChat-2-Max", "qwen3-8b"):
        for dataset in ("sample-math", "sample-physics"):
            rows = [
                json.loads(x)
                for x in (tmp_path / "results" / "details" / model / f"{dataset}.jsonl")
                .read_text(encoding="utf-8")
                .splitlines()
            ]
            assert len(rows) == SAMPLES and all(r["error"] is None and r["response"] == ANSWER for r in rows)
    assert "GigaChat-2-Max" in (tmp_path / "results" / "leaderboard.md").read_text(encoding="utf-8")
    assert giga.token_fetches() >= 3 and giga.refusals() >= 2 and len(giga.chats()) == 2 * SAMPLES + giga.refusals()
    assert all(r["headers"].get("X-Title") == "DeathMath" for r in router.chats())
    secrets = [CREDENTIALS, OR_KEY, *giga.tokens]
    assert not [s for s in secrets if s in proc.stdout + proc.stderr]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [s for s in secrets if s.encode() in data], path


def test_profanity_check_starts_a_new_series_and_other_models_keep_their_hash(tmp_path: Path) -> None:
    block = "model_list: [g]\ng: {{api_type: gigachat, endpoints: [{{credentials: x{extra}}}]}}\n"
    censored, free = (
        load_config(write(tmp_path, block.format(extra=e))).models[0] for e in ("", ", profanity_check: false")
    )
    assert settings_hash(censored, "ds", "v", "fp") != settings_hash(free, "ds", "v", "fp")
    plain = load_config(write(tmp_path, "model_list: [a]\na: {endpoints: [{api_base: 'http://x/v1'}]}\n")).models[0]
    assert "profanity_check" not in settings_payload(plain, "ds", "v", "fp")
