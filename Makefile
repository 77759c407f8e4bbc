# The two commands that matter: `make run` (the whole platform, locally) and `make test`.
# Both install what they need into .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Every folder under services/ with a pyproject.toml is a service: no list to keep in step.
SERVICES := $(patsubst services/%/pyproject.toml,%,$(wildcard services/*/pyproject.toml))
PACKAGES := -e shared $(foreach s,$(SERVICES),-e services/$(s))
STAMP := $(VENV)/.installed
# Tests run on this many pytest-xdist workers (each with its own embedded PostgreSQL and
# brokers), a test file per worker at a time (module fixtures stay whole): a test mostly
# waits on consumers and group joins, so more workers than cores helps. TEST_WORKERS=0
# runs them in this process, one after another.
TEST_WORKERS ?= 4
XDIST := -n $(TEST_WORKERS) --dist loadfile
INSTALL_INPUTS := constraints.txt requirements-dev.txt shared/pyproject.toml $(wildcard services/*/pyproject.toml)

.PHONY: install run test test-unit test-integration lint audit-deps format bench bench-anomaly catalog constraints clean

install: $(STAMP)

$(STAMP): $(INSTALL_INPUTS)
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (set PY=python3.11)")'
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt $(PACKAGES) -r requirements-dev.txt
	@touch $(STAMP)

# Two example studies with different sites and modules (deploy/studies/); ARGS adds more.
STUDIES ?= deploy/studies/cardio-hf.yaml deploy/studies/sleep-athletes.yaml
run: install
	$(BIN)/trialstream up $(foreach s,$(STUDIES),--study $(s)) $(ARGS)

test: install
	$(BIN)/pytest $(XDIST) $(PYTEST_ARGS)

test-unit: install
	$(BIN)/pytest tests/unit tests/contract $(PYTEST_ARGS)

test-integration: install
	$(BIN)/pytest $(XDIST) tests/integration tests/e2e $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy shared/src/trialstream $(foreach s,$(SERVICES),services/$(s)/src/$(s))

# Known vulnerabilities in the pinned dependencies (pip-audit; tools/audit_deps.py says what
# happens where no vulnerability service is reachable).
audit-deps: install
	$(BIN)/python tools/audit_deps.py

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m benchmarks.platform $(ARGS)

# Anomaly scoring on labelled synthetic streams (recall, precision, latency, replay speed);
# `python -m benchmarks.anomaly.live` measures the live consumer.
bench-anomaly: install
	$(BIN)/python -m benchmarks.anomaly $(ARGS)

# The event catalogue (AsyncAPI) and each service's OpenAPI under docs/catalog/, from the
# code; a contract test fails when the checked-in copy is stale.
catalog: install
	$(BIN)/trialstream catalog --out docs/catalog

# Re-pin after changing a dependency: names and versions only, no download addresses.
constraints:
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e ' | sort > constraints.txt

clean:
	rm -rf $(VENV) .trialstream .pytest_cache .mypy_cache .ruff_cache
