"""SQLite SQL (views, CHECKs, generated columns, index predicates, defaults) to PostgreSQL.

sqlglot parses the source's text into a tree; `render` rebuilds it from an allowlist with
psycopg composables (nothing of the source text is pasted into SQL)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from psycopg import sql

from migration import parsable, render

Rename = Callable[[str], str]
# sqlglot is imported lazily: it costs ~0.1 s at start-up and most schemas never need it.


class TranslationError(Exception):
    """A fragment could not be parsed, or holds something not on the allowlist; the caller
    reports the object by name."""


def _sqlglot() -> Any:
    import sqlglot

    return sqlglot


def _parse(text: str) -> Any:
    sqlglot = _sqlglot()
    try:
        return sqlglot.parse_one(text, read="sqlite")
    except sqlglot.errors.SqlglotError as exc:
        raise TranslationError(f"could not be parsed: {_first(exc)}") from exc
    except RecursionError as exc:
        raise TranslationError("could not be parsed: nested too deeply") from exc


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][: render.NAME_SHOWN * 2] if lines else type(exc).__name__


def table_expression(
    node: Any, table: render.Relation, table_name: str, rename: Rename, immutable: bool = False
) -> sql.Composable:
    """A CHECK, generated column or index expression over one table's own columns."""
    ctx = render.Context(rename, table=table, table_name=table_name, immutable=immutable)
    try:
        return render.expression(node, ctx).sql
    except render.UnsupportedError as exc:
        raise TranslationError(str(exc)) from exc
    except RecursionError as exc:
        raise TranslationError("expression nested too deeply") from exc


def referenced_columns(node: Any) -> list[str]:
    """The column names an expression tree references, each once (as written, first first)."""
    seen: dict[str, str] = {}
    for col in node.find_all(_exp().Column):
        seen.setdefault(col.name.lower(), col.name)
    return list(seen.values())


_FROM_BOOL = {  # target type of a generated column -> what SQLite stores for true/false there
    "bigint": "integer",  # 1/0; integer -> bigint is PostgreSQL's implicit assignment cast
    "integer": "integer",
    "smallint": "integer",
    "double precision": "double precision",  # REAL affinity stores 1.0/0.0
    "numeric": "integer",  # NUMERIC affinity stores the integer 1/0
}


def generated_expression(
    node: Any, table: render.Relation, table_name: str, rename: Rename, pg_type: str
) -> sql.Composable:
    """A generated column's expression as PostgreSQL, converted to the column's type as SQLite
    stores it: a boolean (`a > b`) is 1/0/NULL in SQLite, so in a numeric column it becomes
    CAST(CAST(e AS integer) AS type) (true -> 1, false -> 0, NULL stays NULL); in a boolean
    column it stays boolean; in any other column it is refused (not guessed)."""
    ctx = render.Context(rename, table=table, table_name=table_name, immutable=True)
    try:
        typed = render.expression(node, ctx)
    except render.UnsupportedError as exc:
        raise TranslationError(str(exc)) from exc
    except RecursionError as exc:
        raise TranslationError("expression nested too deeply") from exc
    if typed.kind != "bool" or pg_type == "boolean":
        return typed.sql
    as_type = _FROM_BOOL.get(pg_type)
    if as_type is None:
        raise TranslationError(f"a boolean expression in a generated column of type {pg_type}")
    return render.bool_as_number(typed.sql, as_type)


def expression(text: str, rename: Rename) -> sql.Composable:
    """A SQLite scalar expression that references no column (e.g. a DEFAULT) as PostgreSQL."""
    node = _parse(f"SELECT {text}")
    exp = _exp()
    used = [k for k, v in node.args.items() if v] if isinstance(node, exp.Select) else []
    if used != ["expressions"] or len(node.expressions) != 1:
        raise TranslationError("not a single expression")
    empty = render.Relation("", {})
    return table_expression(node.expressions[0], empty, "", rename, immutable=True)


def _exp() -> Any:
    from sqlglot import exp

    return exp


# SQLite's table options after the column list, which sqlglot does not parse (it then keeps the
# whole statement as an opaque Command: no CHECK, generated column or collation seen)
_TABLE_OPTIONS = re.compile(r"[\s,]*(?:(?:WITHOUT\s+ROWID|STRICT)[\s,]*)*", re.IGNORECASE)


