"""Every object of the wiki as the ORM reads it, in canonical form (`examples.canon`).

`python -m examples.wiki.snapshot URL` prints one JSON document: {table: [[attr, canon]...]}.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from sqlalchemy import inspect, select

from examples.canon import canon
from examples.wiki.db import make_engine, sessions
from examples.wiki.models import Author, Page, Revision

MODELS = (Author, Page, Revision)


async def snapshot(url: str) -> dict[str, list[list[Any]]]:
    """{table: one row per object (ordered by a stable key), each [[attribute, canon], ...]}."""
    engine = make_engine(url)
    out: dict[str, list[list[Any]]] = {}
    try:
        async with sessions(engine)() as session:
            for model in MODELS:
                attrs = [c.key for c in inspect(model).column_attrs]
                key = Page.slug if model is Page else inspect(model).primary_key[0]
                objs = (await session.scalars(select(model).order_by(key))).all()
                out[model.__tablename__] = [
                    [[a, canon(getattr(o, a))] for a in attrs] for o in objs
                ]
    finally:
        await engine.dispose()
    return out


def main(argv: list[str]) -> None:
    """Print the snapshot of the database at argv[0]."""
    print(json.dumps(asyncio.run(snapshot(argv[0])), ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
