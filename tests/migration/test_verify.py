"""Verification's two sides: the same canonical rows and checksums in Python and PostgreSQL, and
a checksum that moves when a single value does (one ulp, one character, NULL vs empty)."""

from __future__ import annotations

import contextlib
import hashlib
import math
import random
import struct
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from migration import engine, verify
from migration.log import Reporter
from migration.plan import Plan, TablePlan
from migration.source import Source
from tests.migration.conftest import run_cli

pytestmark = pytest.mark.db

SEP = "\x1f"
KINDS = """
CREATE TABLE kinds (
    id INTEGER PRIMARY KEY, i BIGINT, d REAL, t TEXT, b BLOB, f BOOLEAN, n NUMERIC(12, 3),
    ts TIMESTAMP, dt DATE
);
"""
ROWS = [
    (1, 0, 0.0, "", b"", 0, "0", "2024-01-02 03:04:05", "2024-01-02"),
    (2, None, None, None, None, None, None, None, None),
    (3, -(2**63), -0.0, "\\N", b"\x00\xff", 1, "-12.5", "1999-12-31 23:59:59.999999", "1970-01-01"),
    (4, 2**63 - 1, 5e-324, "é日本🐍", b"\x1f", 1, "123456789.123", "2038-01-19 03:14:08.5", None),
    (5, 7, float("inf"), f"a{SEP}b\nc", b"x" * 40, 0, "0.001", None, "2000-02-29"),
    (6, -1, 0.1, "naïve", None, None, "-0.5", "2024-01-02 03:04:05.000001", "2024-01-02"),
]


@contextlib.contextmanager
def migrated(make_db, target: str) -> Iterator[tuple[TablePlan, Source, psycopg.Connection]]:
    """The `kinds` table migrated, its plan, its source and an open transaction on the target."""
    path = make_db(KINDS, rows={"INSERT INTO kinds VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)": ROWS})
    res = run_cli("run", "--source", path, "--target", target, "--verify")
    assert res.code == 0, res.text
    log = Reporter("json")
    with engine.open_sources([path], log) as sources:
        plan: Plan = engine.make_plan(sources, engine.Options(sources=[path]), log, every=False)
        (tp,) = plan.tables
        with contextlib.closing(engine.connect(target)) as conn:
            yield tp, sources[0], conn
            conn.rollback()


def target_rows(conn: psycopg.Connection, tp: TablePlan) -> list[tuple[object, ...]]:
    return conn.execute(
        sql.SQL("SELECT {} FROM kinds ORDER BY id").format(
            sql.SQL(", ").join(sql.Identifier(c.name) for c in tp.columns)
        )
    ).fetchall()


def python_sum(tp: TablePlan, rows: list[tuple[object, ...]]) -> verify.Sum:
    hasher = verify.Hasher(tp)
    hasher.add(list(zip(*rows, strict=True)))
    return hasher.total


def test_every_kind_renders_identically_in_python_and_postgresql(make_db, target):
    with migrated(make_db, target) as (tp, src, conn):
        assert [c.kind for c in tp.columns] == [
            "int",
            "int",
            "double",
            "text",
            "bytea",
            "bool",
            "numeric",
            "timestamp",
            "date",
        ]
        pg = [
            r[0]
            for r in conn.execute(
                sql.SQL("SELECT {} FROM kinds ORDER BY id").format(verify.pg_row_text(tp.columns))
            )
        ]
        # Python renders the values read from SQLite (converted as the load converts them) ...
        (columns,) = verify.source_columns(src, tp)
        assert list(verify.Hasher(tp).texts(columns)) == pg
        # ... and the values PostgreSQL gives back, the same way
        rows = target_rows(conn, tp)
        assert list(verify.Hasher(tp).texts(list(zip(*rows, strict=True)))) == pg
    assert pg == [
        SEP.join(
            [
                "1",
                "0",
                "0000000000000000",
                "0:",
                "",
                "f",
                "0.000",
                "2024-01-02 03:04:05.000000",
                "2024-01-02",
            ]
        ),
        SEP.join(["2"] + ["\\N"] * 8),
        SEP.join(
            [
                "3",
                "-9223372036854775808",
                "0000000000000000",  # SQLite stores -0.0 as 0.0
                "2:\\N",
                "00ff",
                "t",
                "-12.500",
                "1999-12-31 23:59:59.999999",
                "1970-01-01",
            ]
        ),
        SEP.join(
            [
                "4",
                "9223372036854775807",
                "0000000000000001",
                "4:é日本🐍",
                "1f",
                "t",
                "123456789.123",
                "2038-01-19 03:14:08.500000",
                "\\N",
            ]
        ),
        SEP.join(
            [
                "5",
                "7",
                "7ff0000000000000",
                f"5:a{SEP}b\nc",
                "78" * 40,
                "f",
                "0.001",
                "\\N",
                "2000-02-29",
            ]
        ),
        SEP.join(
            [
                "6",
                "-1",
                "3fb999999999999a",
                "5:naïve",
                "\\N",
                "\\N",
                "-0.500",
                "2024-01-02 03:04:05.000001",
                "2024-01-02",
            ]
        ),
    ]


