"""Fixtures of the example-app tests: the PostgreSQL server of tests/migration and the results
directory the session shares across xdist workers (see tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import RESULTS_ENV
from tests.migration.conftest import make_db, pg_server, target  # noqa: F401 - shared fixtures


@pytest.fixture(scope="session")
def results_dir() -> Path:
    """Where each (app, mode) result is cached for this session."""
    return Path(os.environ[RESULTS_ENV])
