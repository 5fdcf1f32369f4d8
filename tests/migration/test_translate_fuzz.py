"""Property: whatever the translator emits for any schema expression is ONE statement that calls
only allowlisted functions and names only the migration's own relations.

Expressions are generated from SQLite's grammar plus hostile pieces (arbitrary text in string
literals and bracketed CAST types, parameters, dollar quotes, unknown and dangerous functions,
comments, semicolons). Each rendered CHECK and view is checked twice: by scanning its text
(quoted strings and identifiers stripped) and by PostgreSQL itself through the one-statement
path inside a transaction that is rolled back, after which the catalog must be unchanged.
"""

from __future__ import annotations

import re

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg import sql

from migration import load, render, translate

pytestmark = pytest.mark.db

PETS = render.Relation(
    "pets",
    {"id": ("id", "int"), "name": ("name", "text"), "price": ("price", "double")},
    ["id", "name", "price"],
)
RELATIONS = {"pets": PETS}
DANGEROUS = ["pg_sleep", "pg_read_file", "setval", "pg_terminate_backend", "lo_import", "dblink"]
ALLOWED_SQLITE = ["lower", "upper", "length", "abs", "coalesce", "ifnull", "nullif", "trim"]
ALLOWED_SQLITE += ["julianday", "date", "datetime", "time", "printf", "format"]
# Words that precede "(" in what the renderer writes and are not function calls.
KEYWORDS = {
    "cast", "in", "exists", "and", "or", "not", "as", "from", "join", "on", "where", "by",
    "then", "else", "when", "select", "distinct", "between", "all", "union", "except",
    "intersect", "having", "check", "like", "ilike", "escape", "using", "case", "is",
}  # fmt: skip

