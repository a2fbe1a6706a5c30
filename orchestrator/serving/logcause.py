"""Why did a vLLM server fail to start? Read it from the server log.

``detect_cause(text)`` returns one of the ``CAUSES`` names (or ``UNKNOWN``); ``HINTS`` says how to fix each one.
``read_tail(path, offset)`` returns the last lines written since ``offset`` (one start attempt's part of the log).
"""

from __future__ import annotations

import re
from pathlib import Path

OOM = "CUDA out of memory"
GPU_MEMORY_TAKEN = "GPU memory held by other processes"
KV_MEMORY = "not enough memory for the KV cache"
MAX_LEN_ABOVE_MODEL = "max_model_len above the model's limit"
ADDRESS_IN_USE = "address already in use"
MODEL_NOT_FOUND = "model path not found"
UNSUPPORTED = "unsupported model or argument"
ENGINE_DIED = "vLLM engine died"
TIMEOUT = "startup timeout"
UNKNOWN = "unknown"

# Order matters: the first cause whose pattern matches wins (OOM before the generic engine failure, etc.).
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # vLLM >= 0.11 checks free memory at start: "Free memory on device cuda:0 (40.1/79.2 GiB) on startup is less
    # than desired GPU memory utilization (0.9, 71.3 GiB)" (vllm/v1/worker/utils.py request_memory in 0.26).
    (GPU_MEMORY_TAKEN, re.compile(r"less than desired GPU memory utilization", re.I)),
    (OOM, re.compile(r"CUDA out of memory|OutOfMemoryError|CUDA error: out of memory", re.I)),
    (
        KV_MEMORY,
        re.compile(
            r"No available memory for the cache blocks|larger than the available KV cache memory"
            r"|less than requested memory for kv|Insufficient memory for KV cache",
            re.I,
        ),
    ),
    (MAX_LEN_ABOVE_MODEL, re.compile(r"User-specified max_model_len \(\d+\) is greater than the derived", re.I)),
    (ADDRESS_IN_USE, re.compile(r"address already in use|Errno 98", re.I)),
    (
        MODEL_NOT_FOUND,
        re.compile(
            r"Repo id must be in the form|Repository Not Found|RepositoryNotFoundError|is not a local folder"
            r"|No such file or directory: .*config\.json|Invalid repository ID or local directory"
            r"|does not appear to have a file named config\.json|Can't load the configuration of",
            re.I,
        ),
    ),
    (
        UNSUPPORTED,
        re.compile(
            r"unrecognized arguments|invalid choice|error: argument|are not supported for now|is not supported"
            r"|not supported by vLLM|Unsupported|has no vLLM implementation|does not recognize this architecture"
            r"|Unrecognized model|trust_remote_code",
            re.I,
        ),
    ),
    (ENGINE_DIED, re.compile(r"EngineDeadError|engine core exited unexpectedly", re.I)),
)

HINTS = {
    OOM: "lower vllm.gpu_memory_utilization or vllm.max_model_len, or give the model more GPUs",
    GPU_MEMORY_TAKEN: "other processes hold memory on the server's GPUs: free it (see nvidia-smi) or lower "
    "vllm.gpu_memory_utilization below the free share",
    KV_MEMORY: "lower vllm.max_model_len or raise vllm.gpu_memory_utilization (CPU: VLLM_CPU_KVCACHE_SPACE)",
    MAX_LEN_ABOVE_MODEL: "lower vllm.max_model_len to the model's max_position_embeddings (or set "
    "VLLM_ALLOW_LONG_MAX_MODEL_LEN: '1' in vllm.env if the model really supports more)",
    ADDRESS_IN_USE: "another process holds the port; free it or leave vllm.port unset",
    MODEL_NOT_FOUND: "check vllm.model: a local directory with config.json or a hub id that is downloaded",
    UNSUPPORTED: "check vllm.args and that this vLLM version supports the model architecture",
    ENGINE_DIED: "the engine process died (killed, or crashed: see the log); the server must be restarted",
    TIMEOUT: "raise vllm.startup_timeout or check the log for a hang",
    UNKNOWN: "read the server log",
}


_ERROR_LINE = re.compile(r"error|exception", re.I)


def detect_cause(text: str) -> str:
    """The first known failure cause found in the error lines of ``text``, else ``UNKNOWN``.

    Only lines that mention an error or exception count, so warnings ("... is not supported on CPU, disabled")
    never pass for a cause.
    """
    errors = "\n".join(line for line in text.splitlines() if _ERROR_LINE.search(line))
    for cause, pattern in _PATTERNS:
        if pattern.search(errors):
            return cause
    return UNKNOWN


def read_since(path: Path, offset: int = 0, limit: int = 1 << 20) -> str:
    """The log text written at or after byte ``offset`` (at most its last ``limit`` bytes); '' if unreadable."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(offset, size - limit))
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def tail_lines(text: str, lines: int = 30) -> str:
    """The last ``lines`` non-blank lines of ``text``."""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def read_tail(path: Path, offset: int = 0, lines: int = 30) -> str:
    """The last ``lines`` non-blank lines written to ``path`` since ``offset``."""
    return tail_lines(read_since(path, offset), lines)


def one_line_quote(tail: str, lines: int = 3, width: int = 400) -> str:
    """The last ``lines`` lines of a tail joined with ' | ' and cut to ``width`` characters, for one-line messages."""
    quoted = " | ".join(tail.splitlines()[-lines:])
    return quoted if len(quoted) <= width else "..." + quoted[-(width - 3) :]
