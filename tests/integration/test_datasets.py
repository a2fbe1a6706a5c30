"""Datasets: registry, local JSONL/CSV/Parquet, hostile input, the hub (scripted seams + real offline calls)."""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestrator.contract import DatasetSpec, Problem
from orchestrator.datasets import (
    DEFAULT_DATASETS,
    MAX_FILE_BYTES,
    REGISTRY,
    HubClient,
    dataset_version,
    files,
    get_spec,
    load,
    resolve_path,
)
from orchestrator.datasets.hub import select_files
from orchestrator.errors import DatasetError, InputError

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = ROOT.parent / "shared/upstream-data/VikhrModels_DeathMath/russianmath_190_extracted.jsonl"


def jsonl(*rows: dict) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def spec(path: Path | str, **kwargs) -> DatasetSpec:
    return DatasetSpec(name="toy", path=str(path), **kwargs)


def error_of(dataset: DatasetSpec, **kwargs) -> str:
    with pytest.raises(DatasetError) as info:
        load(dataset, **kwargs)
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, InputError)
    return message


# --- registry -------------------------------------------------------------------------------------------------


def test_registry_names_sources_and_columns():
    assert set(REGISTRY) == {"sample-math", "sample-physics", "russianmath", "russianphysics", "demidovich"}
    assert all(name == s.name for name, s in REGISTRY.items())
    assert (REGISTRY["russianmath"].hub_id, REGISTRY["russianmath"].answer) == (
        "Vikhrmodels/russian_math",
        "short answer",
    )
    assert (REGISTRY["russianphysics"].domain, REGISTRY["russianphysics"].answer) == ("physics", "answer")
    demidovich = REGISTRY["demidovich"]
    assert (demidovich.question, demidovich.answer, demidovich.domain) == ("problem", "answer", "math")
    assert len(demidovich.hub_configs) > 1
    assert REGISTRY["sample-physics"].path == "datasets/sample-physics.jsonl"
    assert DEFAULT_DATASETS == ("sample-math", "sample-physics")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(DatasetError, match="russianmath.*sample-math"):
        get_spec("russian-math")
    assert get_spec("demidovich") is REGISTRY["demidovich"]


def test_relative_paths_resolve_against_cwd_first_then_the_project_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_path("datasets/sample-math.jsonl") == ROOT / "datasets/sample-math.jsonl"
    write(tmp_path, "local.jsonl", jsonl({"task": "t", "answer": "1"}))
    assert resolve_path("local.jsonl") == tmp_path / "local.jsonl"
    with pytest.raises(DatasetError, match=r"nope\.jsonl not found .*fix `path:`"):
        resolve_path("nope.jsonl")


def test_project_root_can_be_set_for_non_editable_installs(tmp_path, monkeypatch):
    write(tmp_path, "mine.jsonl", jsonl({"task": "t", "answer": "1"}))
    monkeypatch.setenv("DEATHMATH_ROOT", str(tmp_path))
    monkeypatch.chdir(ROOT / "tests")
    assert resolve_path("mine.jsonl") == tmp_path / "mine.jsonl"


# --- local files ----------------------------------------------------------------------------------------------


def test_jsonl_with_id_and_tolerance_columns(tmp_path):
    path = write(
        tmp_path,
        "phys.jsonl",
        jsonl(
            {"id": 7, "q": " Найдите скорость. ", "a": "15 м/с", "tol": 0.05},
            {"id": "b", "q": "Найдите силу.", "a": 2.0, "tol": ""},
        ),
    )
    problems = load(spec(path, domain="physics", question="q", answer="a", id="id", tolerance="tol"))
    assert problems == [
        Problem(id="7", dataset="toy", domain="physics", task="Найдите скорость.", reference="15 м/с", tolerance=0.05),
        Problem(id="b", dataset="toy", domain="physics", task="Найдите силу.", reference="2", tolerance=None),
    ]


