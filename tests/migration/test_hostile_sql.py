"""Hostile source files: no text from a source ever runs as SQL on the target.

Each file carries an attack through one route (a view body, a CHECK, a DEFAULT, a partial-index
WHERE, an index expression, a generated column), built with ordinary CREATE statements or, for
what SQLite itself refuses, planted with `PRAGMA writable_schema`. The target must be unchanged
apart from the migrated tables: every relation, role, function, schema and sequence in the
catalog is listed before and after, and a bystander table outside the migration keeps its row.
"""

from __future__ import annotations

import sqlite3

import pytest

from tests.migration.conftest import query, run_cli, tables_in

pytestmark = pytest.mark.db

# A type name that closes the CAST and appends statements, as in issue 9.
INJECTION = (
    "[pg_catalog.int8) AS x FROM pets; CREATE ROLE evil SUPERUSER LOGIN; DROP TABLE bystander; --]"
)
PETS = "CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO pets VALUES (1, 'a');"


def snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Everything an attack could add, drop or change, outside what the run migrates."""
    queries = {
        "relations": "SELECT n.nspname, c.relname, c.relkind, c.relowner::regrole::text "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname NOT IN ('pg_toast') AND n.nspname NOT LIKE 'pg_temp%' "
        "AND n.nspname NOT LIKE 'pg_toast_temp%' ORDER BY 1, 2",
        "roles": "SELECT rolname, rolsuper, rolcanlogin, rolcreaterole FROM pg_roles ORDER BY 1",
        "members": "SELECT roleid::regrole::text, member::regrole::text FROM pg_auth_members "
        "ORDER BY 1, 2",
        "functions": "SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid) "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace ORDER BY 1, 2, 3",
        "schemas": "SELECT nspname FROM pg_namespace ORDER BY 1",
        "grants": "SELECT c.relname, c.relacl::text FROM pg_class c WHERE c.relacl IS NOT NULL "
        "ORDER BY 1",
        "sequences": "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2",
        "bystander": "SELECT x FROM bystander",
    }
    return {k: query(url, q) for k, q in queries.items()}


def with_bystander(url: str) -> dict[str, list[tuple[object, ...]]]:
    query(url, "CREATE TABLE bystander (x int); INSERT INTO bystander VALUES (42)")
    query(url, "CREATE SEQUENCE bystander_seq")
    return snapshot(url)


def plant(path: str, name: str, text: str) -> None:
    """Replace an object's text in sqlite_master, as an attacker writing the file would."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = ?", (text, name))
        conn.commit()
    finally:
        conn.close()


CASES = {
    "view body": (
        f"CREATE VIEW v AS SELECT CAST(id AS {INJECTION}) AS y FROM pets;",
        None,
    ),
    "CHECK": (
        f"CREATE TABLE c (id INTEGER PRIMARY KEY, CHECK (CAST(id AS {INJECTION}) > 0));",
        None,
    ),
    "DEFAULT": (
        f"CREATE TABLE d (id INTEGER PRIMARY KEY, x INTEGER DEFAULT (CAST(1 AS {INJECTION})));",
        None,
    ),
    "partial index": (f"CREATE INDEX iw ON pets (id) WHERE CAST(id AS {INJECTION}) > 0;", None),
    "index expression": (f"CREATE INDEX ie ON pets (CAST(id AS {INJECTION}));", None),
    "generated column": (
        (
            "CREATE TABLE g (id INTEGER PRIMARY KEY, "
            f"y INTEGER GENERATED ALWAYS AS (CAST(id AS {INJECTION})) STORED);"
        ),
        None,
    ),
}


@pytest.mark.parametrize("route", list(CASES))
def test_a_cast_type_never_carries_sql_it_is_mapped(route, make_db, target):
    ddl, _ = CASES[route]
    src = make_db(PETS + ddl)
    before = with_bystander(target)
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text  # the cast becomes CAST(... AS bigint): harmless, carried
    after = snapshot(target)
    assert after["roles"] == before["roles"]
    assert after["bystander"] == [(42,)]
    assert after["functions"] == before["functions"]
    assert after["members"] == before["members"]
    assert "evil" not in str(query(target, "SELECT pg_get_viewdef(oid) FROM pg_class"))
    defs = query(
        target,
        "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef UNION ALL "
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint UNION ALL "
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'",
    )
    assert "evil" not in str(defs)
    assert "bigint" in str(defs) + str(query(target, "SELECT pg_get_viewdef(oid) FROM pg_class"))


