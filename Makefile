# A newcomer needs two targets: `make run` and `make test`. The rest are for the team.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two sets: `make run` installs what running needs (the `local` extra and the runtime pins),
# `make test` (and every team target) what testing needs on top (the `dev` extra).
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# -qq: errors only; setuptools' and pip's notices are not a newcomer's business.
PIP := $(BIN)/python -m pip install -qq
# checkov pins its own dependencies (they clash with ours), so it lives in a venv of its own.
TOOLS := .tools
CHECKOV := $(TOOLS)/bin/checkov
PYTEST_ARGS ?=
BENCH_ARGS ?=
# e.g. make image IMAGE_ARGS="--architecture x86_64" (python -m infra.deploy build --help)
IMAGE_ARGS ?=
# e.g. make backfill BACKFILL_ARGS="s3://photos/archive/ --rate 20 --dry-run" (imgpipe backfill --help)
BACKFILL_ARGS ?=

.PHONY: install tools test lint typecheck unit pytest run bench image deploy deploy-dry-run backfill fmt clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

# Created when missing, refreshed when pyproject.toml changes.
$(RUN_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP) -e '.[local]'
	touch $(RUN_STAMP)

# The dev set includes the run set, so it stamps both.
$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP) -e '.[dev]'
	touch $(DEV_STAMP) $(RUN_STAMP)

install: $(DEV_STAMP)

$(CHECKOV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet checkov==3.3.30

tools: $(CHECKOV)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# The unit tests once more, with libvips, moto and the network unavailable (tests/layers_sandbox.py):
# `unit` is checked to mean what pyproject.toml says, not trusted.
unit: $(DEV_STAMP)
	$(BIN)/python -m pytest -q -n 2 -m unit -p tests.layers_sandbox

pytest: $(DEV_STAMP) $(CHECKOV)
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test: lint typecheck unit pytest

fmt: $(DEV_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

run: $(RUN_STAMP)
	MALLOC_ARENA_MAX=2 $(BIN)/imgpipe local

bench: $(DEV_STAMP)
	MALLOC_ARENA_MAX=2 $(BIN)/python -m benchmarks.run $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.readme

image: $(DEV_STAMP)
	$(BIN)/python -m infra.deploy build $(IMAGE_ARGS)

deploy: $(DEV_STAMP)
	$(BIN)/python -m infra.deploy deploy

backfill: $(RUN_STAMP)
	$(BIN)/imgpipe backfill $(BACKFILL_ARGS)

deploy-dry-run: $(RUN_STAMP)
	$(BIN)/python -m infra.deploy deploy --dry-run

clean:
	rm -rf $(VENV) $(TOOLS) out .pytest_cache .mypy_cache .ruff_cache
