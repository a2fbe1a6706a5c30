"""Cause detection on real vLLM log excerpts (tests/data/logs, see its README)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.serving import logcause

LOGS = Path(__file__).resolve().parents[1] / "data" / "logs"


@pytest.mark.parametrize(
    "name, cause",
    [
        ("missing_path.log", logcause.MODEL_NOT_FOUND),
        ("bad_argument.log", logcause.UNSUPPORTED),
        ("unsupported_arch.log", logcause.UNSUPPORTED),
        ("kv_memory.log", logcause.KV_MEMORY),
        ("address_in_use.log", logcause.ADDRESS_IN_USE),
        ("cuda_oom_composed.log", logcause.OOM),
        ("healthy_start.log", logcause.UNKNOWN),
        ("engine_killed.log", logcause.ENGINE_DIED),
        ("max_model_len_above_model.log", logcause.MAX_LEN_ABOVE_MODEL),
        ("kv_memory_long_context.log", logcause.KV_MEMORY),
        ("gpu_memory_taken_h100.log", logcause.GPU_MEMORY_TAKEN),
        ("kv_memory_h100.log", logcause.KV_MEMORY),
    ],
)
def test_cause_of_each_real_log(name: str, cause: str) -> None:
    assert logcause.detect_cause((LOGS / name).read_text(encoding="utf-8")) == cause


def test_every_cause_has_a_hint() -> None:
    causes = [
        logcause.OOM,
        logcause.GPU_MEMORY_TAKEN,
        logcause.KV_MEMORY,
        logcause.MAX_LEN_ABOVE_MODEL,
        logcause.ADDRESS_IN_USE,
        logcause.MODEL_NOT_FOUND,
        logcause.UNSUPPORTED,
        logcause.ENGINE_DIED,
        logcause.TIMEOUT,
        logcause.UNKNOWN,
    ]
    assert set(logcause.HINTS) == set(causes)


def test_warnings_alone_are_not_a_cause() -> None:
    text = "WARNING Dual-Batch Overlap is not supported on CPU, disabled.\nINFO Unsupported? no.\n"
    assert logcause.detect_cause(text) == logcause.UNKNOWN


def test_oom_wins_over_the_generic_engine_failure_that_follows_it() -> None:
    text = (
        "ERROR torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n"
        "RuntimeError: Engine core initialization failed. See root cause above.\n"
    )
    assert logcause.detect_cause(text) == logcause.OOM


def test_read_since_offset_reads_only_this_attempt(tmp_path: Path) -> None:
    log = tmp_path / "m.log"
    log.write_text("OSError: [Errno 98] Address already in use\n")
    offset = log.stat().st_size
    with open(log, "a") as fh:
        fh.write("second attempt\n\nOSError: Repo id must be in the form 'repo_name'\n")
    since = logcause.read_since(log, offset)
    assert logcause.detect_cause(since) == logcause.MODEL_NOT_FOUND
    assert logcause.read_tail(log, offset) == "second attempt\nOSError: Repo id must be in the form 'repo_name'"


def test_read_since_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert logcause.read_since(tmp_path / "nope.log") == ""


def test_tail_keeps_the_last_lines_and_the_quote_is_one_bounded_line() -> None:
    text = "\n".join(f"line {i}" for i in range(100))
    tail = logcause.tail_lines(text, lines=5)
    assert tail.splitlines() == [f"line {i}" for i in range(95, 100)]
    quote = logcause.one_line_quote(tail, lines=2)
    assert quote == "line 98 | line 99"
    long = logcause.one_line_quote("x" * 1000, width=50)
    assert len(long) == 50 and "\n" not in long and long.startswith("...")


def test_gpu_memory_taken_is_not_mistaken_for_the_engine_failure_that_follows_it() -> None:
    text = (
        "(EngineCore pid=7) ERROR ValueError: Free memory on device cuda:0 (40.10/79.18 GiB) on startup is less "
        "than desired GPU memory utilization (0.9, 71.26 GiB). Decrease GPU memory utilization or reduce GPU "
        "memory used by other processes.\n"
        "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}\n"
    )
    assert logcause.detect_cause(text) == logcause.GPU_MEMORY_TAKEN
    assert "gpu_memory_utilization" in logcause.HINTS[logcause.GPU_MEMORY_TAKEN]
