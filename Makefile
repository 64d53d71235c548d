# Switchboard: `make run` tries it out on the embedded default; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The suite's integration layer needs PostgreSQL and Redis; these are the local defaults.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/switchboard
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: install run test lint eval bench bench-gate bench-learning clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py setup_demo --url http://$(HOST):$(PORT)/
	$(BIN)/daphne -b $(HOST) -p $(PORT) console.asgi:application

test: install
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) SECRET_KEY=test-only-secret \
		$(BIN)/pytest $(PYTEST_ARGS)

# The agents' figures on both test splits, on a fresh embedded database with the demo's
# models and history (var/eval/, remade each time).
eval: install
	rm -rf var/eval
	SWITCHBOARD_VAR_DIR=var/eval DATABASE_URL= REDIS_URL= $(BIN)/python manage.py migrate --noinput -v 0
	SWITCHBOARD_VAR_DIR=var/eval DATABASE_URL= REDIS_URL= $(BIN)/python manage.py setup_demo --tickets 0
	SWITCHBOARD_VAR_DIR=var/eval DATABASE_URL= REDIS_URL= $(BIN)/python manage.py evaluate $(EVAL_ARGS)

bench: install
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m tests.bench.engine_bench $(BENCH_ARGS)

bench-gate: install
	$(BIN)/python -m tests.bench.gate_bench $(BENCH_ARGS)

bench-learning: install
	$(BIN)/python -m tests.bench.learning_bench $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache
