# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: setup demo ui simulator test test-fast lint influxdb postgresql chromium wheelhouse bench soak lock clean

setup: $(VENV)/.installed $(DAGSTER_HOME)/dagster.yaml

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet --constraint constraints.txt --editable '.[dev,test]'
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

## Materialize every asset on the local deployment (embedded WattTime simulator, file sink): measurements,
## a judged day of forecasts and its accuracy, the forecast under way and its cleanest windows.
demo: setup
	$(BIN)/carbon-pipeline demo

## The Dagster UI and daemon on http://127.0.0.1:3000 (schedule running, simulated data locally).
## Runs inside DAGSTER_HOME so Dagster uses the instance there; a .env here is loaded first.
ui: setup
	set -a && { [ ! -f .env ] || . ./.env; } && set +a && \
		cd "$(DAGSTER_HOME)" && "$(CURDIR)/$(BIN)/dagster" dev -w "$(CURDIR)/workspace.yaml"

## The WattTime simulator on its own, for exploring the API by hand.
simulator: setup
	$(BIN)/carbon-pipeline simulator

## The InfluxDB server the tests start (Debian's influxdb package).
influxdb:
	@command -v influxd >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq influxdb >/dev/null; }

## The PostgreSQL binaries the tests start their own servers with (Debian's postgresql package).
postgresql:
	@compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql >/dev/null; }

## The headless browser the UI test drives through Playwright (Debian's chromium package).
chromium:
	@[ -x /usr/bin/chromium ] || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

## Wheels of the locked runtime dependencies and the build backend, for the image test's pip install:
## the tests run with no network beyond loopback and no package index (see README, Tests).
wheelhouse: $(VENV)/wheelhouse/.complete

$(VENV)/wheelhouse/.complete: pyproject.toml constraints.txt | $(BIN)/python
	rm -rf $(VENV)/wheelhouse
	$(BIN)/pip wheel --quiet --constraint constraints.txt --wheel-dir $(VENV)/wheelhouse . setuptools
	rm -f $(VENV)/wheelhouse/carbon_pipeline-*.whl
	touch $@

## Benchmarks with real InfluxDB and the simulator; they print their figures (see README).
bench: setup influxdb postgresql
	$(BIN)/python -m benchmarks

## Soak: 2 simulated days of schedule ticks x 3 seeds under random WattTime and InfluxDB faults, then gap
## filling; InfluxDB compared point by point with the simulator, alerts with their rule (see README, Soak).
## Exits non-zero on any lost, wrong or duplicate point or alert mismatch; 15 to 20 minutes on 2 cores.
soak: setup influxdb
	$(BIN)/python -m benchmarks.soak --days 2 --seeds 1 2 3

## Lint (ruff, including the no-naive-datetime rules), types (mypy), then the whole suite,
## which fails below 90 % line and branch coverage of carbon_pipeline, and lists its 30 slowest tests.
## Everything that downloads comes first: pytest re-executes itself in a network namespace holding only
## loopback (carbon_pipeline_tests/support/loopback_guard.py), where no test nor any process it starts
## reaches anything else, and pip has no index.
test: setup wheelhouse influxdb postgresql chromium lint
	$(BIN)/pytest --cov --cov-report=term-missing:skip-covered --cov-fail-under=90 --durations=30

## The fast loop while coding: every test that needs no server process, browser or long wait
## (partitions, validation, line protocol, settings, the client against the in-process simulator...).
## Under a minute on 2 cores (one pytest-xdist worker per core), in the same loopback-only namespace;
## `make test` still runs everything, in one process.
test-fast: setup
	$(BIN)/pytest -m "not integration and not browser and not slow" -n 2

lint: setup
	$(BIN)/ruff check carbon_pipeline carbon_pipeline_tests benchmarks
	$(BIN)/ruff format --check carbon_pipeline carbon_pipeline_tests benchmarks
	$(BIN)/mypy

## Refresh constraints.txt, the pinned versions deployments install.
lock: $(BIN)/python
	$(BIN)/pip install --quiet --editable '.[dev,test]'
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) $(DAGSTER_HOME) .pytest_cache
