"""CREATE TABLE syntax SQLite accepts and sqlglot does not parse (type names of several words,
ASC/DESC in a key's column list, a generated column without a type): cut before parsing, so the
table's CHECKs and generated columns are carried over instead of refused as unparsable."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from migration import parsable, translate
from tests.migration.conftest import query, run_cli

UNPARSED_BEFORE = [
    "CREATE TABLE t (a UNSIGNED BIG INT CHECK (a > 0), b NATIVE CHARACTER(70) COLLATE NOCASE)",
    "CREATE TABLE t (a DOUBLE PRECISION, b VARYING CHARACTER(255), CHECK (a < 1e9))",
    "CREATE TABLE t (a TEXT, b TEXT, UNIQUE (a COLLATE NOCASE DESC, b ASC), CHECK (a <> 'DESC'))",
    "CREATE TABLE t (a INT, PRIMARY KEY (a DESC), CHECK (a >= 0))",
    "CREATE TABLE t (a INT, doubled GENERATED ALWAYS AS (a * 2) STORED)",
    "CREATE TABLE t (a ANY CHECK (a IS NOT NULL), b TEXT DEFAULT 'x') STRICT",
]


@pytest.mark.parametrize("ddl", UNPARSED_BEFORE)
def test_what_sqlglot_cannot_parse_is_cut_and_the_rest_parses(ddl: str) -> None:
    import sqlglot

    sqlite3.connect(":memory:").execute(ddl)  # SQLite's own syntax
    with pytest.raises(sqlglot.errors.ParseError):
        sqlglot.parse_one(ddl.removesuffix(" STRICT"), read="sqlite")  # why the cut exists
    extras = translate.table_extras(ddl)
    assert extras is not None
    checks, generated, _collations = extras
    assert len(checks) + len(generated) == 1


def test_literals_and_quoted_names_are_never_cut() -> None:
    ddl = 'CREATE TABLE t ("DESC" TEXT DEFAULT \'UNSIGNED BIG INT\', UNIQUE ("DESC" DESC))'
    assert parsable.parsable(ddl) == (
        'CREATE TABLE t ("DESC" TEXT  DEFAULT \'UNSIGNED BIG INT\', UNIQUE ("DESC"  ))'
    )


def test_the_declared_types_still_come_from_sqlite(make_db, target) -> None:
    """The cut is for the parse only: each column keeps the type its declaration gives it."""
    path = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n UNSIGNED BIG INT CHECK (n > 0), "
        "s NATIVE CHARACTER(70), twice GENERATED ALWAYS AS (n * 2) STORED, UNIQUE (s DESC));"
        "INSERT INTO t (id, n, s) VALUES (1, 5, 'a'), (2, 7, 'b');"
    )
    plan = run_cli("plan", "--source", path, "--target", target)
    assert plan.code == 0, plan.text
    assert run_cli("run", "--source", path, "--target", target).code == 0
    types = query(
        target,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 't' ORDER BY ordinal_position",
    )
    assert types[:3] == [("id", "bigint"), ("n", "bigint"), ("s", "character varying")]
    assert query(target, "SELECT id, twice FROM t ORDER BY id") == [(1, 10), (2, 14)]
    with psycopg.connect(target) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO t (id, n, s) VALUES (3, -1, 'c')")