def test_ids_are_the_sha1_of_the_task_without_an_id_column_and_limit_keeps_the_first(tmp_path):
    path = write(tmp_path, "m.jsonl", jsonl(*({"task": f"Задача {i}", "answer": str(i)} for i in range(5))) + "\n\n")
    problems = load(spec(path), limit=2)
    assert [p.id for p in problems] == [hashlib.sha1(f"Задача {i}".encode()).hexdigest()[:12] for i in range(2)]
    assert [p.id for p in load(spec(path))] == [p.id for p in load(spec(path))]


def test_csv_with_quoted_commas_line_breaks_and_a_spaced_column_name(tmp_path):
    text = 'id,task,short answer\r\n1,"Решите: x, если ""x+1=2""",1\r\n\r\n2,"Две\nстроки",-3\r\n'
    problems = load(spec(write(tmp_path, "m.csv", text), answer="short answer", id="id"))
    assert [(p.id, p.task, p.reference) for p in problems] == [
        ("1", 'Решите: x, если "x+1=2"', "1"),
        ("2", "Две\nстроки", "-3"),
    ]


def test_semicolon_csv_from_a_russian_excel_loads(tmp_path):
    path = write(tmp_path, "m.csv", "задача;ответ\nСколько будет 2,5 + 0,5?;3\n")
    assert load(spec(path, question="задача", answer="ответ"))[0].reference == "3"


def test_parquet_needs_pyarrow_and_says_so(tmp_path, monkeypatch):
    def missing():
        raise ImportError("No module named 'pyarrow'")

    monkeypatch.setattr(files, "_import_parquet", missing)
    message = error_of(spec(write(tmp_path, "m.parquet", b"PAR1")))
    assert "m.parquet" in message and "pip install pyarrow" in message


def test_parquet_is_read_when_pyarrow_is_installed(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"task": ["Сколько?", "Где?"], "answer": [4.0, None]}), path)
    message = error_of(spec(path))
    assert "m.parquet, row 2, column 'answer': the answer is empty" in message


