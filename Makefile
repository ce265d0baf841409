# Every verb works on a fresh machine that has python3 and make; `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP     := $(VENV)/.dev-installed

.DEFAULT_GOAL := help
.PHONY: help install run serve migrate test test-sqlite lint typecheck fmt check bench fuzz clean

help: ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# BuildNotify's cctray parser reads our cc.xml in a test; its tray GUI (Qt) is not wanted
	$(BIN)/python -m pip install --quiet --no-deps 'buildnotify==3.0.0'
	touch $@ $(RUNTIME_STAMP)

install: $(RUNTIME_STAMP) ## create the virtualenv and install Stageline

run: $(RUNTIME_STAMP) ## serve on http://127.0.0.1:8080 (PORT=… for another) with SQLite, the built-in executor and demo data
	$(BIN)/stageline serve --demo $(if $(PORT),--port $(PORT))

serve: $(RUNTIME_STAMP) ## serve without demo data (settings from STAGELINE_* variables)
	$(BIN)/stageline serve

migrate: $(RUNTIME_STAMP) ## bring the configured database's schema up to date
	$(BIN)/stageline migrate

TEST_WORKERS ?= 2

test: $(DEV_STAMP) ## run the whole suite on SQLite and PostgreSQL (TEST_WORKERS=… processes, default 2)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15

test-sqlite: $(DEV_STAMP) ## run the suite on SQLite only
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -k "not postgresql"

lint: $(DEV_STAMP) ## ruff lint, format check and the import-linter layer contracts
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/lint-imports

typecheck: $(DEV_STAMP) ## mypy --strict over src, tests, the benchmark and tools
	$(BIN)/mypy src tests bench tools

fmt: $(DEV_STAMP) ## format and autofix
	$(BIN)/ruff format src tests bench tools
	$(BIN)/ruff check --fix src tests bench tools

check: lint typecheck test ## what CI runs

bench: $(RUNTIME_STAMP) ## batch-status benchmark on SQLite (BENCH_ARGS="--database-url postgresql://…")
	$(BIN)/python -m bench $(BENCH_ARGS)

fuzz: $(DEV_STAMP) ## Schemathesis for 3 minutes against a real server on SQLite (FUZZ_ARGS="--postgres-admin-url postgresql://…")
	$(BIN)/python -m tools.fuzz $(FUZZ_ARGS)

clean: ## remove the virtualenv and local data
	rm -rf $(VENV) .stageline
