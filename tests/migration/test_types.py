"""Type choices checked against the values, and every awkward value's documented outcome."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pytest

from tests.migration.conftest import query, run_cli, tables_in

pytestmark = pytest.mark.db


def coltype(url: str, table: str, column: str) -> str:
    return str(
        query(
            url,
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
            "%s::regclass AND attname = %s",
            (table, column),
        )[0][0]
    )


def test_varchar_keeps_its_limit_only_when_every_value_fits(make_db, target):
    src = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, short VARCHAR(5), long VARCHAR(5));",
        rows={"INSERT INTO t VALUES (?, ?, ?)": [(1, "abcde", "abcdef"), (2, "ü" * 5, None)]},
    )
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert coltype(target, "t", "short") == "character varying(5)"
    assert coltype(target, "t", "long") == "text"
    assert any(
        "VARCHAR(5) widened to text: the longest value has 6 characters" in m
        for m in res.messages("note")
    )
    # run trusted the limit, PostgreSQL refused the 6-character value during COPY, nothing was
    # committed, and the run started over with measured lengths
    assert len(res.messages("replan")) == 1
    assert query(target, "SELECT long FROM t ORDER BY id") == [("abcdef",), (None,)]


def test_integer_is_bigint_and_smallint_only_when_values_fit(make_db, target):
    src = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, big INTEGER, small SMALLINT, notsmall SMALLINT);",
        rows={
            "INSERT INTO t VALUES (?, ?, ?, ?)": [
                (1, 2**63 - 1, 32767, 40000),
                (2, -(2**63), -32768, 1),
            ]
        },
    )
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert [coltype(target, "t", c) for c in ("id", "big", "small", "notsmall")] == [
        "bigint",
        "bigint",
        "smallint",
        "bigint",
    ]
    assert query(target, "SELECT big, small, notsmall FROM t ORDER BY id") == [
        (2**63 - 1, 32767, 40000),
        (-(2**63), -32768, 1),
    ]


def test_real_becomes_double_precision_bit_for_bit_including_infinity(make_db, target):
    values = [
        0.1 + 0.2,
        1e308,
        5e-324,
        -0.0,
        1 / 3,
        123456789.123456789,
        float("inf"),
        float("-inf"),
        1e15,
        1e16,
    ]
    src = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, x REAL);",
        rows={"INSERT INTO t VALUES (?, ?)": list(enumerate(values))},
    )
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert coltype(target, "t", "x") == "double precision"
    got = [r[0] for r in query(target, "SELECT x FROM t ORDER BY id")]
    # SQLite itself stores -0.0 as 0 (integer-valued REAL optimisation): the source holds 0.0
    assert [(v, math.copysign(1, v)) for v in got] == [
        (v, 1.0 if v == 0 else math.copysign(1, v)) for v in values
    ]


def test_timestamps_from_iso_text_epoch_seconds_millis_and_julian_days(make_db, target):
    src = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, iso DATETIME, secs TIMESTAMP, millis TIMESTAMP, "
        "jd DATETIME, d DATE);",
        rows={
            "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)": [
                (
                    1,
                    "2024-02-29 13:45:01",
                    1_700_000_000,
                    1_700_000_000_123,
                    2460000.5,
                    "2024-02-29",
                ),
                (2, "2024-03-01T08:00:00.250", 0, 1, 2451545.0, None),
                (3, "2024-03-02", None, None, None, "1999-12-31"),
            ]
        },
    )
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert {coltype(target, "t", c) for c in ("iso", "secs", "millis", "jd")} == {
        "timestamp without time zone"
    }
    assert coltype(target, "t", "d") == "date"
    rows = query(target, "SELECT iso, secs, millis, jd, d FROM t ORDER BY id")
    assert rows[0] == (
        dt.datetime(2024, 2, 29, 13, 45, 1),
        dt.datetime(2023, 11, 14, 22, 13, 20),
        dt.datetime(2023, 11, 14, 22, 13, 20, 123000),
        dt.datetime(2023, 2, 25, 0, 0),
        dt.date(2024, 2, 29),
    )  # SQLite: datetime(2460000.5)
    assert rows[1][:4] == (
        dt.datetime(2024, 3, 1, 8, 0, 0, 250000),
        dt.datetime(1970, 1, 1),
        dt.datetime(1970, 1, 1, 0, 0, 0, 1000),
        dt.datetime(2000, 1, 1, 12),
    )
    assert rows[2][0] == dt.datetime(2024, 3, 2)


def test_timestamp_text_with_a_timezone_offset_is_refused_not_shifted(make_db, target):
    src = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, at DATETIME);",
        rows={
            "INSERT INTO t VALUES (?, ?)": [
                (1, "2024-01-01 10:00:00"),
                (2, "2024-01-01 10:00:00+02:00"),
            ]
        },
    )
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 1
    problems = [e for e in res.events if e["event"] == "problem"]
    assert [(p["table"], p["rowid"], p["column"], p["value"]) for p in problems] == [
        ("t", "2", "at", "'2024-01-01 10:00:00+02:00'")
    ]
    assert tables_in(target) == []


def test_booleans_become_boolean_and_other_integers_are_refused(make_db, target):
    src = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, ok BOOLEAN);",
        rows={"INSERT INTO t VALUES (?, ?)": [(1, 1), (2, 0), (3, None)]},
    )
    assert run_cli("run", "--source", src, "--target", target, "--verify").code == 0
    assert query(target, "SELECT ok FROM t ORDER BY id") == [(True,), (False,), (None,)]
    bad = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, ok BOOLEAN);",
        rows={"INSERT INTO t VALUES (?, ?)": [(1, 2)]},
    )
    res = run_cli("plan", "--source", bad)
    assert res.code == 1
    assert (
        "row 1 column 'ok': INTEGER value 2 is not a boolean (0 or 1)" in res.messages("problem")[0]
    )


def test_numeric_precision_and_scale_are_kept_and_excess_digits_refused(make_db, target):
    src = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, price NUMERIC(10,2));",
        rows={"INSERT INTO t VALUES (?, ?)": [(1, 12.5), (2, 3), (3, 0.1)]},
    )
    assert run_cli("run", "--source", src, "--target", target, "--verify").code == 0
    assert coltype(target, "t", "price") == "numeric(10,2)"
    assert query(target, "SELECT price FROM t ORDER BY id") == [
        (Decimal("12.50"),),
        (Decimal("3.00"),),
        (Decimal("0.10"),),
    ]
    bad = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, price NUMERIC(10,2));",
        rows={"INSERT INTO t VALUES (?, ?)": [(1, 1.234)]},
    )
    res = run_cli("plan", "--source", bad)
    assert res.code == 1
    assert "1.234 has more than 2 decimal places" in res.messages("problem")[0]


def test_blob_becomes_bytea_byte_for_byte(make_db, target):
    blobs = [bytes(range(256)), b"", b"\x00\xff"]
    src = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB);",
        rows={"INSERT INTO t VALUES (?, ?)": list(enumerate(blobs))},
    )
    assert run_cli("run", "--source", src, "--target", target, "--verify").code == 0
    assert coltype(target, "t", "b") == "bytea"
    assert [bytes(r[0]) for r in query(target, "SELECT b FROM t ORDER BY id")] == blobs


def test_untyped_column_is_chosen_from_its_values(make_db, target):
    src = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a, b, c);",
        rows={"INSERT INTO t VALUES (?, ?, ?, ?)": [(1, 1, 1.5, "x"), (2, 2, 2, "y")]},
    )
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert [coltype(target, "t", c) for c in "abc"] == ["bigint", "double precision", "text"]


BAD = """
CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT, r REAL);
INSERT INTO t VALUES (1, 'seven', 'ok', 1.0);
INSERT INTO t VALUES (2, 2.5, 'a' || char(0) || 'b', 2.0);
INSERT INTO t VALUES (3, 100000000000000000000, CAST(x'c328' AS TEXT), 'NaN');
INSERT INTO t VALUES (4, 9e999, 'fine', 9e999);
INSERT INTO t VALUES (5, 5, x'00ff', 5.0);
"""
EXPECTED_BAD = [
    ("1", "n", "TEXT value in an integer column"),
    ("2", "n", "REAL value with a fraction in an integer column"),
    ("2", "s", "text contains a NUL (0x00) character, which PostgreSQL text cannot hold"),
    ("3", "n", "integer beyond bigint (SQLite stored it as REAL 1e+20)"),
    ("3", "s", "text is not valid UTF-8"),
    ("3", "r", "TEXT value in a REAL column"),
    ("4", "n", "inf cannot be stored in an integer column"),
    ("5", "s", "BLOB value in a TEXT column"),
]


def test_plan_lists_every_value_that_does_not_fit_and_writes_nothing(make_db):
    src = make_db(BAD)
    res = run_cli("plan", "--source", src)
    assert res.code == 1
    got = [
        (str(e["rowid"]), e["column"], e["reason"]) for e in res.events if e["event"] == "problem"
    ]
    assert got == EXPECTED_BAD


def test_run_refuses_bad_values_before_committing_and_lists_the_rows(make_db, target):
    src = make_db(BAD)
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 1
    got = sorted(
        (str(e["rowid"]), e["column"], e["reason"]) for e in res.events if e["event"] == "problem"
    )
    assert got == sorted(EXPECTED_BAD)
    assert "do not fit their target type; nothing was written" in res.messages("failed")[0]
    assert tables_in(target) == []


def test_cast_overrides_let_the_user_decide_per_column(make_db, target):
    src = make_db(BAD)
    res = run_cli(
        "run",
        "--source",
        src,
        "--target",
        target,
        "--verify",
        "--cast",
        "t.n=text",
        "t.s=bytea",
        "--cast",
        "t.r=text",
    )
    assert res.code == 0, res.text
    rows = query(target, "SELECT id, n, s, r FROM t ORDER BY id")
    assert rows[0] == (1, "seven", b"ok", "1.0")
    assert rows[1][1:3] == ("2.5", b"a\x00b")
    assert rows[2][1:4] == ("1e+20", b"\xc3\x28", "NaN")
    assert rows[3][1] == "inf"
    assert rows[4][2] == b"\x00\xff"


def test_cast_of_an_unknown_column_is_a_usage_error(make_db, target):
    src = make_db("CREATE TABLE t (id INTEGER PRIMARY KEY);")
    res = run_cli("run", "--source", src, "--target", target, "--cast", "t.nope=text")
    assert res.code == 2
    assert "--cast t.nope: no such table/column" in res.messages("failed")[0]


def test_run_lists_bad_values_of_every_table_not_just_the_first(make_db, target):
    src = make_db(
        "CREATE TABLE a (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO a VALUES (1, 'x');"
        "CREATE TABLE b (id INTEGER PRIMARY KEY, s TEXT); INSERT INTO b VALUES (1, x'00');"
    )
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 1
    got = [(e["table"], e["column"]) for e in res.events if e["event"] == "problem"]
    assert got == [("a", "n"), ("b", "s")]
    assert tables_in(target) == []
