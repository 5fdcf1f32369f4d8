"""The wiki's tables, declared once for both backends the way an app targeting SQLite in dev and
PostgreSQL in production declares them (variants where PostgreSQL has the better type)."""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CHAR,
    JSON,
    REAL,
    UUID,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class AwareDateTime(TypeDecorator[dt.datetime]):
    """`DateTime(timezone=True)` that always hands the app aware UTC datetimes: SQLite stores
    naive UTC text (SQLAlchemy drops the offset), PostgreSQL a timestamptz."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("AwareDateTime needs an aware datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class NetworkType(TypeDecorator[Network]):
    """An IP network: text on SQLite, cidr on PostgreSQL; the app always gets an ip_network."""

    impl = String(43)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.CIDR())
        return dialect.type_descriptor(String(43))

    def process_bind_param(self, value: Network | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Network | None:
        return None if value is None else ipaddress.ip_network(value)


# JSON on SQLite (declared "JSON"), jsonb on PostgreSQL (indexable, `->>` and `@>`).
Json = JSON().with_variant(postgresql.JSONB(), "postgresql")
# A list of strings: JSON text on SQLite, a text[] on PostgreSQL.
Labels = JSON().with_variant(postgresql.ARRAY(Text), "postgresql")
# Case-insensitive e-mail: NOCASE on SQLite, citext on PostgreSQL.
Email = String(200, collation="NOCASE").with_variant(postgresql.CITEXT(), "postgresql")


class PageStatus(enum.Enum):
    """A page's life cycle (a native enum type `page_status` on PostgreSQL)."""

    draft = "draft"
    published = "published"
    archived = "archived"


class Base(DeclarativeBase):
    """Declarative base of the wiki's models."""

    type_annotation_map: dict[Any, Any] = {dt.datetime: AwareDateTime}  # noqa: RUF012


class Author(Base):
    """Someone who writes pages (UUID key stored as 32 hex characters on SQLite)."""

    __tablename__ = "authors"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    handle: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(Email)
    country: Mapped[str | None] = mapped_column(CHAR(2))
    profile: Mapped[Any] = mapped_column(Json, nullable=True)
    karma: Mapped[int] = mapped_column(SmallInteger, default=0)
    network: Mapped[Network | None] = mapped_column(NetworkType)
    trust: Mapped[float | None] = mapped_column(REAL)  # real (4 bytes) on PostgreSQL
    avatar: Mapped[bytes | None] = mapped_column(LargeBinary)
    joined_at: Mapped[dt.datetime] = mapped_column(AwareDateTime)

    pages: Mapped[list[Page]] = relationship(back_populates="author", passive_deletes=True)


class Page(Base):
    """A wiki page: every kind of column the service uses."""

    __tablename__ = "pages"
    __table_args__ = (CheckConstraint("views >= 0", name="ck_pages_views_nonneg"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[uuid.UUID] = mapped_column(UUID, unique=True, default=uuid.uuid4)
    author_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("authors.id", ondelete="CASCADE"), index=True
    )
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[PageStatus] = mapped_column(
        Enum(PageStatus, name="page_status"), default=PageStatus.draft
    )
    tags: Mapped[Any] = mapped_column(Json, default=list)
    meta: Mapped[Any] = mapped_column(Json, nullable=True)
    labels: Mapped[list[str] | None] = mapped_column(Labels)
    price: Mapped[Decimal | None] = mapped_column(Numeric(10, 3))
    score: Mapped[float | None] = mapped_column(Float)
    views: Mapped[int] = mapped_column(BigInteger, default=0)
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    published_at: Mapped[dt.datetime | None] = mapped_column(AwareDateTime)
    published_on: Mapped[dt.date | None] = mapped_column(Date)
    indexed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=False))

    author: Mapped[Author] = relationship(back_populates="pages")
    revisions: Mapped[list[Revision]] = relationship(back_populates="page", passive_deletes=True)


class Revision(Base):
    """One saved version of a page."""

    __tablename__ = "revisions"
    __table_args__ = (UniqueConstraint("page_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"))
    number: Mapped[int]
    content: Mapped[str] = mapped_column(Text)
    diff: Mapped[Any] = mapped_column(JSON, nullable=True)  # json (text kept) on PostgreSQL
    created_at: Mapped[dt.datetime] = mapped_column(AwareDateTime)

    page: Mapped[Page] = relationship(back_populates="revisions")
