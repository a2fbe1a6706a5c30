"""One seeded night's world: 12 models on 8 fake H100s, DeathMath's size, the config the real orchestrator reads.

``build(folder, seed, ...)`` writes under ``folder``: a fake ``nvidia-smi`` (``bin/``) listing 8 GPUs, the fake vLLM
shadow package (``fake/``, ``fakeserver.install``), each model's folder (``config.json`` and a sparse
``model.safetensors`` of the model's real weight bytes: the estimate reads its size, the disk holds nothing),
DeathMath's two datasets (190 math and 190 physics problems) and ``run.yaml``. Each managed model's fake server
keeps the rate the calibration table gives its shape on an H100 (``Calibration.rate`` at 1..256 in flight), with
its answers' lengths times the night's lognormal noise: its actual duration is the calibrated one x noise, which
the scheduler never sees (no history; its estimate takes ``max_tokens`` as the answer length).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from orchestrator.scheduling.estimate import ModelFacts, default_calibration

from . import fakeserver

GPU = "NVIDIA H100 80GB HBM3"
GPUS = 8
PROBLEMS = 190  # per dataset: RussianMath has 190 (upstream), RussianPhysics is taken as the same size
SAMPLES = 4
MAX_TOKENS = 32768
MEAN_TOKENS = 8000.0  # a reasoning model's mean answer
SIGMA_ANSWER = 0.6  # spread of one answer's length around the model's mean
SIGMA_NIGHT = 0.3  # the model's own deviation from its calibrated duration this night
STARTUP_S = {1: 105.0, 2: 130.0, 4: 148.0}  # measured cold start-ups (issue 32), by TP
IN_FLIGHT = (1, 16, 64, 128, 256)
API = {"name": "api-model", "tok_s": 100.0, "mean": 2000.0, "parallel": 16}

# (key, parameters in billions, TP): 5 x 7-9B and 2 x 14B on one GPU, 2 x 32B on two, 2 x 70B on four; + the API model
MODELS = (
    ("qwen2.5-7b", 7.6, 1),
    ("llama-3.1-8b", 8.0, 1),
    ("gemma-2-9b", 9.2, 1),
    ("mistral-7b", 7.2, 1),
    ("t-lite-8b", 8.0, 1),
    ("phi-4-14b", 14.7, 1),
    ("qwen2.5-14b", 14.8, 1),
    ("qwen2.5-32b", 32.8, 2),
    ("qwq-32b", 32.8, 2),
    ("llama-3.1-70b", 70.6, 4),
    ("qwen2.5-72b", 72.7, 4),
)


@dataclass(frozen=True)
class Model:
    key: str
    weight_bytes: int
    tp: int
    noise: float
    points: tuple[tuple[int, float], ...]  # (in flight, tok/s of the whole server)

    @property
    def full_rate(self) -> float:
        return self.points[-1][1]


def models(seed: int) -> list[Model]:
    rng = random.Random(seed)
    cal = default_calibration()
    out = []
    for key, params, tp in MODELS:
        size = int(params * 2e9)  # bf16
        facts = ModelFacts(size, tp, 1, GPU)
        points = tuple((n, float(cal.rate(facts, n) or 0.0)) for n in IN_FLIGHT)
        out.append(Model(key, size, tp, rng.lognormvariate(0.0, SIGMA_NIGHT), points))
    return out


def build(
    folder: Path,
    seed: int,
    scale: float,
    replicas: str,
    events: Path,
    api_port: int | None,
    *,
    only: tuple[str, ...] = (),
    gpus: int = GPUS,
    series: int = 2,
) -> Path:
    """Write the night's world under ``folder``; returns the config's path. ``only``: these models alone (the
    fidelity check), with no API model when ``api_port`` is None; ``gpus``: how many GPUs ``nvidia-smi`` lists;
    ``series``: DeathMath's two datasets, or the math one alone."""
    folder.mkdir(parents=True, exist_ok=True)
    fake = fakeserver.install(folder / "fake")
    _nvidia_smi(folder / "bin", gpus)
    chosen = [m for m in models(seed) if not only or m.key in only]
    names = [m.key for m in chosen] + ([API["name"]] if api_port is not None else [])
    data = dict(list(_datasets(folder / "data").items())[:series])
    repo = Path(__file__).resolve().parents[2]
    lines = [
        "datasets:",
        *[f"  {name}: {{path: {path}, domain: {domain}}}" for name, (path, domain) in data.items()],
        "temperature: 0.6",
        "seed: 1",
        f"max_tokens: {MAX_TOKENS}",
        f"model_list: [{', '.join(names)}]",
    ]
    for model in chosen:
        path = _model_folder(folder / "models" / model.key, model.weight_bytes)
        knobs = {
            "points": model.points,
            "mean_tokens": MEAN_TOKENS,
            "sigma": SIGMA_ANSWER,
            "noise": model.noise,
            "startup_s": STARTUP_S[model.tp],
            "scale": scale,
            "night": seed,
        }
        env = {"PYTHONPATH": f"{fake}:{repo}", "NIGHT_FAKE": json.dumps(knobs), "NIGHT_EVENTS": str(events)}
        lines += [
            f"{model.key}:",
            f"  model_name: {model.key}",
            f"  samples: {SAMPLES}",
            f"  replicas: {replicas}",
            "  vllm:",
            f"    model: {path}",
            f"    tensor_parallel_size: {model.tp}",
            "    startup_timeout: 600",
            f"    env: {json.dumps(env)}",
        ]
    lines += (
        []
        if api_port is None
        else [
            f"{API['name']}:",
            f"  model_name: {API['name']}",
            f"  parallel: {API['parallel']}",
            "  samples: 1",
            "  endpoints:",
            f"    - api_base: http://127.0.0.1:{api_port}/v1",
        ]
    )
    config = folder / "run.yaml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def api_knobs(scale: float, seed: int) -> dict:
    """The API model's stand-in: a constant rate per request (a hosted API), answers of ``API['mean']`` tokens."""
    return {
        "points": [[1, API["tok_s"]], [1024, API["tok_s"] * 1024]],
        "mean_tokens": API["mean"],
        "sigma": SIGMA_ANSWER,
        "scale": scale,
        "night": seed,
    }


