# A newcomer needs two targets: `make run` and `make test`. The rest are for the team.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins its own dependencies (they clash with ours), so it lives in a venv of its own.
TOOLS := .tools
CHECKOV := $(TOOLS)/bin/checkov
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: install tools test lint typecheck pytest run bench image deploy deploy-dry-run fmt clean

# Created when missing, refreshed when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(CHECKOV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet checkov==3.3.30

tools: $(CHECKOV)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) $(CHECKOV)
	$(BIN)/pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test: lint typecheck pytest

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

run: $(STAMP)
	MALLOC_ARENA_MAX=2 $(BIN)/imgpipe local

bench: $(STAMP)
	MALLOC_ARENA_MAX=2 $(BIN)/python -m benchmarks.run $(BENCH_ARGS)

image: $(STAMP)
	$(BIN)/python -m infra.deploy build

deploy: $(STAMP)
	$(BIN)/python -m infra.deploy deploy

deploy-dry-run: $(STAMP)
	$(BIN)/python -m infra.deploy deploy --dry-run

clean:
	rm -rf $(VENV) $(TOOLS) out .pytest_cache .mypy_cache .ruff_cache
