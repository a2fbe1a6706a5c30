"""Requests queued ahead at a managed server: the client keeps more requests in flight than the engine runs at once.

A model's ``parallel`` is how many answers its engine generates at once (vLLM's ``--max-num-seqs``). When one of
them ends, the engine can start the next one only once that request has arrived; with exactly ``parallel`` requests
in flight it arrives one HTTP round trip after the end (the worker stores its answer, writes the next request, the
API process parses and tokenises it). When many answers end together -- equal lengths, or a batch that started
together -- the engine runs a thin batch for that while. vLLM's offline engine never waits like that: every prompt is
in its queue from the start. So, as measured on an H200 (``benchmarks/gpu`` s4, issue 18), the client of a GPU server
keeps ``queue_ahead`` x ``parallel`` more requests at the server, waiting in vLLM's own queue, and the server is
started with ``--max-num-seqs`` = ``parallel`` x ``samples`` so that the engine's batch stays what ``parallel`` says
(a managed server's request asks a problem's ``samples`` answers at once, ``n`` = ``samples``, and vLLM counts
each of the ``n`` as one sequence: ``launch.engine_batch``).

* ``vllm.queue_ahead`` in the config sets the share per model (0 turns it off, at most ``MAX_QUEUE_AHEAD``);
  without it a GPU server gets ``DEFAULT_GPU_QUEUE_AHEAD`` and a CPU server 0 (a CPU engine is slow enough that a
  round trip costs it nothing, and its throughput benchmark, ``benchmarks/client_throughput.py``, stays as it was).
* A ``--max-num-seqs`` of the model's own ``vllm.args`` wins over ``parallel``: the server gets no second one, and
  the client still keeps ``parallel`` x (1 + ``queue_ahead``) requests in flight.
* A queued request produces no tokens until the engine takes it; the stall limit (``client/liveness.py``) looks at
  the server's progress, not at one request's, so waiting in the queue of a working engine is never a stall.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

DEFAULT_GPU_QUEUE_AHEAD = 1.0  # a whole batch waits: the engine refills every slot from its own queue (s4)
MAX_QUEUE_AHEAD = 8.0
FLAG = "--max-num-seqs"


def queue_ahead(configured: float | None, gpus: Sequence[int]) -> float:
    """The share a server's client queues ahead: the model's own setting, else the GPU default, else 0 on CPU."""
    if configured is not None:
        return configured
    return DEFAULT_GPU_QUEUE_AHEAD if gpus else 0.0


def in_flight(parallel: int, share: float) -> int:
    """How many requests the client keeps in flight: ``parallel`` plus ``share`` x ``parallel``, rounded up."""
    return parallel + math.ceil(parallel * share)


def batch_words(max_num_seqs: int | None, share: float, args: Sequence[str]) -> list[str]:
    """``--max-num-seqs max_num_seqs`` when requests queue ahead and the model's args do not set it themselves."""
    if max_num_seqs is None or share <= 0 or flag_in(args):
        return []
    return [FLAG, str(max_num_seqs)]


def flag_in(args: Sequence[str]) -> bool:
    """Does a model's ``vllm.args`` set the engine's batch itself (``--max-num-seqs N``, ``=N``, or vLLM's
    underscore spelling ``--max_num_seqs``)?"""
    words = (a.replace("_", "-") for a in args)
    return any(w == FLAG or w.startswith(FLAG + "=") for w in words)