def parse_create_table(sql: str) -> Any:
    """The sqlglot tree of a CREATE TABLE statement (its table options, WITHOUT ROWID and
    STRICT, and what `parsable` cuts left out: they hold no expression), or None when sqlglot
    cannot parse it."""
    sqlglot = _sqlglot()
    sql = parsable.parsable(sql)  # what sqlglot cannot parse and is not read from the tree, cut
    end = sql.rfind(")")
    if end >= 0 and _TABLE_OPTIONS.fullmatch(sql, end + 1):
        sql = sql[: end + 1]
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return None
    return None if isinstance(tree, _exp().Command) else tree


def view_query(
    text: str, rename: Rename, relations: dict[str, render.Relation]
) -> tuple[sql.Composable, list[tuple[str, str | None]]]:
    """The SELECT of a SQLite `CREATE VIEW` as PostgreSQL, over `relations` only, and its
    output columns (name, kind)."""
    exp = _exp()
    node = _parse(text)
    if not isinstance(node, exp.Create) or node.expression is None:
        raise TranslationError("not a CREATE VIEW ... AS SELECT statement")
    if isinstance(node.this, exp.Schema):
        raise TranslationError("a view with a column list")
    ctx = render.Context(rename, relations=relations, queries=True)
    try:
        out, cols = render.query(node.expression, ctx, None)
    except render.UnsupportedError as exc:
        raise TranslationError(str(exc)) from exc
    except RecursionError as exc:
        raise TranslationError("query nested too deeply") from exc
    return out, [(name, t.kind) for name, t in cols]


def view_references(text: str) -> set[str]:
    """Lower-case names of every relation a view's text mentions (to order views)."""
    try:
        node = _parse(text)
    except TranslationError:
        return set()
    return {t.name.lower() for t in node.find_all(_exp().Table)}


def index_parts(
    text: str, table: render.Relation, table_name: str, rename: Rename
) -> tuple[list[sql.Composable], sql.Composable | None]:
    """Key parts (columns or expressions, with DESC kept) and WHERE of a CREATE INDEX."""
    exp = _exp()
    node = _parse(text)
    index = node.this if isinstance(node, exp.Create) else None
    if not isinstance(index, exp.Index):
        raise TranslationError("not a CREATE INDEX statement")
    params = index.args.get("params")
    columns = params.args.get("columns") if params is not None else None
    if not columns:
        raise TranslationError("no indexed columns found")
    parts: list[sql.Composable] = []
    for part in columns:
        node_part = part.this if isinstance(part, exp.Ordered) else part
        rendered = table_expression(node_part, table, table_name, rename, immutable=True)
        if not isinstance(node_part, exp.Column):
            rendered = sql.SQL("({})").format(rendered)
        if isinstance(part, exp.Ordered) and part.args.get("desc"):
            rendered = sql.SQL("{} DESC").format(rendered)
        parts.append(rendered)
    where = params.args.get("where") if params is not None else None
    predicate = (
        table_expression(where.this, table, table_name, rename, immutable=True)
        if where is not None
        else None
    )
    return parts, predicate


def table_extras(
    sql: str,
) -> tuple[list[tuple[str | None, str, Any]], dict[str, Any], dict[str, str]] | None:
    """CHECK constraints (name, SQLite text, node), generated expressions and collations by
    lower-case column name, from a CREATE TABLE; None when sqlglot cannot parse it."""
    from sqlglot import exp

    tree = parse_create_table(sql)
    if tree is None:
        return None
    checks: list[tuple[str | None, str, Any]] = []
    generated: dict[str, Any] = {}
    collations: dict[str, str] = {}
    schema = tree.this if isinstance(tree, exp.Create) else None
    if not isinstance(schema, exp.Schema):
        return checks, generated, collations
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef):
            for cons in item.args.get("constraints") or []:
                kind = cons.args.get("kind")
                if isinstance(kind, exp.CheckColumnConstraint):
                    checks.append((None, kind.this.sql(dialect="sqlite"), kind.this))
                elif isinstance(kind, exp.ComputedColumnConstraint):
                    generated[item.name.lower()] = kind.this
                elif isinstance(kind, exp.CollateColumnConstraint):
                    collations[item.name.lower()] = kind.this.name.upper()
        elif isinstance(item, exp.Constraint):
            for sub in item.expressions:
                if isinstance(sub, exp.CheckColumnConstraint):
                    checks.append((item.name, sub.this.sql(dialect="sqlite"), sub.this))
        elif isinstance(item, exp.CheckColumnConstraint):
            checks.append((None, item.this.sql(dialect="sqlite"), item.this))
    return checks, generated, collations