text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
string_literal = text.map(lambda s: "'" + s.replace("'", "''") + "'")
raw_hostile = st.sampled_from(
    [
        "@x$",
        "?",
        ":a",
        "$x$",
        "1); DROP TABLE bystander; --",
        "1 /* c */",
        "x'00'",
        "0x7fffffffffffffff",
        "1e999",
    ]
)
leaf = st.one_of(
    st.sampled_from(["id", "name", "price", "pets.id", "nosuch", "NULL", "TRUE"]),
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    string_literal,
    st.sampled_from(["'+1 days'", "'-36 hours'", "'start of month'", "'%d|%s%%'", "'2024-02-29'"]),
    raw_hostile,
)
type_name = st.one_of(
    st.sampled_from(["INTEGER", "TEXT", "REAL", "BLOB", "NUMERIC", "VARCHAR(3)"]),
    text.filter(lambda s: "]" not in s).map(lambda s: f"[{s}]"),
    st.just("[pg_catalog.int8) AS x FROM pets; CREATE ROLE evil SUPERUSER; --]"),
)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    op = st.sampled_from(["+", "-", "*", "/", "%", "||", "=", "<>", "<", ">=", "AND", "OR", "IS"])
    fn = st.sampled_from(ALLOWED_SQLITE + DANGEROUS)
    return st.one_of(
        st.tuples(children, op, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(fn, st.lists(children, min_size=1, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
        st.tuples(children, type_name).map(lambda t: f"CAST({t[0]} AS {t[1]})"),
        st.tuples(children, children, children).map(
            lambda t: f"CASE WHEN {t[0]} THEN {t[1]} ELSE {t[2]} END"
        ),
        st.tuples(children, st.lists(children, min_size=1, max_size=3)).map(
            lambda t: f"{t[0]} IN ({', '.join(t[1])})"
        ),
        st.tuples(children, st.sampled_from(["=", "<", ">="]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]} COLLATE NOCASE)"
        ),
        children.map(lambda c: f"NOT {c}"),
        children.map(lambda c: f"{c} IS NULL"),
    )


expressions = st.recursive(leaf, _extend, max_leaves=12)
relation = st.sampled_from(["pets", "pets p", "pg_authid", "bystander", "main.pets", "x.pets"])


def strip_quoted(text_sql: str) -> str:
    """The SQL with string literals and quoted identifiers blanked (for scanning words)."""
    out = re.sub(r"E'(?:[^'\\]|\\.|'')*'", "''", text_sql)
    out = re.sub(r"'(?:[^']|'')*'", "''", out)
    return re.sub(r'"(?:[^"]|"")*"', '""', out)


def functions_called(text_sql: str) -> set[str]:
    words = re.findall(r"([A-Za-z_][A-Za-z_0-9]*)\s*\(", strip_quoted(text_sql))
    return {w.lower() for w in words} - KEYWORDS


def relations_named(text_sql: str) -> set[str]:
    # `x IS y` renders as `x IS NOT DISTINCT FROM y`: that FROM names a column, not a relation
    return set(re.findall(r'(?<!DISTINCT )(?:FROM|JOIN) "((?:[^"]|"")*)"', text_sql))


def check_one_statement(conn: psycopg.Connection, stmt: sql.Composed) -> None:
    """PostgreSQL's own parser, through the extended protocol: never two statements."""
    error = ""
    try:
        with conn.transaction(force_rollback=True):
            load.execute_one(conn, stmt)
    except psycopg.Error as exc:
        error = str(exc)
    assert "multiple commands" not in error, stmt.as_string(conn)


@pytest.fixture
def fuzz_conn(target):
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE TABLE pets (id bigint, name text, price double precision)")
        conn.execute("CREATE TABLE bystander (x int)")
        yield conn


def _catalog(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    return conn.execute(
        "SELECT 'rel', relname FROM pg_class UNION ALL SELECT 'role', rolname FROM pg_roles "
        "UNION ALL SELECT 'fn', proname FROM pg_proc ORDER BY 1, 2"
    ).fetchall()


FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(expressions)
@example(text_sql="NOT lower(1e999) IS NULL IS NULL")  # was an OverflowError, not a refusal
@example(text_sql="(id IS id)")  # IS NOT DISTINCT FROM "id" is no relation
@example(text_sql="julianday(name, '+1 days', 'start of month')")  # a view-only function
@example(text_sql="(name < 'x' COLLATE NOCASE)")
@example(text_sql="printf('%d|%s%%', id, name)")
def test_a_rendered_check_is_one_statement_over_allowlisted_functions(fuzz_conn, text_sql):
    try:
        node = translate._parse(f"SELECT {text_sql}")
        out = translate.table_expression(node.expressions[0], PETS, "pets", str.lower)
    except (translate.TranslationError, AttributeError, IndexError):
        return
    rendered = out.as_string(fuzz_conn)
    assert functions_called(rendered) <= render.EMITTED_FUNCTIONS, rendered
    assert relations_named(rendered) == set()
    before = _catalog(fuzz_conn)
    stmt = sql.SQL("ALTER TABLE pets ADD CONSTRAINT fuzz CHECK ({}) NOT VALID").format(out)
    check_one_statement(fuzz_conn, stmt)
    assert _catalog(fuzz_conn) == before


@FUZZ
@given(expressions, expressions, relation)
def test_a_rendered_view_is_one_statement_over_the_migrations_relations(
    fuzz_conn, column, where, rel
):
    view = f"CREATE VIEW v AS SELECT {column} AS c FROM {rel} WHERE {where}"
    try:
        out, _ = translate.view_query(view, str.lower, dict(RELATIONS))
    except translate.TranslationError:
        return
    rendered = out.as_string(fuzz_conn)
    assert functions_called(rendered) <= render.EMITTED_FUNCTIONS, rendered
    assert relations_named(rendered) <= {"pets"}, rendered
    before = _catalog(fuzz_conn)
    check_one_statement(fuzz_conn, sql.SQL("CREATE VIEW v AS {}").format(out))
    assert _catalog(fuzz_conn) == before


@pytest.mark.parametrize("text_sql", ["1e999", "-1e999", "lower(1e999)", "1e999 || 'x'"])
def test_an_infinite_number_literal_is_refused_by_name(text_sql):
    node = translate._parse(f"SELECT {text_sql}")
    with pytest.raises(translate.TranslationError, match=r"number literal out of range \(inf\)"):
        translate.table_expression(node.expressions[0], PETS, "pets", str.lower)
