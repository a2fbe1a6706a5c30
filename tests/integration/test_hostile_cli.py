"""Hostile and broken input, driven through the real CLI as a subprocess; disk failures at the CLI level.

Every row of ``HOSTILE`` runs ``python -m orchestrator.cli run`` in a workspace that already holds the results and
logs of a finished run (a managed model served by the fake vLLM of conftest). Each must exit 2 with exactly one
line on stderr (``error: ...; <fix>``) naming the file, field or value, print no traceback, start no server, and
leave every file and directory of the workspace as it was (a snapshot of path -> bytes, before and after).

A results file torn mid-line by a crash is not bad input but a resume case: ``test_torn_details_line_...`` below
(the library-level versions are tests/integration/test_results.py::test_torn_last_line_is_truncated_before_appending and
::test_kill_9_mid_series_loses_nothing_written_and_resume_completes). A full disk is
``test_full_disk_stops_the_run_...`` (library level: tests/integration/test_results.py::test_full_disk_raises_...).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.workspace import ROWS, Workspace, jsonl, make_workspace, snapshot

BOMB = (
    b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
)


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory, fake_vllm: Path) -> Workspace:
    """A workspace after one finished run: results (details, leaderboard, manifest) and logs (state, server log)."""
    ws = make_workspace(tmp_path_factory.mktemp("seed"), fake_vllm, tmp_path_factory.mktemp("assets"))
    done = ws.cli()
    assert done.returncode == 0, done.stdout + done.stderr
    assert (ws.results / "leaderboard.json").is_file() and list(ws.logs.glob("*/m.log"))
    return ws


@pytest.fixture
def ws(seed: Workspace, tmp_path: Path) -> Workspace:
    """A private copy of the seed workspace (its config names only the shared assets: it stays valid)."""
    root = tmp_path / "ws"
    shutil.copytree(seed.root, root, symlinks=True)
    return Workspace(root, seed.fake, seed.assets)


@pytest.fixture
def freeze():
    """Make a directory unwritable for real: ``chattr +i`` as root (chmod does not bind root), chmod 0o500 else."""
    frozen: list[Path] = []

    def apply(path: Path) -> None:
        if os.geteuid() == 0:
            if (
                shutil.which("chattr") is None
                or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0
            ):
                pytest.skip("running as root without chattr +i: a directory cannot be made unwritable")
        else:
            path.chmod(0o500)
        frozen.append(path)

    yield apply
    for path in frozen:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        else:
            path.chmod(0o755)


# -- the table ----------------------------------------------------------------------------------------------------
Edit = Callable[[str], "str | bytes"]


def text(content: str | bytes) -> Edit:
    return lambda good: content


def sub(old: str, new: str) -> Edit:
    def edit(good: str) -> str:
        assert old in good, old
        return good.replace(old, new)

    return edit


def encoded(encoding: str) -> Edit:
    return lambda good: good.encode(encoding)


API = 'endpoints: [{api_base: "http://127.0.0.1:9/v1", api_key: "env:DM_HOSTILE_UNSET_KEY"}]'
VLLM_LINE = "vllm: {model: "


def api_model(api_type: str, endpoint: str) -> Edit:
    """The good config with its managed model turned into an API model of ``api_type`` with one endpoint."""
    return lambda good: (
        "\n".join(
            f"  {api_type}\n  endpoints: [{endpoint}]" if VLLM_LINE in line else line for line in good.splitlines()
        )
        + "\n"
    )


@dataclass(frozen=True)
class Hostile:
    name: str
    fragments: tuple[str, ...]  # each must be in the one stderr line
    config: Edit | None = None  # the config text from the good one
    dataset: tuple[str, bytes] | None = None  # (file name, content): the config's `ds` points at it
    args: tuple[str, ...] = ()
    setup: str | None = None  # a named change of the workspace, see _setup


HOSTILE = [
    # the config file itself
    Hostile("empty config", ("run.yaml", "the config is empty", "start from configs/run.yaml"), text(b"")),
    Hostile("blank config", ("run.yaml", "the config is empty"), text("\n   \n\n")),
    Hostile("binary config", ("run.yaml", "is a binary file", "check the path"), text(b"\x7fELF\x02\x01\x01\x00" * 8)),
    Hostile(
        "non-UTF-8 config",
        ("run.yaml", "line 1", "not valid UTF-8", "byte 0xea", "re-save the config as UTF-8"),
        lambda good: good.replace("model_list", "# конфиг\nmodel_list", 1).encode("cp1251"),
    ),
    Hostile("UTF-16 config with BOM", ("run.yaml", "UTF-16", "iconv -f UTF-16 -t UTF-8"), encoded("utf-16")),
    Hostile("UTF-16LE config without BOM", ("run.yaml", "UTF-16", "iconv"), encoded("utf-16-le")),
    Hostile("UTF-16BE config without BOM", ("run.yaml", "UTF-16", "iconv"), encoded("utf-16-be")),
    Hostile(
        "UTF-8 BOM config", ("run.yaml", "byte-order mark", "without BOM"), lambda good: b"\xef\xbb\xbf" + good.encode()
    ),
    Hostile(
        "tabs for indentation", ("run.yaml", "line 3", "'\\t'", "not tabs"), sub("\n  model_name", "\n\tmodel_name")
    ),
    Hostile("YAML alias bomb", ("run.yaml", "alias", "remove the repeated aliases"), text(BOMB)),
    Hostile("huge config", ("run.yaml", "too large", "limit 1000000"), lambda good: good + "# padding\n" * 120_000),
    Hostile(
        "YAML syntax error", ("run.yaml", "line ", "fix the YAML syntax"), sub("model_list: [m]", "model_list: [m")
    ),
    Hostile("top-level list", ("run.yaml", "top level", "expected a mapping", "got a list"), text("- m\n- n\n")),
    Hostile("top-level scalar", ("run.yaml", "top level", "got a string"), text("just some text\n")),
    Hostile(
        "config is a directory",
        ("results", "is a directory", "pass the config file itself"),
        args=("--config", "results"),
    ),
    Hostile("config missing", ("absent.yaml", "no such file", "--config"), args=("--config", "absent.yaml")),
    # models
    Hostile(
        "model_list missing", ("run.yaml", "model_list", "missing", "add `model_list"), sub("model_list: [m]\n", "")
    ),
    Hostile(
        "unknown model in model_list",
        ("run.yaml", "model 'ghost' has no block", "add a top-level `ghost:`"),
        sub("model_list: [m]", "model_list: [m, ghost]"),
    ),
    Hostile("model block missing", ("run.yaml", "model 'm' has no block"), text("model_list: [m]\ntemperature: 0\n")),
    Hostile(
        "unknown top-level key",
        ("run.yaml", "temprature", "did you mean 'temperature'"),
        sub("datasets:", "temprature: 0.5\ndatasets:"),
    ),
    Hostile(
        "parallel is a word",
        ("run.yaml", "m.parallel", "expected an integer", "'many'", "whole number"),
        sub("parallel: 2", 'parallel: "many"'),
    ),
    Hostile(
        "negative temperature",
        ("run.yaml", "m.temperature", "-1 is out of range", "at least 0.0"),
        sub("temperature: 0.0", "temperature: -1"),
    ),
    Hostile(
        "max_tokens zero",
        ("run.yaml", "m.max_tokens", "0 is out of range", "of at least 1"),
        sub("max_tokens: 16", "max_tokens: 0"),
    ),
    Hostile(
        "NaN temperature",
        ("run.yaml", "m.temperature", "nan is not a finite number"),
        sub("temperature: 0.0", "temperature: .nan"),
    ),
    Hostile(
        "infinite request_timeout",
        ("run.yaml", "m.request_timeout", "inf is not a finite number"),
        sub("temperature: 0.0", "request_timeout: .inf"),
    ),
    Hostile(
        "tensor_parallel_size zero",
        ("run.yaml", "m.vllm.tensor_parallel_size", "0 is out of range"),
        sub(VLLM_LINE, "vllm: {tensor_parallel_size: 0, model: "),
    ),
    Hostile(
        "unknown vllm key",
        ("run.yaml", "m.vllm.gpu_count", "unknown key", "allowed keys"),
        sub(VLLM_LINE, "vllm: {gpu_count: 2, model: "),
    ),
    Hostile(
        "vllm model path missing",
        ("run.yaml", "m.vllm.model", "/no/such/model", "does not exist"),
        lambda good: good.replace(good[good.index(VLLM_LINE) :].split(",")[0], "vllm: {model: /no/such/model"),
    ),
    Hostile(
        "api_key env reference unset",
        ("run.yaml", "m.endpoints[0].api_key", "DM_HOSTILE_UNSET_KEY", "export DM_HOSTILE_UNSET_KEY"),
        lambda good: "\n".join("  " + API if VLLM_LINE in line else line for line in good.splitlines()) + "\n",
    ),
    Hostile(
        "gigachat without credentials",
        ("run.yaml", "m.endpoints[0].credentials", "missing", "credentials: env:GIGACHAT_CREDENTIALS"),
        api_model("api_type: gigachat", "{scope: GIGACHAT_API_PERS}"),
    ),
    Hostile(
        "gigachat credentials env unset",
        ("run.yaml", "m.endpoints[0].credentials", "DM_HOSTILE_UNSET_KEY", "export DM_HOSTILE_UNSET_KEY"),
        api_model("api_type: gigachat", '{credentials: "env:DM_HOSTILE_UNSET_KEY"}'),
    ),
    Hostile(
        "gigachat unknown scope",
        (
            "run.yaml",
            "m.endpoints[0].scope",
            "'GIGACHAT_API_PERSONAL'",
            "GIGACHAT_API_PERS, GIGACHAT_API_B2B, GIGACHAT_API_CORP",
        ),
        api_model("api_type: gigachat", "{credentials: abc, scope: GIGACHAT_API_PERSONAL}"),
    ),
    Hostile(
        "api_key given for gigachat",
        ("run.yaml", "m.endpoints[0].api_key", "not a key of api_type gigachat", "credentials: env:NAME"),
        api_model("api_type: gigachat", "{credentials: abc, api_key: sk-1}"),
    ),
    Hostile(
        "credentials given for openai",
        ("run.yaml", "m.endpoints[0].credentials", "not a key of api_type openai", "api_type: gigachat"),
        api_model("api_type: openai", '{api_base: "http://127.0.0.1:9/v1", credentials: abc}'),
    ),
    # datasets
    Hostile(
        "dataset file missing",
        ("run.yaml", "datasets.ds.path", "does not exist", "fix the path"),
        sub("ds.jsonl", "absent.jsonl"),
    ),
    Hostile(
        "dataset missing column",
        ("bad.jsonl", "line 2", "no column 'answer'", "set `answer:`"),
        dataset=("bad.jsonl", jsonl(ROWS[0], {"task": "b", "ans": "2"})),
    ),
    Hostile(
        "dataset duplicate ids",
        ("bad.jsonl", "line 3", "id 'q0' is already used", "make the ids unique"),
        sub("domain: math}", "domain: math, id: id}"),
        dataset=("bad.jsonl", jsonl(*ROWS[:2], ROWS[0] | {"task": "c"})),
    ),
    Hostile(
        "dataset empty answer",
        ("bad.jsonl", "line 2", "the answer is empty", "fill it in or remove the row"),
        dataset=("bad.jsonl", jsonl(ROWS[0], ROWS[1] | {"answer": "  "})),
    ),
    Hostile(
        "dataset non-UTF-8 line",
        ("bad.jsonl", "line 2", "not valid UTF-8", "re-save the file as UTF-8"),
        dataset=("bad.jsonl", jsonl(ROWS[0]) + '{"task": "задача", "answer": "1"}\n'.encode("cp1251")),
    ),
    Hostile(
        "binary dataset",
        ("bad.jsonl", "line 1", "or binary", "convert"),
        dataset=("bad.jsonl", b"\x7fELF\x02\x01\x01\x00\x00\x00" * 20),
    ),
    Hostile("empty dataset", ("'ds'", "bad.jsonl", "has no problems", "add rows"), dataset=("bad.jsonl", b"")),
    Hostile(
        "CSV with a wrong header",
        ("bad.csv", "no column 'task'", "'question', 'solution'", "set `question:`"),
        dataset=("bad.csv", b"question;solution\n2+2;4\n"),
    ),
    Hostile(
        "dataset torn last line",
        ("bad.jsonl", "line 2", "incomplete JSON", "remove the torn line"),
        dataset=("bad.jsonl", jsonl(ROWS[0]) + b'{"task": "b", "ans'),
    ),
    # directories
    Hostile(
        "results dir not writable",
        ("--results-dir", "results", "not writable", "fix its permissions"),
        setup="freeze results",
    ),
    Hostile(
        "results dir is a file",
        ("--results-dir", "a-file", "is not a directory"),
        args=("--results-dir", "a-file"),
        setup="file",
    ),
    Hostile(
        "results dir under a file",
        ("--results-dir", "a-file/results", "a-file is not a directory"),
        args=("--results-dir", "a-file/results"),
        setup="file",
    ),
    Hostile(
        "logs dir not writable", ("--logs-dir", "logs", "not writable", "fix its permissions"), setup="freeze logs"
    ),
    Hostile(
        "logs dir is a file",
        ("--logs-dir", "a-file", "is not a directory"),
        args=("--logs-dir", "a-file"),
        setup="file",
    ),
    # command-line values
    Hostile("--gpus letters", ("--gpus 'a,b'", "comma-separated indices such as 0,1"), args=("--gpus", "a,b")),
    Hostile("--gpus repeated", ("--gpus '0,0'", "distinct"), args=("--gpus", "0,0")),
    Hostile("--dataset unknown", ("--dataset", "unknown dataset 'nope'", "choose from"), args=("--dataset", "nope")),
    Hostile(
        "--models unknown", ("--models", "'nope' is not in model_list", "choose from m"), args=("--models", "nope")
    ),
    Hostile("--limit 0", ("'--limit'", "0 is not in the range", "--help"), args=("--limit", "0")),
    Hostile("--parallel word", ("'--parallel'", "'x' is not a valid integer", "--help"), args=("--parallel", "x")),
    Hostile("unknown flag", ("--bogus", "No such option", "--help"), args=("--bogus",)),
]


def _setup(ws: Workspace, case: Hostile) -> list[str]:
    """Apply the case to the workspace; returns the extra CLI arguments."""
    if case.dataset is not None:
        name, content = case.dataset
        (ws.root / name).write_bytes(content)
        ws.config.write_text(ws.good(ws.root / name))
    if case.config is not None:
        content = case.config(ws.config.read_text())
        ws.config.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    if case.setup == "file":
        (ws.root / "a-file").write_text("not a directory\n")
    return list(case.args)


def _freeze_for(ws: Workspace, case: Hostile, freeze: Callable[[Path], None]) -> None:
    if case.setup and case.setup.startswith("freeze "):
        freeze(ws.root / case.setup.split()[1])


def test_the_table_is_large_enough() -> None:
    assert len(HOSTILE) >= 30 and len({c.name for c in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize("case", HOSTILE, ids=[c.name for c in HOSTILE])
def test_hostile_input_exits_2_with_one_line_and_changes_nothing(ws: Workspace, freeze, case: Hostile) -> None:
    args = _setup(ws, case)
    before = snapshot(ws.root)
    _freeze_for(ws, case, freeze)
    run = ws.cli(*args)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert run.stdout == ""
    lines = run.stderr.split("\n")
    assert len(lines) == 2 and lines[1] == "" and lines[0].startswith("error: "), run.stderr
    line = lines[0]
    assert "; " in line, f"no fix after the problem: {line}"
    for fragment in case.fragments:
        assert fragment in line, (fragment, line)
    assert snapshot(ws.root) == before  # nothing written, nothing created; no server started (no server log)


# -- a results file torn mid-line by a crash: resume, not bad input ------------------------------------------------
def test_torn_details_line_is_set_aside_and_the_run_resumes_each_problem_once(ws: Workspace) -> None:
    details = ws.results / "details" / "m" / "ds.jsonl"
    # the seed answered all 6; keep 3 answers as if the run had been killed, plus the line it was writing
    assert not (details.parent / "history").exists()
    kept = details.read_bytes().splitlines(keepends=True)[:3]
    torn = b'{"id": "' + ws.details()[3]["id"].encode() + b'", "dataset": "ds", "respo'
    details.write_bytes(b"".join(kept) + torn)
    run = ws.cli()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr and "torn" in run.stderr
    raw = details.read_bytes()
    assert raw.startswith(b"".join(kept)) and raw.endswith(b"\n")  # nothing written before was lost
    rows = ws.details()  # and every line parses
    answered = [r["id"] for r in rows if r["error"] is None]
    assert len(answered) == len(ROWS) and len(set(answered)) == len(ROWS)  # each problem exactly once
    assert (details.parent / "ds.jsonl.torn").read_bytes() == torn + b"\n"  # the torn tail is set aside
    assert not (details.parent / "history").exists()  # the same series, resumed
    board = json.loads((ws.results / "leaderboard.json").read_text())
    assert board["rows"][0]["answered"] == len(ROWS)


# -- a full disk at the CLI ---------------------------------------------------------------------------------------
FSIZE_LIMIT = 24_000  # bytes per file: the small files fit, the new details file of 60 long answers does not


def _disk_full() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))  # Python ignores SIGXFSZ: EFBIG


def parse_all(root: Path) -> None:
    """Every JSON / JSONL file under ``root`` parses completely (no half-written file, no partial line)."""
    for path in root.rglob("*"):
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            raw = path.read_bytes()
            assert raw == b"" or raw.endswith(b"\n"), path
            [json.loads(line) for line in raw.splitlines()]


def test_full_disk_stops_the_run_with_one_message_and_keeps_every_file_intact(ws: Workspace) -> None:
    big = [{"id": f"b{i}", "task": f"Задача {i}: " + "длинное условие " * 40, "answer": str(i)} for i in range(60)]
    (ws.root / "big.jsonl").write_bytes(jsonl(*big))
    ws.config.write_text(ws.good().replace("datasets:\n", f"datasets:\n  big: {{path: {ws.root / 'big.jsonl'}}}\n"))
    files = [p for p in ws.results.rglob("*") if p.is_file() and "assets" not in p.relative_to(ws.results).parts]
    assert max(p.stat().st_size for p in files) < FSIZE_LIMIT  # the renderer's assets are written once, not again
    before = snapshot(ws.root)
    run = ws.cli(preexec=_disk_full)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and run.stderr.count("cannot write") == 1, run.stderr  # one message, said once
    assert "cannot write" in errors[0] and "big.jsonl" in errors[0] and "File too large" in errors[0]
    assert "free disk space" in errors[0]
    after = snapshot(ws.root)
    grown = {
        "results/details/m/ds.meta.json",  # the series of ds is complete: only its meta is touched
        "results/status.html",
    }  # and the live status page, which every run rewrites
    for path, content in before.items():  # every file of before is still there, unchanged
        if path not in grown:
            assert after[path] == content, path
    parse_all(ws.results)
    parse_all(ws.logs)
    new_rows = ws.details("big")
    assert 0 < len(new_rows) < len(big)  # it stopped part way, on a line boundary
    (manifest,) = [p for p in ws.results.glob("runs/*/manifest.json") if str(p.relative_to(ws.root)) not in before]
    assert json.loads(manifest.read_text())["status"] == "failed"