HOSTILE = [
    (
        "missing column",
        "m.jsonl",
        jsonl({"task": "a", "answer": "1"}, {"task": "b", "ans": "2"}),
        ["m.jsonl, line 2: no column 'answer'", "'task', 'ans'", "set `answer:`"],
    ),
    ("missing column csv", "m.csv", "task,otvet\nа,1\n", ["m.csv, line 2: no column 'answer'", "set `answer:`"]),
    (
        "empty answer",
        "m.jsonl",
        jsonl({"task": "a", "answer": "1"}, {"task": "b", "answer": "  "}),
        ["line 2, column 'answer': the answer is empty", "fill it in or remove the row"],
    ),
    ("null task", "m.jsonl", jsonl({"task": None, "answer": "1"}), ["line 1, column 'task': the question is empty"]),
    (
        "list answer",
        "m.jsonl",
        jsonl({"task": "a", "answer": ["1", "2"]}),
        ["line 1, column 'answer': a list where text or a number is expected"],
    ),
    (
        "duplicate ids",
        "m.jsonl",
        jsonl(
            {"id": "x", "task": "a", "answer": "1"},
            {"id": "y", "task": "b", "answer": "2"},
            {"id": "x", "task": "c", "answer": "3"},
        ),
        {"id": "id"},
        ["m.jsonl, line 3, column 'id': id 'x' is already used at", "m.jsonl, line 1", "make the ids unique"],
    ),
    (
        "duplicate tasks",
        "m.jsonl",
        jsonl({"task": "same", "answer": "1"}, {"task": "same", "answer": "1"}),
        ["line 2, column 'task': the same task text as", "m.jsonl, line 1", "map it with `id:`"],
    ),
    (
        "non-utf8 line",
        "m.jsonl",
        jsonl({"task": "a", "answer": "1"}).encode() + '{"task": "б"}\n'.encode("cp1251"),
        ["m.jsonl, line 2: byte 0xe1 at column 11 is not valid UTF-8", "re-save the file as UTF-8"],
    ),
    (
        "utf-8 bom",
        "m.jsonl",
        codecs.BOM_UTF8 + jsonl({"task": "a", "answer": "1"}).encode(),
        ["m.jsonl, line 1: the file starts with a UTF-8 byte-order mark", "without BOM"],
    ),
    ("utf-16", "m.csv", "task,answer\nа,1\n".encode("utf-16"), ["m.csv, line 1: the file is UTF-16", "iconv"]),
    ("utf-16 no bom", "m.jsonl", jsonl({"task": "a", "answer": "1"}).encode("utf-16-le"), ["is UTF-16"]),
    (
        "torn last line",
        "m.jsonl",
        jsonl({"task": "a", "answer": "1"}) + '{"task": "b", "ans',
        ["m.jsonl, line 2: the last line is incomplete JSON", "truncated"],
    ),
    (
        "bad json inside",
        "m.jsonl",
        '{"task": "a", "answer": "1"}\n{"task": "b" "answer": "2"}\n',
        ["m.jsonl, line 2, column 14: invalid JSON (Expecting ',' delimiter)"],
    ),
    ("not an object", "m.jsonl", '["a", "1"]\n', ["m.jsonl, line 1: expected a JSON object", "got list"]),
    ("ragged csv", "m.csv", "task,answer\nа,1\nб,2,3\n", ["m.csv, line 3: 3 fields but the header has 2"]),
    ("open quote csv", "m.csv", 'task,answer\n"а,1\n', ["m.csv, line", "malformed CSV"]),
    (
        "bad tolerance",
        "m.jsonl",
        jsonl({"task": "a", "answer": "1", "tol": "-1"}),
        ["line 1, column 'tol': tolerance '-1' is not a number >= 0"],
    ),
    ("empty file", "m.jsonl", "", ["has no problems"]),
    ("wrong suffix", "m.txt", "task,answer\n", ["m.txt: unsupported file type '.txt'", ".jsonl, .csv or .parquet"]),
]


def _case(case: tuple) -> tuple:
    """(name, file, content, [spec kwargs,] fragments) -> always with spec kwargs."""
    return case if len(case) == 5 else (*case[:3], {}, case[3])


@pytest.mark.parametrize(
    "case, name, content, mapping, fragments", [_case(c) for c in HOSTILE], ids=[case[0] for case in HOSTILE]
)
def test_hostile_input_gives_one_line_naming_file_row_and_fix(tmp_path, case, name, content, mapping, fragments):
    message = error_of(spec(write(tmp_path, name, content), tolerance="tol", **mapping))
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_oversized_file_is_refused_before_reading(tmp_path):
    path = write(tmp_path, "big.jsonl", jsonl(*({"task": f"t{i}", "answer": "1"} for i in range(200))))
    message = error_of(spec(path), max_bytes=1024)
    assert "big.jsonl: the file is" in message and "limit" in message
    assert MAX_FILE_BYTES == 200 * 2**20


def test_missing_file_directory_and_bad_domain_or_limit(tmp_path):
    assert "fix `path:`" in error_of(spec(tmp_path / "absent.jsonl"))
    (tmp_path / "dir.jsonl").mkdir()
    assert "dir.jsonl: cannot read the file" in error_of(spec(tmp_path / "dir.jsonl"))
    good = write(tmp_path, "m.jsonl", jsonl({"task": "a", "answer": "1"}))
    assert "set `domain:` to one of math, physics" in error_of(spec(good, domain="chemistry"))
    assert "limit 0 must be at least 1" in error_of(spec(good), limit=0)
    assert "has no source" in error_of(DatasetSpec(name="toy"))


@pytest.mark.skipif(not UPSTREAM.exists(), reason="upstream eval data not present")
def test_upstream_russianmath_as_a_local_file_reports_its_repeated_task():
    message = error_of(spec(UPSTREAM, answer="short_answer"))
    assert "russianmath_190_extracted.jsonl, line 78, column 'task': the same task text as" in message
    assert "russianmath_190_extracted.jsonl, line 1 " in message


