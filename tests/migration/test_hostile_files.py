"""Hostile and odd SQLite files (issue 9 points 2, 3, 5, 6, 7): each case's exit code and message,
and the target unchanged apart from the migrated tables (catalog snapshot before and after)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import apsw
import psycopg
import pytest
from psycopg import sql

from migration import engine, errors, source
from tests.migration.conftest import REPO, Result, query, run_cli, run_subprocess, tables_in

pytestmark = pytest.mark.db


# -- the target's catalog, before and after --------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    """Every relation (outside pg_catalog/information_schema/temp), role and function."""

    relations: frozenset[tuple[str, str, str]]  # schema, name, relkind
    roles: frozenset[tuple[str, bool, bool, bool]]  # name, super, login, createrole
    functions: frozenset[str]
    constraints: frozenset[tuple[str, str, str]]  # table, name, type

    def added(self, before: Snapshot) -> set[tuple[str, str, str]]:
        return set(self.relations - before.relations)


def snapshot(url: str) -> Snapshot:
    rels = query(
        url,
        "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
        "AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'",
    )
    roles = query(url, "SELECT rolname::text, rolsuper, rolcanlogin, rolcreaterole FROM pg_roles")
    funcs = query(url, "SELECT oid::regprocedure::text FROM pg_proc")
    cons = query(
        url,
        "SELECT conrelid::regclass::text, conname::text, contype::text FROM pg_constraint "
        "WHERE connamespace <> 'pg_catalog'::regnamespace",
    )
    return Snapshot(
        frozenset((str(a), str(b), str(c)) for a, b, c in rels),
        frozenset((str(a), bool(b), bool(c), bool(d)) for a, b, c, d in roles),
        frozenset(str(f[0]) for f in funcs),
        frozenset((str(a), str(b), str(c)) for a, b, c in cons),
    )


def assert_unchanged(url: str, before: Snapshot) -> None:
    """Nothing in the target changed: a refused run."""
    after = snapshot(url)
    assert after == before


def assert_only_migrated(url: str, before: Snapshot, tables: set[str]) -> None:
    """Only the migrated tables (with their keys, indexes, sequences, TOAST) and the
    migration's record appeared; no role or function changed, nothing disappeared."""
    after = snapshot(url)
    assert after.roles == before.roles
    assert after.functions == before.functions
    assert before.relations <= after.relations
    for schema, name, kind in after.added(before):
        if schema == "petstore_migration":
            continue
        assert schema == "public", (schema, name, kind)
        owner = query(
            url,
            "SELECT coalesce(i.indrelid, d.refobjid, c.oid)::regclass::text FROM pg_class c "
            "LEFT JOIN pg_index i ON i.indexrelid = c.oid "
            "LEFT JOIN pg_depend d ON d.objid = c.oid AND d.deptype IN ('a', 'i') "
            "AND d.refclassid = 'pg_class'::regclass "
            "WHERE c.oid = to_regclass(quote_ident(%s))",
            (name,),
        )
        assert owner, name
        assert str(owner[0][0]).strip('"') in tables, (name, kind, owner)


# -- point 2: the tool's own objects never collide with the user's --------------------------
RENUMBER = """
CREATE TABLE petstore_renumber (id INTEGER PRIMARY KEY, note TEXT);
CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT);
"""


def test_a_source_table_named_like_the_tools_temp_table_keeps_every_row(make_db, target):
    a = make_db(
        RENUMBER,
        rows={
            "INSERT INTO petstore_renumber VALUES (?, ?)": [(1, "a1"), (2, "a2")],
            "INSERT INTO pets VALUES (?, ?)": [(1, "rex"), (2, "tom")],
        },
    )
    b = make_db(
        RENUMBER,
        rows={
            "INSERT INTO petstore_renumber VALUES (?, ?)": [(1, "b1"), (3, "b3")],
            "INSERT INTO pets VALUES (?, ?)": [(1, "fido"), (2, "tom")],
        },
    )
    before = snapshot(target)
    res = run_cli(
        "run", "--source", a, "--source", b, "--target", target, "--on-conflict", "renumber",
        "--verify",
    )  # fmt: skip
    assert res.code == 0, res.text
    assert query(target, "SELECT id, note FROM petstore_renumber ORDER BY id") == [
        (1, "a1"),
        (2, "a2"),
        (3, "b3"),
        (4, "b1"),
    ]
    assert query(target, "SELECT id, name FROM pets ORDER BY id") == [
        (1, "rex"),
        (2, "tom"),
        (3, "fido"),
    ]
    assert [e["ok"] for e in res.events if e["event"] == "verified"] == [True, True]
    assert_only_migrated(target, before, {"petstore_renumber", "pets"})
    again = run_cli("verify", "--source", a, "--source", b, "--target", target)
    assert again.code == 0, again.text


