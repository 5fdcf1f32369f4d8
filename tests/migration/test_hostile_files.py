"""Hostile and odd SQLite files (issue 9 points 2, 3, 5, 6, 7): each case's exit code and message,
and the target unchanged apart from the migrated tables (catalog snapshot before and after)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from tests.migration.conftest import query, run_cli, run_subprocess

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
@pytest.mark.parametrize("via", ["--target", "DATABASE_URL"])
def test_the_password_is_masked_in_every_form_of_target(make_db, form, url, secrets, via):
    src = make_db(PETS)
    args = ["run", "--source", src, "--log-format", "text"]
    res = run_subprocess(
        *([*args, "--target", url] if via == "--target" else args),
        env={"DATABASE_URL": url} if via == "DATABASE_URL" else {"DATABASE_URL": ""},
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
