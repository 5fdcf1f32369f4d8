# petstore-rds: one entry point for set-up, tests, lint, the rehearsal and the benchmark.
# Every target creates the virtualenv and installs the pinned dependencies itself.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
REQS   := requirements.txt requirements-dev.txt migration/requirements.txt policy/requirements.txt

.DEFAULT_GOAL := help
.PHONY: help setup test pytest lint format typecheck rehearse bench lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): $(REQS)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

setup: $(STAMP) ## create .venv and install every pinned dependency

test: setup lint typecheck pytest ## the whole suite: ruff, mypy, then pytest (real PostgreSQL, Pulumi mocks, policies, actionlint)

pytest: setup ## only the pytest suite (pass ARGS=... to select)
	$(PY) -m pytest -n 2 $(ARGS)

lint: setup ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup ## apply ruff's formatter and autofixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: setup ## mypy --strict on infra/, migration/, policy/, scripts/
	$(VENV)/bin/mypy

rehearse: setup ## the main job on a laptop: migrate a sample petstore SQLite file into a throwaway embedded PostgreSQL and verify it
	$(PY) -m migration rehearse --sample

bench: setup ## benchmark against pgloader, executemany and raw COPY (installs pgloader if apt is available)
	@command -v pgloader >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgloader) || echo "pgloader not installed: it will be reported as skipped"; }
	$(PY) bench/run.py $(ARGS)

lock: setup ## regenerate migration/requirements.lock (the image's hash-pinned wheels) from migration/requirements.txt; needs PyPI
	$(PY) scripts/lock_requirements.py

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
