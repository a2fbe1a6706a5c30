"""Hub weights: file choice, one download per repository, errors, the disk budget, resume, offline, the dry run,
the scheduler's readiness gate, and a whole run (fake vLLM) whose servers start only on complete local weights.

The hub is ``standins/hubstub.py`` on 127.0.0.1, spoken to by the real ``huggingface_hub``.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from orchestrator.config import load_config
from orchestrator.contract import ModelConfig, ProgressStatus, RunPhase, Sampling, ServerSpec, VllmSettings
from orchestrator.errors import ConfigError, WeightsError
from orchestrator.hub.prefetch import Prefetcher, fetch_now
from orchestrator.hub.weights import HfHub, HubRef, choose_files, list_weights, render_weights
from orchestrator.scheduling.policy import Job
from orchestrator.scheduling.runner import Scheduler
from orchestrator.status.progress import Progress
from standins.hubstub import HubStub, commit_of, files_of

REPO = Path(__file__).resolve().parents[2]
NEEDED = ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
JUNK = {
    "original/consolidated.00.pth": b"p" * 3000,
    "pytorch_model.bin": b"b" * 2000,
    "model.gguf": b"g" * 100,
    "README.md": b"# tiny",
    ".gitattributes": b"*.safetensors filter=lfs",
}


@pytest.fixture(scope="module")
def tiny_files(tiny_model: Path) -> dict[str, bytes]:
    return files_of(tiny_model)


@pytest.fixture
def hub(tiny_files, tmp_path, monkeypatch):
    repos = {"acme/tiny": {**tiny_files, **JUNK}, "acme/other": dict(tiny_files), "acme/gated": dict(tiny_files)}
    with HubStub(repos, gated={"acme/gated"}, revisions=("main", "v2")) as stub:
        monkeypatch.setenv("HF_ENDPOINT", stub.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield stub


def hub_model(key: str, repo: str, revision: str | None = None) -> ModelConfig:
    return ModelConfig(
        key=key, model_name=f"served-{key}", sampling=Sampling(), vllm=VllmSettings(model=repo, revision=revision)
    )


class Facts:
    """The manifest and progress calls the prefetcher makes."""

    def __init__(self) -> None:
        self.models: dict[str, dict] = {}
        self.status: dict[str, list[str]] = {}
        self.download_lines: list[str] = []

    def set_model(self, model: str, **facts) -> None:
        self.models.setdefault(model, {}).update(facts)

    def timing(self, model: str, phase: str, seconds: float) -> None:
        self.models.setdefault(model, {})[phase] = seconds

    def set_status(self, model: str, status: ProgressStatus) -> None:
        self.status.setdefault(model, []).append(status)

    def set_download(self, label: str, text: str | None) -> None:
        if text:
            self.download_lines.append(f"{label} {text}")


def wait_until(predicate, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def fetcher(tmp_path: Path, models, **kw) -> Prefetcher:
    facts = kw.pop("facts", Facts())
    return Prefetcher(models, cache=tmp_path / "hub", progress=facts, manifest=facts, poll=0.05, **kw)


def test_choose_files_keeps_config_tokenizer_and_one_weights_format():
    listing = [
        "config.json",
        "tokenizer.json",
        "tokenizer.model",
        "chat_template.jinja",
        "model-00001.safetensors",
        "model-00002.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
        "consolidated.safetensors",
        "original/params.json",
        "original/consolidated.00.pth",
        "model.Q4_K_M.gguf",
        "onnx/model.onnx",
        ".gitattributes",
        "README.md",
    ]
    assert choose_files(listing) == [
        "chat_template.jinja",
        "config.json",
        "model-00001.safetensors",
        "model-00002.safetensors",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer.model",
    ]
    assert "pytorch_model.bin" in choose_files(["config.json", "pytorch_model.bin", "original/x.pth"])
    assert choose_files(listing, "gguf") == [
        "chat_template.jinja",
        "config.json",
        "model.Q4_K_M.gguf",
        "tokenizer.json",
        "tokenizer.model",
    ]


def test_two_models_on_one_repository_share_one_download_and_each_needed_file_is_fetched_once(hub, tmp_path):
    facts = Facts()
    hub.rate = 400_000  # 2.5 s: the progress line is redrawn every 0.05 s meanwhile
    f = fetcher(tmp_path, [hub_model("a", "acme/tiny"), hub_model("b", "acme/tiny")], facts=facts).start()
    try:
        assert (
            f.wait("a", 60)
            == f.wait("b", 60)
            == tmp_path / "hub" / "models--acme--tiny" / "snapshots" / commit_of("acme/tiny")
        )
    finally:
        f.close()
    assert hub.gets("acme/tiny") == dict.fromkeys(NEEDED, 1)  # no README, .bin, .pth, gguf
    spec = f.local_spec("b", ServerSpec(name="b", model="acme/tiny", served_name="served-b"))
    assert spec.model == str(f.wait("b")) and ("HF_HUB_OFFLINE", "1") in spec.env and spec.served_name == "served-b"
    weights = facts.models["a"]["weights"]
    assert weights["download_bytes"] == weights["bytes"] == sum(len(hub.repos["acme/tiny"][n]) for n in NEEDED)
    assert weights["commit"] == commit_of("acme/tiny") and weights["shared_with"] == ["b"]
    assert "download" in facts.models["b"]
    assert any(
        re.fullmatch(r"acme/tiny \d+(\.\d)? [KM]?B/1\.0 MB  \d+(\.\d)? [KM]?B/s  ETA (\d+s|-)", line)
        for line in facts.download_lines
    ), facts.download_lines[:3]
    assert facts.status["a"][-2:] == ["download", "weights ok"]


def test_gated_missing_and_bad_revision_each_fail_alone_with_one_line(hub, tmp_path):
    models = [
        hub_model("g", "acme/gated"),
        hub_model("m", "acme/missing"),
        hub_model("r", "acme/other", "v9"),
        hub_model("ok", "acme/other"),
    ]
    f = fetcher(tmp_path, models, ahead=4).start()
    errors = {}
    try:
        for key in ("g", "m", "r"):
            with pytest.raises(WeightsError) as caught:
                f.wait(key, 60)
            errors[key] = str(caught.value)
        assert f.wait("ok", 60).is_dir()
    finally:
        f.close()
    assert (
        errors["g"].startswith(
            f"model 'g': hub model acme/gated is gated (401): accept its terms at {hub.url}/acme/gated"
        )
        and "HF_TOKEN" in errors["g"]
    )
    assert errors["m"].startswith("model 'm': hub model acme/missing was not found (404); check vllm.model")
    assert errors["r"].startswith("model 'r': hub model acme/other@v9: revision 'v9' does not exist; fix vllm.revision")
    assert all("\n" not in e for e in errors.values())


def test_gated_repository_downloads_with_a_token(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", hub.token)
    f = fetcher(tmp_path, [hub_model("g", "acme/gated")]).start()
    try:
        assert (f.wait("g", 60) / "model.safetensors").is_file()
    finally:
        f.close()


def test_a_model_larger_than_the_free_disk_fails_naming_its_size_and_the_free_space(hub, tmp_path):
    f = fetcher(tmp_path, [hub_model("a", "acme/tiny")], free=lambda path: 900_000, margin=100_000).start()
    try:
        with pytest.raises(
            WeightsError,
            match=r"model 'a': acme/tiny needs 1\.0 MB more on disk but .* has "
            r"900\.0 KB free \(keeping 100\.0 KB spare\)",
        ):
            f.wait("a", 60)
    finally:
        f.close()
    assert hub.gets("acme/tiny") == {}  # refused before any byte


def test_with_delete_after_a_model_waits_for_space_and_only_this_runs_downloads_are_deleted(hub, tmp_path):
    size = sum(len(hub.repos["acme/other"][n]) for n in NEEDED)
    hub.gated.clear()
    pre = fetcher(tmp_path, [hub_model("pre", "acme/gated")]).start()  # in the cache before the run
    pre.wait("pre", 60)
    pre.close()
    ours = [tmp_path / "hub" / f"models--acme--{name}" for name in ("tiny", "other")]

    def free(path):  # a disk that holds the cached repository plus 1.5 models
        used = sum(p.stat().st_size for folder in ours for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
        return size * 3 // 2 - used

    models = [hub_model("pre2", "acme/gated"), hub_model("a", "acme/tiny"), hub_model("b", "acme/other")]
    facts = Facts()
    f = fetcher(tmp_path, models, delete_after=True, free=free, margin=0, facts=facts).start()
    try:
        a = f.wait("a", 60)
        f.placed("a")  # acme/tiny fills the disk: acme/other waits for its deletion
        assert wait_until(lambda: "disk wait" in facts.status.get("b", []))
        assert not f.ready("b")
        f.released("a")  # a's last job ended: its files go, the space comes back
        assert f.wait("b", 60).is_dir()
        for key in ("pre2", "b"):
            f.placed(key)
            f.released(key)
    finally:
        f.close()
    assert not (a / "model.safetensors").exists()
    assert not [p for p in (ours[0] / "blobs").glob("*") if p.is_file()]
    assert (
        tmp_path / "hub" / "models--acme--gated" / "snapshots" / commit_of("acme/gated") / "model.safetensors"
    ).is_file()  # cached before the run: kept


def test_a_broken_download_resumes_in_the_next_run_from_where_it_stopped(hub, tmp_path):
    total = len(hub.repos["acme/tiny"]["model.safetensors"])
    hub.cut["model.safetensors"] = total // 2
    first = fetcher(tmp_path, [hub_model("a", "acme/tiny")]).start()
    try:
        with pytest.raises(WeightsError, match="model 'a': hub model acme/tiny"):
            first.wait("a", 60)
    finally:
        first.close()
    hub.down = False
    sent_before = hub.bytes_sent
    second = fetcher(tmp_path, [hub_model("a", "acme/tiny")]).start()
    try:
        assert (second.wait("a", 60) / "model.safetensors").read_bytes() == hub.repos["acme/tiny"]["model.safetensors"]
    finally:
        second.close()
    assert any(r.startswith("model.safetensors: bytes=") for r in hub.ranges)
    assert hub.bytes_sent - sent_before < total * 0.6 + 200_000  # the rest of it, not the whole file again


def test_offline_with_a_warm_cache_asks_nothing_and_without_it_fails_with_the_fix(hub, tmp_path, monkeypatch):
    online = fetcher(tmp_path, [hub_model("a", "acme/tiny")]).start()
    path = online.wait("a", 60)
    online.close()
    requests = dict(hub.served)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = fetcher(tmp_path, [hub_model("a", "acme/tiny"), hub_model("b", "acme/other")], ahead=2).start()
    try:
        assert offline.wait("a", 60) == path
        with pytest.raises(
            WeightsError, match="model 'b': hub model acme/other: cannot reach the hub .*HF_HUB_OFFLINE"
        ):
            offline.wait("b", 60)
    finally:
        offline.close()
    assert hub.served == requests


def test_the_dry_run_lists_cached_and_to_download_sizes_and_downloads_nothing(hub, tmp_path):
    models = [hub_model("a", "acme/tiny"), hub_model("b", "acme/tiny"), hub_model("m", "acme/missing")]
    text = render_weights(models, cache=tmp_path / "hub")
    assert "acme/tiny [a, b] commit " + commit_of("acme/tiny")[:12] + ": 1.0 MB to download (5 of 5 files" in text
    assert "acme/missing [m]: error: model 'm': hub model acme/missing was not found (404)" in text
    assert hub.served == {}
    f = fetcher(tmp_path, models[:1]).start()
    f.wait("a", 60)
    f.close()
    assert "acme/tiny [a, b] commit " + commit_of("acme/tiny")[:12] + ": cached (1.0 MB, 5 files)" in render_weights(
        models[:2], cache=tmp_path / "hub"
    )


def test_the_listing_comes_from_the_cache_when_the_hub_is_unreachable(hub, tmp_path, monkeypatch):
    f = fetcher(tmp_path, [hub_model("a", "acme/tiny")]).start()
    f.wait("a", 60)
    f.close()
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: the probe fails at once
    listing = list_weights(HubRef("acme/tiny"), HfHub(tmp_path / "hub"), tmp_path / "hub")
    assert listing.complete and not listing.online and [x.path for x in listing.files] == NEEDED
    with pytest.raises(
        WeightsError,
        match=r"^model 'b': hub model acme/other: cannot reach the hub at "
        r"http://127.0.0.1:9 \(ConnectError: .*\) and the weights are not",
    ):
        fetch_now(hub_model("b", "acme/other"), ServerSpec(name="b", model="acme/other", served_name="b"))


def test_the_scheduler_starts_a_job_only_once_it_is_ready_and_waits_instead_of_failing():
    jobs = [Job(hub_model(k, "x/y"), gpus_needed=1) for k in ("a", "b")]
    ready = {"a": False, "b": True}
    order: list[str] = []

    def launch(job, gpus):
        order.append(job.key)
        if job.key == "b":
            ready["a"] = True
            sched.wake()
        return job.key

    sched = Scheduler(jobs, [0], launch, ready=lambda job: ready[job.key], wait_timeout=0.05)
    assert sched.run() == {"a": "a", "b": "b"} and order == ["b", "a"]


def test_a_run_starts_each_server_on_complete_local_weights_and_fetches_the_next_while_one_runs(
    hub, tmp_path, fake_vllm, tiny_files
):
    """Model 1's server (a wrapper around the fake vLLM) waits at spawn until model 2's weights are complete: that
    can only happen if model 2 downloads while model 1 holds the CPU slot. Each wrapper records whether its
    ``--model`` held every file, at full size, with HF_HUB_OFFLINE=1, when it was spawned."""
    hub.rate = 400_000  # ~2.5 s per model
    events = tmp_path / "events.jsonl"
    other = tmp_path / "hub" / "models--acme--other" / "snapshots" / commit_of("acme/other") / "model.safetensors"
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(
        WRAPPER.format(
            python=sys.executable,
            events=events,
            sizes=json.dumps({n: len(tiny_files[n]) for n in NEEDED}),
            wait_for=other,
        )
    )
    wrapper.chmod(0o755)
    config = tmp_path / "run.yaml"
    config.write_text(
        textwrap.dedent(f"""
        model_list: [first, second]
        first:
          model_name: first
          vllm: {{model: acme/tiny, python: {wrapper}, startup_timeout: 120, env: {{PYTHONPATH: {fake_vllm}}}}}
        second:
          model_name: second
          vllm: {{model: acme/other, python: {wrapper}, startup_timeout: 120, env: {{PYTHONPATH: {fake_vllm}}}}}
        datasets:
          sample-math: {{}}
    """)
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "orchestrator.cli",
            "run",
            "--config",
            str(config),
            "--results-dir",
            str(tmp_path / "results"),
            "--logs-dir",
            str(tmp_path / "logs"),
            "--limit",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    spawned = [json.loads(line) for line in events.read_text().splitlines()]
    assert [(e["served"], e["complete"], e["offline"]) for e in spawned] == [
        ("first", True, "1"),
        ("second", True, "1"),
    ]
    assert spawned[0]["waited_for_next"] is True  # the second model's weights arrived while the first one ran
    manifest = json.loads(next((tmp_path / "results" / "runs").glob("*/manifest.json")).read_text())
    for key in ("first", "second"):
        assert manifest["models"][key]["weights"]["download_bytes"] == sum(len(tiny_files[n]) for n in NEEDED)
        assert manifest["timings"][key]["download"] > 0
    assert hub.gets("acme/tiny") == hub.gets("acme/other") == dict.fromkeys(NEEDED, 1)
    shutil.rmtree(tmp_path / "hub")  # a rerun with every answer in the checkpoint needs no server, so no weights
    again = subprocess.run(
        done.args, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert hub.gets("acme/tiny") == dict.fromkeys(NEEDED, 1) and not (tmp_path / "hub").exists()


WRAPPER = """#!{python}
import json, os, sys, time
from pathlib import Path
args = sys.argv[1:]
model, served = Path(args[args.index("--model") + 1]), args[args.index("--served-model-name") + 1]
sizes = json.loads('{sizes}')
complete = all((model / n).is_file() and (model / n).stat().st_size == s for n, s in sizes.items())
waited = None
if served == "first":
    deadline = time.monotonic() + 60
    while not Path("{wait_for}").is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    waited = Path("{wait_for}").is_file()
