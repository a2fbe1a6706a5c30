"""Checkpointed results on real files: resume, rotation, torn lines, locks across processes, write failures."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from orchestrator.contract import AnswerRecord, Grade, ModelConfig, Problem, Sampling, Timeouts, Transport, VllmSettings
from orchestrator.errors import ResultsError
from orchestrator.fileio import atomic_write_text, read_jsonl, truncate_torn_tail
from orchestrator.results import (
    SeriesPaths,
    SeriesStore,
    load_scores,
    regrade,
    render_markdown,
    safe_name,
    settings_hash,
)
from orchestrator.results.series import SeriesState

H1, H2 = "a" * 16, "b" * 16
REPO = Path(__file__).resolve().parents[2]


def rec(
    pid: str, digest: str = H1, *, error: str | None = None, response: str = "ОТВЕТ: 1", verdict: str = ""
) -> AnswerRecord:
    return AnswerRecord(
        id=pid,
        dataset="ds",
        model="m",
        task=f"task {pid}",
        reference="1",
        response=response,
        error=error,
        settings_hash=digest,
        verdict=verdict,
        prompt_tokens=10,
        completion_tokens=5,
    )


def problems(n: int) -> list[Problem]:
    return [Problem(id=f"p{i}", dataset="ds", domain="math", task=f"task {i}", reference="1") for i in range(n)]


def store(tmp: Path, digest: str = H1, **kw) -> SeriesStore:
    meta = {"model_name": "org/model", "total": 3, **kw.pop("meta", {})}
    return SeriesStore(tmp, "org/model", "ds", digest, meta=meta, **kw)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- settings hash ------------------------------------------------------------------------------------------------
def _model(**sampling) -> ModelConfig:
    return ModelConfig(
        key="k",
        model_name="org/model",
        sampling=Sampling(**sampling),
        vllm=VllmSettings(model="/models/x", args=("--max-num-seqs", "8", "--dtype", "half")),
    )


def test_settings_hash_changes_with_what_changes_answers_only():
    base = settings_hash(_model(), "ds", "v1", "fp")
    assert base == settings_hash(_model(), "ds", "v1", "fp") and len(base) == 16
    changed = [
        settings_hash(_model(temperature=0.7), "ds", "v1", "fp"),
        settings_hash(_model(max_tokens=100), "ds", "v1", "fp"),
        settings_hash(_model(system_prompt="x"), "ds", "v1", "fp"),
        settings_hash(_model(), "ds2", "v1", "fp"),
        settings_hash(_model(), "ds", "v2", "fp"),
        settings_hash(_model(), "ds", "v1", "fp2"),
    ]
    other = ModelConfig(
        key="k",
        model_name="org/model",
        sampling=Sampling(),
        vllm=VllmSettings(model="/models/x", args=("--max-num-seqs", "8", "--dtype", "bfloat16")),
    )
    changed.append(settings_hash(other, "ds", "v1", "fp"))
    assert base not in changed and len(set(changed)) == len(changed)
    same = [
        settings_hash(
            dataclasses.replace(
                _model(), parallel=64, transport=Transport(Timeouts.within(5), max_retries=1, request_delay=2)
            ),
            "ds",
            "v1",
            "fp",
        ),
        settings_hash(
            ModelConfig(
                key="k",
                model_name="org/model",
                sampling=Sampling(),
                vllm=VllmSettings(
                    model="/models/x", tensor_parallel_size=2, args=("--dtype=half", "--max-num-seqs", "64")
                ),
            ),
            "ds",
            "v1",
            "fp",
        ),
    ]
    assert same == [base, base]


def test_safe_name_is_one_path_component():
    assert safe_name("Qwen/Qwen2.5 7B") == "Qwen_Qwen2.5_7B"
    assert "/" not in safe_name("../..") and safe_name("..") not in ("..", ".")


# -- append, records, resume --------------------------------------------------------------------------------------
def test_append_resume_and_latest_success_wins(tmp_path):
    s = store(tmp_path)
    assert [p.id for p in s.missing(problems(3))] == ["p0", "p1", "p2"]
    assert s.append(rec("p0", error="HTTP 500"))
    assert s.append(rec("p1"))
    assert s.append(rec("p0", response="ОТВЕТ: 2"))
    assert not s.append(rec("p1", response="dup"))  # answered already: not stored twice
    assert s.append(rec("p2", error="connection error"))
    again = store(tmp_path)  # a rerun with the same settings
    assert [p.id for p in again.missing(problems(3))] == ["p2"]
    best = {r.id: r for r in again.records()}
    assert [r.id for r in again.records()] == ["p0", "p1", "p2"]
    assert best["p0"].response == "ОТВЕТ: 2" and best["p1"].response == "ОТВЕТ: 1" and best["p2"].error
    raw = lines(s.path)
    assert len(raw) == 4 and raw[0]["error"] == "HTTP 500"  # the error stays visible in the file
    for key in (
        "id",
        "dataset",
        "model",
        "task",
        "reference",
        "response",
        "reasoning",
        "extracted",
        "verdict",
        "finish_reason",
        "prompt_tokens",
        "completion_tokens",
        "latency_s",
        "error",
        "settings_hash",
    ):
        assert key in raw[0]
    score = again.score()
    assert (score.total, score.answered, score.errors, score.completion_tokens) == (3, 2, 1, 10)


def test_error_after_success_does_not_replace_it():
    state = SeriesState(H1)
    for r in (rec("x"), rec("x", error="boom"), rec("y", error="a"), rec("y", error="b"), rec("z", H2)):
        state.absorb(r)
    assert state.done("x") and not state.done("y") and state.best["y"].error == "b"
    assert "z" not in state.best and state.foreign == 1


def test_append_rejects_a_record_of_other_settings(tmp_path):
    with pytest.raises(ResultsError, match="settings"):
        store(tmp_path).append(rec("p0", H2))


def test_meta_keeps_eval_seconds_across_runs_and_no_secrets(tmp_path):
    s = store(tmp_path, meta={"sampling": {"temperature": 0}, "endpoint": {"api_key": "sk-XYZ", "url": "u"}})
    s.add_eval_seconds(2.5)
    s2 = store(tmp_path)
    s2.add_eval_seconds(1.0)
    meta = json.loads(s.paths.meta.read_text())
    assert meta["eval_seconds"] == pytest.approx(3.5) and meta["settings_hash"] == H1
    assert meta["model_key"] == "org/model" and meta["total"] == 3
    assert "sk-XYZ" not in s.paths.meta.read_text()
    assert s2.score().eval_seconds == pytest.approx(3.5)


# -- rotation -----------------------------------------------------------------------------------------------------
def test_new_settings_rotate_the_old_series_to_history_and_back(tmp_path):
    a = store(tmp_path, H1)
    a.append(rec("p0"))
    a.write_markdown()
    b = store(tmp_path, H2)
    hist = b.paths.history
    assert sorted(p.name for p in hist.iterdir()) == [f"ds.{H1}.jsonl", f"ds.{H1}.md", f"ds.{H1}.meta.json"]
    assert b.records() == [] and len(b.missing(problems(3))) == 3
    b.append(rec("p1", H2))
    a2 = store(tmp_path, H1)  # switching back resumes the first series
    assert [r.id for r in a2.records()] == ["p0"]
    assert json.loads(a2.paths.meta.read_text())["settings_hash"] == H1
    assert (hist / f"ds.{H2}.jsonl").exists() and lines(hist / f"ds.{H2}.jsonl")[0]["id"] == "p1"


def test_fresh_starts_anew_and_keeps_the_old_series(tmp_path):
    store(tmp_path).append(rec("p0"))
    s = store(tmp_path, fresh=True)
    assert s.records() == []
    assert lines(s.paths.history / f"ds.{H1}.jsonl")[0]["id"] == "p0"
    s.append(rec("p1"))
    store(tmp_path, fresh=True)
    assert (s.paths.history / f"ds.{H1}.1.jsonl").exists()
    assert [r.id for r in store(tmp_path, H2).records()] == []
    assert [r.id for r in store(tmp_path, H1).records()] == ["p1"]  # the latest series of H1 comes back


def test_a_run_whose_series_was_replaced_refuses_to_append(tmp_path):
    a = store(tmp_path, H1)
    store(tmp_path, H2).append(rec("p0", H2))
    with pytest.raises(ResultsError, match="another run replaced this series"):
        a.append(rec("p1"))
    assert [r["settings_hash"] for r in lines(a.path)] == [H2]


# -- torn lines ---------------------------------------------------------------------------------------------------
def test_torn_last_line_is_truncated_before_appending(tmp_path):
    s = store(tmp_path)
    s.append(rec("p0"))
    with open(s.path, "ab") as fh:
        fh.write(b'{"id": "p1", "dataset": "ds", "respo')  # a writer killed mid-line
    assert [r.id for r in store(tmp_path).records()] == ["p0"]
    assert s.path.read_bytes().endswith(b"\n")
    with open(s.path, "ab") as fh:
        fh.write(b'{"id": "p2", "da')
    s.append(rec("p1"))  # the same store repairs before its next append
    assert [r["id"] for r in lines(s.path)] == ["p0", "p1"]


def test_torn_tail_survives_read_only_readers(tmp_path):
    s = store(tmp_path)
    s.append(rec("p0"))
    with open(s.path, "ab") as fh:
        fh.write(b'{"id": "p1"')
    assert [sc.answered for sc in load_scores(tmp_path)] == [1]
    objs, offset = read_jsonl(s.path)
    assert len(objs) == 1 and offset == len(s.path.read_bytes()) - len(b'{"id": "p1"')
    assert truncate_torn_tail(s.path) == len(b'{"id": "p1"') and truncate_torn_tail(s.path) == 0


_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from orchestrator.contract import AnswerRecord
    from orchestrator.results import SeriesStore
    root, tag, peers, n, pad = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    s = SeriesStore(root, "org/model", "ds", "%s", meta={"total": n})
    (root / f"ready-{tag}").touch()
    deadline = time.monotonic() + 60
    while not all((root / f"ready-{p}").exists() for p in peers) and time.monotonic() < deadline:
        time.sleep(0.001)                      # start together, however long each took to import
    for i in (range(n) if tag != "B" else range(n - 1, -1, -1)):   # B from the other end: they meet midway
        s.append(AnswerRecord(id=f"p{i}", dataset="ds", model="m", task="t", reference="1",
                              response=tag * pad, settings_hash="%s"))
        time.sleep(0.002)                      # answers trickle in, as from a server: the writers overlap
    print("done", flush=True)
""") % (H1, H1)


