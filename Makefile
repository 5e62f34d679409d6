# Two commands for a fresh machine with Python 3.11+ and make: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

.PHONY: run test reliability-long lint check-deploy bench clean

$(STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "kvs needs Python 3.11 or newer as $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## API on 127.0.0.1:8080 plus a worker; embedded PostgreSQL in .data/ unless DATABASE_URL is set
run: $(STAMP)
	$(BIN)/kvs dev

## the whole suite against a throwaway PostgreSQL (or TEST_DATABASE_URL / DATABASE_URL)
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## the reliability suite with its long forms (sustained load for 5 minutes); docs/RELIABILITY.md
reliability-long: $(STAMP)
	KVS_RELIABILITY_SECONDS=300 $(BIN)/python -m pytest -s tests/reliability $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check service tests bench
	$(BIN)/ruff format --check service tests bench
	$(BIN)/openapi-spec-validator openapi/openapi.yaml openapi/quiva.yaml openapi/quiva-secrets.yaml
	$(BIN)/yamllint --strict deploy

## the service against PostgreSQL, a bare aiohttp app and etcd (QUICK=1: ~3 min); bench/results/
bench: $(STAMP)
	$(BIN)/python bench/run.py $(if $(QUICK),--quick)

## deploy/ renders, validates against Kubernetes schemas, and its alerts pass promtool's tests
check-deploy: $(STAMP)
	PYTHON=$(abspath $(BIN))/python deploy/check

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