def test_a_source_table_named_like_a_staging_table_is_merged_like_any_other(make_db, target):
    schema = """CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT);
                CREATE TABLE petstore_stage_pets (id INTEGER PRIMARY KEY, pet_id INTEGER);"""
    a = make_db(
        schema,
        rows={
            "INSERT INTO pets VALUES (?, ?)": [(1, "rex")],
            "INSERT INTO petstore_stage_pets VALUES (?, ?)": [(1, 10)],
        },
    )
    b = make_db(
        schema,
        rows={
            "INSERT INTO pets VALUES (?, ?)": [(2, "tom")],
            "INSERT INTO petstore_stage_pets VALUES (?, ?)": [(2, 20)],
        },
    )
    res = run_cli("run", "--source", a, "--source", b, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert query(target, "SELECT * FROM petstore_stage_pets ORDER BY id") == [(1, 10), (2, 20)]
    assert query(target, "SELECT * FROM pets ORDER BY id") == [(1, "rex"), (2, "tom")]


APFEL = """CREATE TABLE "Äpfel" (id INTEGER PRIMARY KEY, sorte TEXT);
           CREATE TABLE "äpfel" (id INTEGER PRIMARY KEY, sorte TEXT);
           INSERT INTO "Äpfel" VALUES (1, 'Boskoop');
           INSERT INTO "äpfel" VALUES (2, 'Elstar');"""


def test_tables_differing_only_in_non_ascii_case_are_an_error_naming_both(make_db, target):
    before = snapshot(target)
    res = run_cli("run", "--source", make_db(APFEL), "--target", target, "--verify")
    assert res.code == 2
    assert res.messages("failed") == [
        (
            "table/view 'Äpfel' and 'äpfel' differ only in case: with --identifiers lower "
            "they count as one name (use --identifiers preserve to keep the case)"
        )
    ]
    assert_unchanged(target, before)


def test_tables_differing_only_in_non_ascii_case_stay_apart_with_preserve(make_db, target):
    src = make_db(APFEL)
    before = snapshot(target)
    res = run_cli(
        "run", "--source", src, "--target", target, "--verify", "--identifiers", "preserve"
    )
    assert res.code == 0, res.text
    assert query(target, 'SELECT * FROM "Äpfel"') == [(1, "Boskoop")]
    assert query(target, 'SELECT * FROM "äpfel"') == [(2, "Elstar")]
    assert_only_migrated(target, before, {"Äpfel", "äpfel"})
    verify = run_cli("verify", "--source", src, "--target", target, "--identifiers", "preserve")
    assert verify.code == 0, verify.text


def test_columns_differing_only_in_non_ascii_case_are_an_error_naming_both(make_db, target):
    src = make_db('CREATE TABLE t ("Öl" INTEGER, "öl" INTEGER); INSERT INTO t VALUES (1, 2);')
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 2
    assert res.messages("failed") == [
        (
            "table 't': column 'Öl' and 'öl' differ only in case: with --identifiers lower "
            "they count as one name (use --identifiers preserve to keep the case)"
        )
    ]
    kept = run_cli("run", "--source", src, "--target", target, "--identifiers", "preserve")
    assert kept.code == 0, kept.text
    assert query(target, 'SELECT "Öl", "öl" FROM t') == [(1, 2)]


# -- point 3: never drop what the migration does not own --------------------------------------
PETS = "CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO pets VALUES (1, 'rex');"


def _prepare(url: str, statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statements)


def test_an_empty_target_table_with_a_dependent_view_is_refused_naming_the_view(make_db, target):
    _prepare(
        target,
        "CREATE TABLE pets (id bigint PRIMARY KEY, name text);"
        "CREATE VIEW pet_names AS SELECT name FROM pets",
    )
    before = snapshot(target)
    res = run_cli("run", "--source", make_db(PETS), "--target", target, "--schema", "create")
    assert res.code == 2
    assert res.messages("failed") == [
        (
            "cannot replace table(s) pets in the target: objects the migration does not own "
            "depend on them: view pet_names (on table pets); nothing was changed (drop or alter "
            "those objects first)"
        )
    ]
    assert_unchanged(target, before)
    assert query(target, "SELECT count(*) FROM pet_names") == [(0,)]


def test_replace_is_refused_when_another_tables_foreign_key_points_at_it(make_db, target):
    _prepare(
        target,
        "CREATE TABLE pets (id bigint PRIMARY KEY, name text); INSERT INTO pets VALUES (7, 'x');"
        "CREATE TABLE vet_visits (pet_id bigint CONSTRAINT visit_pet REFERENCES pets (id))",
    )
    before = snapshot(target)
    res = run_cli(
        "run", "--source", make_db(PETS), "--target", target, "--schema", "create", "--replace"
    )
    assert res.code == 2
    assert res.messages("failed") == [
        (
            "cannot replace table(s) pets in the target: objects the migration does not own "
            "depend on them: constraint visit_pet on table vet_visits (on table pets); nothing was "
            "changed (drop or alter those objects first)"
        )
    ]
    assert_unchanged(target, before)
    assert query(target, "SELECT id, name FROM pets") == [(7, "x")]


def test_replace_refuses_a_function_using_the_tables_row_type(make_db, target):
    _prepare(
        target,
        "CREATE TABLE pets (id bigint PRIMARY KEY, name text);"
        "CREATE FUNCTION pet_label(p pets) RETURNS text LANGUAGE sql AS 'SELECT p.name'",
    )
    before = snapshot(target)
    res = run_cli("run", "--source", make_db(PETS), "--target", target, "--schema", "create")
    assert res.code == 2
    assert "function pet_label(pets) (on table pets)" in res.messages("failed")[0]
    assert_unchanged(target, before)


def test_empty_tables_that_reference_each_other_are_replaced_together(make_db, target):
    _prepare(
        target,
        "CREATE TABLE owners (id bigint PRIMARY KEY);"
        "CREATE TABLE pets (id bigint PRIMARY KEY, owner_id bigint REFERENCES owners (id),"
        " parent_id bigint REFERENCES pets (id));"
        "CREATE INDEX pets_owner ON pets (owner_id)",
    )
    src = make_db(
        "CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT);"
        "CREATE TABLE pets (id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES owners(id));"
        "INSERT INTO owners VALUES (1, 'ann'); INSERT INTO pets VALUES (1, 1);"
    )
    res = run_cli("run", "--source", src, "--target", target, "--schema", "create", "--verify")
    assert res.code == 0, res.text
    assert query(target, "SELECT o.name FROM pets p JOIN owners o ON o.id = p.owner_id") == [
        ("ann",)
    ]


# -- point 6: the password never printed, in any form ----------------------------------------
SIMPLE = "RawPassw0rdXyz"
ODD = "Hu nter2@Pa:ss/Wo%rd'q"  # every character a URL or conninfo string must escape
ODD_ENC = quote(ODD, safe="")
DOWN = "127.0.0.1:1"  # nothing listens on port 1: libpq fails to connect, quickly


def _forms() -> list[tuple[str, str, tuple[str, ...]]]:
    return [
        ("url", f"postgresql://app:{SIMPLE}@{DOWN}/db", (SIMPLE,)),
        ("url-encoded", f"postgresql://app:{ODD_ENC}@{DOWN}/db", (ODD, ODD_ENC)),
        ("no-scheme", f"app:{SIMPLE}@{DOWN}/db", (SIMPLE,)),
        ("one-slash", f"postgresql:/app:{SIMPLE}@{DOWN}/db", (SIMPLE,)),
        ("bad-escape", f"postgresql://app:{SIMPLE}%zz@{DOWN}/db", (SIMPLE,)),
        ("unknown-param", f"postgresql://app:{ODD_ENC}@{DOWN}/db?foo=bar", (ODD, ODD_ENC)),
        ("bad-port", f"postgresql://app:{SIMPLE}@127.0.0.1:notaport/db", (SIMPLE,)),
        ("raw-specials", f"postgresql://app:{SIMPLE}@x/y@{DOWN}/db", (SIMPLE,)),
        ("query-password", f"postgresql://app@{DOWN}/db?password={ODD_ENC}", (ODD, ODD_ENC)),
        ("conninfo", f"host=127.0.0.1 port=1 user=app password={SIMPLE} dbname=db", (SIMPLE,)),
        (
            "conninfo-quoted",
            "host=127.0.0.1 port=1 user=app password='" + ODD.replace("'", "\\'") + "' dbname=db",
            (ODD,),
        ),
        ("conninfo-typo", f"host=127.0.0.1 port=1 pasword={SIMPLE} dbname=db", (SIMPLE,)),
    ]


def _leaks(text: str, secrets: tuple[str, ...]) -> list[str]:
    return [s for s in secrets if s in text]


@pytest.mark.parametrize(("form", "url", "secrets"), _forms(), ids=[f[0] for f in _forms()])
@pytest.mark.parametrize("via", ["--target", "DATABASE_URL", "--target-file"])
def test_the_password_is_masked_in_every_form_of_target(make_db, tmp_path, form, url, secrets, via):
    src = make_db(PETS)
    args = ["run", "--source", src, "--log-format", "text"]
    if via == "--target":
        args += ["--target", url]
    elif via == "--target-file":
        (tmp_path / "url").write_text(url + "\n")
        args += ["--target-file", str(tmp_path / "url")]
    res = run_subprocess(
        *args,
        env={"DATABASE_URL": url if via == "DATABASE_URL" else ""},
        timeout=60,
    )
    assert res.code == 2, res.text
    assert _leaks(res.text, secrets) == [], res.text
    assert "Traceback" not in res.text
    failed = [line for line in res.err.splitlines() if line.startswith("error: ")]
    assert len(failed) == 1, res.text


@pytest.fixture
def odd_role(target: str) -> Iterator[str]:
    """A login role whose password needs every kind of escaping; owns public in `target`."""
    role = f"odd_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(ODD)
            )
        )
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(urlsplit(target).path.lstrip("/")), sql.Identifier(role)
            )
        )
    parts = urlsplit(target)
    yield urlunsplit(parts._replace(netloc=f"{role}:{ODD_ENC}@{parts.hostname}:{parts.port}"))
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_run_never_prints_or_records_the_password(make_db, target, odd_role):
    src = make_db(PETS)
    res = run_subprocess("run", "--source", src, "--target", odd_role, "--verify")
    assert res.code == 0, res.text
    assert _leaks(res.text, (ODD, ODD_ENC)) == []
    record = query(target, "SELECT summary::text FROM petstore_migration.runs")
    assert len(record) == 1
    assert _leaks(str(record), (ODD, ODD_ENC)) == []
    wrong = odd_role.replace(ODD_ENC, quote(ODD + "x", safe=""))
    bad = run_subprocess("verify", "--source", src, "--target", wrong, "--log-format", "text")
    assert bad.code == 2
    assert "password authentication failed" in bad.err
    assert _leaks(bad.text, (ODD, ODD_ENC, ODD + "x", quote(ODD + "x", safe=""))) == []


