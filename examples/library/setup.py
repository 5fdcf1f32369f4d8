"""Configure Django for a database URL (once per process)."""

from __future__ import annotations

import os

import django

URL_ENV = "LIBRARY_DATABASE_URL"  # read by settings.py


def setup(url: str | None = None) -> None:
    """Point the library at `url` (default: $LIBRARY_DATABASE_URL) and start Django."""
    if url is not None:
        os.environ[URL_ENV] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.library.settings")
    django.setup()
