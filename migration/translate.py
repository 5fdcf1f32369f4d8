"""SQLite SQL (views, CHECKs, generated columns, index predicates) to PostgreSQL, via sqlglot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Rename = Callable[[str], str]
# sqlglot is imported lazily: it costs ~0.1 s at start-up and most schemas never need it.


class TranslationError(Exception):
    """sqlglot could not parse or render a fragment; the caller reports the object by name."""


def _sqlglot() -> Any:
    import sqlglot

    return sqlglot


def _rename_identifiers(node: Any, rename: Rename) -> Any:
    from sqlglot import exp

    def fix(n: Any) -> Any:
        if isinstance(n, exp.Identifier):
            return exp.Identifier(this=rename(str(n.this)), quoted=True)
        return n

    return node.transform(fix)


def render(node: Any, rename: Rename) -> str:
    """A parsed SQLite expression as PostgreSQL, every identifier quoted and renamed."""
    sqlglot = _sqlglot()
    try:
        out: str = _rename_identifiers(node.copy(), rename).sql(dialect="postgres")
    except (sqlglot.errors.SqlglotError, ValueError) as exc:
        raise TranslationError(str(exc)) from exc
    return out


def expression(sql: str, rename: Rename) -> str:
    """A SQLite scalar expression (e.g. an index predicate) as PostgreSQL."""
    sqlglot = _sqlglot()
    try:
        node = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError as exc:
        raise TranslationError(str(exc)) from exc
    return render(node, rename)


def parse_create_table(sql: str) -> Any:
    """The sqlglot tree of a CREATE TABLE statement, or None when sqlglot cannot parse it."""
    sqlglot = _sqlglot()
    try:
        return sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return None


def view_query(sql: str, rename: Rename) -> str:
    """The SELECT of a SQLite `CREATE VIEW` statement, as PostgreSQL."""
    sqlglot = _sqlglot()
    from sqlglot import exp

    try:
        node = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError as exc:
        raise TranslationError(str(exc)) from exc
    if not isinstance(node, exp.Create) or node.expression is None:
        raise TranslationError("not a CREATE VIEW ... AS SELECT statement")
    query = node.expression
    if not isinstance(query, exp.Query):
        raise TranslationError("the view body is not a query")
    return render(query, rename)


def index_parts(sql: str, rename: Rename) -> tuple[list[str], str | None]:
    """Key parts (columns or expressions, with DESC/COLLATE kept) and WHERE of a CREATE INDEX."""
    sqlglot = _sqlglot()
    from sqlglot import exp

    try:
        node = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError as exc:
        raise TranslationError(str(exc)) from exc
    index = node.this if isinstance(node, exp.Create) else None
    if not isinstance(index, exp.Index):
        raise TranslationError("not a CREATE INDEX statement")
    params = index.args.get("params")
    columns = params.args.get("columns") if params is not None else None
    if not columns:
        raise TranslationError("no indexed columns found")
    parts = []
    for part in columns:
        node_part = part.this if isinstance(part, exp.Ordered) else part
        rendered = render(node_part, rename)
        if not isinstance(node_part, exp.Column):
            rendered = f"({rendered})"
        if isinstance(part, exp.Ordered) and part.args.get("desc"):
            rendered += " DESC"
        parts.append(rendered)
    where = params.args.get("where") if params is not None else None
    predicate = render(where.this, rename) if where is not None else None
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
