# Two commands for a fresh machine with Python 3.11+ and make: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml clients/python/pyproject.toml | cksum | cut -d' ' -f1)
JS_CLIENT := clients/js/dist/index.js

.PHONY: run test js-client reliability-long lint check-deploy bench clean

$(STAMP):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "kvs needs Python 3.11 or newer as $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e clients/python
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## API on 127.0.0.1:8080 plus a worker; embedded PostgreSQL in .data/ unless DATABASE_URL is set
run: $(STAMP)
	$(BIN)/kvs dev

## the whole suite against a throwaway PostgreSQL (or TEST_DATABASE_URL / DATABASE_URL)
test: $(STAMP) js-client
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## the TypeScript client (clients/js), built when npm is here; its tests say what they need
js-client:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory $(JS_CLIENT); \
	else echo "npm not found: the TypeScript client's tests need Node 18+"; fi

$(JS_CLIENT): clients/js/package-lock.json clients/js/tsconfig.json $(wildcard clients/js/src/*.ts)
	cd clients/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## the reliability suite with its long forms (sustained load for 5 minutes); docs/RELIABILITY.md
reliability-long: $(STAMP)
	KVS_RELIABILITY_SECONDS=300 $(BIN)/python -m pytest -s tests/reliability $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check service tests bench clients/python
	$(BIN)/ruff format --check service tests bench clients/python
	$(BIN)/openapi-spec-validator openapi/openapi.yaml openapi/quiva.yaml openapi/quiva-secrets.yaml
	$(BIN)/yamllint --strict deploy

## the service against PostgreSQL, a bare aiohttp app and etcd (QUICK=1: ~3 min); bench/results/
bench: $(STAMP)
	$(BIN)/python bench/run.py $(if $(QUICK),--quick)

## deploy/ renders, validates against Kubernetes schemas, and its alerts pass promtool's tests
check-deploy: $(STAMP)
	PYTHON=$(abspath $(BIN))/python deploy/check

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache clients/js/node_modules clients/js/dist
