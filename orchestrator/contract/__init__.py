"""The contract: small dataclasses that every other module imports (``from orchestrator.contract import X``).

Plain data: nothing here does I/O or imports another module of the package; how a ``ServerSpec`` is started (its
argv and environment) is built in ``serving/launch.py``. Defaults that several layers share (the config reader,
``VllmSettings``, ``ServerSpec``) are written once, as the constants below. Modules talk to each
other in these types only:

* ``VllmSettings`` / ``ModelConfig`` / ``DatasetSpec`` / ``RunConfig`` -- what the user asked for (config.py).
* ``ServerSpec``   -- one vLLM server to start (``serving/launch.py`` makes them and builds their argv and
  environment, ``serving/server.py`` runs them).
* ``Endpoint``     -- an OpenAI-compatible base URL plus key (API models, or a started server); GigaChat's OAuth
  settings (``GigaChatAuth``), extra headers (OpenRouter's ``HTTP-Referer``) and TLS verification ride along.
* ``Sampling``     -- what changes a model's answers (the settings hash); ``Transport`` / ``Timeouts`` -- how its
  requests travel (client/); both ride on ``ModelConfig`` with ``samples`` and ``parallel``.
* ``Problem``      -- one dataset item (datasets.py); ``with_samples`` makes one per (problem, sample).
* ``AnswerRecord`` -- one line of ``results/details/<model>/<dataset>.jsonl`` (client.py, results.py).

Samples: with ``ModelConfig.samples`` = k every problem is asked k times; sample i is a ``Problem`` with ``sample=i``
whose ``key`` names its checkpoint (the plain id for sample 0, so single-sample series read as before).
* ``Grade``        -- what the grader says about one response (grading/).
* ``SeriesScore``  -- the aggregate of one (model, dataset, settings) series (results.py, leaderboard.py).

Its modules: ``models`` (settings, specs and the defaults several layers share), ``records`` (problems, answers,
scores), ``states`` (``ModelState``, ``RunPhase``, ``JudgeVerdict``), ``redaction`` (the one rule of what is a
secret, and masking it). This package re-exports every name.
"""

from __future__ import annotations

from .models import (
    ANSWER_LEAD,
    API_PARALLEL,
    CONNECT_TIMEOUT,
    DEFAULT_ANSWER_TOKENS,
    DEFAULT_PIPELINE_PARALLEL_SIZE,
    DEFAULT_STARTUP_TIMEOUT,
    DEFAULT_TENSOR_PARALLEL_SIZE,
    LOCAL_HOSTS,
    LOCALHOST,
    MANAGED_PARALLEL,
    REQUEST_TIMEOUT,
    TOKENIZE_TIMEOUT,
    DatasetSpec,
    Endpoint,
    GigaChatAuth,
    ModelConfig,
    ReasoningSettings,
    Sampling,
    ServerSpec,
    Timeouts,
    Transport,
    VllmSettings,
)
from .records import (
    DOMAINS,
    VERDICTS,
    AnswerRecord,
    Grade,
    Problem,
    ProblemOutcome,
    SeriesScore,
    answer_key,
    with_samples,
)
from .redaction import (
    is_secret_name,
    public_url,
    redact_command,
)
from .states import (
    JudgeVerdict,
    ModelState,
    ProgressStatus,
    RunPhase,
)

__all__ = [
    "ANSWER_LEAD",
    "API_PARALLEL",
    "AnswerRecord",
    "CONNECT_TIMEOUT",
    "DEFAULT_ANSWER_TOKENS",
    "DEFAULT_PIPELINE_PARALLEL_SIZE",
    "DEFAULT_STARTUP_TIMEOUT",
    "DEFAULT_TENSOR_PARALLEL_SIZE",
    "DOMAINS",
    "DatasetSpec",
    "Endpoint",
    "GigaChatAuth",
    "Grade",
    "JudgeVerdict",
    "LOCALHOST",
    "LOCAL_HOSTS",
    "MANAGED_PARALLEL",
    "ModelConfig",
    "ModelState",
    "Problem",
    "ProblemOutcome",
    "ProgressStatus",
    "REQUEST_TIMEOUT",
    "ReasoningSettings",
    "RunPhase",
    "Sampling",
    "SeriesScore",
    "ServerSpec",
    "TOKENIZE_TIMEOUT",
    "Timeouts",
    "Transport",
    "VERDICTS",
    "VllmSettings",
    "answer_key",
    "is_secret_name",
    "public_url",
    "redact_command",
    "with_samples",
]
