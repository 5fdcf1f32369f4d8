"""The wiki's own test fixtures: the database in $WIKI_DATABASE_URL (built and seeded here unless
$WIKI_PREPARED=1, e.g. after a migration), or a fresh SQLite file."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from examples.wiki import seed
from examples.wiki.api import create_app
from examples.wiki.db import URL_ENV, make_engine, sessions

T = TypeVar("T")
PREPARED_ENV = "WIKI_PREPARED"


@pytest.fixture(scope="session")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The database under test, holding the seed data."""
    url = os.environ.get(URL_ENV) or f"sqlite:///{tmp_path_factory.mktemp('wiki') / 'wiki.db'}"
    if os.environ.get(PREPARED_ENV) != "1":
        asyncio.run(seed.fill(url))
    return url


def run(coro: Awaitable[T]) -> T:
    """Run one coroutine in a fresh event loop (each test owns its loop and connections)."""

    async def wrapper() -> T:
        return await coro

    return asyncio.run(wrapper())


@asynccontextmanager
async def session_on(url: str) -> AsyncIterator[AsyncSession]:
    """A session on its own engine, disposed afterwards."""
    engine = make_engine(url)
    try:
        async with sessions(engine)() as session:
            yield session
    finally:
        await engine.dispose()


@asynccontextmanager
async def client_on(url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    app = create_app(url)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://wiki") as client:
            yield client
    finally:
        await app.state.engine.dispose()


def pages_json(url: str, **params: Any) -> list[dict[str, Any]]:
    """GET /pages with query parameters."""

    async def go() -> list[dict[str, Any]]:
        async with client_on(url) as client:
            resp = await client.get("/pages", params=params)
            assert resp.status_code == 200, resp.text
            return list(resp.json())

    return run(go())
