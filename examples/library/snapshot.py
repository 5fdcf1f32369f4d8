"""Every object of the library as Django reads it, in canonical form (`examples.canon`).

`python -m examples.library.snapshot URL` prints one JSON document: {model: rows}."""

from __future__ import annotations

import json
import sys
from typing import Any

from examples.canon import canon


def snapshot() -> dict[str, list[list[Any]]]:
    """{model label: one row per object, ordered by primary key, [[field, canon], ...]}."""
    from django.apps import apps

    out: dict[str, list[list[Any]]] = {}
    for model in apps.get_models():
        label = model._meta.label
        if label == "sessions.Session":
            continue  # a test run's own logins
        fields = list(model._meta.concrete_fields)
        m2m = list(model._meta.many_to_many)
        rows = []
        for obj in model._default_manager.order_by("pk"):
            row = [[f.attname, canon(getattr(obj, f.attname))] for f in fields]
            row += [
                [
                    f.name,
                    sorted(str(pk) for pk in getattr(obj, f.name).values_list("pk", flat=True)),
                ]
                for f in m2m
            ]
            rows.append(row)
        out[label] = rows
    return out


def main(argv: list[str]) -> None:
    """Print the snapshot of the database at argv[0]."""
    from examples.library.setup import setup

    setup(argv[0])
    print(json.dumps(snapshot(), ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
