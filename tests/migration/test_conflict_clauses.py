"""SQLite's conflict clauses (`ON CONFLICT REPLACE` on a key, ...): cut out of CREATE TABLE so
the table's CHECKs and generated columns still translate, and reported by name, since the app's
INSERTs behave differently on PostgreSQL."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest

from migration import conflict_clauses
from migration.conflict_clauses import Clause
from tests.migration.conftest import query, run_cli

TABLE = """
CREATE TABLE "pet tags" (
    id INTEGER PRIMARY KEY ON CONFLICT REPLACE,
    label TEXT NOT NULL ON CONFLICT ABORT DEFAULT 'ON CONFLICT IGNORE'
        CHECK (length(label) < 10),
    "on conflict" TEXT,
    doubled INTEGER GENERATED ALWAYS AS (id * 2) STORED,
    UNIQUE (label, "on conflict") ON CONFLICT IGNORE
);
INSERT INTO "pet tags" (id, label, "on conflict") VALUES (1, 'rex', 'a'), (2, 'tom', 'b');
"""


def test_the_clauses_are_cut_and_named_by_constraint_and_column() -> None:
    sql, clauses = conflict_clauses.cut(TABLE.split(";")[0])
    assert clauses == [
        Clause("PRIMARY KEY", "REPLACE", "id"),
        Clause("NOT NULL", "ABORT", "label"),
        Clause("UNIQUE", "IGNORE", None, ("label", "on conflict")),
    ]
    assert "ON CONFLICT REPLACE" not in sql
    assert "ON CONFLICT ABORT" not in sql
    assert "DEFAULT 'ON CONFLICT IGNORE'" in sql  # a string literal is not a clause
    assert '"on conflict" TEXT' in sql  # nor is a quoted name
    assert sql.count("ON CONFLICT") == 1  # the literal's


@pytest.mark.parametrize(
    ("ddl", "expected"),
    [
        ("CREATE TABLE t (a TEXT NOT NULL ON CONFLICT REPLACE DEFAULT 'x')", "default"),
        ("CREATE TABLE t (a INT, CHECK (a > 0) ON CONFLICT FAIL)", "keeps the rows"),
        ("CREATE TABLE t (a INT UNIQUE ON CONFLICT ROLLBACK)", "rolls the transaction back"),
        ("CREATE TABLE t (a INT, b INT, PRIMARY KEY (a, b) ON CONFLICT IGNORE)", "DO NOTHING"),
    ],
)
def test_each_resolution_says_what_the_app_loses(ddl: str, expected: str) -> None:
    (clause,) = conflict_clauses.cut(ddl)[1]
    assert expected in clause.describe()
    assert clause.changes_behaviour
    sqlite3.connect(":memory:").execute(ddl)  # SQLite's own syntax, as tested


def test_a_table_constraint_is_named_by_its_columns_without_collation_or_order() -> None:
    ddl = 'CREATE TABLE t (a, "b c", UNIQUE (a COLLATE NOCASE DESC, "b c" ASC) ON CONFLICT FAIL)'
    assert conflict_clauses.cut(ddl)[1] == [Clause("UNIQUE", "FAIL", None, ("a", "b c"))]


def test_a_statement_without_clauses_is_left_as_it_is() -> None:
    ddl = "CREATE TABLE t (a INT REFERENCES p ON DELETE CASCADE, conflict TEXT, replace TEXT)"
    assert conflict_clauses.cut(ddl) == (ddl, [])


@pytest.mark.db
def test_a_table_with_conflict_clauses_keeps_its_checks_and_reports_each_clause(make_db, target):
    """The CHECK and the generated column used to be refused ("sqlglot could not parse the
    CREATE TABLE statement"); now they are created, and plan and run report both clauses that
    change what the app's INSERTs do (ABORT, the default, is not reported)."""
    path = make_db(TABLE)
    plan = run_cli("plan", "--source", path, "--target", target)
    run = run_cli("run", "--source", path, "--target", target)
    assert (plan.code, run.code) == (0, 0), plan.text + run.text
    wanted = [
        (
            f"{path}: table 'pet tags': column 'id': PRIMARY KEY ON CONFLICT REPLACE not carried "
            "over: SQLite deletes the rows a conflicting INSERT or UPDATE is in the way of and "
            "goes on; PostgreSQL refuses the statement: the app must say INSERT ... ON CONFLICT "
            "(...) DO UPDATE"
        ),
        (
            f"{path}: table 'pet tags': UNIQUE ('label', 'on conflict') ON CONFLICT IGNORE not "
            "carried over: SQLite skips the conflicting row and goes on; PostgreSQL refuses the "
            "statement: the app must say INSERT ... ON CONFLICT DO NOTHING"
        ),
    ]
    for res in (plan, run):
        assert [m for m in res.messages("reported") if "ON CONFLICT" in m] == wanted
    assert query(target, 'SELECT id, label, doubled FROM "pet tags" ORDER BY id') == [
        (1, "rex", 2),
        (2, "tom", 4),
    ]
    with psycopg.connect(target) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("""INSERT INTO "pet tags" (id, label) VALUES (3, 'far too long')""")


@pytest.mark.db
def test_the_reported_difference_is_what_the_app_meets(make_db, target):
    """The app's INSERT of an existing key: SQLite replaced the row, PostgreSQL refuses it."""
    path = make_db(TABLE)
    assert run_cli("run", "--source", path, "--target", target).code == 0
    lite = sqlite3.connect(path)
    lite.execute("""INSERT INTO "pet tags" (id, label, "on conflict") VALUES (1, 'max', 'c')""")
    assert lite.execute('SELECT label FROM "pet tags" WHERE id = 1').fetchall() == [("max",)]
    with psycopg.connect(target) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("""INSERT INTO "pet tags" (id, label, "on conflict") VALUES (1, 'max', 'c')""")