def test_checksums_are_equal_on_both_sides_and_move_with_any_single_value(make_db, target):
    with migrated(make_db, target) as (tp, src, conn):
        source = verify.source_sum(src, tp)
        before = verify.target_sum(conn, tp)
        assert source == before
        assert before.rows == 6
        assert python_sum(tp, target_rows(conn, tp)) == before
        # the checksum is the sum of the rows' MD5s as 128-bit integers
        texts = verify.Hasher(tp).texts(list(zip(*target_rows(conn, tp), strict=True)))
        assert before.checksum == sum(
            int.from_bytes(hashlib.md5(t.encode(), usedforsecurity=False).digest()) for t in texts
        )
        changes = {
            "one ulp": ("d", 6, math.nextafter(0.1, 1.0)),
            "0.0 vs -0.0": ("d", 1, -0.0),
            "NULL vs empty text": ("t", 2, ""),
            "one character": ("t", 6, "naive"),
            "empty vs NULL bytea": ("b", 1, None),
            "one byte": ("b", 3, b"\x00\xfe"),
            "one microsecond": ("ts", 6, "2024-01-02 03:04:05"),
            "numeric's last digit": ("n", 4, "123456789.124"),
            "false vs NULL": ("f", 5, None),
            "one day": ("dt", 1, "2024-01-03"),
            "one integer": ("i", 5, 8),
        }
        seen = {before.checksum}
        for why, (column, row_id, value) in changes.items():
            with conn.transaction(force_rollback=True):
                conn.execute(
                    sql.SQL("UPDATE kinds SET {} = %s WHERE id = %s").format(
                        sql.Identifier(column)
                    ),
                    (value, row_id),
                )
                after = verify.target_sum(conn, tp)
                assert after.rows == before.rows, why
                assert after != before, why
                # Python's checksum of the changed rows agrees with PostgreSQL's
                assert python_sum(tp, target_rows(conn, tp)) == after, why
                seen.add(after.checksum)
        assert len(seen) == len(changes) + 1
        assert verify.target_sum(conn, tp) == before  # rolled back


def test_nan_infinities_and_signed_zeros_written_directly_to_postgresql(make_db, target):
    # SQLite has no NaN (it stores NULL): these come straight from PostgreSQL
    specials = [
        float("nan"),
        float("inf"),
        float("-inf"),
        -0.0,
        0.0,
        5e-324,
        -1.7976931348623157e308,
    ]
    with migrated(make_db, target) as (tp, _src, conn):
        conn.execute("DELETE FROM kinds")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO kinds (id, d) VALUES (%s, %s)", list(enumerate(specials, 1))
            )
        pg = [
            r[0]
            for r in conn.execute(
                sql.SQL("SELECT {} FROM kinds ORDER BY id").format(
                    verify.pg_canon(next(c for c in tp.columns if c.name == "d"))
                )
            )
        ]
        assert pg == [
            "7ff8000000000000",
            "7ff0000000000000",
            "fff0000000000000",
            "8000000000000000",
            "0000000000000000",
            "0000000000000001",
            "ffefffffffffffff",
        ]
        assert python_sum(tp, target_rows(conn, tp)) == verify.target_sum(conn, tp)


def test_hasher_is_independent_of_batches_and_order(make_db, target):
    with migrated(make_db, target) as (tp, _src, conn):
        rows = target_rows(conn, tp)
    whole = python_sum(tp, rows)
    hasher = verify.Hasher(tp)
    for part in (rows[4:], [], rows[1:4][::-1], rows[:1]):
        hasher.add([list(col) for col in zip(*part, strict=True)] if part else [[]] * 9)
    assert hasher.total == whole
    with pytest.raises(ValueError, match="one sequence of values per column"):
        hasher.add([[1], [2]])
    with pytest.raises(ValueError, match="one sequence of values per column"):
        hasher.add([[1, 2]] + [[None]] * 8)
    assert hasher.total == whole