PLANTED = {
    # route: (benign DDL SQLite accepts, object name, hostile text planted over it, refused key)
    "view with a dollar-quote parameter": (
        "CREATE VIEW vp AS SELECT 1 AS y FROM pets;",
        "vp",
        "CREATE VIEW vp AS SELECT @x$ AS y FROM pets; DROP TABLE bystander; SELECT $x$",
        "view:vp",
    ),
    "CHECK with a parameter": (
        "CREATE TABLE cp (id INTEGER PRIMARY KEY, CHECK (id > 0));",
        "cp",
        "CREATE TABLE cp (id INTEGER PRIMARY KEY, CHECK (id > @x$))",
        "check:cp.1",
    ),
    "CHECK calling pg_sleep": (
        "CREATE TABLE cf (id INTEGER PRIMARY KEY, CHECK (id > 0));",
        "cf",
        "CREATE TABLE cf (id INTEGER PRIMARY KEY, CHECK (pg_sleep(30) IS NOT NULL))",
        "check:cf.1",
    ),
    "CHECK calling setval": (
        "CREATE TABLE cs (id INTEGER PRIMARY KEY, CHECK (id > 0));",
        "cs",
        "CREATE TABLE cs (id INTEGER PRIMARY KEY, CHECK (setval('bystander_seq', 99) > 0))",
        "check:cs.1",
    ),
    "view over pg_catalog.pg_authid": (
        "CREATE VIEW vc AS SELECT 1 AS y FROM pets;",
        "vc",
        "CREATE VIEW vc AS SELECT rolpassword FROM pg_catalog.pg_authid",
        "view:vc",
    ),
    "partial index calling pg_sleep": (
        "CREATE INDEX ip ON pets (id) WHERE id > 0;",
        "ip",
        "CREATE INDEX ip ON pets (id) WHERE pg_sleep(30) IS NOT NULL",
        "index:ip",
    ),
}
ORDINARY = {
    "view calling pg_sleep": (
        "CREATE VIEW vf AS SELECT pg_sleep(30) AS y FROM pets;",
        "view:vf",
        "function 'pg_sleep'",
    ),
    "view calling pg_terminate_backend": (
        "CREATE VIEW vt AS SELECT pg_terminate_backend(1) AS y FROM pets;",
        "view:vt",
        "function 'pg_terminate_backend'",
    ),
    "DEFAULT calling pg_read_file": (
        "CREATE TABLE df (id INTEGER PRIMARY KEY, x TEXT DEFAULT (pg_read_file('/etc/passwd')));",
        "default:df.x",
        "function 'pg_read_file'",
    ),
    "view over pg_authid": (
        "CREATE VIEW va AS SELECT rolname, rolpassword FROM pg_authid;",
        "view:va",
        "relation 'pg_authid' is not a table or view of this migration",
    ),
    "view over a table outside the migration": (
        "CREATE VIEW vb AS SELECT x FROM bystander;",
        "view:vb",
        "relation 'bystander' is not a table or view of this migration",
    ),
}


def _refused(res, key: str, named: str) -> None:
    assert res.code == 1, res.text
    (failed,) = res.messages("failed")
    assert failed.startswith("1 object(s) of the source schema cannot be created in PostgreSQL")
    assert named in failed
    assert f"(to migrate without it: --skip {key})" in failed


@pytest.mark.parametrize("route", list(ORDINARY))
def test_functions_and_foreign_relations_refuse_the_run_naming_the_object(route, make_db, target):
    ddl, key, named = ORDINARY[route]
    src = make_db(PETS + ddl)
    before = with_bystander(target)
    res = run_cli("run", "--source", src, "--target", target)
    _refused(res, key, named)
    assert snapshot(target) == before
    plan = run_cli("plan", "--source", src, "--target", target)
    assert plan.code == 1
    assert [e["key"] for e in plan.events if e["event"] == "refused"] == [key]
    assert snapshot(target) == before


