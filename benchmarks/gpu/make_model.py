"""Write the random 0.8B Llama of the GPU benchmarks (``orchestrator.smoke_model.GPU_0_8B``), weights drawn on the GPU.

    python3 -m benchmarks.gpu.make_model --out /tmp/gpu-model [--device cuda] [--tiny]

Idempotent: an existing complete model of the same shape is kept. Runs in its own process so that the suite itself
never holds a CUDA context (which would show up in every GPU memory figure).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from orchestrator.smoke_model import GPU_0_8B, TINY, Size, write_smoke_model


def param_count(config: dict) -> int:
    """Parameters of a Llama ``config.json`` (untied embeddings and head)."""
    hidden, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    q_dim = config["num_attention_heads"] * config["head_dim"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    per_layer = hidden * (2 * q_dim + 2 * kv) + 3 * hidden * inter + 2 * hidden
    return 2 * config["vocab_size"] * hidden + layers * per_layer + hidden


# Real architectures' shapes, served with ``--load-format dummy`` (vLLM draws random weights at load; nothing on
# disk but config and tokenizer): what the engine's speed is at the sizes users evaluate. The tokenizer and vocabulary
# stay the base model's (32k), so prompts and answers are the same tokens as on the 0.8B one.
SHAPES: dict[str, dict[str, int]] = {
    "llama-8b": {
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
    },  # Llama-3.1-8B's
    "same": {},  # the base model's own shape (the CPU dry run's: the dummy loading path at no cost)
}


def write_shape(base: Path, out: Path, shape: str) -> Path:
    """A weightless copy of the model in ``base`` with ``shape``'s dimensions, for ``--load-format dummy``."""
    out.mkdir(parents=True, exist_ok=True)
    for f in base.iterdir():
        if f.is_file() and f.suffix != ".safetensors" and f.name != "config.json":
            (out / f.name).write_bytes(f.read_bytes())
    config = {**json.loads((base / "config.json").read_text()), **SHAPES[shape]}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return out


def complete(out: Path, size: Size) -> bool:
    """A model of ``size`` is already there (every file, the right shape)."""
    try:
        config = json.loads((out / "config.json").read_text())
    except (OSError, ValueError):
        return False
    files = ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json")
    return (
        all((out / f).is_file() for f in files)
        and config.get("hidden_size") == size.hidden
        and config.get("num_hidden_layers") == size.layers
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/gpu-model"))
    parser.add_argument("--device", default="cuda", help="where to draw the weights (cuda or cpu)")
    parser.add_argument("--tiny", action="store_true", help="the tiny CPU smoke model instead (for dry runs)")
    args = parser.parse_args(argv)
    size = TINY if args.tiny else GPU_0_8B
    began = time.monotonic()
    if complete(args.out, size):
        print(f"make_model: {args.out} is already there", flush=True)
    else:
        write_smoke_model(args.out, size=size, device="cpu" if args.tiny else args.device)
    config = json.loads((args.out / "config.json").read_text())
    print(
        f"make_model: {args.out}: {param_count(config) / 1e9:.3f}B parameters, vocab {config['vocab_size']}, "
        f"hidden {config['hidden_size']}, {config['num_hidden_layers']} layers, "
        f"{(args.out / 'model.safetensors').stat().st_size / 2**30:.2f} GiB, {time.monotonic() - began:.1f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