def _writer(tmp: Path, tag: str, peers: str, n: int, pad: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp), tag, peers, str(n), str(pad)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_processes_append_concurrently_without_interleaving_or_duplicates(tmp_path):
    procs = [_writer(tmp_path, tag, "AB", 150, 20_000) for tag in "AB"]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    path = SeriesPaths.of(tmp_path, "org/model", "ds").jsonl
    raw = lines(path)  # every line parses: nothing interleaved
    assert sorted(r["id"] for r in raw) == sorted(f"p{i}" for i in range(150))
    assert all(set(r["response"]) in ({"A"}, {"B"}) and len(r["response"]) == 20_000 for r in raw)
    assert {r["response"][0] for r in raw} == {"A", "B"}  # both really wrote


def test_kill_9_mid_series_loses_nothing_written_and_resume_completes(tmp_path):
    proc = _writer(tmp_path, "K", "K", 100_000, 50_000)
    path = SeriesPaths.of(tmp_path, "org/model", "ds").jsonl
    deadline = time.monotonic() + 60
    while (not path.exists() or path.stat().st_size < 2_000_000) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    with open(path, "ab") as fh:  # and a torn line, as a buffered writer would leave
        fh.write(b'{"id": "torn", "respon')
    s = store(tmp_path)
    done = {r.id for r in s.records()}
    assert len(done) >= 30
    todo = s.missing([Problem(id=f"p{i}", dataset="ds", domain="math", task="t", reference="1") for i in range(200)])
    for p in todo:
        s.append(rec(p.id))
    ids = [r["id"] for r in lines(path)]
    assert sorted(ids) == sorted(f"p{i}" for i in range(200))  # exactly once each