def uuid_prefix(bin_folder: Path) -> str:
    """What the UUIDs of the fake GPUs listed by ``bin_folder/nvidia-smi`` start with (one world's own)."""
    return "GPU-night-" + hashlib.sha256(str(bin_folder.resolve()).encode()).hexdigest()[:8]


def _nvidia_smi(folder: Path, gpus: int) -> None:
    """A fake ``nvidia-smi`` listing ``gpus`` H100s whose UUIDs are this world's own (the orchestrator locks GPUs by
    UUID, so nights run side by side never share one)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = "\\n".join(f"{i}, {uuid_prefix(folder)}-{i:04d}, {GPU}, 81559, 0" for i in range(gpus))
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nprintf '{rows}\\n'\n", encoding="utf-8")
    script.chmod(0o755)


def _model_folder(folder: Path, size: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"torch_dtype": "bfloat16"}), encoding="utf-8")
    with open(folder / "model.safetensors", "wb") as out:
        out.truncate(size)  # sparse: the size is what the estimate reads
    return folder


def _datasets(folder: Path) -> dict[str, tuple[Path, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, domain in (("night-math", "math"), ("night-physics", "physics")):
        path = folder / f"{name}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            for i in range(PROBLEMS):
                task = f"Задача {domain} {i}: найдите {i} + {math.floor(i / 2)} - {i} - {math.floor(i / 2)} + 4."
                f.write(json.dumps({"id": f"{name}-{i:03d}", "task": task, "answer": "4"}, ensure_ascii=False) + "\n")
        out[name] = (path, domain)
    return out


if __name__ == "__main__":  # pragma: no cover - a look at one night's models
    for m in models(int(sys.argv[1]) if len(sys.argv) > 1 else 0):
        print(m.key, m.tp, f"{m.full_rate:,.0f} tok/s", f"noise {m.noise:.2f}")
