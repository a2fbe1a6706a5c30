"""The contract: small dataclasses that every other module imports.

Nothing here does I/O. Modules talk to each other in these types only:

* ``VllmSettings`` / ``ModelConfig`` / ``DatasetSpec`` / ``RunConfig`` -- what the user asked for (config.py).
* ``ServerSpec``   -- one vLLM server to start (plan.py makes them, server.py runs them).
* ``Endpoint``     -- an OpenAI-compatible base URL plus key (API models, or a started server).
* ``Sampling``     -- request settings for one model (client.py).
* ``Problem``      -- one dataset item (datasets.py).
* ``AnswerRecord`` -- one line of ``results/details/<model>/<dataset>.jsonl`` (client.py, results.py).
* ``Grade``        -- what the grader says about one response (grading/).
* ``SeriesScore``  -- the aggregate of one (model, dataset, settings) series (results.py, leaderboard.py).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

LOCALHOST = "127.0.0.1"
DOMAINS = ("math", "physics")
VERDICTS = ("correct", "incorrect", "unparsed", "timeout")
_SECRET_PARTS = frozenset({"key", "apikey", "token", "secret", "password", "passwd", "pwd", "authorization"})


def is_secret_name(name: str) -> bool:
    """True for names of secrets (``api_key``, ``HF_TOKEN``, ``--api-key``), false for ``tokenizer``/``max_tokens``.

    The one rule used everywhere something is redacted: config dumps, the plan, the manifest and series meta.
    """
    return any(part.lower() in _SECRET_PARTS for part in re.split(r"[-_]+", name.strip("-")) if part)


def public_url(url: str) -> str:
    """``url`` without credentials or query string (where keys hide: ``user:key@host``, ``?key=...``)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def redact_command(argv: Sequence[str]) -> list[str]:
    """``argv`` with the value of every secret-looking option (``--api-key X``, ``--hf-token=X``) masked."""
    out: list[str] = []
    for word in argv:
        flag, eq, _ = word.partition("=")
        if out and out[-1].startswith("--") and "=" not in out[-1] and is_secret_name(out[-1]):
            out.append("***")
        elif flag.startswith("--") and eq and is_secret_name(flag):
            out.append(f"{flag}=***")
        else:
            out.append(word)
    return out


@dataclass(frozen=True)
class VllmSettings:
    """The ``vllm:`` block of a managed model."""

    model: str
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    startup_timeout: float = 900.0
    python: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    host: str = LOCALHOST
    port: int | None = None
    max_restarts: int = 2

    @property
    def gpus_needed(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server: ``api_base`` ends in ``/v1``. ``api_key`` is the resolved secret."""

    api_base: str
    api_key: str | None = None

    def __repr__(self) -> str:  # never print the key
        return f"Endpoint(api_base={self.api_base!r}, api_key={'***' if self.api_key else None})"


@dataclass(frozen=True)
class Sampling:
    """How one model is asked: everything that changes answers is part of the settings hash."""

    temperature: float = 0.0
    max_tokens: int = 2048
    system_prompt: str = ""
    parallel: int = 4
    request_delay: float = 0.0
    request_timeout: float = 600.0
    max_retries: int = 5


@dataclass(frozen=True)
class ModelConfig:
    """One entry of ``model_list``: either managed (``vllm`` set) or an API model (``endpoints``)."""

    key: str
    model_name: str
    sampling: Sampling
    endpoints: tuple[Endpoint, ...] = ()
    vllm: VllmSettings | None = None
    api_type: str = "openai"

    @property
    def managed(self) -> bool:
        return self.vllm is not None


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's problems come from and how its columns map."""

    name: str
    domain: str = "math"
    path: str | None = None          # local .jsonl/.csv/.parquet
    hub_id: str | None = None        # Hugging Face dataset id
    hub_configs: tuple[str, ...] = ()
    split: str = "train"
    question: str = "task"
    answer: str = "answer"
    id: str | None = None
    tolerance: str | None = None     # optional column with a per-problem relative tolerance


@dataclass(frozen=True)
class Problem:
    """One dataset item with a stable id."""

    id: str
    dataset: str
    domain: str
    task: str
    reference: str
    tolerance: float | None = None


@dataclass(frozen=True)
class ServerSpec:
    """One vLLM server to start. ``gpus`` empty means a CPU server."""

    name: str
    model: str
    served_name: str
    gpus: tuple[int, ...] = ()
    port: int = 0
    host: str = LOCALHOST
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    python: str = "python3"
    startup_timeout: float = 900.0
    api_key: str | None = field(default=None, repr=False)

    def command(self) -> list[str]:
        """The exact argv that starts this server (no secrets: the key travels in the environment)."""
        cmd = [self.python, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model,
               "--served-model-name", self.served_name, "--host", self.host, "--port", str(self.port)]
        if self.tensor_parallel_size != 1:
            cmd += ["--tensor-parallel-size", str(self.tensor_parallel_size)]
        if self.pipeline_parallel_size != 1:
            cmd += ["--pipeline-parallel-size", str(self.pipeline_parallel_size)]
        if self.max_model_len:
            cmd += ["--max-model-len", str(self.max_model_len)]
        if self.gpu_memory_utilization is not None and self.gpus:
            cmd += ["--gpu-memory-utilization", str(self.gpu_memory_utilization)]
        return cmd + list(self.args)

    @property
    def base_url(self) -> str:
        host = LOCALHOST if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(api_base=self.base_url + "/v1", api_key=self.api_key)


@dataclass
class AnswerRecord:
    """One answer: a line of the details JSONL. ``error`` set means a transport failure (never scored)."""

    id: str
    dataset: str
    model: str
    task: str
    reference: str
    response: str = ""
    reasoning: str = ""
    extracted: str = ""
    verdict: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None
    settings_hash: str = ""
    domain: str = "math"
    tolerance: float | None = None
    approximate: bool = False
    timestamp: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AnswerRecord":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Grade:
    """The grader's verdict on one response."""

    extracted: str
    verdict: str               # one of VERDICTS
    seconds: float = 0.0
    approximate: bool = False  # a decimal accepted for an exact reference


@dataclass(frozen=True)
class SeriesScore:
    """Aggregate of one series (model, dataset, settings hash)."""

    model: str
    dataset: str
    settings_hash: str
    total: int
    answered: int
    correct: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    eval_seconds: float
    truncated: int = 0  # answers cut off by max_tokens (finish_reason "length"): scored, but worth knowing

    @property
    def complete(self) -> bool:
        return self.answered >= self.total

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0