# -- locks and write failures -------------------------------------------------------------------------------------
_HOLDER = textwrap.dedent("""
    import sys, time, filelock
    with filelock.FileLock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(30)
""")


def test_a_lock_held_elsewhere_times_out_with_one_line(tmp_path):
    s = store(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(s.paths.lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        s._lock_timeout = 0.3
        with pytest.raises(ResultsError) as info:
            s.append(rec("p0"))
        assert "\n" not in str(info.value) and str(s.paths.lock) in str(info.value)
    finally:
        holder.kill()
        holder.wait()
    assert s.append(rec("p0"))


@pytest.fixture
def frozen(tmp_path):
    """Make a path read-only for real (``chattr +i`` as root, where chmod does not bind; chmod otherwise)."""
    frozen_paths: list[Path] = []

    def freeze(path: Path) -> None:
        if os.geteuid() == 0:
            if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode != 0:
                pytest.skip("cannot make a path read-only as root here (no chattr +i)")
        else:
            path.chmod(0o555 if path.is_dir() else 0o444)
        frozen_paths.append(path)

    yield freeze
    for path in frozen_paths:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        else:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_read_only_directory_raises_results_error_and_keeps_files(tmp_path, frozen):
    s = store(tmp_path)
    s.append(rec("p0"))
    s.write_markdown()
    before = {p.name: p.read_bytes() for p in s.paths.dir.iterdir() if p.is_file()}
    frozen(s.paths.jsonl)
    frozen(s.paths.dir)
    for action in (
        lambda: s.append(rec("p1")),
        s.write_markdown,
        lambda: s.add_eval_seconds(1),
        lambda: store(tmp_path, H2),
    ):
        with pytest.raises(ResultsError) as info:
            action()
        assert "\n" not in str(info.value)
    after = {p.name: p.read_bytes() for p in s.paths.dir.iterdir() if p.is_file()}
    assert after == before


_FULL_DISK = textwrap.dedent("""
    import json, resource, signal, sys
    from pathlib import Path
    from orchestrator.contract import AnswerRecord
    from orchestrator.errors import ResultsError
    from orchestrator.results import SeriesStore
    s = SeriesStore(Path(sys.argv[1]), "org/model", "ds", "%s", meta={"total": 3})
    mk = lambda i, n: AnswerRecord(id=f"p{i}", dataset="ds", model="m", task="t", reference="1",
                                   response="x" * n, settings_hash="%s")
    s.append(mk(0, 1000))
    s.write_markdown()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))   # the disk is "full" at 4000 bytes per file
    out = {}
    for name, action in (("append", lambda: s.append(mk(1, 10000))), ("md", lambda: s.write_markdown())):
        if name == "md":
            resource.setrlimit(resource.RLIMIT_FSIZE, (500, 500))  # smaller than the markdown
        try:
            action()
            out[name] = "no error"
        except ResultsError as exc:
            out[name] = str(exc)
    print(json.dumps(out))
""") % (H1, H1)


def test_full_disk_raises_results_error_and_leaves_no_partial_line(tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    paths = SeriesPaths.of(tmp_path, "org/model", "ds")
    assert "cannot write" in out["append"] and "\n" not in out["append"]
    assert "cannot write" in out["md"]
    assert [r["id"] for r in lines(paths.jsonl)] == ["p0"]  # the partial line was rolled back
    assert "p0" in paths.md.read_text() and not list(paths.dir.glob(".*.tmp"))


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_text(target, "old")
    with pytest.raises(ResultsError, match="cannot write"):
        atomic_write_text(tmp_path / "missing-dir" / "a.json", "new")
    assert target.read_text() == "old"


# -- markdown, regrade, scores ------------------------------------------------------------------------------------
def test_markdown_shows_task_response_reference_extracted_verdict_tokens(tmp_path):
    s = store(tmp_path)
    r = rec("p0", response="Решение: ```code``` ОТВЕТ: 42", verdict="correct")
    r.extracted, r.reasoning = "42", "долгие раздумья"
    s.append(r)
    s.append(rec("p1", error="HTTP 500: boom"))
    text = s.write_markdown().read_text(encoding="utf-8")
    assert "task p0" in text and "ОТВЕТ: 42" in text and "reference: `1`" in text and "extracted: `42`" in text
    assert "verdict: correct" in text and "prompt 10, completion 5" in text and "error: HTTP 500: boom" in text
    assert "````text\nРешение: ```code```" in text  # the fence outgrows the backticks inside
    assert "долгие раздумья" not in text and "15 characters" in text


def test_regrade_rewrites_verdicts_atomically_and_live_stores_follow(tmp_path):
    s = store(tmp_path)
    for pid in ("p0", "p1"):
        s.append(rec(pid))
    s.append(rec("p2", error="timeout"))
    inode = s.path.stat().st_ino
    count = regrade(tmp_path, lambda r: Grade(extracted="1", verdict="correct" if r.id == "p0" else "incorrect"))
    assert count == 2 and s.path.stat().st_ino != inode
    raw = lines(s.path)
    assert [(r["id"], r["verdict"]) for r in raw] == [("p0", "correct"), ("p1", "incorrect"), ("p2", "")]
    assert "verdict: incorrect" in s.paths.md.read_text()
    assert s.append(rec("p2")) and [r["id"] for r in lines(s.path)] == ["p0", "p1", "p2", "p2"]
    assert s.score().correct == 1


def test_load_scores_reads_current_series_only(tmp_path):
    a = SeriesStore(tmp_path, "m1", "math", H1, meta={"total": 4})
    a.append(
        AnswerRecord(
            id="1",
            dataset="math",
            model="m1",
            task="t",
            reference="1",
            verdict="correct",
            settings_hash=H1,
            completion_tokens=7,
        )
    )
    a.append(
        AnswerRecord(id="2", dataset="math", model="m1", task="t", reference="1", verdict="incorrect", settings_hash=H1)
    )
    a.add_eval_seconds(3)
    SeriesStore(tmp_path, "m2", "physics", H2, meta={"total": 2})
    SeriesStore(tmp_path, "m2", "physics", H1, meta={"total": 2})  # rotates the H2 series to history
    scores = {(sc.model, sc.dataset): sc for sc in load_scores(tmp_path)}
    assert set(scores) == {("m1", "math"), ("m2", "physics")}
    m1 = scores[("m1", "math")]
    assert (m1.total, m1.answered, m1.correct, m1.completion_tokens, m1.eval_seconds) == (4, 2, 1, 7, 3.0)
    assert m1.accuracy == 0.25 and not m1.complete and scores[("m2", "physics")].settings_hash == H1
    assert load_scores(tmp_path / "nothing") == []


def test_render_markdown_handles_empty_series(tmp_path):
    s = store(tmp_path)
    assert "answered 0/3" in render_markdown(s.meta, s.score(), [])
