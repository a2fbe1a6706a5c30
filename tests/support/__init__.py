"""Test-only helpers as modules, imported as ``tests.support.<module>`` (test modules never import each other).

* ``waiting``         -- ``wait_for(predicate, timeout, what)``: poll, or fail naming what was awaited.
* ``vllm_servers``    -- ``vllm_available()`` and ``own_server(spec, label)``, a test module's own real vLLM server.
* ``scripted_server`` -- an OpenAI-compatible HTTP server on 127.0.0.1 whose replies follow a script; ``serve``.
* ``client_kit``      -- a ``ChatClient`` on a fake clock and the problems, messages and stores of client tests.
* ``jobs``            -- ``run_model`` on scripted server timelines: ``StubServer``, ``context``; ``stubs``.
* ``orphans``         -- an orchestrator in miniature as a separate process, and the processes a run left.
* ``gigachat``        -- GigaChat clients against ``standins.chat_apis``; ``giga``.
* ``workspace``       -- a workspace for tests that drive the real CLI as a subprocess.
* ``browser``         -- a real headless Chromium driven over the DevTools protocol.

Fixtures defined here (``serve``, ``stubs``, ``giga``) are registered for every test by ``tests/conftest.py``.
Stand-ins that benchmarks use too (fake vLLM, hub, API stand-ins, local Ray cluster) live in ``standins/``.
"""
