"""App config of the catalog."""

from __future__ import annotations

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    """The catalog app (label `catalog`)."""

    name = "examples.library.catalog"
    label = "catalog"
