# Quartier — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test lint bench schema clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run the whole system on its embedded default (SQLite files, embedded NATS), with the demo network
run: $(STAMP)
	$(BIN)/quartier up --demo

## lint, import contracts, then the whole test suite
test: $(STAMP) lint
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## benchmarks (not part of the test run): print ratios against a baseline
bench: $(STAMP)
	$(BIN)/python bench/write_path.py

## regenerate gateway/schema.graphql and docs/events.md after a contract change
schema: $(STAMP)
	$(BIN)/python -m gateway.schema > gateway/schema.graphql
	$(BIN)/python -m infra.catalogue > docs/events.md

clean:
	rm -rf $(VENV) .quartier .pytest_cache .ruff_cache
