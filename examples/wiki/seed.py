"""Fill the wiki through the ORM with varied data: unicode, NULLs, aware datetimes, Decimals,
JSON objects/arrays/null (and SQL NULL), UUIDs, bytes. `python -m examples.wiki.seed URL`
builds the schema first unless `--data-only`."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import sys
import uuid
from decimal import Decimal

from sqlalchemy import null

from examples.wiki.db import create_schema, make_engine, sessions
from examples.wiki.models import Author, Page, PageStatus, Revision

UTC = dt.UTC
ADA = uuid.UUID("0b6e1c1e-7d43-4b7a-9a55-1f0f5a0c0001")
BJORK = uuid.UUID("0b6e1c1e-7d43-4b7a-9a55-1f0f5a0c0002")
CHEN = uuid.UUID("0b6e1c1e-7d43-4b7a-9a55-1f0f5a0c0003")
DORA = uuid.UUID("0b6e1c1e-7d43-4b7a-9a55-1f0f5a0c0004")
HOME_PAGE = uuid.UUID("5f1d2b8e-3c4a-4e6f-8a9b-0c1d2e3f4a01")
PAGE_COUNT = 40  # 4 hand-written pages and 36 generated ones
JSON_NULL_META = 6  # generated pages whose meta is JSON null (every 6th)
SQL_NULL_META = 6  # and SQL NULL


def _authors() -> list[Author]:
    t0 = dt.datetime(2021, 3, 28, 1, 59, 59, 999999, tzinfo=UTC)
    return [
        Author(
            id=ADA,
            handle="ada",
            display_name="Ada Lovelace",
            email="Ada@Example.org",
            country="GB",
            profile={"bio": "first programmer", "langs": ["en", "fr"], "nested": {"a": [1, 2.5]}},
            karma=32767,
            network=ipaddress.ip_network("10.0.0.0/8"),
            trust=0.5,
            avatar=b"\x00\x01\xfe\xff",
            joined_at=t0,
        ),
        Author(
            id=BJORK,
            handle="björk",
            display_name="Björk Guðmundsdóttir 🎵",
            email="bjork@example.is",
            country="IS",
            profile=None,  # JSON null
            karma=-32768,
            network=ipaddress.ip_network("2001:db8::/32"),
            trust=-2.25,
            avatar=None,
            joined_at=dt.datetime(
                1999, 12, 31, 23, 59, 59, tzinfo=dt.timezone(dt.timedelta(hours=-5))
            ),
        ),
        Author(
            id=CHEN,
            handle="陈",
            display_name="陈 静",
            email=None,
            country=None,
            profile=null(),  # SQL NULL
            karma=0,
            avatar=b"",
            joined_at=dt.datetime(2024, 2, 29, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        ),
        Author(
            id=DORA,
            handle="dora",
            display_name='Dora "the" O\'Brien\\',
            email="dora@example.com",
            country="IE",
            profile=["a", "list", "profile", None, True, 0],
            karma=7,
            network=ipaddress.ip_network("192.168.1.128/25"),
            trust=1e10,
            avatar=bytes(range(256)),
            joined_at=dt.datetime(2038, 1, 19, 3, 14, 8, 123456, tzinfo=UTC),
        ),
    ]


def _pages() -> list[Page]:
    base = dt.datetime(2024, 1, 1, 9, 30, tzinfo=UTC)
    pages = [
        Page(
            public_id=HOME_PAGE,
            author_id=ADA,
            slug="home",
            title="Home",
            body="Welcome to the wiki.\nLine two\ttabbed.",
            status=PageStatus.published,
            tags=["start", "welcome"],
            meta={"kind": "guide", "weight": 1.5, "flags": {"toc": True, "draft": False}},
            labels=["front", "pinned"],
            price=Decimal("19.990"),
            score=0.1,
            views=9_007_199_254_740_993,
            pinned=True,
            published_at=base,
            published_on=dt.date(2024, 1, 1),
            indexed_at=dt.datetime(2024, 1, 2, 3, 4, 5, 678901),  # noqa: DTZ001 - a naive column
        ),
        Page(
            author_id=BJORK,
            slug="über-uns",
            title="Über uns — ✓",
            body="Ünïcödé body: ∑ \U0001d518 \U0001f600 and a 'quote'",
            status=PageStatus.draft,
            tags=["über", "ß"],
            meta={"kind": "about", "ratio": 0.5, "empty": {}, "list": []},
            labels=[],
            price=Decimal("0.001"),
            score=-1e-300,
            views=0,
            pinned=False,
            published_at=None,
            published_on=None,
            indexed_at=None,
        ),
        Page(
            author_id=CHEN,
            slug="archive",
            title="Archive",
            body="",
            status=PageStatus.archived,
            tags=[],
            meta={"kind": "guide", "n": 12345678901234567890},
            labels=None,
            price=Decimal("-9999999.999"),
            score=1.7976931348623157e308,
            views=1,
            published_at=dt.datetime(1970, 1, 1, tzinfo=UTC),
            published_on=dt.date(1, 1, 1),
            indexed_at=dt.datetime(9999, 12, 31, 23, 59, 59, 999999),  # noqa: DTZ001
        ),
        Page(
            author_id=DORA,
            slug="null-meta",
            title="JSON null meta",
            body="meta is JSON null, not SQL NULL",
            status=PageStatus.published,
            tags=[None, 1, "two", 3.0, {"four": 4}],
            meta=None,  # JSON null
            labels=["x"],
            price=None,
            score=None,
            views=42,
            published_at=dt.datetime(
                2024, 6, 30, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-1))
            ),
            published_on=dt.date(2024, 7, 1),
        ),
    ]
    statuses = list(PageStatus)
    for i in range(PAGE_COUNT - len(pages)):
        if i % JSON_NULL_META == 0:
            meta: object = None
        elif i % SQL_NULL_META == 1:
            meta = null()
        else:
            meta = {"kind": ["guide", "howto", "ref"][i % 3], "i": i, "tags": [i, str(i)]}
        pages.append(
            Page(
                author_id=[ADA, BJORK, CHEN, DORA][i % 4],
                slug=f"page-{i:03d}",
                title=f"Page {i} — ünïcode {chr(0x4E00 + i)}",
                body="x" * (i * 37),
                status=statuses[i % 3],
                tags=[f"t{i % 5}", f"t{i % 7}"],
                meta=meta,
                labels=[f"l{i}"] if i % 2 else None,
                price=Decimal(i * 1001) / 1000 if i % 4 else None,
                score=i / 7 if i % 3 else None,
                views=i * 1000,
                pinned=i % 5 == 0,
                published_at=base + dt.timedelta(days=i, microseconds=i) if i % 2 else None,
                published_on=(base + dt.timedelta(days=i)).date() if i % 3 else None,
                indexed_at=dt.datetime(2023, 5, 1) + dt.timedelta(hours=i) if i % 2 else None,  # noqa: DTZ001
            )
        )
    return pages


async def fill(url: str, schema: bool = True) -> None:
    """Build the schema (unless `schema` is False) and insert the seed data."""
    engine = make_engine(url)
    try:
        if schema:
            await create_schema(engine)
        async with sessions(engine)() as session:
            session.add_all(_authors())
            await session.flush()
            pages = _pages()
            session.add_all(pages)
            await session.flush()
            for n, page in enumerate(pages[:8]):
                for number in range(1, n % 3 + 2):
                    session.add(
                        Revision(
                            page_id=page.id,
                            number=number,
                            content=f"rev {number} of {page.slug}",
                            diff={"+": number, "-": [], "who": page.slug} if number > 1 else None,
                            created_at=dt.datetime(2024, 1, 1, tzinfo=UTC)
                            + dt.timedelta(hours=number, seconds=n),
                        )
                    )
            await session.commit()
    finally:
        await engine.dispose()


def main(argv: list[str]) -> None:
    """`python -m examples.wiki.seed URL [--data-only]`."""
    asyncio.run(fill(argv[0], schema="--data-only" not in argv))


if __name__ == "__main__":
    main(sys.argv[1:])