# --- dataset_version ------------------------------------------------------------------------------------------


def test_dataset_version_follows_every_edit_but_not_the_order():
    base = [Problem("a", "d", "math", "Задача", "1"), Problem("b", "d", "physics", "Сила?", "2 Н", 0.01)]
    version = dataset_version(base)
    assert len(version) == 12 and dataset_version(list(reversed(base))) == version
    for edit in ({"id": "c"}, {"task": "Задача."}, {"reference": "2"}, {"tolerance": 0.02}):
        assert dataset_version([dataclasses.replace(base[1], **edit), base[0]]) != version
    assert dataset_version(base[:1]) != version


# --- hub with scripted seams ----------------------------------------------------------------------------------


def hf_error(name: str, message: str, status: int) -> Exception:
    import httpx2
    from huggingface_hub import errors

    request = httpx2.Request("GET", "https://huggingface.co/api/datasets/acme/toy")
    return getattr(errors, name)(message, response=httpx2.Response(status, request=request))


class FakeHub:
    """Scripted list_repo_files / hf_hub_download / snapshot_download with huggingface_hub's signatures."""

    def __init__(
        self, revisions: dict[str | None, dict[str, Path]], error: Exception | None = None, cache: Path | None = None
    ) -> None:
        self.revisions, self.error, self.cache, self.calls = revisions, error, cache, []

    def list_repo_files(self, repo_id, *, repo_type=None, revision=None):
        self.calls.append(("list", repo_id, repo_type, revision))
        if self.error:
            raise self.error
        if revision not in self.revisions:
            raise hf_error("RevisionNotFoundError", f"Invalid rev id: {revision}", 404)
        return list(self.revisions[revision])

    def hf_hub_download(self, repo_id, filename, *, repo_type=None, revision=None):
        self.calls.append(("download", repo_id, filename, revision))
        return str(self.revisions[revision][filename])

    def snapshot_download(self, repo_id, *, repo_type=None, revision=None, local_files_only=False):
        self.calls.append(("snapshot", repo_id, revision, local_files_only))
        if self.cache is None or revision is not None:
            from huggingface_hub.errors import LocalEntryNotFoundError

            raise LocalEntryNotFoundError("Cannot find an appropriate cached snapshot folder")
        return str(self.cache)

    def client(self, timeout: float = 10.0) -> HubClient:
        return HubClient(
            list_repo_files=self.list_repo_files,
            hf_hub_download=self.hf_hub_download,
            snapshot_download=self.snapshot_download,
            timeout=timeout,
        )


def hub_spec(**kwargs) -> DatasetSpec:
    return DatasetSpec(name="toy", hub_id="acme/toy", **kwargs)


def test_hub_files_of_the_split_are_downloaded_and_loaded(tmp_path):
    train = write(tmp_path, "train.jsonl", jsonl({"task": "Сколько?", "answer": "4"}))
    hub = FakeHub(
        {
            None: {
                "README.md": tmp_path,
                ".gitattributes": tmp_path,
                "data/train-00000.jsonl": train,
                "data/test-00000.jsonl": tmp_path / "never",
            }
        }
    )
    problems = load(hub_spec(), hub=hub.client())
    assert [(p.task, p.reference, p.dataset) for p in problems] == [("Сколько?", "4", "toy")]
    assert ("download", "acme/toy", "data/train-00000.jsonl", None) in hub.calls
    assert all(call[0] != "download" or "test" not in call[2] for call in hub.calls)


