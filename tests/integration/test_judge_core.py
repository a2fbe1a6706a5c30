"""The LLM judge's core: its config block, the strict reading of replies, which answers it is asked about, the
checkpoint of its replies and one series' audit against a loopback judge over real HTTP."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest
import requests

from orchestrator.contract import AnswerRecord, Endpoint
from orchestrator.errors import ConfigError, EndpointError
from orchestrator.judge import (
    ChatJudge,
    JudgeMode,
    JudgeSettings,
    JudgeStore,
    JudgeVerdict,
    audit_series,
    judge_stats,
    parse_judge,
    read_reply,
    rescued,
    with_verdicts,
    write_review,
)
from orchestrator.judge.prompt import RESPONSE_FORMAT
from orchestrator.judge.select import in_share, needs_judging
from orchestrator.results.layout import SeriesPaths
from standins.judge import KEY, MODEL, JudgeStandIn


def fail(where: str, problem: str, fix: str = "") -> ConfigError:
    return ConfigError(f"run.yaml: {where}: {problem}" + (f"; {fix}" if fix else ""))


def record(i: int, verdict: str, *, extracted: str = "", response: str | None = None, **kw) -> AnswerRecord:
    text = f"Решение...\nОтвет: {extracted or i}" if response is None else response
    return AnswerRecord(
        id=f"p{i}",
        dataset="math",
        model="m",
        task=f"задача {i}",
        reference=str(i),
        response=text,
        extracted=extracted or str(i),
        verdict=verdict,
        **kw,
    )


# -- config ----------------------------------------------------------------------------------------------------------


def test_a_judge_block_parses_with_its_defaults() -> None:
    assert parse_judge({"model": "qwen-judge"}, {"qwen-judge", "m"}, fail) == JudgeSettings("qwen-judge")
    full = parse_judge({"model": "m", "mode": "rescue", "sample_correct": 1, "seed": 7}, {"m"}, fail)
    assert full == JudgeSettings("m", JudgeMode.RESCUE, 1.0, 7)
    assert parse_judge(None, {"m"}, fail) is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"model": "nobody"}, "run.yaml: judge.model: 'nobody' is not a model block of this file; name one of: m"),
        ({}, "run.yaml: judge.model: missing; name the model block that judges"),
        ({"model": "m", "mode": "max"}, "run.yaml: judge.mode: unsupported value 'max'; use audit or rescue"),
        ({"model": "m", "sample_correct": 1.5}, "run.yaml: judge.sample_correct: 1.5 is not a share"),
        ({"model": "m", "sample_correct": True}, "run.yaml: judge.sample_correct: True is not a share"),
        (
            {"model": "m", "sample_corect": 0.1},
            "run.yaml: judge.sample_corect: unknown key; did you mean `sample_correct`?",
        ),
        (["m"], "run.yaml: judge: expected a mapping, got list"),
    ],
)
def test_a_bad_judge_block_is_one_line_naming_the_field_the_value_and_the_fix(raw: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_judge(raw, {"m"}, fail)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


# -- replies ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ('{"verdict": "correct", "reason": "совпадает"}', JudgeVerdict.CORRECT),
        ('  {"verdict": "incorrect", "reason": "знак"}\n', JudgeVerdict.INCORRECT),
        ('```json\n{"verdict": "correct", "reason": "ok"}\n```', JudgeVerdict.CORRECT),
        ('{"verdict": "correct"}', JudgeVerdict.CORRECT),
        ('Вердикт: {"verdict": "correct", "reason": "ok"}', JudgeVerdict.UNPARSED),
        ('{"verdict": "correct", "reason": "ok"} {"verdict": "incorrect"}', JudgeVerdict.UNPARSED),
        ('{"verdict": "верно", "reason": "ok"}', JudgeVerdict.UNPARSED),
        ('{"verdict": "unparsed", "reason": "ok"}', JudgeVerdict.UNPARSED),
        ('{"verdict": "correct", "reason": "ok", "score": 1}', JudgeVerdict.UNPARSED),
        ('{"verdict": "correct", "reason": 5}', JudgeVerdict.UNPARSED),
        ('["correct"]', JudgeVerdict.UNPARSED),
        ("correct", JudgeVerdict.UNPARSED),
        ("", JudgeVerdict.UNPARSED),
        (None, JudgeVerdict.UNPARSED),
    ],
)
def test_a_reply_is_read_only_when_it_is_exactly_the_json_asked_for(text: str | None, verdict: JudgeVerdict) -> None:
    assert read_reply(text).verdict is verdict


# -- which answers ---------------------------------------------------------------------------------------------------


def test_every_rejected_answer_is_judged_and_no_answer_that_is_not_there() -> None:
    judged = {v: needs_judging(record(1, v), model="m", share=0.0, seed=0) for v in ("incorrect", "unparsed")}
    assert judged == {"incorrect": True, "unparsed": True}
    assert not needs_judging(record(1, "correct"), model="m", share=0.0, seed=0)
    assert not needs_judging(record(1, "timeout"), model="m", share=1.0, seed=0)
    assert not needs_judging(record(1, "incorrect", error="HTTP 500"), model="m", share=1.0, seed=0)
    assert not needs_judging(record(1, "unparsed", response="  "), model="m", share=1.0, seed=0)
    assert needs_judging(record(1, "correct"), model="m", share=1.0, seed=0)


def test_the_seeded_share_of_correct_answers_is_stable_and_near_its_size() -> None:
    keys = [f"p{i}#0" for i in range(4000)]
    picked = [k for k in keys if in_share(3, "m", "math", k, 0.05)]
    assert picked == [k for k in reversed(keys) if in_share(3, "m", "math", k, 0.05)][::-1]
    assert 140 < len(picked) < 260
    assert picked != [k for k in keys if in_share(4, "m", "math", k, 0.05)]


# -- the audit over real HTTP ----------------------------------------------------------------------------------------


@pytest.fixture
def standin():
    server = JudgeStandIn()
    yield server
    server.close()


def judge_for(server: JudgeStandIn, **kw) -> ChatJudge:
    return ChatJudge(Endpoint(api_base=server.api_base, api_key=KEY), MODEL, backoff=0.01, **kw)


def series(tmp_path: Path) -> list[AnswerRecord]:
    return [
        record(1, "correct"),
        record(2, "incorrect", extracted="7"),  # the judge says incorrect too
        record(3, "unparsed", extracted="3"),  # the stand-in says correct: a rescue
        record(4, "incorrect", extracted="4"),  # correct by the judge
        record(5, "timeout"),
    ]


def test_a_series_is_audited_once_and_its_verdicts_land_in_the_details_lines(standin, tmp_path: Path) -> None:
    store = JudgeStore(SeriesPaths.of(tmp_path, "m", "math"))
    settings = JudgeSettings(MODEL, sample_correct=1.0)
    records = series(tmp_path)
    result = audit_series(records, judge=MODEL, model="m", settings=settings, ask=judge_for(standin), store=store)
    assert (result.asked, result.kept, result.failed) == (4, 0, 0)  # p1 (the share), p2, p3, p4; never the timeout
    again = audit_series(records, judge=MODEL, model="m", settings=settings, ask=judge_for(standin), store=store)
    assert (again.asked, again.kept) == (0, 4)
    assert len(standin.requests) == 4
    merged = {r.id: r for r in with_verdicts(records, store, MODEL)}
    assert merged["p3"].judge["verdict"] == "correct" and merged["p2"].judge["verdict"] == "incorrect"
    assert merged["p5"].judge is None
    stats = judge_stats(merged.values())
    assert (stats.judged, stats.rescued, stats.flagged, stats.rule_rejected) == (4, 2, 0, 3)
    assert [r.id for r in merged.values() if rescued(r)] == ["p1", "p3", "p4"]
    line = json.loads(json.dumps(merged["p3"].to_dict()))
    assert AnswerRecord.from_dict(line).judge == merged["p3"].judge
    assert "judge" not in merged["p5"].to_dict()


def test_rejudge_asks_again_and_a_new_judge_model_does_not_reuse_old_verdicts(standin, tmp_path: Path) -> None:
    store = JudgeStore(SeriesPaths.of(tmp_path, "m", "math"))
    settings = JudgeSettings(MODEL, sample_correct=0.0)
    records = series(tmp_path)
    audit_series(records, judge=MODEL, model="m", settings=settings, ask=judge_for(standin), store=store)
    result = audit_series(
        records, judge=MODEL, model="m", settings=settings, ask=judge_for(standin), store=store, rejudge=True
    )
    assert result.asked == 3 and len(standin.requests) == 6
    assert all(r.judge is None for r in with_verdicts(records, store, "another-judge"))


def test_malformed_and_failed_replies_are_recorded_or_retried_never_a_crash(tmp_path: Path) -> None:
    replies = iter(['{"verdict": "correct", "reason": "ok"}', "Думаю, что верно.", '{"verdict": "maybe"}'])
    lock = threading.Lock()

    def decide(_: str) -> str:
        with lock:
            return next(replies)

    server = JudgeStandIn(decide)
    try:
        store = JudgeStore(SeriesPaths.of(tmp_path, "m", "math"))
        settings = JudgeSettings(MODEL, sample_correct=0.0)
        records = [record(i, "incorrect", extracted="x") for i in (1, 2, 3, 4)]
        server.status.extend([500] * 3)  # the first request fails three times, then answers
        ask = judge_for(server, retries=2)
        result = audit_series(records, judge=MODEL, model="m", settings=settings, ask=ask, store=store, workers=1)
        assert (result.asked, result.failed) == (3, 1)
        verdicts = sorted(r.verdict.value for r in store.load().values())
        assert verdicts == ["correct", "unparsed", "unparsed"]
        server.decide = lambda _: '{"verdict": "incorrect", "reason": "нет"}'
        resumed = audit_series(records, judge=MODEL, model="m", settings=settings, ask=ask, store=store)
        assert (resumed.asked, resumed.kept) == (1, 3)
    finally:
        server.close()


def test_a_stop_ends_the_audit_between_requests_and_keeps_what_was_stored(standin, tmp_path: Path) -> None:
    stop = threading.Event()
    store = JudgeStore(SeriesPaths.of(tmp_path, "m", "math"))
    seen = []

    def decide(user: str) -> str:
        seen.append(user)
        if len(seen) == 2:
            stop.set()
        return '{"verdict": "incorrect", "reason": "нет"}'

    standin.decide = decide
    records = [record(i, "incorrect", extracted="x") for i in range(10)]
    settings = JudgeSettings(MODEL, sample_correct=0.0)
    result = audit_series(
        records, judge=MODEL, model="m", settings=settings, ask=judge_for(standin), store=store, workers=1, stop=stop
    )
    assert result.stopped and result.asked == 2 and len(store.load()) == 2


def test_the_key_never_reaches_the_checkpoint_or_an_error(standin, tmp_path: Path) -> None:
    store = JudgeStore(SeriesPaths.of(tmp_path, "m", "math"))
    records = [record(1, "incorrect", extracted="x")]
    audit_series(records, judge=MODEL, model="m", settings=JudgeSettings(MODEL), ask=judge_for(standin), store=store)
    assert KEY not in store.path.read_text()
    wrong = ChatJudge(Endpoint(api_base=standin.api_base, api_key=KEY + "x"), MODEL, retries=0)
    with pytest.raises(Exception) as err:
        wrong([{"role": "system", "content": ""}, {"role": "user", "content": ""}], {})
    assert "HTTP 401" in str(err.value) and KEY not in str(err.value)


def test_a_server_whose_structured_outputs_fail_is_asked_without_the_schema_and_read_strictly(
    standin, tmp_path: Path, caplog
) -> None:
    standin.schema_status = 500
    store = JudgeStore(SeriesPaths.of(tmp_path, "m", "math"))
    records = [record(i, "incorrect", extracted="x") for i in (1, 2, 3)]
    settings = JudgeSettings(MODEL, sample_correct=0.0)
    ask = judge_for(standin, retries=1)
    with caplog.at_level(logging.WARNING, logger="orchestrator.judge.ask"):
        result = audit_series(records, judge=MODEL, model="m", settings=settings, ask=ask, store=store, workers=1)
    assert (result.asked, result.failed) == (3, 0)
    assert ["response_format" in r for r in standin.requests] == [True, True, False, False, False]
    assert sorted(r.verdict.value for r in store.load().values()) == ["incorrect"] * 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "HTTP 500: grammar rejected tokens" in warnings[0]


def test_a_failure_names_the_servers_message_and_keeps_asking_with_the_schema_later(standin) -> None:
    ask = judge_for(standin, retries=0)
    standin.status.append(503)  # not a refusal of the schema: no second try without it
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    with pytest.raises(EndpointError) as err:
        ask(messages, RESPONSE_FORMAT)
    assert "HTTP 503: scripted failure" in str(err.value) and len(standin.requests) == 1
    standin.status.extend([500, 500])  # the structured request, then the plain one: both fail
    with pytest.raises(EndpointError) as err:
        ask(messages, RESPONSE_FORMAT)
    assert str(err.value).endswith("failed: HTTP 500: scripted failure") and ask.structured
    assert json.loads(ask(messages, RESPONSE_FORMAT))["verdict"] == "incorrect"
    assert "response_format" in standin.requests[-1]


class RecordingSession:
    """A ``requests.Session`` stand-in that answers one verdict and keeps the keyword arguments of each post."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def post(self, url: str, **kwargs) -> requests.Response:
        self.calls.append(kwargs)
        reply = requests.Response()
        reply.status_code = 200
        reply._content = json.dumps(
            {"choices": [{"message": {"content": '{"verdict": "correct", "reason": "да"}'}}]}
        ).encode()
        return reply


