"""What the user asked for and what gets started: a model's settings (``VllmSettings``, ``Endpoint``, ``Sampling``,
``Transport`` / ``Timeouts``, ``ReasoningSettings``, ``ModelConfig``), a dataset's source (``DatasetSpec``) and one
server to start (``ServerSpec``); the defaults that several layers share, written once here."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LOCALHOST = "127.0.0.1"
DEFAULT_TENSOR_PARALLEL_SIZE = 1  # vllm.tensor_parallel_size when the config leaves it out
DEFAULT_PIPELINE_PARALLEL_SIZE = 1  # vllm.pipeline_parallel_size when the config leaves it out
DEFAULT_STARTUP_TIMEOUT = 900.0  # vllm.startup_timeout (seconds) when the config leaves it out
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")  # a server bound here is reachable from this host only
DEFAULT_ANSWER_TOKENS = 1024  # reasoning.answer_tokens when left out (at most max_tokens - budget)
ANSWER_LEAD = "\n\nОтвет:"  # written after the closing tag of a forced stop, before the final answer


@dataclass(frozen=True)
class VllmSettings:
    """The ``vllm:`` block of a managed model."""

    model: str
    tensor_parallel_size: int = DEFAULT_TENSOR_PARALLEL_SIZE
    pipeline_parallel_size: int = DEFAULT_PIPELINE_PARALLEL_SIZE
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    python: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    host: str = LOCALHOST
    port: int | None = None
    max_restarts: int = 2
    revision: str | None = None  # hub models: branch, tag or commit (default main)
    api_server_count: int | None = None  # None: apiserver.api_servers' default (GPU vs CPU)
    client_codec: str | None = None  # the client's JSON (jsoncodec.CODEC_NAMES); None: msgspec where installed
    queue_ahead: float | None = None  # requests queued at the server per parallel; None: queueahead's default

    @property
    def gpus_needed(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size


@dataclass(frozen=True)
class GigaChatAuth:
    """How a GigaChat endpoint gets its tokens: ``credentials`` (the resolved authorization key) traded at ``auth_url``
    (OAuth, with ``scope``), or -- when ``user`` is set -- ``user`` and ``password`` logged in at ``token_url``
    (``<api_base>/token``, HTTP basic auth: installations that issue logins rather than keys)."""

    credentials: str = field(repr=False)
    scope: str = "GIGACHAT_API_CORP"
    auth_url: str = "https://ngw.devices.sberbank.ru:9443/api/v2/oauth"
    profanity_check: bool | None = True
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token_url: str = ""

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be printed: the authorization key, or the password and the basic-auth value it makes."""
        login = f"{self.user}:{self.password}".encode() if self.user is not None and self.password else None
        return tuple(s for s in (self.credentials, self.password, login and base64.b64encode(login).decode()) if s)


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server: ``api_base`` ends in ``/v1``. ``api_key`` is the resolved secret.

    ``gigachat`` set: a GigaChat endpoint (bearer tokens from its OAuth, not ``api_key``). ``headers``: extra request
    headers (OpenRouter's ``HTTP-Referer`` / ``X-Title``). ``verify``: TLS verification, or a CA bundle path.
    """

    api_base: str
    api_key: str | None = None
    gigachat: GigaChatAuth | None = None
    headers: tuple[tuple[str, str], ...] = ()
    verify: bool | str = True

    def __repr__(self) -> str:  # never print the key or the credentials
        return f"Endpoint(api_base={self.api_base!r}, api_key={'***' if self.api_key else None})"

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never be printed: the key and GigaChat's credentials or password."""
        return tuple(s for s in (self.api_key, *(self.gigachat.secrets if self.gigachat else ())) if s)


REQUEST_TIMEOUT = 600.0  # ``request_timeout``'s default: seconds without progress before a request is cut off
CONNECT_TIMEOUT = 10.0
TOKENIZE_TIMEOUT = 30.0
API_PARALLEL = 4  # an API model's default requests in flight
MANAGED_PARALLEL = 64  # a managed model's default requests in flight: keeps a vLLM server's batch full


@dataclass(frozen=True)
class Sampling:
    """What a model is asked with: everything here changes answers, and all of it is in the settings hash
    (``results.hashing``; ``top_p`` and ``seed`` only when set, so series written before they existed keep their
    hash). How many answers per problem (``ModelConfig.samples``) and how requests travel (``Transport``) are not."""

    temperature: float = 0.0
    max_tokens: int = 2048
    system_prompt: str = ""
    top_p: float | None = None
    seed: int | None = None  # sample i is asked with seed + i

    def seed_of(self, sample: int) -> int | None:
        """The seed that sample ``sample`` is asked with (``None``: the server's own randomness)."""
        return None if self.seed is None else self.seed + sample


@dataclass(frozen=True)
class Timeouts:
    """A request's time limits in seconds, named as httpx's ``Timeout``.

    * ``stall``: a managed server's request is cut off after this long without progress on its engine's counters
      (however long the answer takes while they grow);
    * ``connect``: opening a connection;
    * ``read``: silence on the socket: a streamed reply is cut off after this long without a chunk, an unstreamed one
      (a server whose progress is not watched) after this long without its reply;
    * ``tokenize``: vLLM's ``POST /tokenize`` (counting a prompt).

    The config's ``request_timeout`` sets them all (``within``): it is a limit on silence, never on an answer's length.
    """

    stall: float = REQUEST_TIMEOUT
    connect: float = CONNECT_TIMEOUT
    read: float = REQUEST_TIMEOUT
    tokenize: float = TOKENIZE_TIMEOUT

    @classmethod
    def within(cls, request_timeout: float) -> Timeouts:
        """The config's one knob: ``request_timeout`` as the stall and read limits, connect and tokenize at most it."""
        return cls(
            stall=request_timeout,
            connect=min(CONNECT_TIMEOUT, request_timeout),
            read=request_timeout,
            tokenize=min(TOKENIZE_TIMEOUT, request_timeout),
        )


@dataclass(frozen=True)
class Transport:
    """How a model's requests travel: none of it changes an answer, none of it is in the settings hash.

    ``max_retries`` retries of a connection error, 429 or 5xx with a backoff of ``backoff_base`` x 2^attempt seconds
    (at most ``backoff_cap``, jittered); ``request_delay`` seconds between request starts per model and endpoint.
    """

    timeouts: Timeouts = Timeouts()
    max_retries: int = 5
    request_delay: float = 0.0
    backoff_base: float = 1.0
    backoff_cap: float = 60.0


@dataclass(frozen=True)
class ReasoningSettings:
    """One model's ``reasoning:`` block and ``extra_body`` after validation (``reasoning.settings`` parses them;
    defaults: no parser, no budget, nothing sent). ``parser`` may be ``"auto"`` until the launch resolves it.
    The two mappings are plain dicts (a Ray job pickles its model) that nothing writes to."""

    parser: str | None = None
    template_kwargs: Mapping[str, Any] = field(default_factory=dict)
    effort: str | None = None
    budget: int | None = None
    answer_tokens: int = DEFAULT_ANSWER_TOKENS
    grade_reasoning_tail: bool = False
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    budget_by: str | None = None  # "engine" (vLLM's thinking_token_budget) or "client" (two phases); None: no budget

    def __hash__(self) -> int:  # the mappings are dicts: hashed by their canonical JSON
        return hash((json.dumps(self.hash_fields(), sort_keys=True), self.grade_reasoning_tail, self.budget_by))

    def hash_fields(self) -> dict[str, Any]:
        """What enters the settings hash; empty when nothing is set (old series keep their hash).
        ``grade_reasoning_tail`` is left out: it changes grading, not the answers asked; ``budget_by`` too: both ways
        give the same tokens."""
        out: dict[str, Any] = {}
        if self.parser is not None:
            out["reasoning_parser"] = self.parser
        if self.template_kwargs:
            out["chat_template_kwargs"] = _canonical(self.template_kwargs)
        if self.effort is not None:
            out["reasoning_effort"] = self.effort
        if self.budget is not None:
            out["thinking_budget"] = {"budget": self.budget, "answer_tokens": self.answer_tokens, "lead": ANSWER_LEAD}
        if self.extra_body:
            out["extra_body"] = _canonical(self.extra_body)
        return out


def _canonical(value: Mapping[str, Any]) -> Any:
    return json.loads(json.dumps(dict(value), sort_keys=True, ensure_ascii=False))


@dataclass(frozen=True)
class ModelConfig:
    """One entry of ``model_list``: either managed (``vllm`` set) or an API model (``endpoints``).

    ``samples``: answers per problem (k; raising it asks only the new samples). ``parallel``: the requests kept in
    flight (a managed server's client queues some more ahead: ``ServerSpec.in_flight``). ``replicas``: how many
    servers of a managed model may share its work when GPUs are idle (None: ``auto``, as many as fit; 1: one).
    """

    key: str
    model_name: str
    sampling: Sampling
    endpoints: tuple[Endpoint, ...] = ()
    vllm: VllmSettings | None = None
    api_type: str = "openai"
    samples: int = 1
    parallel: int = API_PARALLEL
    transport: Transport = Transport()
    reasoning: ReasoningSettings = ReasoningSettings()  # the ``reasoning:`` block and ``extra_body``
    replicas: int | None = None  # servers at once when GPUs are idle (scheduling.policy.fill); None: auto

    @property
    def managed(self) -> bool:
        return self.vllm is not None


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset's problems come from and how its columns map."""

    name: str
    domain: str = "math"
    path: str | None = None  # local .jsonl/.csv/.parquet
    hub_id: str | None = None  # Hugging Face dataset id
    hub_configs: tuple[str, ...] = ()
    split: str = "train"
    question: str = "task"
    answer: str = "answer"
    id: str | None = None
    tolerance: str | None = None  # optional column with a per-problem relative tolerance


@dataclass(frozen=True)
class ServerSpec:
    """One vLLM server to start. ``gpus`` empty means a CPU server; ``port`` 0 means any free port."""

    name: str
    model: str
    served_name: str
    gpus: tuple[int, ...] = ()
    port: int = 0
    host: str = LOCALHOST
    tensor_parallel_size: int = DEFAULT_TENSOR_PARALLEL_SIZE
    pipeline_parallel_size: int = DEFAULT_PIPELINE_PARALLEL_SIZE
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    python: str = "python3"
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT
    api_key: str | None = field(default=None, repr=False)
    api_server_count: int | None = None  # vLLM API front-end processes; None: the default for its gpus
    max_num_seqs: int | None = None  # the engine's batch in sequences (parallel x samples, ``launch.engine_batch``)
    queue_ahead: float | None = None  # None: the default for its gpus (``queueahead.queue_ahead``)
    reasoning_parser: str | None = None  # --reasoning-parser; "auto": picked from the model folder at launch
    engine_budget: bool = False  # started with the flags of vLLM's own thinking budget (``reasoning.budget``)

    @property
    def base_url(self) -> str:
        host = LOCALHOST if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(api_base=self.base_url + "/v1", api_key=self.api_key)