def test_hub_configs_pick_their_folders_and_a_missing_config_lists_the_folders(tmp_path):
    a = write(tmp_path, "a.jsonl", jsonl({"problem": "Предел?", "answer": "0"}))
    b = write(tmp_path, "b.jsonl", jsonl({"problem": "Интеграл?", "answer": "1"}))
    hub = FakeHub(
        {
            None: {
                "data/Integration/0000.jsonl": a,
                "data/Diﬀerentiation/0000.jsonl": b,
                "data/Other/0000.jsonl": tmp_path / "never",
            }
        }
    )
    dataset = hub_spec(hub_configs=("Integration", "Differentiation"), question="problem")
    assert [p.task for p in load(dataset, hub=hub.client())] == ["Предел?", "Интеграл?"]
    message = error_of(hub_spec(hub_configs=("Series",)), hub=hub.client())
    assert "no files for config 'Series'" in message and "Integration" in message and "Other" in message


def test_hub_without_data_files_falls_back_to_the_parquet_export(tmp_path):
    export = write(tmp_path, "e.jsonl", jsonl({"task": "Экспорт?", "answer": "да"}))
    hub = FakeHub(
        {
            None: {"README.md": tmp_path, "toy.py": tmp_path},
            "refs/convert/parquet": {"default/train/0000.jsonl": export},
        }
    )
    assert load(hub_spec(), hub=hub.client())[0].task == "Экспорт?"
    message = error_of(hub_spec(), hub=FakeHub({None: {"README.md": tmp_path}}).client())
    assert "has no .parquet/.jsonl/.csv data files" in message and "`path:`" in message


def test_select_files_split_rules():
    listing = ["data/train-0.parquet", "data/validation-0.parquet", "README.md"]
    assert select_files(listing, (), "train", "r") == ["data/train-0.parquet"]
    assert select_files(["data/0000.csv", "data/test.csv"], (), "train", "r") == ["data/0000.csv"]
    with pytest.raises(DatasetError, match="no 'train' split .found: test, validation"):
        select_files(["test.jsonl", "validation/0.jsonl"], (), "train", "r")
    assert select_files(["x.md"], (), "train", "r") == []


def test_hub_parquet_without_pyarrow_says_so(tmp_path, monkeypatch):
    def missing():
        raise ImportError("No module named 'pyarrow'")

    monkeypatch.setattr(files, "_import_parquet", missing)
    hub = FakeHub({None: {"data/train-0.parquet": write(tmp_path, "t.parquet", b"PAR1")}})
    message = error_of(hub_spec(), hub=hub.client())
    assert "hf://datasets/acme/toy/data/train-0.parquet: reading Parquet needs pyarrow" in message
    assert "pip install pyarrow" in message


@pytest.mark.parametrize(
    "error, fragments",
    [
        (
            lambda: hf_error("GatedRepoError", "Access to dataset acme/toy is restricted", 401),
            ["is gated: accept its terms at https://huggingface.co/datasets/acme/toy", "HF_TOKEN", "`path:`"],
        ),
        (
            lambda: hf_error("RepositoryNotFoundError", "Repository Not Found for url", 404),
            ["was not found or is private", "HF_TOKEN", "`path:`"],
        ),
        (
            lambda: hf_error("HfHubHTTPError", "403 Forbidden: hf_abcdefghijklmnop leaked", 403),
            ["is gated", "HF_TOKEN"],
        ),
        (
            lambda: hf_error("HfHubHTTPError", "418 teapot hf_abcdefghijklmnop leaked", 418),
            ["loading hub dataset acme/toy failed (HfHubHTTPError: 418 teapot hf_*** leaked)", "`path:`"],
        ),
        (
            lambda: ConnectionError("[Errno -2] Name or service not known"),
            [
                "cannot reach the Hugging Face hub for acme/toy (ConnectionError: [Errno -2]",
                "nothing is cached",
                "https://huggingface.co/datasets/acme/toy",
                "HF_TOKEN",
                "`path:`",
            ],
        ),
        (lambda: hf_error("HfHubHTTPError", "502 Bad Gateway", 502), ["cannot reach the Hugging Face hub"]),
    ],
)
def test_hub_failures_map_to_one_actionable_line(error, fragments):
    message = error_of(hub_spec(), hub=FakeHub({}, error=error()).client())
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert "hf_abcdefghijklmnop" not in message


