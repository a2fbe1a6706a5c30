"""A message when the night ends (orchestrator/notify.py): webhooks from run.yaml's ``notify:`` get a JSON POST when a
model ends and when the run ends. Against real HTTP receivers on loopback: one that answers, one that answers 500
(retried, logged once, the run goes on), one that hangs (cut off by the timeout; the end of the run waits a bounded
time). Config errors are one line with exit code 2; secrets (env: header values, a secret URL) reach no log, no file
and no manifest. The last test runs the real CLI with the fake vLLM of conftest: one model finishes, one fails."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.contract import SeriesScore
from orchestrator.errors import ConfigError
from orchestrator.job import ModelOutcome
from orchestrator.notify import Notifier, RunNotices, Webhook, parse_notify
from tests.support.workspace import Workspace, make_workspace

SECRET = "hook-token-SECRET-5f3a"
URL_SECRET = "T0001/B0002/url-SECRET-77"


class Receiver(ThreadingHTTPServer):
    """Records every POST (path, headers, JSON body); answers with ``status``, or hangs until closed."""

    daemon_threads = True

    def __init__(self, status: int | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status, self.requests, self.release = status, [], threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/services/{URL_SECRET}"

    def bodies(self) -> list[dict]:
        return [r["body"] for r in self.requests]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server: Receiver = self.server  # type: ignore[assignment]  # the Receiver that made this handler
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if server.status is None:
            server.release.wait(60)
            return
        self.send_response(server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def receiver(status: int | None) -> Iterator[Receiver]:
    server = Receiver(status)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def good() -> Iterator[Receiver]:
    yield from receiver(200)


@pytest.fixture
def failing() -> Iterator[Receiver]:
    yield from receiver(500)


@pytest.fixture
def hanging() -> Iterator[Receiver]:
    yield from receiver(None)


def score(dataset: str, correct: int, total: int) -> SeriesScore:
    return SeriesScore("m", dataset, "h", total, total, correct, 0, 1, 1, 1.0)


FINISHED = ModelOutcome(model="qwen", status="finished", scores=[score("sample-math", 3, 4)], seconds=12.0)
FAILED = ModelOutcome(model="llama", status="failed", error="server failed to start: CUDA out of memory\ntraceback")


def hook(server: Receiver, **headers: str) -> Webhook:
    return Webhook(url=server.url, headers=headers, label=f"notify ({server.server_address[1]})")


def test_each_model_end_and_the_run_end_reach_every_hook_as_json(good: Receiver, tmp_path: Path) -> None:
    notices = RunNotices(Notifier([hook(good, Authorization=f"Bearer {SECRET}")]), "run-1", tmp_path)
    notices.model_ended(FINISHED)
    notices.model_ended(FINISHED)  # told once
    notices.run_ended("failed", 1, [FINISHED, FAILED])  # llama ended without being told: told now, then the run
    assert [b["event"] for b in good.bodies()] == ["model_end", "model_end", "run_end"]
    first, failed, end = good.bodies()
    assert first["model"] == "qwen" and first["state"] == "finished" and first["error"] is None
    assert first["scores"] == [
        {"dataset": "sample-math", "accuracy": 0.75, "correct": 3, "answered": 4, "total": 4, "complete": True}
    ]
    assert first["details"] == str(tmp_path.resolve() / "details" / "qwen" / "index.html")
    assert failed["state"] == "failed" and failed["error"] == "server failed to start: CUDA out of memory"
    assert end["state"] == "failed" and end["exit_code"] == 1 and end["leaderboard"].endswith("leaderboard.html")
    assert end["models"] == [
        {"model": "qwen", "state": "finished", "error": None},
        {"model": "llama", "state": "failed", "error": "server failed to start: CUDA out of memory"},
    ]
    assert "1 finished, 1 failed" in end["text"] and "qwen finished: sample-math 75.0%" in first["text"]
    request = good.requests[0]
    assert request["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert request["headers"]["Content-Type"].startswith("application/json")


def test_a_hook_answering_500_is_retried_logged_once_and_the_others_get_everything(
    good: Receiver, failing: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier([hook(failing, Authorization=SECRET), hook(good)], attempts=3, backoff=0.0)
    with caplog.at_level(logging.DEBUG, logger="orchestrator.notify"):
        notifier.send({"event": "model_end", "n": 1})
        notifier.send({"event": "run_end", "n": 2})
        assert notifier.close(wait=30)
    assert len(failing.requests) == 6 and [b["n"] for b in good.bodies()] == [1, 2]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "HTTP 500 after 3 attempt(s)" in warnings[0]
    assert SECRET not in caplog.text and URL_SECRET not in caplog.text


def test_a_hanging_hook_is_cut_off_by_the_timeout(hanging: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier([hook(hanging)], timeout=0.5, attempts=2, backoff=0.0)
    with caplog.at_level(logging.WARNING, logger="orchestrator.notify"):
        notifier.send({"event": "run_end"})
        assert notifier.close(wait=60)  # the timeout ended both attempts, long before the bound
    assert len(hanging.requests) == 2 and "ReadTimeout after 2 attempt(s)" in caplog.text
    assert URL_SECRET not in caplog.text


def test_the_end_of_the_run_waits_for_hooks_no_longer_than_its_bound(hanging: Receiver) -> None:
    notifier = Notifier([hook(hanging)], timeout=120, attempts=1)
    notifier.send({"event": "run_end"})
    assert notifier.close(wait=0.5) is False  # gave up on the hook; the run ends anyway


# -- config ---------------------------------------------------------------------------------------------------------
MODEL = "model_list: [m]\nm: {model_name: m, endpoints: [{api_base: 'http://127.0.0.1:9/v1', api_key: k}]}\n"


def config(tmp_path: Path, notify: str, env: dict[str, str] | None = None):
    path = tmp_path / "run.yaml"
    path.write_text(MODEL + notify)
    return load_config(path, env=env or {})


def test_header_values_and_the_url_may_be_env_secrets_that_the_manifest_never_holds(tmp_path: Path) -> None:
    cfg = config(
        tmp_path,
        "notify:\n  - {url: env:SLACK_URL}\n  - url: https://hooks.example.org/x/LITERAL-SECRET?k=1\n"
        "    headers: {Authorization: env:HOOK_TOKEN, X-Plain: LITERAL-HEADER}\n",
        {"SLACK_URL": f"https://hooks.slack.com/services/{URL_SECRET}", "HOOK_TOKEN": SECRET},
    )
    assert cfg.notify[0].url.endswith(URL_SECRET) and cfg.notify[1].headers["Authorization"] == SECRET
    assert "SECRET" not in repr(cfg.notify)
    shown = json.dumps(cfg.redacted())
    assert "SECRET" not in shown and "LITERAL-HEADER" not in shown
    assert cfg.redacted()["notify"] == [
        {"url": "env:SLACK_URL"},
        {
            "url": "https://hooks.example.org/...",
            "headers": {"Authorization": "env:HOOK_TOKEN", "X-Plain": "<redacted>"},
        },
    ]
    assert config(tmp_path, "").notify == ()


@pytest.mark.parametrize(
    "notify, where, fix",
    [
        ("notify: {url: https://x.org}\n", "notify:", "a list of webhooks"),
        ("notify: [{url: 'hooks.slack.com/services/T1/SECRET'}]\n", "notify[0].url:", "https://host/path"),
        ("notify: [{url: ftp://x.org/f}]\n", "notify[0].url:", "scheme ftp"),
        ("notify: [{url: env:NOT_SET_ANYWHERE}]\n", "notify[0].url:", "export NOT_SET_ANYWHERE"),
        ("notify: [{headers: {}}]\n", "notify[0].url:", "missing"),
        ("notify: [{url: 'https://x.org', headers: [Authorization]}]\n", "notify[0].headers:", "a mapping"),
        ("notify: [{url: 'https://x.org', header: {}}]\n", "notify[0].header:", "did you mean 'headers'"),
        ("notify: [{url: 'https://x.org', method: PUT}]\n", "notify[0].method:", "allowed keys: headers, url"),
        ("notify: [{url: 'https://x.org', headers: {A: 5}}]\n", "notify[0].headers.A:", "a string"),
        ("notify: [https://x.org]\n", "notify[0]:", "expected a mapping"),
    ],
)
def test_a_bad_notify_block_is_one_line_naming_the_field_with_exit_code_2(
    tmp_path: Path, notify: str, where: str, fix: str
) -> None:
    with pytest.raises(ConfigError) as err:
        config(tmp_path, notify)
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'run.yaml'}: {where}") and fix in text
    assert "\n" not in text and err.value.exit_code == 2 and "SECRET" not in text


def test_parse_notify_takes_the_raw_mapping_and_the_file_for_messages() -> None:
    hooks = parse_notify([{"url": "https://a.org/x", "headers": {"K": "env:V"}}], "f.yaml", {"V": "v"})
    assert hooks == (Webhook(url="https://a.org/x", headers={"K": "v"}, label="notify[0] (https://a.org)"),)


# -- the real CLI -----------------------------------------------------------------------------------------------------
@pytest.fixture
def ws(tmp_path: Path, fake_vllm: Path) -> Workspace:
    return make_workspace(tmp_path / "ws", fake_vllm, tmp_path / "assets")


def test_a_run_tells_its_hooks_of_each_model_and_of_its_end_and_a_failing_hook_fails_nothing(
    ws: Workspace, good: Receiver, failing: Receiver
) -> None:
    bad_model = (
        f"bad:\n  model_name: bad\n  vllm: {{model: {ws.assets / 'model'}, startup_timeout: 60, "
        f"env: {{PYTHONPATH: {ws.fake}, FAKE_VLLM_FAIL: 'CUDA out of memory'}}}}\n  max_tokens: 16\n"
    )
    hooks = (
        f"notify:\n  - {{url: env:DM_HOOK_URL, headers: {{Authorization: env:DM_HOOK_TOKEN}}}}\n"
        f"  - {{url: '{failing.url}'}}\n"
    )
    ws.config.write_text(ws.good().replace("model_list: [m]", "model_list: [m, bad]") + bad_model + hooks)
    run = ws.cli("-v", env={"DM_HOOK_URL": good.url, "DM_HOOK_TOKEN": SECRET})
    assert run.returncode == 1, run.stdout + run.stderr  # the bad model failed; the hooks changed nothing
    events = {(b["event"], b.get("model")): b for b in good.bodies()}
    assert set(events) == {("model_end", "m"), ("model_end", "bad"), ("run_end", None)}
    assert good.bodies()[-1]["event"] == "run_end"
    assert events["model_end", "m"]["state"] == "finished" and events["model_end", "m"]["scores"][0]["total"] == 6
    assert (
        events["model_end", "bad"]["state"] == "failed" and "CUDA out of memory" in events["model_end", "bad"]["error"]
    )
    end = events["run_end", None]
    assert end["state"] == "failed" and end["exit_code"] == 1
    assert (
        Path(end["leaderboard"]) == (ws.results / "leaderboard.html").resolve() and Path(end["leaderboard"]).is_file()
    )
    assert all(r["headers"]["Authorization"] == SECRET for r in good.requests)
    assert len(failing.requests) == 3 * 3  # three messages, three attempts each
    assert run.stderr.count("notify: notify[1] (http://127.0.0.1): HTTP 500 after 3 attempt(s)") == 1
    for secret in (SECRET, URL_SECRET):
        assert secret not in run.stdout + run.stderr
        assert [str(p) for p in ws.root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()] == [
            str(ws.config)
        ] * (secret == URL_SECRET)
