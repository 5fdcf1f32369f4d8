# petstore-rds: one entry point for set-up, tests, lint, the rehearsal and the benchmark.
# Every target creates the virtualenv and installs the locked dependencies itself.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# The locks `make lock` writes from the *.in files beside them (README "Dependencies").
LOCKS  := requirements.txt requirements-dev.txt migration/requirements.txt \
          migration/requirements-build.txt policy/requirements.txt requirements-rehearse.txt
# `make rehearse`'s own light virtualenv: the migration engine and the embedded server only.
REHEARSE_VENV  ?= .venv-rehearse
REHEARSE_STAMP := $(REHEARSE_VENV)/.installed-stamp
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
        lock-check-image audit check-config clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

python-version: ## fail early and clearly on a Python older than 3.11 (before any pip install)
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else "petstore-rds needs Python 3.11+, found %d.%d (%s); run make with PYTHON=python3.11 or newer" % (v[0], v[1], sys.executable))'

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

$(REHEARSE_STAMP): requirements-rehearse.txt
	@$(MAKE) --no-print-directory python-version
	$(PYTHON) -m venv $(REHEARSE_VENV)
	$(REHEARSE_VENV)/bin/python $(PIP_INSTALL) -r requirements-rehearse.txt
	@touch $@

rehearse: $(REHEARSE_STAMP) ## the main job on a laptop: migrate a sample petstore SQLite file into a throwaway embedded PostgreSQL and verify it (own light venv)
	$(REHEARSE_VENV)/bin/python -m migration rehearse --sample

check-config: setup ## validate a stack file as `pulumi preview` would, e.g. make check-config STACK=dev
	@test -n "$(STACK)" || { echo "usage: make check-config STACK=dev (or STACK=path/to/Pulumi.<stack>.yaml)" >&2; exit 2; }
	@$(PY) scripts/check_config.py $(STACK)

bench: setup ## benchmark against pgloader, executemany and raw COPY (installs pgloader if apt is available)
	@command -v pgloader >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgloader) || echo "pgloader not installed: it will be reported as skipped"; }
	$(PY) bench/run.py $(ARGS)

lock: setup ## re-resolve every *.in into its hash-pinned lock with uv (needs PyPI), then check the image's wheels for amd64 and arm64
	$(UV_COMPILE) requirements.in --output-file requirements.txt
	$(UV_COMPILE) migration/requirements.in --output-file migration/requirements.txt
	$(UV_COMPILE) migration/requirements-build.in --output-file migration/requirements-build.txt
	$(UV_COMPILE) policy/requirements.in --output-file policy/requirements.txt
	$(UV_COMPILE) requirements-rehearse.in --output-file requirements-rehearse.txt
	$(UV_COMPILE) requirements-dev.in --output-file requirements-dev.txt
	@$(MAKE) --no-print-directory lock-check-image

# pip, not uv, downloads what the image's `pip install --require-hashes --only-binary=:all:` would
# install on each architecture, from PyPI only (no local pip configuration): a missing wheel or
# hash fails here rather than in `docker buildx build`.
lock-check-image: setup ## prove the image's locks install (wheels, hashes) on linux/amd64 and linux/arm64
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && for arch in $(IMAGE_ARCHES); do \
	  platforms=$$(for minor in $$(seq 36 -1 17); do printf -- '--platform manylinux_2_%s_%s ' $$minor $$arch; done); \
	  env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null \
	    $(PY) -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
	    --only-binary=:all: $$platforms --platform manylinux2014_$$arch \
	    --python-version 3.11 --implementation cp --index-url https://pypi.org/simple \
	    --dest "$$tmp/$$arch" -r migration/requirements.txt -r migration/requirements-build.txt \
	    || exit 1; \
	  echo "the image's locks on $$arch: $$(ls "$$tmp/$$arch" | tr '\n' ' ')"; \
	done

audit: setup ## pip-audit --strict over every lock (needs PyPI's JSON API; GitHub CI runs it)
	$(VENV)/bin/pip-audit --strict --progress-spinner off --require-hashes --disable-pip \
	  $(foreach lock,$(LOCKS),-r $(lock))

clean: ## remove the virtualenvs, caches and build output
	rm -rf $(VENV) $(REHEARSE_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info