@pytest.mark.parametrize("route", list(PLANTED))
def test_text_planted_with_writable_schema_never_runs(route, make_db, target):
    benign, name, hostile, key = PLANTED[route]
    src = make_db(PETS + benign)
    plant(src, name, hostile)
    before = with_bystander(target)
    res = run_cli("run", "--source", src, "--target", target)
    after = snapshot(target)
    assert after == before, res.text
    assert res.code in (1, 2), res.text
    if res.code == 1:
        _refused(res, key, "not ")
    else:  # SQLite itself cannot read the planted schema: a source error naming the file
        assert src in res.messages("failed")[0]


def test_a_skipped_object_is_reported_and_the_rest_migrates(make_db, target):
    src = make_db(
        PETS + ORDINARY["view over pg_authid"][0] + ORDINARY["DEFAULT calling pg_read_file"][0]
    )
    before = with_bystander(target)
    res = run_cli(
        "run", "--source", src, "--target", target, "--skip", "view:va", "--skip", "DEFAULT:df.x"
    )
    assert res.code == 0, res.text
    assert sorted(tables_in(target)) == ["bystander", "df", "pets"]
    assert query(
        target,
        "SELECT column_default FROM information_schema.columns "
        "WHERE table_name = 'df' AND column_name = 'x'",
    ) == [(None,)]
    reported = res.messages("reported")
    assert any(
        m.startswith("view 'va': not translated: relation 'pg_authid'")
        and m.endswith("skipped with --skip view:va")
        for m in reported
    )
    assert any(
        m.startswith("default of df.x:") and m.endswith("skipped with --skip default:df.x")
        for m in reported
    )
    after = snapshot(target)
    assert after["roles"] == before["roles"]
    assert after["bystander"] == [(42,)]
    assert after["functions"] == before["functions"]


def test_an_unknown_skip_key_is_a_usage_error(make_db, target):
    src = make_db(PETS)
    res = run_cli("run", "--source", src, "--target", target, "--skip", "view:nope")
    assert res.code == 2
    assert res.messages("failed") == [
        (
            "--skip view:nope: no such object in the sources (expected one of view:NAME, "
            "index:NAME, check:TABLE.NAME, default:TABLE.COLUMN, generated:TABLE.COLUMN)"
        )
    ]
    assert tables_in(target) == []


def test_plan_tries_the_ddl_on_an_embedded_server_when_no_target_is_given(make_db):
    # translates, but PostgreSQL rejects it (text = integer after the CAST to text)
    src = make_db(
        PETS
        + "CREATE VIEW bad AS SELECT id FROM pets WHERE CAST(id AS TEXT) - 'x' || 1 = lower(1);"
    )
    res = run_cli("plan", "--source", src)
    refused = [e for e in res.events if e["event"] == "refused"]
    assert res.code == 1, res.text
    assert [e["key"] for e in refused] == ["view:bad"]
    assert "PostgreSQL rejected the translation" in str(refused[0]["reason"])


def test_a_translated_default_postgresql_rejects_is_refused_by_name(make_db, target):
    src = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER DEFAULT (lower('A')));"
        "INSERT INTO t VALUES (1, 5);"
    )
    plan = run_cli("plan", "--source", src, "--target", target)
    assert plan.code == 1
    assert [e["key"] for e in plan.events if e["event"] == "refused"] == ["default:t.x"]
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 1
    assert res.messages("failed") == [
        (
            "1 object(s) of the source schema cannot be created in PostgreSQL; nothing was "
            'written: default of t.x: PostgreSQL rejected the translation (column "x" is of type '
            "bigint but default expression is of type text) (to migrate without it: --skip "
            "default:t.x)"
        )
    ]
    assert tables_in(target) == []
    res = run_cli("run", "--source", src, "--target", target, "--skip", "default:t.x")
    assert res.code == 0, res.text
    assert query(target, "SELECT x FROM t") == [(5,)]