def test_row_hash_is_md5_of_the_canonical_text(make_db, target):
    with migrated(make_db, target) as (tp, _src, conn):
        one = verify.Hasher(tp)
        one.add([[v] for v in (9, 1, 4.5, "Oliver 1", b"\x01", True, None, None, None)])
        text = SEP.join(
            ["9", "1", "4012000000000000", "8:Oliver 1", "01", "t", "\\N", "\\N", "\\N"]
        )
        assert one.total == verify.Sum(
            1, int.from_bytes(hashlib.md5(text.encode(), usedforsecurity=False).digest())
        )
        assert one.total.short() == hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
        conn.execute("DELETE FROM kinds")
        conn.execute(
            "INSERT INTO kinds (id, i, d, t, b, f) VALUES (9, 1, 4.5, 'Oliver 1', '\\x01', true)"
        )
        assert verify.target_sum(conn, tp) == one.total


def test_postgresql_hashes_each_row_once_and_restores_its_settings(make_db, target):
    with migrated(make_db, target) as (tp, _src, conn):
        # an IMMUTABLE function may be copied into each of the three partial sums if the
        # subquery is flattened; count its calls
        conn.execute(
            "CREATE FUNCTION pg_temp.counted(t text) RETURNS text IMMUTABLE LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM set_config('test.calls', (coalesce(nullif(current_setting("
            "'test.calls', true), ''), '0')::int + 1)::text, false); RETURN md5(t); END $$"
        )
        query = verify.pg_sum_of(
            sql.SQL("pg_temp.counted({})").format(verify.pg_row_text(tp.columns)),
            sql.Identifier("kinds"),
        )
        assert verify.fetch_sum(conn, query) == verify.target_sum(conn, tp)
        calls = conn.execute("SELECT current_setting('test.calls')").fetchone()
        assert calls == ("6",)
        before = conn.execute("SHOW parallel_tuple_cost").fetchone()
        verify.target_sum(conn, tp)
        assert conn.execute("SHOW parallel_tuple_cost").fetchone() == before


def test_column_wide_rendering_matches_the_per_value_reference(make_db, target):
    """Hasher's column-at-a-time streams against typemap's per-value canon_*, on many random
    values: NULLs anywhere (none, some, all), any float bit pattern (NaN payloads, subnormals,
    -0.0), text with separators, backslashes, accents and astral code points."""
    with migrated(make_db, target) as (tp, _src, conn):
        rows = target_rows(conn, tp)
    rnd = random.Random(20240601)  # noqa: S311 - reproducible test values, not secrets

    def text() -> str:
        n = rnd.choice([0, 1, 3, 40, rnd.randrange(1000)])
        return "".join(
            chr(rnd.choice([0x1F, 0x5C, 0x4E, 0x3A, 0xE9, 0x65E5, 0x1F40D])) for _ in range(n)
        )

    makers = {
        "int": lambda: rnd.choice([0, -1, 2**63 - 1, -(2**63), rnd.getrandbits(40)]),
        "double": lambda: struct.unpack(">d", rnd.getrandbits(64).to_bytes(8, "big"))[0],
        "text": text,
        "bytea": lambda: rnd.randbytes(rnd.choice([0, 1, 17])),
        "bool": lambda: rnd.choice([True, False]),
    }
    sample = {c.kind: [r[i] for r in rows if r[i] is not None] for i, c in enumerate(tp.columns)}
    for nulls in (0.0, 0.3, 1.0):
        columns: list[list[object]] = []
        for c in tp.columns:
            make = makers.get(c.kind) or (lambda kind=c.kind: rnd.choice(sample[kind]))
            columns.append([None if rnd.random() < nulls else make() for _ in range(300)])
        expected = [
            SEP.join(c.canon(v) for c, v in zip(tp.columns, row, strict=True))
            for row in zip(*columns, strict=True)
        ]
        assert list(verify.Hasher(tp).texts(columns)) == expected
        assert list(verify.Hasher(tp).texts([tuple(col) for col in columns])) == expected


def test_a_value_of_another_type_is_diagnosed_under_verify_as_without(make_db, target):
    # text in a REAL and in a BLOB column: binary COPY refuses them and the table is diagnosed;
    # with --verify the hashing meets them first and must lead to the same report
    src = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, d REAL, b BLOB);",
        rows={"INSERT INTO t VALUES (?, ?, ?)": [(1, 1.5, b"x"), (2, "abc", b"y"), (3, 2.5, "z")]},
    )
    plain = run_cli("run", "--source", src, "--target", target)
    verified = run_cli("run", "--source", src, "--target", target, "--verify")
    assert plain.code == verified.code == 1, verified.text
    assert verified.messages("problem") == plain.messages("problem")
    assert len(plain.messages("problem")) == 2
