# deathmath-orchestrate. `make bench` and `make test` do their own setup.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
TORCH_CPU := torch==2.13.0+cpu
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
STAMP := $(VENV)/.installed
MODEL_DIR := models/tiny-llama
PYTEST_ARGS ?=
CONSTRAINTS := constraints.txt
INSTALL_ENV = PYTHON=$(PYTHON) VENV=$(VENV) TORCH_CPU='$(TORCH_CPU)' TORCH_CPU_INDEX='$(TORCH_CPU_INDEX)'

.PHONY: install test bench perf perf-gpu chaos clean smoke-model chromium constraints upgrade-constraints

install: $(STAMP)

# The versions of $(CONSTRAINTS) (those `make test` last passed with). Re-runs only when pyproject.toml or the
# constraints change: a second `make install` takes well under a second.
$(STAMP): pyproject.toml scripts/install.sh $(CONSTRAINTS)
	$(INSTALL_ENV) CONSTRAINTS='$(CONSTRAINTS)' bash scripts/install.sh
	touch $(STAMP)

# Rewrite $(CONSTRAINTS) from the venv: after a green `make test`, then commit it.
constraints:
	$(PY) scripts/constraints.py freeze $(CONSTRAINTS)

# The newest versions pyproject.toml allows, installed into the venv and written to $(CONSTRAINTS);
# then `make test`, and commit the file if it passes (`git checkout $(CONSTRAINTS) && make install` goes back).
upgrade-constraints:
	$(INSTALL_ENV) CONSTRAINTS= UPGRADE=1 bash scripts/install.sh
	$(PY) scripts/constraints.py freeze $(CONSTRAINTS)
	touch $(STAMP)

$(MODEL_DIR)/config.json: | $(STAMP)
	$(VENV)/bin/deathmath-orchestrate smoke-model --out $(MODEL_DIR)

smoke-model: $(MODEL_DIR)/config.json

# The browser tests need Debian's chromium: installed here when missing (as root, as in CI).
chromium:
	bash scripts/ensure-chromium.sh

# Lint first (ruff, configured in pyproject.toml): a formatting drift or a lint finding fails the target at once.
test: install chromium
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The fast unit tests only (no server, no subprocess): the default while developing.
.PHONY: unit
unit: install
	$(PY) -m pytest -q tests/unit $(PYTEST_ARGS)

bench: install smoke-model
	$(VENV)/bin/deathmath-orchestrate run --config configs/run.yaml

perf: install smoke-model
	$(PY) -m benchmarks.run_all

# On a GPU box whose python3 has vLLM (benchmarks/gpu/README.md): every GPU scenario, then the GPU section of
# BENCHMARKS.md. Needs no venv; results land in $(GPU_OUT) and benchmarks/results/gpu/.
GPU_PYTHON ?= python3
GPU_OUT ?= /tmp/gpu-results
perf-gpu:
	mkdir -p $(GPU_OUT) benchmarks/results/gpu
	$(GPU_PYTHON) -m benchmarks.gpu.suite all --out $(GPU_OUT); status=$$?; \
	cp $(GPU_OUT)/*.json benchmarks/results/gpu/ && $(GPU_PYTHON) -m benchmarks.gpu.report && \
	$(GPU_PYTHON) -m benchmarks.run_all --assemble-only; exit $$status

# The chaos soak: faults injected into real runs for CHAOS_MINUTES (default 30); `make test` runs a short form.
chaos: install smoke-model
	$(PY) -m benchmarks.chaos

clean:
	rm -rf $(VENV) models build *.egg-info .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
