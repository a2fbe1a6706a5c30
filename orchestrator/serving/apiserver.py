"""vLLM's OpenAI front end: how many API server processes a managed server runs (``--api-server-count``).

One API process does every request's HTTP, JSON, chat template, tokenisation and detokenisation for all the
streams of a server; at a few hundred concurrent requests on a fast GPU that process, not the engine, can be what
limits throughput. vLLM can run N of them on one engine: the parent binds the port and hands the socket to N
spawned API processes (the kernel spreads connections over them), so ``--port``, ``/health``, ``/metrics``
(aggregated) and the readiness check (``server._listens``: the parent holds the listening socket) stay as they are;
vLLM then leaves out its periodic throughput lines from the server log (a start failure's cause is still logged).

* ``python -m vllm.entrypoints.openai.api_server`` always runs exactly one API process: it ignores
  ``--api-server-count`` (vLLM 0.26 and 0.32 alike). Only the ``vllm serve`` path honours it, so a server with a
  count above 1 starts through ``SERVE_LAUNCHER``, which builds vLLM's own ``serve`` subcommand (the console
  command ``vllm`` itself is not used: under the CPU build its ``--version`` lookup of the ``vllm`` distribution
  fails before anything else runs).
* ``vllm.api_server_count`` in the config sets it per model; without it a GPU server gets
  ``DEFAULT_GPU_API_SERVERS`` and a CPU server 1 (extra API processes only steal the cores a CPU engine needs).
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_GPU_API_SERVERS = 1  # the default for GPU servers; benchmarks/gpu s4 measures the alternatives
MAX_API_SERVERS = 64
FLAG = "--api-server-count"
OPENAI_MODULE = "vllm.entrypoints.openai.api_server"
# vLLM's ``vllm serve`` without the ``vllm`` console command: its own serve subcommand, parser and checks.
SERVE_LAUNCHER = (
    "import sys; "
    "from vllm.entrypoints.serve.utils.api_utils import cli_env_setup; "
    "from vllm.entrypoints.cli.serve import cmd_init; "
    "from vllm.utils.argparse_utils import FlexibleArgumentParser; "
    "cli_env_setup(); (cmd,) = cmd_init(); parser = FlexibleArgumentParser(prog='vllm'); "
    "cmd.subparser_init(parser.add_subparsers(dest='subparser')); "
    "args = parser.parse_args(['serve', *sys.argv[1:]]); cmd.validate(args); cmd.cmd(args)"
)


def api_servers(configured: int | None, gpus: Sequence[int]) -> int:
    """The count a server runs with: the model's own setting, else the GPU default, else 1 on CPU."""
    if configured is not None:
        return configured
    return DEFAULT_GPU_API_SERVERS if gpus else 1


def launch_words(python: str, count: int) -> list[str]:
    """The start of a server's argv: the OpenAI module for one API process, vLLM's serve path for several."""
    if count > 1:
        return [python, "-c", SERVE_LAUNCHER]
    return [python, "-m", OPENAI_MODULE]


def count_words(count: int) -> list[str]:
    """The flag that asks for ``count`` API processes (nothing for the single-process default)."""
    return [FLAG, str(count)] if count > 1 else []


def flag_in(args: Sequence[str]) -> bool:
    """Does a model's ``vllm.args`` set the count itself (``--api-server-count N``, ``=N`` or ``-asc``)?"""
    return any(a == FLAG or a.startswith(FLAG + "=") or a == "-asc" for a in args)
