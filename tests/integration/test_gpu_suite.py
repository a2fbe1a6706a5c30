"""The GPU suite's own logic (benchmarks/gpu), on CPU: what it parses, how it attributes GPU processes to servers,
what it reports. The suite itself runs on a GPU box (or with --cpu-dry-run); these keep its pieces honest here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.gpu import report, smi, suite
from benchmarks.gpu.common import TITLES, parse_summary
from orchestrator.contract import SeriesScore
from orchestrator.job import ModelOutcome
from orchestrator.orchestrate import RunSummary
from orchestrator.serving.records import ServerRecord, StateFile
from orchestrator.status.report import summary_lines


def test_the_suite_reads_the_clis_own_summary() -> None:
    score = SeriesScore("fits", "sample-math", "h", 3, 3, 1, 0, 10, 20, 1.0)
    summary = RunSummary(
        run_id="r",
        outcomes=[
            ModelOutcome(model="fits", status="finished", scores=[score], seconds=3.0, log_path="/l/fits.log"),
            ModelOutcome(
                model="greedy",
                status="failed",
                error="vLLM server 'greedy' ... exited with code 1 before it "
                "was ready: GPU memory held by other processes; other processes hold memory",
                seconds=20.0,
            ),
        ],
    )
    parsed = parse_summary("\n".join(["INFO something: started", *summary_lines(summary)]))
    assert parsed["fits"]["status"] == "finished" and parsed["fits"]["error"] == ""
    assert parsed["greedy"]["status"] == "failed"
    assert ": GPU memory held by other processes;" in parsed["greedy"]["error"]


def test_analyse_finds_double_bookings_where_each_server_ran_and_their_overlap() -> None:
    samples = [
        {"t": 0.0, "used_mib": {0: 100, 1: 0}, "owners": {0: ["tp2"], 1: ["tp2"]}},
        {"t": 1.0, "used_mib": {0: 900, 1: 50}, "owners": {0: ["a", "tp2"], 1: ["other:7"]}},
        {"t": 2.0, "used_mib": {0: 500, 1: 500}, "owners": {0: ["a"], 1: ["b"]}},
        {"t": 3.0, "used_mib": {0: 500, 1: 500}, "owners": {0: ["a"], 1: ["b", "gone:9"]}},
    ]
    seen = smi.analyse(samples)
    assert seen["double_booked_count"] == 1 and seen["double_booked"][0] == {
        "t": 1.0,
        "gpu": 0,
        "servers": ["a", "tp2"],
    }
    assert seen["servers"]["tp2"] == {"gpus": [0, 1], "first": 0.0, "last": 1.0}
    assert seen["servers"]["b"]["gpus"] == [1] and seen["peak_used_mib"] == {0: 900, 1: 500}
    assert smi.overlap(seen["servers"], "a", "b") == 1.0 and smi.overlap(seen["servers"], "tp2", "b") == 0.0


@pytest.fixture
def fake_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAKE_SMI_TAG", smi.install_fake(tmp_path / "bin", count=2, total_mib=1000, app_mib=300))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return tmp_path


def _sleeper(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], env={**os.environ, **env}, start_new_session=True
    )


def test_gpu_processes_are_attributed_to_the_server_whose_session_they_are_in(fake_gpus: Path) -> None:
    server = _sleeper({"DEATHMATH_SERVER_ID": "s1", "CUDA_VISIBLE_DEVICES": "1", "NCCL_NVLS_ENABLE": "0"})
    other = _sleeper({"FAKE_SMI_HOLD": "0:420"})
    try:
        StateFile(fake_gpus / "logs").add(
            ServerRecord(
                pid=server.pid,
                pgid=server.pid,
                create_time=time.time(),
                run_id="r",
                owner_pid=os.getpid(),
                owner_create_time=0.0,
                name="pair-a",
                gpus=(1,),
                port=8100,
            )
        )
        servers = smi.Servers([fake_gpus / "logs"], env_keys=("NCCL_NVLS_ENABLE",))
        servers.refresh()
        snap = smi.snapshot()
        assert "error" not in snap and smi.used_by_index(snap) == {0: 420, 1: 300}
        assert smi.attribute(snap, servers) == {0: [f"other:{other.pid}"], 1: ["pair-a"]}
        assert servers.envs == {"pair-a": {"NCCL_NVLS_ENABLE": "0"}}
    finally:
        for proc in (server, other):
            proc.kill()
            proc.wait()


def test_the_report_names_the_card_the_versions_and_every_check(tmp_path: Path) -> None:
    result = {
        "scenario": "s1",
        "title": "one GPU",
        "status": "failed",
        "mode": "gpu",
        "date": "2026-11-27 20:00:00",
        "seconds": 170.2,
        "host": {
            "python": "3.12.3",
            "versions": {"vllm": "0.26.0", "torch": "2.11.0+cu130"},
            "gpus": [
                {"index": 0, "name": "NVIDIA H100 80GB HBM3", "total_mib": 81559},
                {"index": 1, "name": "NVIDIA H100 80GB HBM3", "total_mib": 81559},
            ],
        },
        "checks": [
            {"name": "exit code 0", "ok": True, "detail": "exit 0"},
            {"name": "nothing left", "ok": False, "detail": "pid 5 | GPU 0"},
        ],
        "figures": {"timings_s": {"llama-a": {"startup": 77.5}}},
        "failures": [],
        "notes": [],
    }
    (tmp_path / "s1.json").write_text(json.dumps(result))
    text = report.render(report.load([tmp_path]))
    assert "2 x NVIDIA H100 80GB HBM3 (81559 MiB)" in text and "vLLM 0.26.0, torch 2.11.0+cu130" in text
    assert f"| s1 | {TITLES['s1']} | failed | 1/2 | 170.2 |" in text and "| s2 | | not run | | |" in text
    assert "- FAIL nothing left: pid 5 \\| GPU 0" in text and "- llama-a: startup 77.5 s" in text


def _s4(date: str, value: float, title: str = "throughput, with the variants of issue 18") -> dict:
    return {
        "scenario": "s4",
        "title": title,
        "status": "passed",
        "date": date,
        "seconds": 1.0,
        "host": {"gpus": [{"index": 0, "name": "NVIDIA H200", "total_mib": 143771}]},
        "checks": [{"name": "every pass", "ok": True, "detail": ""}],
        "figures": {
            "median_tok_s": {"offline vllm.LLM": 10007, "vllm bench serve": 6605},
            "targets": {
                "ours / offline, default client": {"value": value, "target": ">= 0.95", "met": True},
                "ours / vllm bench serve": {"value": 1.486, "target": "> 1.0", "met": True},
            },
        },
    }


def test_earlier_s4_runs_go_to_the_archive_and_the_current_section_names_them(tmp_path: Path) -> None:
    (tmp_path / "s4.json").write_text(json.dumps(_s4("2026-12-02 11:07:22 UTC", 0.983)))
    (tmp_path / "s4-codecs.json").write_text(json.dumps(_s4("2026-12-01 04:46:40 UTC", 0.871)))
    results = report.load([tmp_path])
    current, archive = report.render(results), report.render_archive(results)
    assert "### s4: " in current and "s4-codecs" not in current.split("Earlier s4 runs")[0]
    assert "Earlier s4 runs (s4-codecs): BENCHMARKS-archive.md." in current and "### s4-codecs" not in current
    assert "### s4-codecs: " in archive and "An earlier s4 run (2026-12-01 04:46:40 UTC)" in archive
    assert "### s4: " not in archive and "issue 18" not in current + archive  # headings say what is measured
    assert report.render_archive(report.load([tmp_path / "none"])) == ""


def test_an_earlier_s6_run_kept_for_the_way_a_later_run_did_not_repeat_goes_to_the_archive(tmp_path: Path) -> None:
    def s6_run(date: str, ways: dict[str, dict]) -> dict:
        checks = [{"name": f"{way}: every answer stored", "ok": f["ok"], "detail": ""} for way, f in ways.items()]
        figures = {"setup": {"answers": 128, "budget": 4096, "answer_tokens": 256}}
        shown = {"stored": 128, "total": 128, "forced": 128, "over_budget": 0, "wall_s": 160.0}
        figures.update({way: {**shown, "tokens_per_s": f["tok_s"]} for way, f in ways.items()})
        return {"scenario": "s6", "title": "s6", "status": "passed", "date": date, "checks": checks, "figures": figures}

    (tmp_path / "s6.json").write_text(json.dumps(s6_run("2026-12-08", {"engine": {"ok": True, "tok_s": 3000.0}})))
    both = {"client": {"ok": True, "tok_s": 3492.0}, "engine": {"ok": False, "tok_s": 0.0}}
    (tmp_path / "s6-client.json").write_text(json.dumps(s6_run("2026-12-07", both)))
    results = report.load([tmp_path])
    current, archive = report.render(results), report.render_archive(results)
    assert "Earlier s6 runs (s6-client): BENCHMARKS-archive.md." in current and "### s6-client" not in current
    assert "### s6-client: " in archive and "An earlier s6 run (2026-12-07)" in archive and "client:" in archive


def test_the_headline_rows_of_s4_take_each_target_and_the_median_it_is_measured_against(tmp_path: Path) -> None:
    (tmp_path / "s4.json").write_text(json.dumps(_s4("2026-12-02 11:07:22 UTC", 0.983)))
    (tmp_path / "s4-old.json").write_text(json.dumps(_s4("2026-12-01 00:00:00 UTC", 0.5)))
    rows = report.headlines(report.load([tmp_path]))
    assert [(r.measure, r.figure, r.baseline, r.target, r.date) for r in rows] == [
        (
            "GPU s4, ours / offline, default client",
            "0.98",
            "offline vllm.LLM: 10007 output tok/s",
            ">= 0.95",
            "2026-12-02",
        ),
        ("GPU s4, ours / vllm bench serve", "1.49", "vllm bench serve: 6605 output tok/s", "> 1.0", "2026-12-02"),
    ]
    assert {r.machine for r in rows} == {"1 x NVIDIA H200 (143771 MiB)"}


def test_s4_without_slots_divides_each_pass_by_the_mean_of_the_offline_passes_around_its_round(tmp_path: Path) -> None:
    from benchmarks.gpu.common import Profile, Recorder
    from benchmarks.gpu.variants import DEFAULT_CLIENT as MINE
    from benchmarks.gpu.variants import compare

    rec = Recorder(tmp_path, "s4", "throughput", Profile.make(True, tmp_path, tmp_path))
    rec.figure("setup", {"prompts": 4, "concurrency": 2, "rounds": 2})

    def row(count: int, r: int, client: str, tok_s: int) -> dict:
        label = {"offline": "offline vllm.LLM", "bare": "bare async"}.get(client, "ours")
        return {
            "label": label,
            "client": client,
            "api_servers": count,
            "round": r,
            "requests": 4,
            "tok_s": tok_s,
            "concurrency": 2,
            "output_tokens": 64,
            "seconds": 1.0,
        }

    # a run recorded before slots: api 1: offline 1000 | round 1 | offline 800 | round 2 | offline 800 (closes it)
    rec.figure(
        "passes",
        [
            row(1, 1, "offline", 1000),
            row(1, 1, "requests json", 810),
            row(1, 1, MINE, 855),
            row(1, 1, "bare", 1000),
            row(1, 2, "offline", 800),
            row(1, 2, "bare", 900),
            row(1, 2, MINE, 792),
            row(1, 2, "requests json", 760),
            row(1, 3, "offline", 800),
            row(4, 1, "offline", 1000),
            row(4, 1, "requests json", 980),
        ],
    )  # api 4: no closing pass
    compare(rec)
    variants = {v["variant"]: v for v in rec.data["figures"]["variants"]}
    base = variants["--api-server-count 1, requests json"]
    assert base["ratios"] == [0.9, 0.95] and base["median_ratio"] == 0.925 and base["spread"] == 0.05
    assert not base["met"] and variants["--api-server-count 4, requests json"]["ratios"] == [0.98]
    assert variants["--api-server-count 1, bare"]["median_ratio"] > 1.1  # the bare client: a row, never "best"
    targets = rec.data["figures"]["targets"]
    assert targets["ours / offline, best variant"]["variant"] == "--api-server-count 4, requests json"
    assert targets["ours / offline, default client"]["variant"] == f"--api-server-count 1, {MINE}"
    assert [c["ok"] for c in rec.data["checks"]] == [True, True]
    text = report.render({"s4": {**rec.data, "status": "passed", "seconds": 1.0}})
    assert f"| --api-server-count 1, {MINE} | 2 | 824 | 0.950, 0.990 | 0.970 | 0.040 |" in text


def test_s4_divides_each_client_pass_by_the_mean_of_the_offline_passes_just_before_and_after_it(tmp_path: Path) -> None:
    from benchmarks.gpu.common import Profile, Recorder
    from benchmarks.gpu.variants import DEFAULT_CLIENT as MINE
    from benchmarks.gpu.variants import compare

    rec = Recorder(tmp_path, "s4", "throughput", Profile.make(True, tmp_path, tmp_path))
    rec.figure("setup", {"prompts": 4, "concurrency": 2, "rounds": 2})

    def row(r: int, slot: int, client: str, tok_s: int) -> dict:
        return {
            "label": "offline vllm.LLM" if client == "offline" else "ours",
            "client": client,
            "api_servers": 1,
            "round": r,
            "slot": slot,
            "requests": 4,
            "tok_s": tok_s,
            "concurrency": 2,
            "output_tokens": 64,
            "seconds": 1.0,
        }

    profiled = row(0, 0, "profiled", 500)  # the py-spy pass: round 0, outside the rounds, no slot
    del profiled["slot"]
    # offline 1000 | mine 950 | offline 900 | old 600 | offline 600 || old 570 | offline 700 | mine 650 | offline 600
    rec.figure(
        "passes",
        [
            row(1, 0, "offline", 1000),
            row(1, 0, MINE, 950),
            row(1, 1, "offline", 900),
            row(1, 1, "old", 600),
            row(1, 2, "offline", 600),
            row(2, 2, "old", 570),
            row(2, 3, "offline", 700),
            row(2, 3, MINE, 650),
            row(3, 4, "offline", 600),
            profiled,
        ],
    )
    compare(rec)
    variants = {v["client"]: v for v in rec.data["figures"]["variants"]}
    assert variants[MINE]["ratios"] == [1.0, 1.0] and variants[MINE]["met"]  # a slowdown between passes cancels
    assert variants["old"]["ratios"] == [0.8, 0.877] and variants["old"]["spread"] == 0.077
    assert "ratios" not in variants["profiled"] and variants["profiled"]["median_tok_s"] == 500


def test_a_run_without_the_default_api_processes_compares_the_default_client_of_its_first_phase(tmp_path: Path) -> None:
    from benchmarks.gpu.common import Profile, Recorder
    from benchmarks.gpu.variants import DEFAULT_CLIENT as MINE
    from benchmarks.gpu.variants import compare

    rec = Recorder(tmp_path, "s4", "throughput", Profile.make(True, tmp_path, tmp_path))
    rec.figure("setup", {"prompts": 4, "concurrency": 2, "rounds": 1})
    row = {"api_servers": 2, "round": 1, "requests": 4, "concurrency": 2, "output_tokens": 64, "seconds": 1.0}
    rec.figure(
        "passes",
        [
            {**row, "label": "offline vllm.LLM", "client": "offline", "tok_s": 1000},
            {**row, "label": "ours", "client": "requests json", "tok_s": 990},
            {**row, "label": "ours", "client": MINE, "tok_s": 960},
        ],
    )
    compare(rec)
    targets = rec.data["figures"]["targets"]
    assert targets["ours / offline, default client"]["variant"] == f"--api-server-count 2, {MINE}"
    assert targets["ours / offline, default client"]["value"] == 0.96
    assert targets["ours / offline, best variant"]["variant"] == "--api-server-count 2, requests json"
    assert all(c["ok"] for c in rec.data["checks"])


# py-spy's raw output as it writes it: with --subprocesses a stack starts with process frames, and a command line
# may hold newlines and ';' (vLLM's engine is a multiprocessing spawn: ``-c from multiprocessing.spawn import ...``).
FRONT = 'process 100:"python3 -m vllm.entrypoints.openai.api_server --model m"'
ENGINE = 'process 101:"python3 -c from multiprocessing.spawn import spawn_main;\nspawn_main(tracker_fd=5)"'
LOOP = "run (asyncio/runners.py);_run_once (asyncio/base_events.py)"
PYSPY_RAW = (
    f"{FRONT};{LOOP};encode (msgspec/json.py) 30\n{FRONT};{LOOP} 10\n"
    f"{FRONT};{ENGINE};run_busy_loop (vllm/v1/engine/core.py);step (vllm/v1/engine/core.py) 55\n"
    f"{FRONT};{ENGINE};run_busy_loop (vllm/v1/engine/core.py) 5\n"
)


def test_py_spy_stacks_are_split_by_the_process_sampled_with_self_and_inclusive_shares() -> None:
    from benchmarks.gpu.pyspy import summarise

    profiles = summarise(PYSPY_RAW)
    assert sorted(profiles) == [100, 101]
    front, engine = profiles[100].top(seconds=1.0, rate=40), profiles[101].top(seconds=1.0, rate=40)
    assert front["samples"] == 40 and front["cores"] == 1.0 and engine["cores"] == 1.5
    assert front["self"][0] == {"function": "encode (msgspec/json.py)", "share": 0.75}
    assert front["inclusive"] == [{"function": "encode (msgspec/json.py)", "share": 0.75}]  # asyncio is plumbing
    assert {"function": "run_busy_loop (vllm/v1/engine/core.py)", "share": 1.0} in engine["inclusive"]
    assert engine["self"][0] == {"function": "step (vllm/v1/engine/core.py)", "share": 0.917}
    assert "spawn_main, spawn_main" in engine["command"] and "\n" not in engine["command"]
    client = summarise("run (threading.py);ask (orchestrator/client/chat.py) 7\n", root=5)
    assert client[5].top(seconds=1.0, rate=7)["self"] == [
        {"function": "ask (orchestrator/client/chat.py)", "share": 1.0}
    ]


def test_the_report_shows_the_profile_busiest_process_first(tmp_path: Path) -> None:
    from benchmarks.gpu.pyspy import summarise

    procs = [
        {"role": role, **prof.top(seconds=1.0, rate=40)}
        for role, prof in zip(("front end", "engine"), summarise(PYSPY_RAW).values())
    ]
    text = report.render(
        {
            "s4": {
                "title": "throughput",
                "status": "passed",
                "checks": [],
                "figures": {
                    "profile": {
                        "pass": "--api-server-count 1, msgspec codec",
                        "rate_hz": 40,
                        "seconds": 1.0,
                        "tok_s": 900,
                        "processes": procs,
                    }
                },
            }
        }
    )
    rows = [line for line in text.splitlines() if line.startswith(("| engine", "| front end"))]
    assert rows[0].startswith("| engine (pid 101) | 1.5 | `step (vllm/v1/engine/core.py)` 92%")
    assert rows[1].startswith("| front end (pid 100) | 1.0 | `encode (msgspec/json.py)` 75%")
    assert "Profile (py-spy, not paused; every process at 40 Hz)" in text
    client = {**procs[1], "role": "client (the thread holding the GIL)"}
    text = report.render(
        {
            "s4": {
                "title": "throughput",
                "status": "passed",
                "checks": [],
                "figures": {
                    "profile": {
                        "pass": "p",
                        "rate_hz": 40,
                        "client_rate_hz": 20,
                        "seconds": 1.0,
                        "tok_s": 900,
                        "processes": [procs[0], client],
                    }
                },
            }
        }
    )
    assert "the server's processes at 40 Hz, the client's GIL holder at 20 Hz" in text


def test_s4_keeps_a_stats_off_server_apart_from_the_default_one_with_the_same_api_processes(tmp_path: Path) -> None:
    from benchmarks.gpu.common import Profile, Recorder
    from benchmarks.gpu.variants import DEFAULT_CLIENT as MINE
    from benchmarks.gpu.variants import Server, compare, servers

    assert [s.label for s in servers((1, 4), stats_off=True)] == [
        "--api-server-count 1",
        "--api-server-count 4",
        "--api-server-count 1, --disable-log-stats",
    ]
    assert Server(1, stats=False).args == ("--disable-log-stats",) and Server(1).args == ()
    rec = Recorder(tmp_path, "s4", "throughput", Profile.make(True, tmp_path, tmp_path))
    rec.figure("setup", {"prompts": 4, "concurrency": 2, "rounds": 1})

    def row(sv: Server, slot: int, client: str, tok_s: int, engine: float) -> dict:
        return {
            "label": "offline vllm.LLM" if client == "offline" else "ours",
            "client": client,
            "api_servers": 1,
            "server": sv.label,
            "round": 1,
            "slot": slot,
            "requests": 4,
            "tok_s": tok_s,
            "concurrency": 2,
            "output_tokens": 64,
            "seconds": 1.0,
            "cpu": {
                "client_cores": 0.1,
                "front_end_cores": 0.5,
                "busiest_front_end_process_cores": 0.5,
                "engine_cores": engine,
            },
        }

    on, off = Server(1), Server(1, stats=False)
    # stats on: offline 1000 | mine 900 | offline 1000;  stats off: offline 500 | mine 490 | offline 500
    rec.figure(
        "passes",
        [
            row(on, 0, "offline", 1000, 1.0),
            row(on, 0, MINE, 900, 0.8),
            row(on, 1, "offline", 1000, 0.9),
            row(off, 0, "offline", 500, 1.0),
            row(off, 0, MINE, 490, 0.95),
            row(off, 1, "offline", 500, 1.0),
        ],
    )
    compare(rec)
    variants = {v["server"]: v for v in rec.data["figures"]["variants"]}
    assert variants[on.label]["ratios"] == [0.9] and variants[off.label]["ratios"] == [0.98]  # each its own offline
    assert variants[on.label]["engine_cores"] == 0.8 and rec.data["figures"]["offline_engine_cores"] == 1.0
    targets = rec.data["figures"]["targets"]
    assert targets["ours / offline, default client"]["variant"] == f"--api-server-count 1, {MINE}"  # statistics on
    assert targets["ours / offline, best variant"]["variant"] == f"--api-server-count 1, {MINE}"  # 0.98: not adoptable
    text = report.render({"s4": {**rec.data, "status": "passed", "seconds": 1.0}})
    assert f"| --api-server-count 1, --disable-log-stats, {MINE} | 1 | 490 | 0.980 | 0.980 | 0.000 | 0.95 |" in text
    assert "CPU cores of the offline engine's process during its passes (median): 1.0" in text


def test_a_shape_is_the_base_models_tokenizer_with_that_architectures_config_and_no_weights(tmp_path: Path) -> None:
    from benchmarks.gpu.make_model import SHAPES, param_count, write_shape

    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(
        json.dumps(
            {
                "hidden_size": 2048,
                "num_hidden_layers": 16,
                "vocab_size": 32000,
                "intermediate_size": 4864,
                "num_attention_heads": 16,
                "num_key_value_heads": 8,
                "head_dim": 128,
                "model_type": "llama",
            }
        )
    )
    (base / "tokenizer.json").write_text("{}")
    (base / "model.safetensors").write_bytes(b"weights")
    out = write_shape(base, tmp_path / "8b", "llama-8b")
    config = json.loads((out / "config.json").read_text())
    assert {k: config[k] for k in SHAPES["llama-8b"]} == SHAPES["llama-8b"] and config["vocab_size"] == 32000
    assert (out / "tokenizer.json").read_text() == "{}" and not (out / "model.safetensors").exists()
    assert 7.0 < param_count(config) / 1e9 < 8.0  # Llama-3.1-8B's layers on a 32k vocabulary


def test_s4_clients_are_picked_by_key_and_an_unknown_key_names_the_known_ones(tmp_path: Path) -> None:
    import argparse

    from benchmarks.gpu.common import Profile
    from benchmarks.gpu.suite import s4_overrides
    from benchmarks.gpu.variants import CLIENTS, DEFAULT_CLIENT, clients

    assert clients(()) == list(CLIENTS) and clients(("bare", "queue"))[0] == DEFAULT_CLIENT
    args = argparse.Namespace(
        s4_prompts=None,
        s4_rounds=None,
        s4_api_servers=None,
        s4_clients="queue,fast",
        s4_stats_off=True,
        s4_shape=None,
        s4_no_profile=True,
        s6_ways="engine",
    )
    with pytest.raises(SystemExit, match="no client variant fast; use some of queue,noqueue,bare"):
        s4_overrides(Profile.make(True, tmp_path, tmp_path), args)
    args.s4_clients = "queue"
    profile = s4_overrides(Profile.make(True, tmp_path, tmp_path), args)
    assert profile.s4_clients == ("queue",) and profile.s4_stats_off and profile.s4_shape is None
    assert not profile.s4_profile and profile.s6_ways == ("engine",)
    args.s6_ways = "engine,both"
    with pytest.raises(SystemExit, match="--s6-ways: no way both; use some of client,engine"):
        s4_overrides(Profile.make(True, tmp_path, tmp_path), args)


def test_every_scenario_of_the_suite_has_a_title_and_a_place_in_the_report() -> None:
    assert set(suite.ORDER) - set(TITLES) == set()
    assert set(suite.ORDER) - set(report.ORDER) == set()
