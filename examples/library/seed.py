"""Fill the library through the ORM with varied data: unicode, NULLs, aware datetimes, Decimals,
durations, IPs, JSON objects/arrays/null (and SQL NULL), UUIDs, bytes, M2M, an admin user.
`python -m examples.library.seed URL` runs `migrate` first unless `--data-only`."""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from decimal import Decimal

UTC = dt.UTC
GALLIMARD = uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7")
TOR = uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae8")
DUNE = uuid.UUID("a3bb189e-8bf9-3888-9912-ace4e6543002")
BOOK_COUNT = 30  # 3 hand-written books and 27 generated ones
ADMIN_USER, ADMIN_PASSWORD = "librarian", "correct horse battery staple"


def fill() -> None:
    """Insert the seed data (Django must be set up, the schema migrated)."""
    from django.contrib.auth.models import User
    from django.db import transaction
    from django.db.models import Value
    from django.db.models.fields.json import JSONField

    from examples.library.catalog.models import Book, Genre, Loan, Publisher

    json_null = Value(None, JSONField())
    with transaction.atomic():
        User.objects.create_superuser(ADMIN_USER, "librarian@example.org", ADMIN_PASSWORD)
        User.objects.create_user("reader", None, None, first_name="Zoë", last_name="Ñúñez")
        gallimard = Publisher.objects.create(
            id=GALLIMARD,
            name="Éditions Gallimard",
            country="FR",
            founded=dt.date(1911, 5, 31),
            profile={"city": "Paris", "imprints": ["Folio", "Pléiade"], "listed": False},
        )
        tor = Publisher.objects.create(id=TOR, name="Tor Books", country="US", profile=json_null)
        anon = Publisher.objects.create(name="無名出版社", country="", founded=None, profile=None)
        genres = {
            n: Genre.objects.create(name=n) for n in ("SF", "Roman", "Poésie", "漫画", "Kids")
        }
        dune = Book.objects.create(
            isbn="9780441013593",
            external_id=DUNE,
            title="Dune",
            publisher=tor,
            status=Book.Status.LENT,
            price=Decimal("9.99"),
            weight_kg=0.1 + 0.2,
            pages=896,
            edition=32767,
            copies_sold=20_000_000_000,
            in_print=True,
            published=dt.date(1965, 8, 1),
            added_at=dt.datetime(2023, 3, 26, 0, 59, 59, 999999, tzinfo=UTC),  # before DST
            updated_at=dt.datetime(2023, 3, 26, 1, 0, tzinfo=UTC),  # after DST in Berlin
            reading_time=dt.timedelta(hours=21, minutes=30, microseconds=1),
            opens_at=dt.time(9, 30, 15, 250000),
            metadata={"format": "paperback", "awards": ["Hugo", "Nebula"], "rating": 4.25},
            cover=b"\x89PNG\r\n\x1a\n\x00\xff",
        )
        dune.genres.set([genres["SF"]])
        etranger = Book.objects.create(
            isbn="9782070360024",
            title="L'Étranger — «Aujourd'hui, maman est morte.»",
            publisher=gallimard,
            price=Decimal("7.10"),
            pages=186,
            published=dt.date(1942, 5, 19),
            added_at=dt.datetime(2024, 10, 27, 1, 30, tzinfo=UTC),
            reading_time=dt.timedelta(days=1, seconds=-1),
            metadata={"format": "hardcover", "awards": [], "notes": None, "isbn10": "2070360024"},
        )
        etranger.genres.set([genres["Roman"], genres["Poésie"]])
        Book.objects.create(
            isbn="0000000000000",
            title="Nothing at all",
            publisher=anon,
            status=Book.Status.LOST,
            price=Decimal("0.00"),
            weight_kg=None,
            pages=0,
            in_print=False,
            added_at=dt.datetime(2000, 1, 1, tzinfo=UTC),
            reading_time=None,
            metadata=json_null,
            cover=b"",
        )
        publishers = [gallimard, tor, anon]
        statuses = list(Book.Status)
        for i in range(BOOK_COUNT - 3):
            book = Book.objects.create(
                isbn=f"97800000{i:05d}",
                title=f"Volume {i} — {chr(0x3041 + i)}",
                publisher=publishers[i % 3],
                status=statuses[i % 3],
                price=Decimal(i * 137) / 100,
                weight_kg=i / 3 if i % 2 else None,
                pages=i * 11,
                edition=1 + i % 4,
                copies_sold=i**9,
                in_print=i % 2 == 0,
                published=dt.date(1990 + i, 1 + i % 12, 1 + i % 28) if i % 3 else None,
                added_at=dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(days=i, microseconds=i),
                reading_time=dt.timedelta(minutes=i * 17, microseconds=i) if i % 4 else None,
                opens_at=dt.time(i % 24, i % 60) if i % 5 else None,
                metadata=(
                    None
                    if i % 6 == 0
                    else json_null
                    if i % 6 == 1
                    else {"format": ["ebook", "hardcover", "paperback"][i % 3], "i": i, "x": [i]}
                ),
                cover=bytes([i]) * i if i % 2 else None,
            )
            book.genres.set([genres["SF"], genres["Kids"]][: i % 3])
        ips = ["192.168.0.1", "2001:db8::1", "::ffff:10.0.0.1", None, "10.0.0.255"]
        for i, book in enumerate(Book.objects.order_by("id")[:10]):
            Loan.objects.create(
                book=book,
                borrower=f"borrower {i} ☃",
                borrower_ip=ips[i % len(ips)],
                borrowed_at=dt.datetime(2024, 2, 29, 23, 30, tzinfo=UTC) + dt.timedelta(hours=i),
                period=dt.timedelta(days=14 + i, microseconds=999999 * (i % 2)),
                returned=[True, False, None][i % 3],
                notes={"late": i % 2 == 1, "fees": [i, i * 0.5]} if i % 3 else {},
            )


def main(argv: list[str]) -> None:
    """`python -m examples.library.seed URL [--data-only]`."""
    from examples.library.setup import setup

    setup(argv[0])
    if "--data-only" not in argv:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    fill()


if __name__ == "__main__":
    main(sys.argv[1:])