def test_the_judge_checks_tls_with_the_endpoints_own_ca_bundle() -> None:
    session = RecordingSession()
    endpoint = Endpoint(api_base="https://judge.example/v1", api_key=KEY, verify="/etc/ssl/russian-trusted-ca.pem")
    ask = ChatJudge(endpoint, MODEL, session=session)  # type: ignore[arg-type]  # a Session stand-in
    assert json.loads(ask([{"role": "user", "content": "u"}], RESPONSE_FORMAT))["verdict"] == "correct"
    assert session.calls[0]["verify"] == "/etc/ssl/russian-trusted-ca.pem"


def test_review_writes_the_disagreements_as_cases_to_label(standin, tmp_path: Path) -> None:
    store = JudgeStore(SeriesPaths.of(tmp_path, "m", "math"))
    records = series(tmp_path)
    settings = JudgeSettings(MODEL, sample_correct=1.0)
    audit_series(records, judge=MODEL, model="m", settings=settings, ask=judge_for(standin), store=store)
    out = tmp_path / "cases.jsonl"
    assert write_review(with_verdicts(records, store, MODEL), out) == 2
    cases = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(c["id"], c["rule_verdict"], c["judge_verdict"]) for c in cases} == {
        ("p3", "unparsed", "correct"),
        ("p4", "incorrect", "correct"),
    }
    assert all(c["label"] is None and c["reference"] and c["response"] for c in cases)
