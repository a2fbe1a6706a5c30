"""A fake vLLM server for fast lifecycle tests: a real process with real HTTP on 127.0.0.1, started exactly like vLLM
(``python -m vllm.entrypoints.openai.api_server ...``) because the package under ``ROOT`` shadows the real one when
``ROOT`` is first on PYTHONPATH (a ``ServerSpec``'s ``env``, or a config's ``vllm.env``).

The protocol it keeps and its knobs (``FAKE_VLLM_DELAY``, ``FAKE_VLLM_FAIL``, ``FAKE_VLLM_IGNORE_TERM``,
``FAKE_VLLM_SETSID``, ``FAKE_VLLM_HANG_AFTER``, ``FAKE_VLLM_HOLD_UNTIL``) are in the docstring of
``vllm/entrypoints/openai/api_server.py`` under ``ROOT``. Only its
``vllm`` package is meant for that PYTHONPATH; nothing here is imported by the orchestrator.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent  # put first on PYTHONPATH: `vllm` then names the fake
