"""The HTTP API (FastAPI): pages and authors, filters on enum, JSON, UUID and dates."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from examples.wiki.db import make_engine, sessions
from examples.wiki.models import Author, Page, PageStatus


class PageIn(BaseModel):
    """A new page."""

    author_id: uuid.UUID
    slug: str
    title: str
    body: str
    status: PageStatus = PageStatus.draft
    tags: list[Any] = []
    meta: dict[str, Any] | None = None
    price: Decimal | None = None
    published_at: dt.datetime | None = None


def page_out(p: Page) -> dict[str, Any]:
    """A page as the API returns it."""
    return {
        "id": p.id,
        "public_id": str(p.public_id),
        "author_id": str(p.author_id),
        "slug": p.slug,
        "title": p.title,
        "status": p.status.value,
        "tags": p.tags,
        "meta": p.meta,
        "labels": p.labels,
        "price": None if p.price is None else str(p.price),
        "views": p.views,
        "published_at": None if p.published_at is None else p.published_at.isoformat(),
        "published_on": None if p.published_on is None else p.published_on.isoformat(),
    }


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request."""
    async with request.app.state.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]


def create_app(url: str) -> FastAPI:
    """The service bound to one database URL."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await app.state.engine.dispose()

    app = FastAPI(title="wiki", lifespan=lifespan)
    app.state.engine = make_engine(url)
    app.state.sessions = sessions(app.state.engine)

    @app.get("/pages")
    async def list_pages(
        session: Session,
        status: PageStatus | None = None,
        kind: str | None = None,
        since: dt.datetime | None = None,
        first_tag: str | None = None,
    ) -> list[dict[str, Any]]:
        query = select(Page).order_by(Page.id)
        if status is not None:
            query = query.where(Page.status == status)
        if kind is not None:
            query = query.where(Page.meta["kind"].as_string() == kind)
        if first_tag is not None:
            query = query.where(Page.tags[0].as_string() == first_tag)
        if since is not None:
            if since.tzinfo is None:
                raise HTTPException(422, "since needs a UTC offset")
            query = query.where(Page.published_at >= since)
        return [page_out(p) for p in (await session.scalars(query)).all()]

    @app.get("/pages/{public_id}")
    async def get_page(public_id: uuid.UUID, session: Session) -> dict[str, Any]:
        page = await session.scalar(select(Page).where(Page.public_id == public_id))
        if page is None:
            raise HTTPException(404, "no such page")
        return page_out(page)

    @app.post("/pages", status_code=201)
    async def create_page(data: PageIn, session: Session) -> dict[str, Any]:
        page = Page(**data.model_dump())
        session.add(page)
        await session.commit()
        return page_out(page)

    @app.get("/authors/{author_id}")
    async def get_author(author_id: uuid.UUID, session: Session) -> dict[str, Any]:
        author = await session.get(Author, author_id)
        if author is None:
            raise HTTPException(404, "no such author")
        return {
            "id": str(author.id),
            "handle": author.handle,
            "display_name": author.display_name,
            "email": author.email,
            "profile": author.profile,
            "joined_at": author.joined_at.isoformat(),
        }

    @app.delete("/authors/{author_id}", status_code=204)
    async def delete_author(author_id: uuid.UUID, session: Session) -> None:
        author = await session.get(Author, author_id)
        if author is None:
            raise HTTPException(404, "no such author")
        await session.delete(author)
        await session.commit()

    return app
