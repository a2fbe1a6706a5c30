"""The LLM judge through the real CLI: models served by the fake vLLM, the judge the loopback stand-in (an API
judge: correct, wrong and malformed replies) or a second fake vLLM (a managed judge, scheduled as a job).

The fake vLLM answers ``\\boxed{4}`` to everything, so of the six problems (answers 2..7) q2 is correct and the
other five incorrect: with ``sample_correct: 1`` all six are judged.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.config import load_config
from standins.judge import KEY, MODEL, JudgeStandIn
from tests.support.held import while_held
from tests.support.waiting import wait_for
from tests.support.workspace import Workspace, make_workspace

VERDICTS = {"q3": "correct", "q5": "Похоже, верно."}  # q3: the judge disagrees; q5: a malformed reply


def pid_of(text: str) -> str:
    """The row a task (or a prompt holding it) is of: ``Сколько будет 2+N?`` is qN."""
    return "q" + text.split("Сколько будет 2+", 1)[1].split("?", 1)[0]


def decide(user: str) -> str:
    """The stand-in's reply: by the problem named in the prompt."""
    pid = pid_of(user)
    verdict = VERDICTS.get(pid, "correct" if pid == "q2" else "incorrect")
    if verdict not in ("correct", "incorrect"):
        return verdict
    return json.dumps({"verdict": verdict, "reason": f"разбор {pid}"}, ensure_ascii=False)


@pytest.fixture
def standin():
    server = JudgeStandIn(decide)
    yield server
    server.close()


@pytest.fixture
def ws(tmp_path: Path, fake_vllm: Path) -> Workspace:
    return make_workspace(tmp_path / "ws", fake_vllm, tmp_path / "assets")


def api_judge(ws: Workspace, standin: JudgeStandIn, *, mode: str = "audit", parallel: int = 2) -> None:
    ws.config.write_text(
        ws.good()
        + f"judge: {{model: j, mode: {mode}, sample_correct: 1.0}}\n"
        + f"j:\n  model_name: {MODEL}\n  parallel: {parallel}\n"
        + f"  endpoints: [{{api_base: '{standin.api_base}', api_key: env:JUDGE_KEY}}]\n"
    )


def judged(ws: Workspace) -> dict[str, dict]:
    return {pid_of(line["task"]): line.get("judge") for line in ws.details()}


def test_an_api_judge_audits_every_answer_once_and_its_verdicts_are_stored_shown_and_reviewed(
    ws: Workspace, standin: JudgeStandIn
) -> None:
    api_judge(ws, standin)
    done = ws.cli(env={"JUDGE_KEY": KEY})
    assert done.returncode == 0, done.stderr
    assert {r["max_tokens"] for r in standin.requests} == {512}  # the block's 2048 (default), capped for a verdict
    verdicts = {pid: j["verdict"] for pid, j in judged(ws).items()}
    assert verdicts == {
        "q0": "incorrect",
        "q1": "incorrect",
        "q2": "correct",
        "q3": "correct",
        "q4": "incorrect",
        "q5": "unparsed",
    }
    assert all(j["model"] == "j" and j["hash"] for j in judged(ws).values())
    assert len(standin.requests) == 6

    again = ws.cli(env={"JUDGE_KEY": KEY})
    assert again.returncode == 0, again.stderr
    assert len(standin.requests) == 6  # every verdict was checkpointed: the judge is not asked again

    board = json.loads((ws.results / "leaderboard.json").read_text())["rows"][0]
    assert board["judge"]["judged"] == 5 and board["judge"]["unparsed"] == 1
    assert board["judge"]["rule_incorrect_judge_correct"] == 1
    assert board["judge"]["rule_correct_judge_incorrect"] == 0
    assert board["judge"]["mode"] == "audit" and board["combined"] == pytest.approx(1 / 6)
    md = (ws.results / "leaderboard.md").read_text()
    assert "Rule ✗ judge ✓" in md and "1 (25.0%)" in md
    page = (ws.results / "details" / "m" / "index.html").read_text()
    assert 'id="jd"' in page and page.count('data-j="1"') == 1 and "разбор q3" in page

    out = ws.root / "cases.jsonl"
    result = CliRunner().invoke(main, ["review", "--results-dir", str(ws.results), "--out", str(out)])
    assert result.exit_code == 0, result.output
    cases = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(pid_of(c["task"]), c["rule_verdict"], c["judge_verdict"]) for c in cases] == [
        ("q3", "incorrect", "correct")
    ]

    regraded = CliRunner().invoke(main, ["regrade", "--results-dir", str(ws.results)])
    assert regraded.exit_code == 0, regraded.output
    assert {pid: j["verdict"] for pid, j in judged(ws).items()} == verdicts  # regrade keeps the verdicts

    assert ws.cli("--rejudge", env={"JUDGE_KEY": KEY}).returncode == 0
    assert len(standin.requests) == 12
    for root in (ws.results, ws.logs):
        assert [p for p in root.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()] == []


