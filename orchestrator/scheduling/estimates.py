"""Each model's estimate for this run, from what is known before it starts; the plan's job weights.

The facts (``estimate.ModelFacts``) are read here: the weights' bytes from a local model folder or from the hub's
file list (``hub.weights.list_weights``, the cache when offline; ``facts.served_bytes`` for the dtype), TP x PP from
the ``vllm`` block, and the GPU kind (``nvidia-smi``'s name, the caller's). The workload is the run's problems x
samples with ``max_tokens`` as the bound on an answer, or the model's mean from its history
(``history.mean_tokens``). ``estimate.estimate`` turns them into seconds with the calibration table; a model whose
whole series took known seconds before keeps those (``history.estimate_weights``). ``weights`` and ``startups``
are what ``plan`` takes; ``Estimate.basis`` is what ``--dry-run`` shows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ..contract import ModelConfig
from ..hub.weights import HfHub, hub_cache, hub_ref, list_weights
from ..serving.launch import engine_batch
from .estimate import Estimate, ModelFacts, Workload, estimate, from_history
from .facts import checkpoint_dtype, folder_weight_bytes, listed_weight_bytes, served_bytes

log = logging.getLogger(__name__)

VLLM_MAX_SEQS = 256  # vLLM's default --max-num-seqs: the most sequences one engine runs at once


def weight_bytes(model: ModelConfig) -> int | None:
    """The bytes a server of ``model`` holds for weights: its local folder's files, else the hub's list; None."""
    if model.vllm is None:
        return None
    folder = Path(model.vllm.model).expanduser()
    if folder.is_dir():
        return served_bytes(folder_weight_bytes(folder), checkpoint_dtype(folder), model.vllm.args)
    ref = hub_ref(model)
    if ref is None:
        return None
    try:
        listing = list_weights(ref, HfHub(), hub_cache())
    except Exception as exc:  # noqa: BLE001 - an estimate without sizes says so; the run itself reports the hub
        log.debug("no weight sizes for %s: %s", model.key, exc)
        return None
    dtype = checkpoint_dtype(listing.folder) if listing.folder.is_dir() else None
    return served_bytes(listed_weight_bytes((f.path, f.size) for f in listing.files), dtype, model.vllm.args)


def facts_of(
    model: ModelConfig, gpu: str | None, sizes: Callable[[ModelConfig], int | None] = weight_bytes
) -> ModelFacts:
    if model.vllm is None:
        return ModelFacts(None, managed=False)
    v = model.vllm
    return ModelFacts(sizes(model), v.tensor_parallel_size, v.pipeline_parallel_size, gpu)


def model_estimates(
    models: Sequence[ModelConfig],
    problems: int,
    gpu: str | None,
    *,
    history: Mapping[str, float] | None = None,
    mean_tokens: Mapping[str, float] | None = None,
    sizes: Callable[[ModelConfig], int | None] = weight_bytes,
    answers: Mapping[str, int] | None = None,
) -> dict[str, Estimate]:
    """Per model key its estimate for ``problems`` problems (all datasets) x its samples on GPUs named ``gpu``
    (None: CPU servers), or ``answers[key]`` answers (the judge's: the answers it may be asked about); ``history``
    seconds of whole earlier series win; ``mean_tokens`` replaces the bound."""
    history, mean_tokens, answers = history or {}, mean_tokens or {}, answers or {}
    out = {}
    for model in models:
        in_flight = min(engine_batch(model), VLLM_MAX_SEQS) if model.managed else model.parallel
        count = answers.get(model.key, problems * model.samples)
        work = Workload(count, model.sampling.max_tokens, in_flight, mean_tokens.get(model.key) or None)
        if model.key in history:
            out[model.key] = from_history(history[model.key], work)
        else:
            out[model.key] = estimate(facts_of(model, gpu if model.managed else None, sizes), work)
    return out


def weights(estimates: Mapping[str, Estimate]) -> dict[str, float]:
    """The plan's job weights: each estimate's seconds (at least one)."""
    return {key: max(1.0, e.seconds) for key, e in estimates.items()}


def startups(estimates: Mapping[str, Estimate]) -> dict[str, float]:
    return {key: e.startup_s for key, e in estimates.items()}
