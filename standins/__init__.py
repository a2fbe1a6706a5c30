"""Loopback stand-ins for the services the orchestrator talks to, shared by tests/ and benchmarks/ (neither imports
the other's code). Each module's docstring says which real protocol it keeps:

* ``fake_vllm``  -- vLLM's OpenAI-compatible server process: its launch command, /health, /v1/models, one answer.
* ``hubstub``    -- the Hugging Face hub's HTTP protocol as ``huggingface_hub``'s ``snapshot_download`` speaks it.
* ``chat_apis``  -- GigaChat (OAuth or login + chat) and OpenRouter, enforcing each API as the real ones do.
* ``raycluster`` -- a throwaway local Ray cluster of separate ``ray start`` nodes offering a ``fakegpu`` resource.
"""