def test_rescue_mode_counts_judge_accepted_answers_and_says_so(ws: Workspace, standin: JudgeStandIn) -> None:
    api_judge(ws, standin, mode="rescue")
    assert ws.cli(env={"JUDGE_KEY": KEY}).returncode == 0
    board = json.loads((ws.results / "leaderboard.json").read_text())["rows"][0]
    assert board["combined"] == pytest.approx(2 / 6) and board["judge"]["mode"] == "rescue"
    assert "(rule + judge)" in (ws.results / "leaderboard.md").read_text()


def test_a_judge_whose_requests_all_fail_ends_failed_with_the_servers_own_message(
    ws: Workspace, standin: JudgeStandIn
) -> None:
    api_judge(ws, standin)
    ws.config.write_text(ws.config.read_text().replace(f"model_name: {MODEL}", "model_name: not-served"))
    done = ws.cli(env={"JUDGE_KEY": KEY})
    assert done.returncode == 1
    said = done.stdout + done.stderr
    assert "6 answer(s) not judged" in said and "HTTP 404: model 'not-served' not served" in said, said
    assert all(j is None for j in judged(ws).values()) and KEY not in said


def test_an_api_judge_with_two_endpoints_shares_the_audit_between_them(ws: Workspace, standin: JudgeStandIn) -> None:
    second = JudgeStandIn(decide)
    try:
        api_judge(ws, standin)
        text = ws.config.read_text()
        first = f"{{api_base: '{standin.api_base}', api_key: env:JUDGE_KEY}}"
        both = first + f", {{api_base: '{second.api_base}', api_key: env:JUDGE_KEY}}"
        ws.config.write_text(text.replace(f"[{first}]", f"[{both}]"))
        assert ws.cli(env={"JUDGE_KEY": KEY}).returncode == 0
        assert len(standin.requests) == len(second.requests) == 3  # six answers, in turn
        assert all(j is not None for j in judged(ws).values())
    finally:
        second.close()


def judge_state(ws: Workspace) -> str | None:
    """The judge's state in the newest status.json (rewritten every 2 s while the run lives)."""
    files = sorted(ws.results.glob("runs/*/status.json"), key=lambda f: f.stat().st_mtime)
    try:
        models = json.loads(files[-1].read_text())["models"] if files else []
    except ValueError:  # the writer replaces the file atomically; a torn read is not expected but not fatal here
        return None
    return next((m["state"] for m in models if m["model"] == "judge"), None)


def test_a_run_stopped_mid_audit_resumes_without_asking_a_stored_verdict_again(
    ws: Workspace, standin: JudgeStandIn
) -> None:
    gate = threading.Event()

    def slow(user: str) -> str:
        if len(standin.requests) > 2:
            gate.wait(30)  # the third question waits until the run is being stopped
        return decide(user)

    standin.decide = slow
    api_judge(ws, standin, parallel=1)
    store = ws.results / "details" / "m" / "judge" / "ds.jsonl"
    proc = ws.popen(env={"JUDGE_KEY": KEY})
    try:
        wait_for(lambda: store.exists() and len(store.read_text().splitlines()) == 2, 120, "two verdicts stored")
        wait_for(lambda: judge_state(ws) == "running", 15, "status.json showing the judge at work")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        gate.set()  # the request in flight is answered; no new one starts
        proc.communicate(timeout=60)
    finally:
        gate.set()
        if proc.poll() is None:
            proc.kill()
    first = [json.loads(line)["key"] for line in store.read_text().splitlines()]
    tasks = {line["id"]: line["task"] for line in ws.details()}
    asked_first = {pid_of(tasks[key.split("#")[0]]) for key in first}
    assert 2 <= len(asked_first) < 6 and proc.returncode != 0
    asked_before = len(standin.requests)
    done = ws.cli(env={"JUDGE_KEY": KEY})
    assert done.returncode == 0, done.stderr
    later = [r["messages"][1]["content"] for r in standin.requests[asked_before:]]
    assert len(later) == 6 - len(asked_first)  # the stored verdicts were not asked again
    assert not {pid_of(text) for text in later} & asked_first
    assert all(j is not None for j in judged(ws).values())


