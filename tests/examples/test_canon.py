"""The snapshot comparison is strict: two ORM reads compare equal only if every value and its
Python type match (a comparison that cannot fail would prove nothing)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from decimal import Decimal
from typing import Any

import pytest

from examples.canon import canon
from tests.examples.harness import diff

pytestmark = pytest.mark.examples
UTC = dt.UTC


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (Decimal("7.10"), Decimal("7.1")),  # same number, another scale: the app shows it
        (dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 1, 1)),  # noqa: DTZ001 - naive
        (
            dt.datetime(2024, 1, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            dt.datetime(2024, 1, 1, tzinfo=UTC),  # the same instant, another offset
        ),
        (uuid.UUID(int=1), uuid.UUID(int=1).hex),  # a UUID and its text
        ({"a": 1}, '{"a": 1}'),  # JSON and its text
        ({"a": 1}, {"a": 1.0}),  # an integer and a float leaf
        ([None], []),
        (None, "null"),  # JSON null read back as text
        (1.0, 1),
        (0.1, 0.1 + 1e-17 + 2.8e-17),  # one ulp
        (dt.timedelta(microseconds=1), 1),  # a duration and its microseconds
        (dt.time(9, 30), "09:30:00"),
        (ipaddress.ip_address("10.0.0.1"), "10.0.0.1"),
        (b"\x00", "\x00"),
        (True, 1),
    ],
)
def test_values_that_differ_in_value_or_type_are_not_equal(a: Any, b: Any) -> None:
    assert canon(a) != canon(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"b": [1, 2.5], "a": None}, {"a": None, "b": [1, 2.5]}),  # jsonb reorders keys
        (dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)),  # noqa: UP017
    ],
)
def test_equal_reads_are_equal(a: Any, b: Any) -> None:
    assert canon(a) == canon(b)


def test_diff_names_table_row_attribute_and_both_reads() -> None:
    before = {"t": [[["id", canon(1)], ["price", canon(Decimal("7.10"))]]], "u": []}
    after = {"t": [[["id", canon(1)], ["price", canon(Decimal("7.1"))]]], "u": [[["id", canon(2)]]]}
    assert diff(before, after) == [
        "t[0].price: SQLite ['Decimal', '7.10'] != PostgreSQL ['Decimal', '7.1']",
        "u: 0 objects on SQLite, 1 on PostgreSQL",
    ]
    assert diff(before, before) == []
