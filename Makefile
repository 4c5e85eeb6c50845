# One command sets up and runs: `make run` (the bot) and `make test` (the suite).
# The virtualenv is created on first use and reinstalled whenever pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test lint format lock bench mutation clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	@test -f .env || { cp .env.example .env; echo "Created .env from .env.example: set your LLM settings there."; }
	@test -f actions.toml || { cp actions.example.toml actions.toml; echo "Created actions.toml from actions.example.toml."; }
	$(BIN)/actionbot run

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Benchmarks print a table of measured numbers and targets; they are never part of `make test`.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run

MUTATION_STAMP := $(VENV)/.installed-mutation

$(MUTATION_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,mutation]'
	touch $(MUTATION_STAMP)

# Mutation testing of the safety core (tests/MUTATION.md): several minutes on 2 cores, never
# part of `make test`. Prints killed/survived per target and lists the survivors.
mutation: $(MUTATION_STAMP)
	rm -rf mutants
	eval $(BIN)/mutmut run $$($(BIN)/python tests/mutation_report.py --patterns) > /dev/null || true
	$(BIN)/python tests/mutation_report.py

# Pin the runtime dependencies (the Docker image installs exactly these).
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet .
	{ echo "# Runtime dependencies of ActionBot, pinned: regenerate with 'make lock'."; \
	  .lock-venv/bin/pip freeze --exclude actionbot; } > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache mutants