with open("{events}", "a") as fh:
    fh.write(json.dumps({{"served": served, "complete": complete, "offline": os.environ.get("HF_HUB_OFFLINE"),
                         "waited_for_next": waited}}) + "\\n")
os.execv("{python}", ["{python}"] + args)
"""


def test_dry_run_on_the_command_line_shows_the_weights_and_downloads_nothing(hub, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("model_list: [a]\na:\n  model_name: a\n  vllm: {model: acme/tiny, revision: main}\n")
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "run", "--config", str(config), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert f"weights: hub cache {tmp_path / 'hub'} (" in done.stdout
    assert f"  acme/tiny [a] commit {commit_of('acme/tiny')[:12]}: 1.0 MB to download (5 of 5 files" in done.stdout
    assert hub.served == {} and not (tmp_path / "results").exists()


def test_a_revision_for_a_local_directory_is_refused_naming_the_field(tmp_path, tiny_model):
    config = tmp_path / "run.yaml"
    config.write_text(f"model_list: [a]\na:\n  model_name: a\n  vllm: {{model: {tiny_model}, revision: v2}}\n")
    with pytest.raises(ConfigError, match=r"a\.vllm\.revision.*local directory.*hub ids only"):
        load_config(config)
    config.write_text("model_list: [a]\na:\n  model_name: a\n  vllm: {model: acme/tiny, revision: v2}\n")
    assert load_config(config).models[0].vllm.revision == "v2"


def test_a_ray_node_fetches_the_weights_itself_before_the_server_starts(hub, tmp_path):
    spec = ServerSpec(name="a", model="acme/tiny", served_name="served-a")
    facts = Facts()
    local = fetch_now(hub_model("a", "acme/tiny"), spec, manifest=facts, progress=facts)
    assert Path(local.model).is_dir() and ("HF_HUB_OFFLINE", "1") in local.env
    assert facts.models["a"]["weights"]["download_bytes"] > 0 and facts.status["a"][-1] == "weights ok"
    own = ServerSpec(name="b", model=str(tmp_path), served_name="b")
    assert (
        fetch_now(
            ModelConfig(key="b", model_name="b", sampling=Sampling(), vllm=VllmSettings(model=str(tmp_path))), own
        )
        == own
    )
    with pytest.raises(WeightsError, match="model 'm': hub model acme/missing was not found"):
        fetch_now(hub_model("m", "acme/missing"), spec)


def test_delete_after_keeps_blobs_that_a_revision_cached_before_the_run_shares(hub, tmp_path):
    before = fetcher(tmp_path, [hub_model("old", "acme/tiny")]).start()
    main = before.wait("old", 60)
    before.close()
    f = fetcher(tmp_path, [hub_model("new", "acme/tiny", "v2")], delete_after=True).start()
    try:
        v2 = f.wait("new", 60)
        f.placed("new")
        f.released("new")
    finally:
        f.close()
    assert v2 != main and not v2.exists()  # this run's snapshot is gone...
    assert (main / "model.safetensors").read_bytes() == hub.repos["acme/tiny"]["model.safetensors"]  # ...not main's
    assert hub.gets("acme/tiny") == dict.fromkeys(NEEDED, 1)  # v2 reused main's blobs: nothing fetched twice


def test_once_the_run_stops_no_new_download_starts(hub, tmp_path):
    stop = threading.Event()
    stop.set()
    f = fetcher(tmp_path, [hub_model("a", "acme/tiny")], stop=stop).start()
    time.sleep(0.3)  # several coordinator rounds (poll 0.05 s)
    f.close()
    assert not f.ready("a") and hub.served == {}


def test_a_finished_downloads_progress_line_is_blanked_on_a_terminal():
    out = io.StringIO()
    progress = Progress(stream=out, tty=True)
    progress.set_status("a", RunPhase.DOWNLOADING)
    progress.set_download("acme/tiny", "0.5 MB/1.0 MB  1.0 MB/s  ETA 1s")
    progress.render()
    progress.set_download("acme/tiny", None)
    progress.render()
    redraw = out.getvalue().split("\x1b[2F")[1]
    assert redraw.endswith("\x1b[2K\n") and "acme/tiny" not in redraw
