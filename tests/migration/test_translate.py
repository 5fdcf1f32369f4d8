"""The allowlist renderer: what it emits for ordinary SQLite, what it refuses by name, and the
one-statement execution path."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from migration import load, render, translate

pytestmark = pytest.mark.db

PETS = render.Relation(
    "pets",
    {
        "id": ("id", "int"),
        "name": ("name", "text"),
        "price": ("price", "double"),
        "born": ("born", "timestamp"),
        "flag": ("flag", "bool"),
        "code": ("code", "text"),
    },
    ["id", "name", "price", "born", "flag", "code"],
)
RELATIONS = {"pets": PETS, "owners": render.Relation("owners", {"id": ("id", "int")}, ["id"])}


def expr(text: str) -> str:
    node = translate._parse(f"SELECT {text}").expressions[0]
    return translate.table_expression(node, PETS, "pets", str.lower).as_string(None)


def view(text: str) -> str:
    out, _ = translate.view_query(f"CREATE VIEW v AS {text}", str.lower, dict(RELATIONS))
    return out.as_string(None)


def refused(text: str, as_view: bool = False) -> str:
    with pytest.raises(translate.TranslationError) as info:
        view(text) if as_view else expr(text)
    return str(info.value)


@pytest.mark.parametrize(
    ("sqlite", "postgres"),
    [
        ("length(name) > 0", '(length("name") > 0)'),
        ("price >= 0", '("price" >= 0)'),
        ("lower(name)", 'lower("name")'),
        ("ifnull(name, '-')", "coalesce(\"name\", '-')"),
        ("iif(price > 1, 'a', 'b')", "(CASE WHEN (\"price\" > 1) THEN 'a' ELSE 'b' END)"),
        ("substr(name, 2, 3)", 'substr("name", 2, 3)'),
        ("instr(name, 'x')", "strpos(\"name\", 'x')"),
        ("name || id", '("name" || CAST("id" AS text))'),
        ("name || 1.0", "(\"name\" || '1.0')"),
        ("code = 5", "(\"code\" = '5')"),  # TEXT affinity converts the number
        ("id = code", '("id" = CAST("code" AS numeric))'),  # NUMERIC affinity converts the text
        ("flag = 1", '("flag" = TRUE)'),
        ("'12abc' + 1", "(12 + 1)"),  # what SQLite's + reads from a text
        ("name NOT LIKE 'a%'", "(\"name\" NOT ILIKE 'a%')"),
        ("name GLOB 'a*_'", "(\"name\" LIKE  E'a%\\\\_' ESCAPE '\\')"),
        ("CAST(id AS VARCHAR(3))", 'CAST(CAST("id" AS text) AS text)'),
        ("CAST(name AS [pg_catalog.int8) AS x; --])", "CAST(coalesce(CAST(substring("),
        ("min(id, price)", 'least("id", "price")'),
        ("'it''s'", "'it''s'"),
        ("x'00ff'", "E'\\\\000\\\\377'::bytea"),
        ("0x10", "16"),
        ("json_valid(code) OR code IS NULL", '(("code" IS JSON) OR ("code" IS NULL))'),
    ],
)
def test_allowlisted_expressions_render_as_postgresql(sqlite, postgres):
    assert postgres in expr(sqlite)


@pytest.mark.parametrize(
    ("sqlite", "named"),
    [
        ("pg_sleep(10)", "function 'pg_sleep'"),
        ("pg_read_file('/etc/passwd')", "function 'pg_read_file'"),
        ("setval('s', 1)", "function 'setval'"),
        ("hex(name)", "function 'HEX'"),
        ("@x$", "node kind Parameter"),
        ("?", "node kind Placeholder"),
        ("name COLLATE NOCASE", "function 'COLLATE'"),
        ("other.name = 1", "column 'other.name' of another table"),
        ("nosuch > 1", "column 'nosuch', which the table does not have"),
        ("(SELECT 1)", "a subquery (only views may hold queries)"),
        ("count(*)", "aggregate function 'count' outside a view"),
    ],
)
def test_anything_else_is_refused_by_name(sqlite, named):
    assert named in refused(sqlite)


def test_a_cast_type_is_mapped_from_its_affinity_never_copied():
    for declared, pg in [
        ("INTEGER", "bigint"),
        ("[pg_catalog.int8) AS x FROM pets; CREATE TABLE t (a int); --]", "bigint"),
        ("VARCHAR(10)", "text"),
        ("BLOB", "bytea"),
        ("DOUBLE", "double precision"),
        ("DECIMAL(10,2)", "numeric"),
        ("whatever", "numeric"),
    ]:
        out = expr(f"CAST(id AS {declared})")
        assert out.endswith(f" AS {pg})"), (declared, out)
        assert "pg_catalog" not in out
        assert "CREATE" not in out


def test_view_over_own_relations_with_joins_group_order_and_union():
    out = view(
        "SELECT p.name, count(*) AS n, group_concat(p.code, ';') FROM pets p "
        "LEFT JOIN owners o ON o.id = p.id WHERE p.price BETWEEN 1 AND 2 "
        "GROUP BY p.name HAVING count(*) > 1 ORDER BY n DESC LIMIT 3"
    )
    assert out == (
        'SELECT "p"."name", count(*) AS "n", string_agg("p"."code", \';\') AS '
        '"group_concat(p.code, \';\')" FROM "pets" AS "p" LEFT JOIN "owners" AS "o" ON '
        '("o"."id" = "p"."id") WHERE ("p"."price" BETWEEN 1 AND 2) GROUP BY "p"."name" '
        'HAVING (count(*) > 1) ORDER BY "n" DESC NULLS LAST LIMIT 3'
    )
    assert view("SELECT id FROM pets UNION SELECT id FROM owners ORDER BY id") == (
        '(SELECT "id" FROM "pets") UNION (SELECT "id" FROM "owners") ORDER BY "id" ASC NULLS FIRST'
    )


@pytest.mark.parametrize(
    ("query", "named"),
    [
        (
            "SELECT * FROM pg_authid",
            "relation 'pg_authid' is not a table or view of this migration",
        ),
        ("SELECT * FROM pg_catalog.pg_authid", "relation 'pg_catalog.pg_authid' in another"),
        ("SELECT * FROM secrets", "relation 'secrets' is not a table or view of this migration"),
        ("SELECT (SELECT x FROM secrets) FROM pets", "relation 'secrets'"),
        ("WITH s AS (SELECT 1) SELECT * FROM s", "SELECT with with_"),
        ("SELECT count(*) OVER () FROM pets", "node kind Window"),
        ("SELECT pg_sleep(1) FROM pets", "function 'pg_sleep'"),
    ],
)
def test_views_reference_only_the_migrations_relations_and_allowlisted_functions(query, named):
    assert named in refused(query, as_view=True)


def test_nesting_deeper_than_the_limit_is_refused_not_a_recursion_error():
    deep = "(" * 200 + "1" + ")" * 200
    assert "nested" in refused(deep)


def test_the_ddl_path_refuses_two_statements_in_one_string(target):
    with psycopg.connect(target) as conn:
        with pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"):
            load.execute_one(conn, sql.SQL("SELECT 1; SELECT 2"))
        conn.rollback()
        load.execute_one(conn, sql.SQL("CREATE TABLE one_statement (a int)"))
        assert conn.execute("SELECT to_regclass('one_statement') IS NOT NULL").fetchone() == (True,)
