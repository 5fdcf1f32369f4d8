# petstore-rds: one entry point for set-up, tests, lint, the rehearsal and the benchmark.
# Every target creates the virtualenv and installs the locked dependencies itself.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# The locks `make lock` writes from the *.in files beside them (README "Dependencies").
LOCKS  := requirements.txt requirements-dev.txt migration/requirements.txt policy/requirements.txt
PIP_INSTALL := -m pip install --quiet --disable-pip-version-check --require-hashes

# `make lock`: uv resolves each *.in once for every platform (--universal: Linux x86_64 and
# aarch64 for the image, any OS for developers) and every CPython from 3.11 on, from PyPI only,
# and pins every distribution with the sha256 of each of its files. The command is recorded in
# each lock's header, where Dependabot reads it to regenerate the lock itself.
# LOCK_ARGS=--upgrade (or --upgrade-package NAME) moves transitive pins too.
UV_COMPILE := $(VENV)/bin/uv pip compile --universal --python-version 3.11 --generate-hashes \
              --no-config --default-index https://pypi.org/simple --quiet $(LOCK_ARGS)
# The image's base: CPython 3.11 on Debian 12 (glibc 2.36), linux/amd64 and linux/arm64.
IMAGE_ARCHES := x86_64 aarch64

.DEFAULT_GOAL := help
.PHONY: help python-version setup test pytest lint format typecheck rehearse bench lock \
        lock-check-image audit clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

python-version: ## fail early and clearly on a Python older than 3.11
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else f"petstore-rds needs Python 3.11+, found {v[0]}.{v[1]} ({sys.executable}); set PYTHON=python3.11 or newer")' \
	  || { echo "make: $(PYTHON) is not usable (petstore-rds needs Python 3.11+)" >&2; exit 1; }

$(STAMP): $(LOCKS)
	@$(MAKE) --no-print-directory python-version
	$(PYTHON) -m venv $(VENV)
	$(PY) $(PIP_INSTALL) -r requirements-dev.txt
	@touch $@

setup: $(STAMP) ## create .venv and install every locked dependency (hash-checked)

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

lock: setup ## re-resolve every *.in into its hash-pinned lock with uv (needs PyPI), then check the image's
	$(UV_COMPILE) requirements.in --output-file requirements.txt
	$(UV_COMPILE) migration/requirements.in --output-file migration/requirements.txt
	$(UV_COMPILE) policy/requirements.in --output-file policy/requirements.txt
	$(UV_COMPILE) requirements-dev.in --output-file requirements-dev.txt
	@$(MAKE) --no-print-directory lock-check-image

# pip, not uv, downloads what the image's `pip install --require-hashes --only-binary=:all:` would
# install on each architecture, from PyPI only (no local pip configuration): a missing wheel or
# hash fails here rather than in `docker buildx build`.
lock-check-image: setup ## prove migration/requirements.txt installs (wheels, hashes) on linux/amd64 and linux/arm64
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && for arch in $(IMAGE_ARCHES); do \
	  platforms=$$(for minor in $$(seq 36 -1 17); do printf -- '--platform manylinux_2_%s_%s ' $$minor $$arch; done); \
	  env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null \
	    $(PY) -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
	    --only-binary=:all: $$platforms --platform manylinux2014_$$arch \
	    --python-version 3.11 --implementation cp --index-url https://pypi.org/simple \
	    --dest "$$tmp/$$arch" -r migration/requirements.txt || exit 1; \
	  echo "migration/requirements.txt on $$arch: $$(ls "$$tmp/$$arch" | tr '\n' ' ')"; \
	done

audit: setup ## pip-audit --strict over every lock (needs PyPI's JSON API; GitHub CI runs it)
	$(VENV)/bin/pip-audit --strict --progress-spinner off --require-hashes --disable-pip \
	  $(foreach lock,$(LOCKS),-r $(lock))

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
