# Quartier — the two commands: `make run` and `make test`.
# Both install exactly the locked dependencies (uv.lock) into .venv first.
PYTHON     ?= python3
VENV       ?= .venv
UV_VERSION  = 0.13.9
BIN         = $(VENV)/bin
UV          = $(BIN)/uv
STAMP       = $(VENV)/.installed

export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))

.PHONY: run test lint typecheck bench schema messages lock clean

$(UV):
	@echo ">> Creating $(VENV) and installing uv $(UV_VERSION) (first run only)…"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): $(UV) pyproject.toml uv.lock
	@echo ">> Installing the locked dependencies from uv.lock…"
	$(UV) sync --locked --extra dev
	touch $(STAMP)

## run the whole system on its embedded default (SQLite files, embedded NATS), with the demo network
run: $(STAMP)
	$(BIN)/quartier up --demo

## lint, import contracts, types, then the whole test suite: in this process
## (TEST_WORKERS=0), or on TEST_WORKERS pytest-xdist processes (`make test TEST_WORKERS=2`)
TEST_WORKERS ?= 0
test: $(STAMP) lint
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=30

## ruff, the import contracts and mypy (what `make test` runs first)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

## mypy alone, over the packages listed in pyproject.toml ([tool.mypy] files)
typecheck: $(STAMP)
	$(BIN)/mypy

## benchmarks (not part of the test run): print ratios against a baseline
bench: $(STAMP)
	$(BIN)/python bench/write_path.py

## regenerate gateway/schema.graphql, docs/events.md and the published contracts
## (docs/schemas/*.json, docs/asyncapi.json) after a contract change
schema: $(STAMP)
	$(BIN)/python -m gateway.schema > gateway/schema.graphql
	$(BIN)/python -m infra.catalogue > docs/events.md
	$(BIN)/python -m infra.catalogue --write docs

## after writing or changing a t("…") message: the catalogues (locale/fr.po) in step
## with the code, new templates left empty to translate (docs/api.md, "Errors")
messages: $(STAMP)
	$(BIN)/python -m infra.messages

## after changing dependencies in pyproject.toml: update uv.lock
lock: $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) .quartier .pytest_cache .ruff_cache .mypy_cache
