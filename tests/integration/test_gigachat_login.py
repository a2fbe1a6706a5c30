"""GigaChat with ``user`` and ``password`` in place of ``credentials`` (installations that issue logins): the config
reads them, the token comes from ``<api_base>/token`` with HTTP basic auth as the vendor's SDK logs in, shared and
renewed like an OAuth token, a refused login fails at once naming the two fields, and no file, log or error text
holds the password or the basic-auth value it makes. Against the loopback stand-in of standins/chat_apis.py."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.contract import Endpoint
from orchestrator.errors import AuthError
from standins.chat_apis import ANSWER, GigaChatStandIn
from tests.support.gigachat import ask_all, giga_client

REPO = Path(__file__).resolve().parents[2]
USER, PASSWORD = "deathmath-bench", "pw-" + "s3cr3t" * 6
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
LOGIN = (USER, PASSWORD)
ENV = {"DM_GIGACHAT_USER": USER, "DM_GIGACHAT_PASSWORD": PASSWORD}
EXPIRY = 10  # chats a token serves in the renewal tests


def config(tmp_path: Path, api_base: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(
        textwrap.dedent(f"""
        model_list: [GigaChat-2-Max]
        GigaChat-2-Max:
          model_name: GigaChat-2-Max
          api_type: gigachat
          endpoints:
            - user: env:DM_GIGACHAT_USER
              password: env:DM_GIGACHAT_PASSWORD
              base_url: "{api_base}"
              profanity_check: false
          parallel: 4
    """),
        encoding="utf-8",
    )
    return path


def endpoint(tmp_path: Path, srv: GigaChatStandIn) -> Endpoint:
    (ep,) = load_config(config(tmp_path, srv.api_base), env=ENV).models[0].endpoints
    return ep


def test_the_config_reads_a_login_and_never_prints_it(tmp_path: Path, giga) -> None:
    srv = giga(login=LOGIN)
    ep = endpoint(tmp_path, srv)
    assert ep.gigachat is not None and (ep.gigachat.user, ep.gigachat.password) == (USER, PASSWORD)
    assert ep.gigachat.token_url == srv.api_base + "/token" and ep.gigachat.credentials == ""
    assert PASSWORD in ep.secrets and BASIC in ep.secrets
    assert PASSWORD not in repr(ep) + repr(ep.gigachat)


def test_workers_share_one_token_from_a_basic_auth_login_at_api_base_token(tmp_path: Path, giga) -> None:
    srv = giga(login=LOGIN, token_delay=0.3)  # a slow login: every worker wants a token at once
    score = ask_all(giga_client(endpoint(tmp_path, srv)), tmp_path, 8, parallel=8)
    assert score.answered == 8 and score.errors == 0 and len(srv.chats()) == 8
    (login,) = [r for r in srv.requests if r["path"] == "/api/v1/token"]
    assert login["headers"]["Authorization"] == f"Basic {BASIC}" and srv.token_fetches() == 1
    (token,) = srv.tokens
    assert all(r["headers"]["Authorization"] == f"Bearer {token}" for r in srv.chats())


def test_a_token_that_runs_out_is_renewed_by_logging_in_again_and_no_answer_is_lost(tmp_path: Path, giga) -> None:
    # a token serves EXPIRY chats: more than the 4 workers' retries after one renewal, so no retry meets a 401 twice
    srv = giga(login=LOGIN, expire_after=EXPIRY)
    score = ask_all(giga_client(endpoint(tmp_path, srv)), tmp_path, 3 * EXPIRY, parallel=4)
    assert score.answered == 3 * EXPIRY and score.errors == 0
    assert srv.token_fetches() >= 3 and srv.refusals() >= 2


def test_a_refused_login_is_final_names_user_and_password_and_prints_neither(tmp_path: Path, giga, caplog) -> None:
    srv = giga(login=(USER, "another-password"))
    with pytest.raises(AuthError) as err, caplog.at_level(logging.DEBUG):
        ask_all(giga_client(endpoint(tmp_path, srv)), tmp_path, 4, parallel=4)
    text = str(err.value)
    assert "HTTP 401" in text and "check `user` and `password`" in text and not err.value.retryable
    assert srv.chats() == [] and PASSWORD not in text + caplog.text and BASIC not in text + caplog.text


def test_a_run_with_a_gigachat_login_stores_every_answer_and_writes_neither_password_nor_token(
    tmp_path: Path, giga
) -> None:
    srv = giga(login=LOGIN, expire_after=EXPIRY)
    (tmp_path / "configs").mkdir()
    config(tmp_path / "configs", srv.api_base)
    console = Path(sys.executable).with_name("deathmath-orchestrate")
    proc = subprocess.run(
        [str(console), "run", "-vv", "--dataset", "sample-math"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), **ENV},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [
        json.loads(x)
        for x in (tmp_path / "results" / "details" / "GigaChat-2-Max" / "sample-math.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()
    ]
    assert rows and all(r["error"] is None and r["response"] == ANSWER for r in rows)
    assert srv.token_fetches() >= 2
    secrets = [PASSWORD, BASIC, *srv.tokens]
    assert not [s for s in secrets if s in proc.stdout + proc.stderr]
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and any(s.encode() in p.read_bytes() for s in secrets)]
    assert not leaks
