"""SQLite SQL fragments (views, CHECKs, generated columns, index predicates) to PostgreSQL, via sqlglot."""

from __future__ import annotations

from collections.abc import Callable

import sqlglot
from sqlglot import exp

Rename = Callable[[str], str]


class TranslationError(Exception):
    """sqlglot could not parse or render a fragment; the caller reports the object by name."""


def _rename_identifiers(node: exp.Expression, rename: Rename) -> exp.Expression:
    def fix(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Identifier):
            return exp.Identifier(this=rename(str(n.this)), quoted=True)
        return n

    return node.transform(fix)


def render(node: exp.Expression, rename: Rename) -> str:
    """A parsed SQLite expression rendered as PostgreSQL with every identifier quoted and renamed."""
    try:
        out: str = _rename_identifiers(node.copy(), rename).sql(dialect="postgres")
    except (sqlglot.errors.SqlglotError, ValueError) as exc:
        raise TranslationError(str(exc)) from exc
    return out


def expression(sql: str, rename: Rename) -> str:
    """A SQLite scalar expression (e.g. an index predicate) as PostgreSQL."""
    try:
        node = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError as exc:
        raise TranslationError(str(exc)) from exc
    return render(node, rename)


def parse_create_table(sql: str) -> exp.Expression | None:
    """The sqlglot tree of a CREATE TABLE statement, or None when sqlglot cannot parse it."""
    try:
        return sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return None


def view_query(sql: str, rename: Rename) -> str:
    """The SELECT of a SQLite `CREATE VIEW` statement, as PostgreSQL."""
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
