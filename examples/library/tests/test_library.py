"""The library's own suite: ORM, API and admin behaviour the project relies on. It runs
unchanged on SQLite and PostgreSQL, against the seed data of `examples.library.seed`."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Sum
from django.test import Client
from django.utils import timezone

from examples.library import seed
from examples.library.catalog.models import Book, Genre, Loan, Publisher

UTC = dt.UTC
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def seeded_books() -> list[Book]:
    return list(Book.objects.exclude(isbn__startswith="new"))


def test_every_seeded_book_is_there_in_id_order() -> None:
    books = seeded_books()
    assert len(books) == seed.BOOK_COUNT
    assert [b.id for b in books] == sorted(b.id for b in books)
    assert books[0].title == "Dune"


def test_uuid_primary_key_lookup() -> None:
    tor = Publisher.objects.get(pk=seed.TOR)
    assert tor.name == "Tor Books"
    assert isinstance(tor.id, uuid.UUID)
    assert Publisher.objects.filter(pk__in=[seed.GALLIMARD, uuid.uuid4()]).count() == 1


def test_uuid_field_filter_and_fk_by_uuid() -> None:
    dune = Book.objects.get(external_id=DUNE_UUID)
    assert dune.publisher_id == seed.TOR
    assert Book.objects.filter(publisher_id=seed.GALLIMARD).count() == 10


DUNE_UUID = seed.DUNE


def test_json_key_and_index_lookups() -> None:
    assert list(
        Book.objects.filter(metadata__awards__0="Hugo").values_list("title", flat=True)
    ) == ["Dune"]
    hard = Book.objects.filter(metadata__format="hardcover")
    assert "L'Étranger — «Aujourd'hui, maman est morte.»" in {b.title for b in hard}
    assert Book.objects.filter(metadata__has_key="isbn10").count() == 1
    assert Book.objects.filter(metadata__rating__gt=4).count() == 1


def test_json_values_keep_their_types() -> None:
    dune = Book.objects.get(isbn="9780441013593")
    assert dune.metadata == {"format": "paperback", "awards": ["Hugo", "Nebula"], "rating": 4.25}
    etranger = Book.objects.get(isbn="9782070360024")
    assert etranger.metadata["notes"] is None
    assert "notes" in etranger.metadata
    assert Publisher.objects.get(pk=seed.GALLIMARD).profile["listed"] is False


def test_json_null_is_not_sql_null() -> None:
    json_nulls = Book.objects.filter(metadata=None)  # JSON null (Django's documented meaning)
    sql_nulls = Book.objects.filter(metadata__isnull=True)
    assert "0000000000000" in {b.isbn for b in json_nulls}
    assert json_nulls.count() == 6
    assert sql_nulls.count() == 5
    assert not set(json_nulls.values_list("id", flat=True)) & set(
        sql_nulls.values_list("id", flat=True)
    )
    assert Publisher.objects.filter(profile=None).get().pk == seed.TOR
    assert Publisher.objects.filter(profile__isnull=True).get().name == "無名出版社"


def test_aware_datetimes_read_back_as_utc() -> None:
    dune = Book.objects.get(isbn="9780441013593")
    assert dune.added_at == dt.datetime(2023, 3, 26, 0, 59, 59, 999999, tzinfo=UTC)
    assert dune.added_at.utcoffset() == dt.timedelta(0)
    assert timezone.is_aware(dune.updated_at)


def test_localtime_crosses_daylight_saving() -> None:
    dune = Book.objects.get(isbn="9780441013593")
    assert timezone.localtime(dune.added_at).utcoffset() == dt.timedelta(hours=1)
    assert dune.updated_at is not None
    assert timezone.localtime(dune.updated_at).hour == 3  # 01:00Z is 03:00 CEST


def test_datetime_lookups_in_the_current_time_zone() -> None:
    assert Book.objects.filter(added_at__date=dt.date(2023, 3, 26)).count() == 1
    assert Book.objects.filter(added_at__year=2024).count() == 28
    since = dt.datetime(2024, 1, 27, 1, 0, tzinfo=BERLIN)
    assert Book.objects.filter(added_at__gte=since).count() == 2
    # 2024-10-27 01:30Z is 02:30 CET in Berlin, the morning the clocks went back
    assert Book.objects.filter(added_at__hour=2, added_at__date=dt.date(2024, 10, 27)).count() == 1


def test_decimals_are_exact() -> None:
    assert Book.objects.get(isbn="9780441013593").price == Decimal("9.99")
    etranger = Book.objects.get(isbn="9782070360024")
    assert str(etranger.price) == "7.10"
    assert Book.objects.filter(price=Decimal("7.10")).count() == 1
    total = Book.objects.exclude(isbn__startswith="new").aggregate(s=Sum("price"))["s"]
    assert total == Decimal("9.99") + Decimal("7.10") + sum(
        Decimal(i * 137) / 100 for i in range(27)
    )


def test_durations_read_and_filter() -> None:
    dune = Book.objects.get(isbn="9780441013593")
    assert dune.reading_time == dt.timedelta(hours=21, minutes=30, microseconds=1)
    assert Book.objects.get(isbn="9782070360024").reading_time == dt.timedelta(days=1, seconds=-1)
    assert Book.objects.filter(reading_time__gt=dt.timedelta(hours=20)).count() == 2
    late = Book.objects.annotate(due=F("added_at") + F("reading_time")).get(isbn="9780441013593")
    assert late.due == dt.datetime(2023, 3, 26, 22, 30, 0, 0, tzinfo=UTC)


def test_ip_addresses_read_and_filter() -> None:
    assert Loan.objects.filter(borrower_ip="2001:db8::1").count() == 2
    assert Loan.objects.filter(borrower_ip="192.168.0.1").count() == 2
    assert Loan.objects.filter(borrower_ip__isnull=True).count() == 2
    assert sorted({x for x in Loan.objects.values_list("borrower_ip", flat=True) if x}) == [
        "10.0.0.255",
        "192.168.0.1",
        "2001:db8::1",
        "::ffff:10.0.0.1",
    ]


def test_times_dates_floats_and_booleans() -> None:
    dune = Book.objects.get(isbn="9780441013593")
    assert dune.opens_at == dt.time(9, 30, 15, 250000)
    assert dune.published == dt.date(1965, 8, 1)
    assert dune.weight_kg == 0.1 + 0.2
    assert dune.copies_sold == 20_000_000_000
    assert dune.edition == 32767
    assert Book.objects.filter(in_print=False).count() == 14
    assert [loan.returned for loan in Loan.objects.all()[:3]] == [True, False, None]


def test_binary_field_round_trips() -> None:
    dune = Book.objects.get(isbn="9780441013593")
    assert bytes(dune.cover) == b"\x89PNG\r\n\x1a\n\x00\xff"
    assert bytes(Book.objects.get(isbn="0000000000000").cover) == b""
    assert Book.objects.filter(cover__isnull=True).count() == 15


def test_choices_filter_and_display() -> None:
    lost = Book.objects.filter(status=Book.Status.LOST)
    assert lost.count() == 10
    assert Book.objects.get(isbn="9780441013593").get_status_display() == "Lent out"


def test_many_to_many_both_ways() -> None:
    etranger = Book.objects.get(isbn="9782070360024")
    assert sorted(g.name for g in etranger.genres.all()) == ["Poésie", "Roman"]
    sf = Genre.objects.get(name="SF")
    assert sf.books.count() == 19
    counts = dict(Genre.objects.annotate(n=Count("books")).values_list("name", "n"))
    assert counts["漫画"] == 0
    assert counts["Kids"] == 9


def test_creating_a_book_gets_a_new_id_and_uuid() -> None:
    max_id = max(b.id for b in seeded_books())
    book = Book.objects.create(
        isbn="new-0000001",
        title="Neu ✨",
        publisher_id=seed.GALLIMARD,
        price=Decimal("123456.78"),
        pages=10,
        reading_time=dt.timedelta(minutes=3),
        metadata={"format": "ebook", "tags": [None, 1.5]},
    )
    book.genres.add(Genre.objects.get(name="漫画"))
    again = Book.objects.get(pk=book.pk)
    assert again.id > max_id
    assert again.external_id not in {b.external_id for b in seeded_books()}
    assert again.price == Decimal("123456.78")
    assert again.metadata == {"format": "ebook", "tags": [None, 1.5]}
    assert again.reading_time == dt.timedelta(minutes=3)
    assert timezone.is_aware(again.added_at)
    assert Genre.objects.get(name="漫画").books.get() == again


def test_creating_a_publisher_and_loan_with_new_keys() -> None:
    pub = Publisher.objects.create(name="Neuer Verlag", profile=[1, "zwei"])
    assert Publisher.objects.get(pk=pub.pk).profile == [1, "zwei"]
    loan = Loan.objects.create(
        book=Book.objects.get(isbn="9780441013593"),
        borrower="new",
        borrower_ip="fe80::1",
        borrowed_at=timezone.now(),
        period=dt.timedelta(days=7),
    )
    assert loan.id > 10
    assert Loan.objects.get(borrower_ip="fe80::1").period == dt.timedelta(days=7)


def test_check_constraint_refuses_a_negative_price() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Book.objects.filter(isbn="9780441013593").update(price=Decimal("-1.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Book.objects.filter(isbn="9780441013593").update(pages=-1)


def test_unique_isbn_is_enforced() -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Book.objects.create(
            isbn="9780441013593", title="dup", publisher_id=seed.TOR, price=1, pages=1
        )


def test_deleting_a_publisher_cascades() -> None:
    books = list(Book.objects.filter(publisher_id=seed.TOR).values_list("id", flat=True))
    assert Loan.objects.filter(book_id__in=books).exists()
    Publisher.objects.get(pk=seed.TOR).delete()
    assert not Book.objects.filter(id__in=books).exists()
    assert not Loan.objects.filter(book_id__in=books).exists()


def test_users_and_passwords_survive() -> None:
    admin = User.objects.get(username=seed.ADMIN_USER)
    assert admin.check_password(seed.ADMIN_PASSWORD)
    assert admin.is_superuser
    assert timezone.is_aware(admin.date_joined)
    assert User.objects.get(username="reader").first_name == "Zoë"


def test_content_types_and_permissions_match_the_models() -> None:
    ct = ContentType.objects.get_for_model(Book)
    assert ct.app_label == "catalog"
    assert set(ct.permission_set.values_list("codename", flat=True)) == {
        "add_book",
        "change_book",
        "delete_book",
        "view_book",
    }


def test_admin_login_changelist_and_change_form() -> None:
    client = Client()
    assert client.login(username=seed.ADMIN_USER, password=seed.ADMIN_PASSWORD)
    listing = client.get("/admin/catalog/book/", {"added_at__year": "2023"})
    assert listing.status_code == 200
    assert "Dune" in listing.content.decode()
    dune = Book.objects.get(isbn="9780441013593")
    form = client.get(f"/admin/catalog/book/{dune.pk}/change/")
    assert form.status_code == 200
    assert "2023-03-26" in form.content.decode()
    loans = client.get("/admin/catalog/loan/")
    assert loans.status_code == 200


def test_api_filters_by_json_genre_and_status() -> None:
    client = Client()
    data = client.get("/api/books/", {"format": "hardcover"}).json()["books"]
    assert {b["metadata"]["format"] for b in data} == {"hardcover"}
    assert len(data) == 5
    sf_lost = client.get("/api/books/", {"genre": "SF", "status": "lost"}).json()["books"]
    assert all("SF" in b["genres"] and b["status"] == "lost" for b in sf_lost)
    one = client.get(f"/api/books/{seed.DUNE}/").json()
    assert one["price"] == "9.99"
    assert one["added_at"] == "2023-03-26T00:59:59.999999+00:00"
    assert one["reading_time"] == 77400.000001
    assert client.get(f"/api/books/{uuid.uuid4()}/").status_code == 404
