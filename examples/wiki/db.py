"""Engine and schema: `sqlite:///file` runs on aiosqlite, `postgresql://...` on asyncpg."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import event, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from examples.wiki.models import Base

URL_ENV = "WIKI_DATABASE_URL"
DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def database_url() -> str:
    """The configured database URL ($WIKI_DATABASE_URL)."""
    try:
        return os.environ[URL_ENV]
    except KeyError:
        raise RuntimeError(f"set {URL_ENV} to sqlite:///FILE or postgresql://...") from None


def make_engine(url: str) -> AsyncEngine:
    """An async engine on the URL's backend (foreign keys enforced on SQLite too)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    engine = create_async_engine(parsed.set(drivername=DRIVERS[backend]), poolclass=NullPool)
    if backend == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _foreign_keys(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

    return engine


def sessions(engine: AsyncEngine) -> async_sessionmaker[Any]:
    """The app's session factory (objects stay usable after commit)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def create_schema(engine: AsyncEngine) -> None:
    """Build the schema the app's own way: `metadata.create_all` (citext first on PostgreSQL)."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS citext"))
        await conn.run_sync(Base.metadata.create_all)


async def _build(url: str) -> None:
    engine = make_engine(url)
    try:
        await create_schema(engine)
    finally:
        await engine.dispose()


if __name__ == "__main__":  # `python -m examples.wiki.db`: the schema on $WIKI_DATABASE_URL
    import asyncio

    asyncio.run(_build(database_url()))