def test_target_help_says_how_to_keep_the_password_out_of_ps():
    res = run_subprocess("run", "--help")
    assert res.code == 0
    text = " ".join(res.out.split())
    assert "visible to other users in ps" in text
    assert "DATABASE_URL" in text
    assert "--target-file" in text
    assert "PGPASSFILE" in text


# -- point 5: odd shapes fail clearly ---------------------------------------------------------
def _writable_schema(path: str, statements: str) -> None:
    """Edit sqlite_schema directly, as a hostile file's author would."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA writable_schema = ON")
        conn.executescript(statements)
        conn.commit()
    finally:
        conn.close()


def _only_failure(res: Result) -> str:
    failed = res.messages("failed")
    assert len(failed) == 1, res.text
    assert "Traceback" not in res.text
    return failed[0]


def test_a_table_name_that_is_not_utf8_is_named_and_exits_2(make_db, target):
    src = make_db(PETS)
    _writable_schema(
        src,
        "UPDATE sqlite_schema SET name = CAST(X'70ff7473' AS TEXT), "
        "tbl_name = CAST(X'70ff7473' AS TEXT), sql = 'CREATE TABLE \"' || CAST(X'70ff7473' AS TEXT)"
        " || '\" (id INTEGER PRIMARY KEY, name TEXT)' WHERE name = 'pets'",
    )
    before = snapshot(target)
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 2
    assert _only_failure(res) == (
        f"source {src}: table 'p\\xffts': its name is not valid UTF-8 (invalid start byte at "
        "byte 1); PostgreSQL needs UTF-8 names and text: rename or recreate it in the source"
    )
    assert_unchanged(target, before)


def test_a_planted_table_with_sqlites_reserved_prefix_is_refused_not_passed_over(make_db, target):
    src = make_db(PETS)
    _writable_schema(  # SQLite refuses CREATE TABLE sqlite_...; a hostile file plants it
        src,
        "UPDATE sqlite_schema SET name = 'sqlite_hidden', tbl_name = 'sqlite_hidden', "
        "sql = 'CREATE TABLE sqlite_hidden (id INTEGER PRIMARY KEY, name TEXT)' "
        "WHERE name = 'pets'",
    )
    before = snapshot(target)
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 2
    assert _only_failure(res) == (
        f"source {src}: table 'sqlite_hidden' has a name SQLite reserves for its own tables "
        "(sqlite_sequence, sqlite_stat1, sqlite_stat2, sqlite_stat3, sqlite_stat4), so it is not "
        "one of them and its rows would not be migrated; rename it in the source"
    )
    assert_unchanged(target, before)


def test_sqlites_own_statistics_and_sequence_tables_are_not_migrated(make_db, target):
    src = make_db(
        "CREATE TABLE pets (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);"
        "CREATE INDEX pets_name ON pets (name); INSERT INTO pets (name) VALUES ('rex'); ANALYZE"
    )
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 0, res.text
    assert tables_in(target) == ["pets"]


def _deep_check(path: str, depth: int) -> None:
    # the standard library's SQLite parser stops at 100 levels; apsw's current SQLite allows 1000
    conn = apsw.Connection(path)
    conn.execute(
        f"CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER CHECK {'(' * depth}x > 0{')' * depth});"
        "INSERT INTO t VALUES (1, 5)"
    )
    conn.close()


@pytest.mark.parametrize("depth", [100, 500])
def test_a_check_nested_deeply_is_reported_by_table_never_a_traceback(tmp_path, target, depth):
    src = str(tmp_path / "deep.db")
    _deep_check(src, depth)
    res = run_cli("plan", "--source", src)
    assert "Traceback" not in res.text
    assert res.code == 1  # a CHECK that cannot be created refuses the run unless skipped
    refused = [e for e in res.events if e["event"] == "refused"]
    assert [e["key"] for e in refused] == ["check:t.1"], res.text
    assert str(refused[0]["message"]).endswith(
        (
            "on 't': not translated: expression nested deeper than 64 is not on the allowlist "
            "of what is translated (to migrate without it: --skip check:t.1)"
        )
        if depth == 100
        else (
            "on 't': the CREATE TABLE statement is nested too deeply to parse (over ~400 "
            "levels) (to migrate without it: --skip check:t.1)"
        )
    )


@pytest.mark.parametrize(
    ("seq", "shown"), [("'abc'", "'abc'"), ("7.5", "7.5"), ("X'00'", "b'\\x00'")]
)
def test_a_non_integer_sqlite_sequence_is_named_and_exits_2(make_db, target, seq, shown):
    src = make_db(
        "CREATE TABLE pets (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);"
        f"INSERT INTO pets VALUES (1, 'rex'); UPDATE sqlite_sequence SET seq = {seq};"
    )
    before = snapshot(target)
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 2
    assert _only_failure(res) == (
        f"source {src}: sqlite_sequence row for table 'pets': seq {shown} is not an integer "
        "(expected the largest AUTOINCREMENT id handed out so far, which the identity column "
        "must continue after); fix that row in the source"
    )
    assert_unchanged(target, before)


def test_an_integral_sqlite_sequence_stored_as_text_or_real_continues_the_identity(make_db, target):
    src = make_db(
        "CREATE TABLE pets (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);"
        "CREATE TABLE owners (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);"
        "INSERT INTO pets VALUES (1, 'rex'); INSERT INTO owners VALUES (1, 'ann');"
        "UPDATE sqlite_sequence SET seq = '41' WHERE name = 'pets';"
        "UPDATE sqlite_sequence SET seq = 9.0 WHERE name = 'owners';"
    )
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 0, res.text
    assert query(target, "INSERT INTO pets (name) VALUES ('x') RETURNING id") == [(42,)]
    assert query(target, "INSERT INTO owners (name) VALUES ('x') RETURNING id") == [(10,)]


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("VARCHAR(0)", "a length from 1 to 10,485,760"),
        ("CHAR(20000000)", "a length from 1 to 10,485,760"),
        ("DECIMAL(1001,2)", "a numeric precision from 1 to 1000"),
        ("NUMERIC(0)", "a numeric precision from 1 to 1000"),
    ],
)
def test_a_declared_type_postgresql_cannot_take_names_table_and_column(
    make_db, target, declared, expected
):
    src = make_db(
        f"CREATE TABLE t (id INTEGER PRIMARY KEY, v {declared}); INSERT INTO t VALUES (1, 1)"
    )
    before = snapshot(target)
    for command in (["plan"], ["run", "--target", target]):
        res = run_cli(*command, "--source", src)
        assert res.code == 2
        assert _only_failure(res) == (
            f"{src}: table 't' column 'v': declared type {declared}: PostgreSQL needs {expected}; "
            "choose a type with --cast t.v=TYPE (e.g. text or numeric)"
        )
    assert_unchanged(target, before)
    cast = "text" if "CHAR" in declared else "numeric"
    ok = run_cli("run", "--source", src, "--target", target, "--cast", f"t.v={cast}", "--verify")
    assert ok.code == 0, ok.text


def test_a_unique_column_named_with_a_comma_is_carried_over(make_db, target):
    src = make_db(
        'CREATE TABLE t (id INTEGER PRIMARY KEY, "a,b" TEXT UNIQUE, c TEXT, UNIQUE (c, "a,b"));'
        "INSERT INTO t VALUES (1, 'x', 'y'), (2, 'z', 'y');"
    )
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    uniques = query(
        target,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 't'::regclass "
        "AND contype = 'u' ORDER BY 1",
    )
    assert uniques == [('UNIQUE ("a,b")',), ('UNIQUE (c, "a,b")',)]


def test_an_unexpected_error_names_what_was_read_and_exits_2(make_db, target, monkeypatch):
    src = make_db(PETS)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("migration.typemap.decide", broken)
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 2
    assert _only_failure(res) == (
        f"unexpected error while reading table 'pets' of source {src} (plan.build): "
        "RuntimeError: boom; nothing was committed (please report this with the source's "
        "schema: sqlite3 FILE .schema)"
    )


def test_a_data_problem_still_exits_1(make_db, target):
    src = make_db(
        "CREATE TABLE pets (id INTEGER PRIMARY KEY, age SMALLINT NOT NULL);"
        "INSERT INTO pets VALUES (1, 'old');"
    )
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 1, res.text
    assert "Traceback" not in res.text


# -- point 7: lock waits bounded, server errors by SQLSTATE, nothing written beside a source ---
@contextlib.contextmanager
def _holding(url: str, statement: str) -> Iterator[int]:
    """Another session that ran `statement` in an open transaction; yields its pid."""
    with psycopg.connect(url) as other:
        other.execute(statement)
        row = other.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        yield int(row[0])
        other.rollback()


def test_a_locked_target_table_ends_the_wait_naming_table_and_holder(make_db, target):
    _prepare(target, "CREATE TABLE pets (id bigint PRIMARY KEY, name text)")
    before = snapshot(target)
    with _holding(target, "LOCK TABLE pets IN ACCESS EXCLUSIVE MODE") as pid:
        started = time.monotonic()
        res = run_subprocess(
            "run", "--source", make_db(PETS), "--target", target, "--lock-timeout", "1"
        )
        elapsed = time.monotonic() - started
    assert res.code == 2, res.text
    assert elapsed < 15
    assert _only_failure(res) == (
        f"waited 1 s for a lock on the target (--lock-timeout) and gave up: table public.pets "
        f"held by pid {pid} (AccessExclusiveLock, idle in transaction); nothing was committed "
        "(end or wait for that session, then run again)"
    )
    assert_unchanged(target, before)


def test_another_migration_holding_the_migration_lock_is_named(make_db, target):
    with _holding(target, f"SELECT pg_advisory_xact_lock({engine.ADVISORY_LOCK_KEY})") as pid:
        res = run_cli("run", "--source", make_db(PETS), "--target", target, "--lock-timeout", "0.5")
    assert res.code == 2
    assert _only_failure(res).startswith(
        "waited 0.5 s for a lock on the target (--lock-timeout) and gave up: the migration lock "
        f"(another migration) held by pid {pid} (ExclusiveLock"
    )
    assert tables_in(target) == []


def test_the_lock_timeout_defaults_to_30_seconds_and_is_validated(make_db):
    assert engine.LOCK_TIMEOUT_S == 30
    res = run_subprocess("run", "--source", make_db(PETS), "--lock-timeout", "soon")
    assert res.code == 2
    assert "argument --lock-timeout: expected seconds, e.g. 30 or 0.5, not 'soon'" in res.err


def test_a_statement_timeout_is_reported_as_a_timeout(make_db, target):
    _prepare(target, "CREATE TABLE pets (id bigint PRIMARY KEY, name text)")
    dbname = urlsplit(target).path.lstrip("/")
    _prepare(target, f"ALTER DATABASE {dbname} SET statement_timeout = '700ms'")
    with _holding(target, "LOCK TABLE pets IN ACCESS EXCLUSIVE MODE"):
        res = run_cli("run", "--source", make_db(PETS), "--target", target, "--lock-timeout", "0")
    assert res.code == 2
    message = _only_failure(res)
    assert message.startswith(
        "a statement was cancelled: statement_timeout reached, or cancelled by an administrator "
    )
    assert message.endswith(
        ": canceling statement due to statement timeout [SQLSTATE 57014]; nothing was committed"
    )


def test_a_terminated_connection_is_reported_as_connection_lost(make_db, target):
    _prepare(target, "CREATE TABLE pets (id bigint PRIMARY KEY, name text)")
    src = make_db(PETS)
    with _holding(target, "LOCK TABLE pets IN ACCESS EXCLUSIVE MODE") as holder:
        proc = subprocess.Popen(
            [sys.executable, "-m", "migration", "run", "--source", src, "--target", target,
             "--lock-timeout", "60", "--log-format", "text"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        waiting: list[tuple[object, ...]] = []
        while not waiting and time.monotonic() < deadline:
            time.sleep(0.1)
            waiting = query(
                target,
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> %s",
                (holder,),
            )
        assert waiting, "the migration never waited for the lock"
        query(target, "SELECT pg_terminate_backend(%s)", (waiting[0][0],))
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, out + err
    assert "Traceback" not in err
    failed = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(failed) == 1, err
    assert failed[0].startswith(
        "error: lost the connection to the target: an administrator ended the session, or the "
        "server is shutting down"
    )
    assert "[SQLSTATE 57P01]; nothing was committed" in failed[0]


def test_a_row_too_big_is_reported_as_a_program_limit_naming_the_table(tmp_path, target):
    src = str(tmp_path / "wide.db")
    columns = ", ".join(f"c{i} BIGINT" for i in range(1100))  # 8,800 bytes: over 8,160 per row
    conn = sqlite3.connect(src)
    conn.execute(f"CREATE TABLE wide (id INTEGER PRIMARY KEY, {columns})")
    conn.execute(f"INSERT INTO wide VALUES ({', '.join(['1'] * 1101)})")
    conn.commit()
    conn.close()
    before = snapshot(target)
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 2, res.text
    assert _only_failure(res).startswith(
        "a PostgreSQL limit was exceeded (e.g. row is too big, index row too large) while "
        f"reading table 'wide' of source {src} (load.copy_rows): row is too big: size 8"
    )
    assert _only_failure(res).endswith(
        ", maximum size 8160 [SQLSTATE 54000]; nothing was committed"
    )
    assert_unchanged(target, before)


@pytest.mark.parametrize(
    ("sqlstate", "meaning", "code"),
    [
        ("53100", "the target's disk is full", 2),
        ("53200", "the target is out of memory", 2),
        ("08006", "lost the connection to the target", 2),
        ("57014", "a statement was cancelled", 2),
        ("55P03", "a lock wait timed out", 2),
        ("54000", "a PostgreSQL limit was exceeded", 2),
        ("23505", "the target rejected a value or constraint", 1),
    ],
)
def test_server_errors_are_described_by_sqlstate_class(sqlstate, meaning, code):
    assert errors.describe_server_error(sqlstate).startswith(meaning)
    assert errors.server_error_exit_code(sqlstate) == code


def _wal_source(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO pets VALUES (?, ?)", [(i, f"pet {i}") for i in range(rows)])
    conn.commit()
    conn.close()  # the last connection checkpoints and removes -wal and -shm


def test_a_wal_source_copy_opened_immutable_gets_no_shm_or_wal_next_to_it(tmp_path, target):
    folder = tmp_path / "pod"
    folder.mkdir()
    _wal_source(folder / "pets.db", 50)
    assert sorted(p.name for p in folder.iterdir()) == ["pets.db"]
    before = snapshot(target)
    res = run_subprocess(
        "run", "--source", str(folder / "pets.db"), "--target", target, "--verify",
        "--source-immutable",
    )  # fmt: skip
    assert res.code == 0, res.text
    assert sorted(p.name for p in folder.iterdir()) == ["pets.db"]
    assert query(target, "SELECT count(*) FROM pets") == [(50,)]
    assert any("opened with immutable=1" in m for m in Result(0, res.out, "").messages("source"))
    assert_only_migrated(target, before, {"pets"})


def test_a_live_wal_source_says_which_files_sqlite_creates_next_to_it(tmp_path, target):
    folder = tmp_path / "pod"
    folder.mkdir()
    _wal_source(folder / "pets.db", 5)
    res = run_subprocess("run", "--source", str(folder / "pets.db"), "--target", target)
    assert res.code == 0, res.text
    warned = Result(0, res.out, "").messages("source", "warning")
    assert warned == [
        (
            f"source {folder / 'pets.db'}: WAL-mode file nobody has open: SQLite creates "
            "pets.db-wal and -shm next to it for the read snapshot (a read-only connection "
            "cannot remove them; the app's next open uses them). Pass --source-immutable for "
            "copies nobody writes during the run to create none"
        )
    ]
    assert sorted(p.name for p in folder.iterdir()) == ["pets.db", "pets.db-shm", "pets.db-wal"]


def test_a_wal_source_the_app_has_open_is_read_live_and_nothing_new_appears(tmp_path, target):
    folder = tmp_path / "pod"
    folder.mkdir()
    _wal_source(folder / "pets.db", 10)
    app = sqlite3.connect(folder / "pets.db")  # the app: -wal and -shm exist while it runs
    app.execute("INSERT INTO pets VALUES (100, 'new')")
    app.commit()
    try:
        listing = sorted(p.name for p in folder.iterdir())
        assert listing == ["pets.db", "pets.db-shm", "pets.db-wal"]
        res = run_subprocess("run", "--source", str(folder / "pets.db"), "--target", target)
        assert res.code == 0, res.text
        assert sorted(p.name for p in folder.iterdir()) == listing
        assert query(target, "SELECT count(*) FROM pets") == [(11,)]  # the -wal's commit too
    finally:
        app.close()


def test_an_immutable_source_that_changes_while_read_fails_the_run(tmp_path, target, monkeypatch):
    folder = tmp_path / "pod"
    folder.mkdir()
    path = folder / "pets.db"
    _wal_source(path, 10)
    real = source.Source._read_schema

    def schema_then_write(self: source.Source) -> object:
        schema = real(self)
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # as a checkpoint would
        return schema

    monkeypatch.setattr(source.Source, "_read_schema", schema_then_write)
    before = snapshot(target)
    res = run_cli("run", "--source", str(path), "--target", target, "--source-immutable")
    assert res.code == 2
    assert _only_failure(res) == (
        f"source {path}: the file changed while it was read (it was opened with immutable=1); "
        "nothing was committed: run again without --source-immutable, or stop the writer first"
    )
    assert_unchanged(target, before)


def test_replace_refuses_to_drop_a_view_another_view_depends_on(make_db, target):
    src = make_db(PETS + "CREATE VIEW pet_names AS SELECT name FROM pets;")
    _prepare(
        target,
        "CREATE VIEW pet_names AS SELECT 'x'::text AS name;"
        "CREATE VIEW shouting AS SELECT upper(name) FROM pet_names",
    )
    before = snapshot(target)
    res = run_cli("run", "--source", src, "--target", target, "--schema", "create", "--replace")
    assert res.code == 2, res.text
    assert _only_failure(res) == (
        "cannot replace view(s) pet_names in the target: objects the migration does not own "
        "depend on them (view shouting depends on view pet_names); nothing was changed (drop or "
        "alter those objects first)"
    )
    assert_unchanged(target, before)
    assert query(target, "SELECT * FROM shouting") == [("X",)]


def test_replace_recreates_the_runs_own_views_over_replaced_tables(make_db, target):
    src = make_db(PETS + "CREATE VIEW pet_names AS SELECT name FROM pets;")
    _prepare(
        target,
        "CREATE TABLE pets (id bigint PRIMARY KEY, name text); INSERT INTO pets VALUES (9, 'old');"
        "CREATE VIEW pet_names AS SELECT name FROM pets",
    )
    res = run_cli("run", "--source", src, "--target", target, "--schema", "create", "--replace")
    assert res.code == 2, res.text  # the view depends on the table: refused, named
    assert "view pet_names (on table pets)" in _only_failure(res)
    _prepare(target, "DROP VIEW pet_names; CREATE VIEW pet_names AS SELECT 'x'::text AS name")
    res = run_cli("run", "--source", src, "--target", target, "--schema", "create", "--replace")
    assert res.code == 0, res.text
    assert query(target, "SELECT * FROM pet_names") == [("rex",)]


def _wal_with_uncheckpointed_commits(tmp_path: Path, folder: Path) -> None:
    """A copy of a live WAL-mode file: 10 rows checkpointed into pets.db, 5 more only in the
    -wal (autocheckpoint off), no -shm (as a copy of the pod's files, or after a crash)."""
    live = tmp_path / "live"
    live.mkdir()
    _wal_source(live / "pets.db", 10)
    app = sqlite3.connect(live / "pets.db")
    app.execute("PRAGMA wal_autocheckpoint = 0")
    app.executemany("INSERT INTO pets VALUES (?, ?)", [(i, f"late {i}") for i in range(10, 15)])
    app.commit()
    try:
        for name in ("pets.db", "pets.db-wal"):
            shutil.copyfile(live / name, folder / name)
    finally:
        app.close()


def test_source_immutable_is_not_applied_to_a_wal_holding_uncheckpointed_commits(tmp_path, target):
    folder = tmp_path / "pod"
    folder.mkdir()
    _wal_with_uncheckpointed_commits(tmp_path, folder)
    assert (folder / "pets.db-wal").stat().st_size > 0
    uri = f"file:{folder / 'pets.db'}?immutable=1"
    blind = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    assert blind.execute("SELECT count(*) FROM pets").fetchall() == [(10,)]  # the hazard
    blind.close()
    wal_size = (folder / "pets.db-wal").stat().st_size
    res = run_subprocess(
        "run", "--source", str(folder / "pets.db"), "--target", target, "--verify",
        "--source-immutable", "--log-format", "json",
    )  # fmt: skip
    assert res.code == 0, res.text
    assert query(target, "SELECT count(*), max(id) FROM pets") == [(15, 14)]
    result = Result(0, res.out, "")
    assert (
        f"source {folder / 'pets.db'}: --source-immutable not applied: its -wal holds "
        f"{wal_size:,} bytes of commits not yet checkpointed into the file, which immutable=1 "
        "would not read; opened read-only through the WAL instead"
    ) in result.messages("source", "warning")
    opened = [e for e in result.events if e["event"] == "source" and "immutable" in e]
    assert [e["immutable"] for e in opened] == [False]