def test_secret_token_never_reaches_the_message(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "sekret-token-value")
    hub = FakeHub({}, error=RuntimeError("bad header Authorization: Bearer sekret-token-value"))
    message = error_of(hub_spec(), hub=hub.client())
    assert "sekret-token-value" not in message and "Bearer ***" in message


def test_unreachable_hub_uses_the_cached_snapshot(tmp_path):
    cache = tmp_path / "snapshot"
    write(cache, "data/train-0.jsonl", jsonl({"task": "Из кэша?", "answer": "да"}))
    hub = FakeHub({}, error=ConnectionError("Name or service not known"), cache=cache)
    assert load(hub_spec(), hub=hub.client())[0].task == "Из кэша?"
    assert ("snapshot", "acme/toy", None, True) in hub.calls


def test_a_hanging_hub_call_is_cut_at_the_deadline():
    release = threading.Event()

    def hanging(repo_id, **kwargs):
        release.wait(30)
        return []

    client = HubClient(
        list_repo_files=hanging, hf_hub_download=None, snapshot_download=FakeHub({}).snapshot_download, timeout=0.3
    )
    started = time.monotonic()
    try:
        message = error_of(hub_spec(), hub=client)
    finally:
        release.set()
    assert time.monotonic() - started < 5
    assert "cannot reach the Hugging Face hub for acme/toy (HubTimeout: no answer within 0.3 s)" in message


@pytest.mark.skipif(not UPSTREAM.exists(), reason="upstream eval data not present")
def test_upstream_russianmath_through_the_hub_keeps_its_verbatim_repeats():
    hub = FakeHub({None: {"data/train-00000-of-00001.jsonl": UPSTREAM}})
    dataset = dataclasses.replace(REGISTRY["russianmath"], answer="short_answer")
    problems = load(dataset, hub=hub.client())
    assert len(problems) == 190 and len({p.id for p in problems}) == 190
    repeats = [p for p in problems if p.id.endswith("-2")]
    assert len(repeats) == 2
    assert all(any(q.id == p.id[:-2] and q.task == p.task for q in problems) for p in repeats)
    assert problems[0].reference == "-12" and problems[0].domain == "math"


# --- the real huggingface_hub: offline, and against a local hub on 127.0.0.1 -----------------------------------

COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


class LocalHub(BaseHTTPRequestHandler):
    """The few hub routes huggingface_hub uses: the tree listing and resolve (HEAD/GET), gated repos, 404s."""

    repos: dict[str, dict[str, bytes]] = {}
    gated: set[str] = set()

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def reply(self, status: int, body: bytes = b"", headers: tuple = ()) -> None:
        self.send_response(status)
        for key, value in (*headers, ("Content-Length", str(len(body)))):
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        parts = self.path.split("?")[0].split("/")
        api = parts[1] == "api"
        repo = "/".join(parts[3:5] if api else parts[2:4])
        if repo not in self.repos:
            return self.reply(404, b"{}", (("X-Error-Code", "RepoNotFound"),))
        if api:
            tree = [
                {"type": "file", "path": name, "size": len(body), "oid": hashlib.sha1(body).hexdigest()}
                for name, body in self.repos[repo].items()
            ]
            return self.reply(200, json.dumps(tree).encode(), (("Content-Type", "application/json"),))
        if repo in self.gated:
            return self.reply(401, b"", (("X-Error-Code", "GatedRepo"), ("X-Error-Message", "restricted")))
        body = self.repos[repo]["/".join(parts[6:])]
        self.reply(200, body, (("X-Repo-Commit", COMMIT), ("ETag", f'"{hashlib.sha1(body).hexdigest()}"')))

    do_HEAD = do_GET