def test_a_managed_judge_runs_after_the_models_and_its_noise_is_recorded_unparsed(
    ws: Workspace, fake_vllm: Path
) -> None:
    ws.config.write_text(
        ws.good()
        + "judge: {model: jm, sample_correct: 0}\n"
        + f"jm:\n  model_name: jm\n  vllm: {{model: {ws.assets / 'model'}, startup_timeout: 120, "
        + f"env: {{PYTHONPATH: {fake_vllm}}}}}\n"
    )
    done = ws.cli()
    assert done.returncode == 0, done.stderr
    verdicts = {pid: (j or {}).get("verdict") for pid, j in judged(ws).items()}
    assert verdicts == {"q0": "unparsed", "q1": "unparsed", "q2": None, "q3": "unparsed", "q4": "unparsed",
                        "q5": "unparsed"}  # fmt: skip
    manifest = json.loads(next((ws.results / "runs").glob("*/manifest.json")).read_text())
    assert set(manifest["models"]) >= {"m", "judge"}
    logs = sorted(ws.logs.rglob("*.log"), key=lambda p: p.stat().st_mtime)
    assert [p.stem for p in logs][-1].startswith("judge")  # its server ran last
    ours = str(ws.assets / "model")
    assert not [p for p in psutil.process_iter(["cmdline"]) if ours in " ".join(p.info["cmdline"] or [])]


def test_a_managed_judge_starts_beside_a_running_model_once_another_has_ended(
    ws: Workspace, fake_vllm: Path, tmp_path: Path
) -> None:
    """Two CPU-server slots: m ends at once, s is held (its server answers nothing until a file exists). Nothing
    waits to start, so the judge takes m's slot and audits m while s runs; once s is let go, it audits s too with
    the server it already has (one judge server in all)."""
    release = tmp_path / "release"
    held = f"{{PYTHONPATH: {fake_vllm}, FAKE_VLLM_HOLD_UNTIL: '{release}'}}"
    ws.config.write_text(
        ws.good().replace("model_list: [m]", "model_list: [m, s]")
        + f"s:\n  model_name: s\n  vllm: {{model: {ws.assets / 'model'}, startup_timeout: 120, env: {held}}}\n"
        + "  parallel: 2\n  max_tokens: 16\n"
        + "judge: {model: jm, sample_correct: 0}\n"
        + f"jm:\n  model_name: jm\n  vllm: {{model: {ws.assets / 'model'}, startup_timeout: 120, "
        + f"env: {{PYTHONPATH: {fake_vllm}}}}}\n"
    )
    audited_m = ws.results / "details" / "m" / "judge" / "ds.jsonl"

    def m_judged_while_s_runs() -> None:
        wait_for(lambda: audited_m.exists() and len(audited_m.read_text().splitlines()) == 5, 120, "m judged")
        assert not [line for line in ws.details(model="s") if "response" in line]  # s runs: none of its answers

    proc = ws.popen("--max-cpu-servers", "2")
    out = while_held(proc, release, m_judged_while_s_runs, timeout=180)
    assert proc.returncode == 0, out
    for model in ("m", "s"):
        verdicts = {pid_of(line["task"]): (line.get("judge") or {}).get("verdict") for line in ws.details(model=model)}
        assert verdicts == {pid: None if pid == "q2" else "unparsed" for pid in verdicts} and len(verdicts) == 6
    assert len([p for p in ws.logs.rglob("*.log") if p.stem.startswith("judge")]) == 1


def test_a_bad_judge_block_is_one_config_line(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        "model_list: [m]\nm: {model_name: m, endpoints: [{api_base: 'http://x/v1'}]}\njudge: {model: q}\n"
    )
    with pytest.raises(Exception) as err:
        load_config(config)
    assert str(err.value) == f"{config}: judge.model: 'q' is not a model block of this file; name one of: m"


def test_the_judge_model_block_need_not_be_in_model_list(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        "model_list: [m]\nm: {model_name: m, endpoints: [{api_base: 'http://x/v1'}]}\n"
        "j: {model_name: jj, endpoints: [{api_base: 'http://y/v1'}], request_delay: 0.5}\n"
        "judge: {model: j, mode: rescue}\n"
    )
    cfg = load_config(config)
    assert [m.key for m in cfg.models] == ["m"]
    assert cfg.judge is not None and cfg.judge.model == "j" and cfg.judge.mode.value == "rescue"
    assert cfg.judge_model is not None and cfg.judge_model.model_name == "jj"
    assert cfg.judge_model.transport.request_delay == 0.5
