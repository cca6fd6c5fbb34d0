# ssehub — two commands on a fresh clone: `make run` and `make test`.
# Everything is installed into .venv from requirements.lock (pinned, hashed).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: run test lint typecheck bench example install clean lock

# Check the interpreter before anything is created: an unsupported Python leaves no .venv.
$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else "ssehub needs Python ≥ 3.11 (found %d.%d)" % (v[0], v[1]))'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

## Start the hub on its embedded defaults (http://localhost:8004).
run: $(STAMP)
	$(BIN)/ssehub serve $(ARGS)

## Lint, type-check, hold ssehub.protocol at 100% branch coverage, then run every test.
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/python -m pytest tests/protocol -q -p no:cacheprovider --cov=ssehub.protocol \
		--cov-branch --cov-report=term-missing:skip-covered --cov-fail-under=100
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

## Run every benchmark and print the tables.
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(ARGS)

## The seed's own zero-dependency http.server demo.
example:
	$(PYTHON) examples/04_sse_protocol.py

## Re-pin requirements.lock after changing pyproject.toml (needs uv).
lock:
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes --no-emit-index-url -o requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage htmlcov