@pytest.fixture
def local_hub():
    LocalHub.repos = {
        "acme/toy": {"README.md": b"# toy", "data/train-0.jsonl": jsonl({"task": "С хаба?", "answer": "да"}).encode()},
        "acme/gated": {"data/train-0.jsonl": b"{}"},
    }
    LocalHub.gated = {"acme/gated"}
    server = ThreadingHTTPServer(("127.0.0.1", 0), LocalHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()


LOAD_SCRIPT = """
import json, sys, time
from orchestrator.contract import DatasetSpec
from orchestrator.datasets import HubClient, load
from orchestrator.errors import DatasetError
started = time.monotonic()
try:
    problems = load(DatasetSpec(**json.loads(sys.argv[1])), hub=HubClient(timeout=float(sys.argv[2])))
    print("OK", json.dumps([p.task for p in problems], ensure_ascii=False))
except DatasetError as exc:
    print("ERR", exc)
print("SECONDS", time.monotonic() - started)
"""


def run_load(tmp_path: Path, dataset: dict, timeout: float = 60.0, **env: str) -> tuple[str, float]:
    """``load`` in a fresh interpreter (huggingface_hub reads HF_* at import) with its own HF cache."""
    environ = {**os.environ, "HF_HOME": str(tmp_path / "hf"), **env}
    environ.pop("HF_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, json.dumps(dataset), str(timeout)],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    lines = done.stdout.splitlines()
    return lines[0], float(lines[-1].split()[1])


def test_real_hub_offline_without_cache_fails_fast_with_the_fix(tmp_path):
    line, seconds = run_load(
        tmp_path, {"name": "russianmath", "hub_id": "Vikhrmodels/russian_math"}, HF_HUB_OFFLINE="1"
    )
    assert line.startswith("ERR cannot reach the Hugging Face hub for Vikhrmodels/russian_math")
    for fragment in (
        "HF_HUB_OFFLINE",
        "https://huggingface.co/datasets/Vikhrmodels/russian_math",
        "HF_TOKEN",
        "`path:`",
    ):
        assert fragment in line
    assert seconds < 20


def test_real_hub_download_then_the_same_dataset_offline_from_the_cache(tmp_path, local_hub):
    endpoint, _ = local_hub
    assert run_load(tmp_path, {"name": "toy", "hub_id": "acme/toy"}, HF_ENDPOINT=endpoint)[0] == 'OK ["С хаба?"]'
    line, _ = run_load(tmp_path, {"name": "toy", "hub_id": "acme/toy"}, HF_ENDPOINT=endpoint, HF_HUB_OFFLINE="1")
    assert line == 'OK ["С хаба?"]'


def test_real_hub_gated_and_missing_repos(tmp_path, local_hub):
    endpoint, _ = local_hub
    line, _ = run_load(tmp_path, {"name": "g", "hub_id": "acme/gated"}, HF_ENDPOINT=endpoint)
    assert line.startswith(f"ERR hub dataset acme/gated is gated: accept its terms at {endpoint}/datasets/acme/gated")
    assert "HF_TOKEN" in line and "`path:`" in line
    line, _ = run_load(tmp_path, {"name": "m", "hub_id": "acme/missing"}, HF_ENDPOINT=endpoint)
    assert line.startswith("ERR hub dataset acme/missing was not found or is private (RepositoryNotFoundError: 404")


def test_real_hub_that_stopped_answering_is_reported_once_and_quickly(tmp_path, local_hub):
    endpoint, server = local_hub
    server.shutdown()
    server.server_close()  # connection refused: huggingface_hub alone would retry for ~25 s, logging each retry
    environ = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": endpoint}
    done = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, json.dumps({"name": "toy", "hub_id": "acme/toy"}), "60"],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line, seconds = done.stdout.splitlines()[0], float(done.stdout.splitlines()[-1].split()[1])
    assert line.startswith("ERR cannot reach the Hugging Face hub for acme/toy (HubUnreachable: ConnectError: ")
    assert done.stderr == "" and seconds < 20  # no retry chatter; one probe, not back-offs that sleep 23 s
