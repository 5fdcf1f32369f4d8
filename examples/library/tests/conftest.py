"""The library's own test fixtures: Django on $LIBRARY_DATABASE_URL (migrated and seeded here
unless $LIBRARY_PREPARED=1, e.g. after a data migration), or on a fresh SQLite file. Every test
runs inside a transaction that is rolled back."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.library.setup import URL_ENV, setup

PREPARED_ENV = "LIBRARY_PREPARED"

if not os.environ.get(URL_ENV):
    os.environ[URL_ENV] = f"sqlite:///{Path(tempfile.mkdtemp(prefix='library-')) / 'library.db'}"
setup()


@pytest.fixture(scope="session", autouse=True)
def seeded() -> None:
    """The schema built by `migrate` and the seed data, unless the database came prepared."""
    if os.environ.get(PREPARED_ENV) == "1":
        return
    from django.core.management import call_command

    from examples.library import seed

    call_command("migrate", verbosity=0)
    seed.fill()


@pytest.fixture(autouse=True)
def rolled_back(seeded: None) -> Iterator[None]:
    """Each test sees the seed data and leaves no trace."""
    from django.db import transaction

    with transaction.atomic():
        yield
        transaction.set_rollback(True)
