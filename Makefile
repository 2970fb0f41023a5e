# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test test-nocache browser lint audit serve migrate seed bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

$(STAMP): $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(DEV_STAMP): $(STAMP) requirements-dev.lock
	$(BIN)/pip install --quiet -r requirements-dev.lock
	touch $@

## run: install, migrate, seed (when the seed is newer than the data), then serve on $(HOST):$(PORT)
run: $(STAMP)
	$(BIN)/dyad db upgrade
	$(BIN)/dyad seed --if-changed
	$(BIN)/dyad serve --host $(HOST) --port $(PORT)

## test: install the dev dependencies (and Debian's chromium for the browser test) and run the whole suite
test: $(DEV_STAMP) browser
	$(BIN)/python -m pytest -n 2 -q

## test-nocache: every test that answers through the app, on SQLite with the response cache off
## (CI runs both); the files left out never meet the cache (CLI, migrations, crashes, parsers)
NOCACHE_SKIP = bench cli compose comtrade crash dataset db dockerfile migrations shutdown values
test-nocache: $(DEV_STAMP) browser
	DYAD_TEST_CACHE=off DYAD_TEST_DATABASE_URL= $(BIN)/python -m pytest -n 2 -q -rfE \
		$(foreach name,$(NOCACHE_SKIP),--ignore=tests/test_$(name).py)

## browser: Debian's chromium for the explorer's browser test, when missing and apt can install it
## (without it, that test skips and says why)
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& (apt-get install -y -qq chromium >/dev/null 2>&1 \
		    || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)) ; } \
		|| echo "chromium not installed: the browser test will skip"

## lint: ruff (lint + format check) and mypy --strict on app/
lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/bandit -q -r app -lll

## audit: known vulnerabilities in the pinned dependencies (pip-audit asks PyPI's advisory service,
## so it needs the public network; --strict fails when a dependency could not be audited at all,
## instead of passing with nothing checked)
audit: $(DEV_STAMP)
	$(BIN)/pip-audit --strict --progress-spinner off -r requirements.lock

## bench: the read benchmark (bench/run.py) and the import of 1M Comtrade rows (bench/measure_import.py; BENCH_ARGS="--rows 1000000" for more data)
bench: $(DEV_STAMP)
	$(BIN)/pip install --quiet -r requirements-bench.lock
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/measure_import.py --rows 1000000 > bench/results/import.json

## lock: re-pin every dependency from pyproject.toml (needs the network)
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip && .lock-venv/bin/pip install --quiet .
	.lock-venv/bin/pip freeze --exclude dyad > requirements.lock
	.lock-venv/bin/pip install --quiet ".[dev]"
	.lock-venv/bin/pip freeze --exclude dyad > requirements-dev.lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip && .lock-venv/bin/pip install --quiet ".[bench]"
	.lock-venv/bin/pip freeze --exclude dyad > requirements-bench.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
