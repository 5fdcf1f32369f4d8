"""The wiki's own suite: API and ORM behaviour the service relies on. It runs unchanged on SQLite
(aiosqlite) and PostgreSQL (asyncpg), against the seed data of `examples.wiki.seed`."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from examples.wiki import seed
from examples.wiki.models import Author, Page, PageStatus, Revision
from examples.wiki.tests.conftest import client_on, pages_json, run, session_on

UTC = dt.UTC


def one_page(url: str, slug: str) -> Page:
    async def go() -> Page:
        async with session_on(url) as s:
            page = await s.scalar(select(Page).where(Page.slug == slug))
            assert page is not None
            return page

    return run(go())


def test_api_lists_every_seeded_page_in_id_order(url: str) -> None:
    pages = pages_json(url)
    seeded = [p for p in pages if p["slug"] == "home" or not p["slug"].startswith("new-")]
    assert len(seeded) == seed.PAGE_COUNT
    assert [p["id"] for p in pages] == sorted(p["id"] for p in pages)
    assert seeded[0]["slug"] == "home"


def test_api_finds_a_page_by_its_uuid(url: str) -> None:
    async def go() -> dict[str, Any]:
        async with client_on(url) as client:
            resp = await client.get(f"/pages/{seed.HOME_PAGE}")
            assert resp.status_code == 200, resp.text
            missing = await client.get(f"/pages/{uuid.uuid4()}")
            assert missing.status_code == 404
            return dict(resp.json())

    page = run(go())
    assert page["slug"] == "home"
    assert page["public_id"] == str(seed.HOME_PAGE)
    assert page["price"] == "19.990"


def test_api_reads_an_author_by_uuid_key_with_unicode(url: str) -> None:
    async def go() -> dict[str, Any]:
        async with client_on(url) as client:
            resp = await client.get(f"/authors/{seed.BJORK}")
            assert resp.status_code == 200, resp.text
            return dict(resp.json())

    author = run(go())
    assert author["display_name"] == "Björk Guðmundsdóttir 🎵"
    assert author["joined_at"] == "2000-01-01T04:59:59+00:00"


def test_api_filters_by_enum_status(url: str) -> None:
    archived = pages_json(url, status="archived")
    assert {p["status"] for p in archived} == {"archived"}
    assert "archive" in {p["slug"] for p in archived}
    assert len([p for p in archived if p["slug"].startswith("page-")]) == 12


def test_orm_reads_status_as_the_python_enum(url: str) -> None:
    page = one_page(url, "home")
    assert page.status is PageStatus.published

    async def go() -> int:
        async with session_on(url) as s:
            query = select(func.count()).where(Page.status == PageStatus.draft)
            return int(await s.scalar(query) or 0)

    assert run(go()) >= 13


def test_api_filters_on_a_json_key(url: str) -> None:
    guides = pages_json(url, kind="guide")
    slugs = {p["slug"] for p in guides}
    assert {"home", "archive"} <= slugs
    assert all(p["meta"]["kind"] == "guide" for p in guides)


def test_api_filters_on_a_json_array_element(url: str) -> None:
    assert [p["slug"] for p in pages_json(url, first_tag="über")] == ["über-uns"]


def test_json_object_and_array_keep_types_and_unicode(url: str) -> None:
    home = one_page(url, "home")
    assert home.meta == {"kind": "guide", "weight": 1.5, "flags": {"toc": True, "draft": False}}
    assert type(home.meta["weight"]) is float
    mixed = one_page(url, "null-meta")
    assert mixed.tags == [None, 1, "two", 3.0, {"four": 4}]
    assert [type(v) for v in mixed.tags] == [type(None), int, str, float, dict]
    archive = one_page(url, "archive")
    assert archive.meta["n"] == 12345678901234567890
    assert one_page(url, "über-uns").tags == ["über", "ß"]


def test_json_null_is_not_sql_null(url: str) -> None:
    async def go() -> tuple[list[Any], int]:
        async with session_on(url) as s:
            rows = (
                await s.execute(select(Page.slug, Page.meta).where(Page.meta.is_not(None)))
            ).all()
            sql_null = await s.scalar(select(func.count()).where(Page.meta.is_(None)))
            return [r.slug for r in rows if r.meta is None], int(sql_null or 0)

    json_nulls, sql_nulls = run(go())
    assert "null-meta" in json_nulls
    assert len([s for s in json_nulls if s.startswith("page-")]) == 6
    assert sql_nulls == 6


def test_array_column_round_trips(url: str) -> None:
    assert one_page(url, "home").labels == ["front", "pinned"]
    assert one_page(url, "über-uns").labels == []
    assert one_page(url, "archive").labels is None


def test_aware_datetimes_read_back_as_utc_instants(url: str) -> None:
    page = one_page(url, "null-meta")
    assert page.published_at == dt.datetime(2024, 7, 1, 0, 0, tzinfo=UTC)
    assert page.published_at is not None
    assert page.published_at.utcoffset() == dt.timedelta(0)


def test_api_filters_by_an_aware_datetime(url: str) -> None:
    since = dt.datetime(2024, 7, 1, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    found = pages_json(url, since=since.isoformat())
    assert "null-meta" in {p["slug"] for p in found}  # 2024-07-01T00:00Z >= 2024-06-30T22:00Z
    assert "home" not in {p["slug"] for p in found}
    assert all(p["published_at"] >= "2024-06-30T22:00:00+00:00" for p in found)


def test_naive_timestamp_and_date_round_trip(url: str) -> None:
    home = one_page(url, "home")
    assert home.indexed_at == dt.datetime(2024, 1, 2, 3, 4, 5, 678901)  # noqa: DTZ001
    assert home.indexed_at is not None
    assert home.indexed_at.tzinfo is None
    archive = one_page(url, "archive")
    assert archive.published_on == dt.date(1, 1, 1)
    assert archive.indexed_at == dt.datetime(9999, 12, 31, 23, 59, 59, 999999)  # noqa: DTZ001


def test_date_filter(url: str) -> None:
    async def go() -> list[str]:
        async with session_on(url) as s:
            query = select(Page.slug).where(Page.published_on == dt.date(2024, 7, 1))
            return list((await s.scalars(query)).all())

    assert run(go()) == ["null-meta"]


def test_decimals_are_exact(url: str) -> None:
    assert one_page(url, "home").price == Decimal("19.990")
    assert str(one_page(url, "über-uns").price) == "0.001"
    assert one_page(url, "archive").price == Decimal("-9999999.999")

    async def go() -> list[str]:
        async with session_on(url) as s:
            query = select(Page.slug).where(Page.price == Decimal("0.001"))
            return list((await s.scalars(query)).all())

    assert run(go()) == ["über-uns"]


def test_floats_and_big_integers_are_exact(url: str) -> None:
    home = one_page(url, "home")
    assert home.score == 0.1
    assert home.views == 9_007_199_254_740_993
    assert one_page(url, "über-uns").score == -1e-300
    assert one_page(url, "archive").score == 1.7976931348623157e308


def test_bytes_and_fixed_width_text(url: str) -> None:
    async def go() -> dict[str, Author]:
        async with session_on(url) as s:
            return {a.handle: a for a in (await s.scalars(select(Author))).all()}

    authors = run(go())
    assert authors["ada"].avatar == b"\x00\x01\xfe\xff"
    assert authors["dora"].avatar == bytes(range(256))
    assert authors["陈"].avatar == b""
    assert authors["björk"].avatar is None
    assert authors["ada"].country == "GB"
    assert authors["陈"].country is None
    assert authors["ada"].karma == 32767
    assert authors["björk"].karma == -32768


def test_networks_and_single_precision_reals(url: str) -> None:
    async def go() -> tuple[dict[str, Author], list[str]]:
        async with session_on(url) as s:
            authors = {a.handle: a for a in (await s.scalars(select(Author))).all()}
            query = select(Author.handle).where(
                Author.network == ipaddress.ip_network("2001:db8::/32")
            )
            return authors, list((await s.scalars(query)).all())

    authors, found = run(go())
    assert found == ["björk"]
    assert authors["ada"].network == ipaddress.IPv4Network("10.0.0.0/8")
    assert authors["dora"].network == ipaddress.ip_network("192.168.1.128/25")
    assert authors["陈"].network is None
    assert (authors["ada"].trust, authors["björk"].trust) == (0.5, -2.25)
    assert authors["dora"].trust == 1e10
    assert authors["陈"].trust is None


def test_email_lookup_ignores_case(url: str) -> None:
    async def go() -> list[str]:
        async with session_on(url) as s:
            query = select(Author.handle).where(Author.email == "ada@EXAMPLE.org")
            return list((await s.scalars(query)).all())

    assert run(go()) == ["ada"]


def test_author_uuid_filter_and_relationship(url: str) -> None:
    async def go() -> tuple[int, list[str]]:
        async with session_on(url) as s:
            n = await s.scalar(select(func.count()).where(Page.author_id == seed.CHEN))
            joined = select(Author.handle).join(Page).where(Page.public_id == seed.HOME_PAGE)
            return int(n or 0), list((await s.scalars(joined)).all())

    n, handles = run(go())
    assert n == 10
    assert handles == ["ada"]


def test_api_creates_a_page_with_new_ids(url: str) -> None:
    published = dt.datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone(dt.timedelta(hours=3)))

    async def go() -> tuple[dict[str, Any], dict[str, Any], int]:
        async with client_on(url) as client:
            resp = await client.post(
                "/pages",
                json={
                    "author_id": str(seed.DORA),
                    "slug": "new-api-page",
                    "title": "Nouvelle page ✨",
                    "body": "body",
                    "status": "published",
                    "tags": ["n", None],
                    "meta": {"kind": "new", "deep": {"x": [1]}},
                    "price": "1.500",
                    "published_at": published.isoformat(),
                },
            )
            assert resp.status_code == 201, resp.text
            created = dict(resp.json())
            again = await client.get(f"/pages/{created['public_id']}")
            assert again.status_code == 200, again.text
        async with session_on(url) as s:
            max_seeded = await s.scalar(select(func.max(Page.id)).where(~Page.slug.like("new-%")))
        return created, dict(again.json()), int(max_seeded or 0)

    created, again, max_seeded = run(go())
    assert created["id"] > max_seeded
    assert created["public_id"] not in {str(seed.HOME_PAGE)}
    assert {k: v for k, v in again.items() if k != "published_at"} == {
        k: v for k, v in created.items() if k != "published_at"
    }
    assert again["published_at"] == "2030-05-06T04:08:09.123456+00:00"
    assert again["price"] == "1.500"
    assert again["meta"] == {"kind": "new", "deep": {"x": [1]}}


def test_orm_creates_author_and_revision_with_new_keys(url: str) -> None:
    joined = dt.datetime(2031, 1, 1, tzinfo=UTC)

    async def go() -> tuple[Author, Revision, list[int]]:
        async with session_on(url) as s:
            author = Author(handle="new-orm", display_name="Neu", joined_at=joined, profile={})
            s.add(author)
            await s.flush()
            seeded_ids = list((await s.scalars(select(Revision.id))).all())
            rev = Revision(page_id=1, number=99, content="new", created_at=joined, diff=[])
            s.add(rev)
            await s.commit()
        async with session_on(url) as s:
            back = await s.get(Author, author.id)
            rev_back = await s.get(Revision, rev.id)
            assert back is not None
            assert rev_back is not None
            return back, rev_back, seeded_ids

    author, rev, seeded_ids = run(go())
    assert isinstance(author.id, uuid.UUID)
    assert author.id not in {seed.ADA, seed.BJORK, seed.CHEN, seed.DORA}
    assert author.profile == {}
    assert author.joined_at == joined
    assert rev.id > max(seeded_ids)
    assert rev.diff == []


def test_check_constraint_refuses_negative_views(url: str) -> None:
    async def go() -> None:
        async with session_on(url) as s:
            page = await s.scalar(select(Page).where(Page.slug == "archive"))
            assert page is not None
            page.views = -1
            await s.commit()

    with pytest.raises(IntegrityError):
        run(go())
    assert one_page(url, "archive").views == 1


def test_unique_slug_is_enforced(url: str) -> None:
    async def go() -> None:
        async with session_on(url) as s:
            s.add(Page(author_id=seed.ADA, slug="home", title="dup", body="", tags=[]))
            await s.commit()

    with pytest.raises(IntegrityError):
        run(go())


def test_deleting_an_author_cascades_to_pages_and_revisions(url: str) -> None:
    async def setup() -> uuid.UUID:
        async with session_on(url) as s:
            author = Author(handle="new-gone", display_name="Gone", joined_at=dt.datetime.now(UTC))
            s.add(author)
            await s.flush()
            page = Page(author_id=author.id, slug="new-gone-page", title="t", body="", tags=[])
            s.add(page)
            await s.flush()
            s.add(Revision(page_id=page.id, number=1, content="c", created_at=author.joined_at))
            await s.commit()
            return author.id

    async def counts(author_id: uuid.UUID) -> tuple[int, int]:
        async with session_on(url) as s:
            pages = await s.scalar(select(func.count()).where(Page.author_id == author_id))
            revs = await s.scalar(
                select(func.count())
                .select_from(Revision)
                .join(Page)
                .where(Page.slug == "new-gone-page")
            )
            return int(pages or 0), int(revs or 0)

    author_id = run(setup())
    assert run(counts(author_id)) == (1, 1)

    async def delete() -> int:
        async with client_on(url) as client:
            return (await client.delete(f"/authors/{author_id}")).status_code

    assert run(delete()) == 204
    assert run(counts(author_id)) == (0, 0)
