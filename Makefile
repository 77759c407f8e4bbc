# The two commands that matter: `make run` (the whole platform, locally) and `make test`.
# Both install what they need into .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := -e shared -e services/ingest -e services/anomaly -e services/monitoring -e services/retention
STAMP := $(VENV)/.installed
INSTALL_INPUTS := constraints.txt requirements-dev.txt shared/pyproject.toml $(wildcard services/*/pyproject.toml)

.PHONY: install run test test-unit test-integration lint format bench constraints clean

install: $(STAMP)

$(STAMP): $(INSTALL_INPUTS)
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (set PY=python3.11)")'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt $(PACKAGES) -r requirements-dev.txt
	@touch $(STAMP)

run: install
	$(BIN)/trialstream up $(ARGS)

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: install
	$(BIN)/pytest tests/unit tests/contract $(PYTEST_ARGS)

test-integration: install
	$(BIN)/pytest tests/integration tests/e2e $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy shared/src/trialstream services/ingest/src/ingest services/anomaly/src/anomaly services/monitoring/src/monitoring services/retention/src/retention

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m benchmarks.platform_bench $(ARGS)

# Re-pin after changing a dependency: names and versions only, no download addresses.
constraints:
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e ' | sort > constraints.txt

clean:
	rm -rf $(VENV) .trialstream .pytest_cache .mypy_cache .ruff_cache
