"""SQLite expressions and view queries rendered as PostgreSQL from an allowlist.

The input is a sqlglot tree parsed from text found in a source file, which is untrusted.
Nothing of that text is ever pasted into SQL: every node kind, operator, function and type is
looked up in the tables below and rebuilt with `psycopg.sql` composables (identifiers through
`sql.Identifier`, strings and blobs through `sql.Literal`, numbers only after matching a strict
pattern, types from a fixed map). Anything not listed raises `UnsupportedError` naming what it was.
Relations (FROM) must be tables or views of the same migration.

SQLite semantics are translated where they are well defined: comparison affinity (the side
SQLite would convert is cast), `||` (text) vs `+` (numeric), LIKE (ASCII case-insensitive),
NULL ordering, min()/max() with several arguments, group_concat, ifnull, iif, total,
date()/datetime()/time()/strftime() with the exact modifiers, julianday(), printf() (%d %s %%),
comparisons under COLLATE NOCASE.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

Rename = Callable[[str], str]

NUMERIC_KINDS = frozenset({"int", "double", "numeric", "bool"})
TIME_KINDS = {"timestamp": "timestamp", "date": "date"}  # column kind -> PostgreSQL type
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_HEX_INT = re.compile(r"0[xX][0-9a-fA-F]{1,16}")
MAX_DEPTH = 64  # nesting of the rendered tree; deeper input is refused, never a RecursionError
NAME_SHOWN = 60  # characters of a source name quoted in a message
# A SQLite text's leading number (what `+` and numeric affinity read), else 0.
_SQLITE_NUMBER = r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"


class UnsupportedError(Exception):
    """A node, function, type or relation that is not on the allowlist (named in `what`)."""

    def __init__(
        self, what: str, why: str = "is not on the allowlist of what is translated"
    ) -> None:
        super().__init__(f"{what} {why}")
        self.what = what


def shown(name: object) -> str:
    """A source name for a message: repr'd and cut short (it is untrusted text)."""
    text = str(name)
    return repr(text if len(text) <= NAME_SHOWN else text[:NAME_SHOWN] + "...")


@dataclass
class Relation:
    """A table or view of the migration: its target name and its columns (source name lower ->
    (target name, kind))."""

    target: str
    columns: dict[str, tuple[str, str | None]]
    order: list[str] = field(default_factory=list)  # source names in declared order


@dataclass
class Typed:
    """A rendered expression with what SQLite's rules need: value kind, affinity, literal."""

    sql: sql.Composable
    kind: str | None = None  # int, double, numeric, bool, text, bytea, timestamp, date, None
    affinity: str | None = None  # TEXT, NUMERIC, TIME, BLOB (columns and CASTs), None
    literal: object = None  # the Python value of a literal (str, int, float), else None
    is_literal: bool = False


@dataclass
class Scope:
    """Names visible to a query level: alias (lower) -> relation, and the enclosing scope."""

    aliases: dict[str, Relation]
    parent: Scope | None = None
    output: dict[str, Typed] = field(default_factory=dict)  # select-list aliases (lower)


@dataclass
class Context:
    """What an expression may reference: the migration's relations (views) or one table's
    columns (CHECK, DEFAULT, index, generated column)."""

    rename: Rename
    relations: dict[str, Relation] = field(default_factory=dict)
    table: Relation | None = None  # the table a table-level expression belongs to
    table_name: str = ""  # its source name (a qualifier `t.col` must name it)
    queries: bool = False  # subqueries and SELECT allowed (views only)
    immutable: bool = False  # index expressions and generated columns: no STABLE functions
    functions: set[str] = field(default_factory=set)  # PostgreSQL functions emitted


def _k(n: Any) -> str:
    return type(n).__name__


def _exp() -> Any:
    from sqlglot import exp

    return exp


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def _call(ctx: Context, name: str, args: Iterable[sql.Composable]) -> sql.Composed:
    """A call of a PostgreSQL function from the fixed set this module emits."""
    ctx.functions.add(name)
    return sql.SQL("{}({})").format(sql.SQL(name), sql.SQL(", ").join(list(args)))


def _cast(x: sql.Composable, pg_type: str) -> sql.Composed:
    return sql.SQL("CAST({} AS {})").format(x, sql.SQL(PG_TYPES[pg_type]))


def bool_as_number(x: sql.Composable, pg_type: str) -> sql.Composed:
    """A boolean as SQLite's 1/0 (NULL stays NULL) in a numeric type: via integer, the one
    type PostgreSQL casts boolean to."""
    as_int = _cast(x, "integer")
    return as_int if pg_type == "integer" else _cast(as_int, pg_type)


PG_TYPES = {  # the only type names ever written, keyed by the name used here
    "bigint": "bigint",
    "integer": "integer",  # a boolean as SQLite's 1/0 (boolean has no cast to bigint)
    "double precision": "double precision",
    "numeric": "numeric",
    "text": "text",
    "bytea": "bytea",
    "timestamp": "timestamp",
    "date": "date",
    "boolean": "boolean",
}
_AFFINITY_TYPE = {  # SQLite affinity of a CAST's type -> (PostgreSQL type, kind)
    "INTEGER": ("bigint", "int"),
    "TEXT": ("text", "text"),
    "BLOB": ("bytea", "bytea"),
    "REAL": ("double precision", "double"),
    "NUMERIC": ("numeric", "numeric"),
}


def affinity_of(declared: str) -> str:
    """SQLite's affinity rules (https://sqlite.org/datatype3.html 3.1) on a type name."""
    up = declared.upper()
    if "INT" in up:
        return "INTEGER"
    if "CHAR" in up or "CLOB" in up or "TEXT" in up:
        return "TEXT"
    if "BLOB" in up or "BINARY" in up or not up.strip():
        return "BLOB"
    if "REAL" in up or "FLOA" in up or "DOUB" in up:
        return "REAL"
    return "NUMERIC"


def _affinity_of_kind(kind: str | None) -> str | None:
    if kind in NUMERIC_KINDS:
        return "NUMERIC"
    if kind == "text":
        return "TEXT"
    if kind in TIME_KINDS:
        return "TIME"
    if kind == "bytea":
        return "BLOB"
    return None


def _sqlite_text_of_number(value: object) -> str:
    """How SQLite writes a number as text (CAST(1.0 AS TEXT) is '1.0', 1e3 is '1000.0')."""
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e15 else f"{value:.1f}"
    return str(value)


def _sqlite_number_of_text(text: str) -> int | float:
    """What SQLite's `+` reads from a text: its leading number, else 0."""
    m = re.match(_SQLITE_NUMBER, text)
    if not m:
        return 0
    lead = m.group(1)
    try:
        return int(lead)
    except ValueError:
        return float(lead)


def _number(value: int | float) -> sql.Composable:
    if isinstance(value, float) and not math.isfinite(value):  # 1e999: SQLite's Inf, text 'Inf'
        raise UnsupportedError(f"number literal out of range ({value})")
    return sql.Literal(value)


# -- expressions ------------------------------------------------------------------------------
def expression(node: Any, ctx: Context, scope: Scope | None = None, depth: int = 0) -> Typed:
    """One allowlisted expression node as PostgreSQL."""
    if depth > MAX_DEPTH:
        raise UnsupportedError(f"expression nested deeper than {MAX_DEPTH}")
    exp = _exp()
    d = depth + 1
    kind = _k(node)
    handler = _HANDLERS.get(kind)
    if handler is not None:
        return handler(node, ctx, scope, d)
    if isinstance(node, exp.Func):
        name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
        raise UnsupportedError(f"function {shown(name)}")
    raise UnsupportedError(f"node kind {kind}")


def _sub(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    return expression(node, ctx, scope, d)


def _literal(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    text = str(node.this)
    if node.is_string:
        return Typed(sql.Literal(text), "text", None, text, True)
    if _NUMBER.fullmatch(text):
        if re.fullmatch(r"\d+", text) and int(text) < 1 << 63:
            return Typed(_number(int(text)), "int", None, int(text), True)
        value = float(text)  # SQLite reads a larger integer literal as REAL too
        return Typed(_number(value), "double", None, value, True)
    if _HEX_INT.fullmatch(text):
        value = int(text, 16)
        if value >= 1 << 63:
            value -= 1 << 64  # SQLite reads 0x literals as 64-bit two's complement
        return Typed(_number(value), "int", None, value, True)
    raise UnsupportedError(f"number literal {shown(text)}")


def _hexstring(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    text = str(node.this)
    if not re.fullmatch(r"(?:[0-9a-fA-F]{2})*", text):
        raise UnsupportedError(f"blob literal {shown(text)}")
    return Typed(sql.Literal(bytes.fromhex(text)), "bytea", None, None, True)


def _null(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    return Typed(sql.SQL("NULL"), None, None, None, True)


def _boolean(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    value = 1 if node.this else 0  # SQLite's TRUE and FALSE are the integers 1 and 0
    return Typed(sql.Literal(value), "int", None, value, True)


def _paren(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    inner = _sub(node.this, ctx, scope, d)
    return Typed(sql.SQL("({})").format(inner.sql), inner.kind, inner.affinity, inner.literal)


def _neg(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    inner = _numeric_operand(_sub(node.this, ctx, scope, d), ctx)
    lit = -inner.literal if isinstance(inner.literal, (int, float)) else None
    return Typed(sql.SQL("(- {})").format(inner.sql), inner.kind, None, lit, lit is not None)


def _column(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    exp = _exp()
    if node.args.get("db") or node.args.get("catalog"):
        raise UnsupportedError(f"qualified column {shown(node.sql(dialect='sqlite'))}")
    name = node.this
    qualifier = node.table
    if isinstance(name, exp.Star):
        raise UnsupportedError("'*' outside a select list")
    col = str(name.this)
    if ctx.table is not None:  # a table-level expression: own columns only
        if qualifier and qualifier.lower() != ctx.table_name.lower():
            raise UnsupportedError(f"column {shown(qualifier + '.' + col)} of another table")
        found = ctx.table.columns.get(col.lower())
        if found is None:
            raise UnsupportedError(f"column {shown(col)}, which the table does not have")
        target, kind = found
        return Typed(_ident(target), kind, _affinity_of_kind(kind))
    return _query_column(qualifier, col, ctx, scope)


def _query_column(qualifier: str, col: str, ctx: Context, scope: Scope | None) -> Typed:
    level = scope
    while level is not None:
        if qualifier:
            rel = level.aliases.get(qualifier.lower())
            if rel is not None:
                target, kind = rel.columns.get(col.lower(), (ctx.rename(col), None))
                ref = sql.SQL("{}.{}").format(_ident(ctx.rename(qualifier)), _ident(target))
                return Typed(ref, kind, _affinity_of_kind(kind))
        else:
            for rel in level.aliases.values():
                if col.lower() in rel.columns:
                    target, kind = rel.columns[col.lower()]
                    return Typed(_ident(target), kind, _affinity_of_kind(kind))
            if col.lower() in level.output:
                out = level.output[col.lower()]
                return Typed(_ident(ctx.rename(col)), out.kind, out.affinity)
        level = level.parent
    if qualifier:
        raise UnsupportedError(f"relation {shown(qualifier)} (not in the query's FROM)")
    return Typed(_ident(ctx.rename(col)))


def _numeric_operand(t: Typed, ctx: Context) -> Typed:
    """An operand of `+ - * / %` read as SQLite does: a text's leading number, else 0."""
    if t.kind != "text":
        return t
    if t.is_literal and isinstance(t.literal, str):
        value = _sqlite_number_of_text(t.literal)
        return Typed(_number(value), "int" if isinstance(value, int) else "double", None, value)
    ctx.functions.update({"substring", "coalesce"})
    lead = sql.SQL("coalesce(CAST(substring({} from {}) AS numeric), 0)").format(
        t.sql, sql.Literal(_SQLITE_NUMBER)
    )
    return Typed(lead, "numeric")


def _arith_kind(a: Typed, b: Typed) -> str | None:
    kinds = {a.kind, b.kind}
    if kinds <= {"int", "bool"}:
        return "int"
    if "double" in kinds:
        return "double"
    if kinds <= NUMERIC_KINDS:
        return "numeric"
    return None


_ARITH = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "Mod": "%"}
_BITS = {
    "BitwiseAnd": "&",
    "BitwiseOr": "|",
    "BitwiseLeftShift": "<<",
    "BitwiseRightShift": ">>",
}


def _arith(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    op = _ARITH.get(_k(node)) or _BITS[_k(node)]
    a = _numeric_operand(_sub(node.this, ctx, scope, d), ctx)
    b = _numeric_operand(_sub(node.expression, ctx, scope, d), ctx)
    kind = _arith_kind(a, b) if op in _ARITH.values() else "int"
    return Typed(sql.SQL("({} " + op + " {})").format(a.sql, b.sql), kind)


def _bitnot(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    inner = _sub(node.this, ctx, scope, d)
    return Typed(sql.SQL("(~ {})").format(inner.sql), "int")


def _as_text(t: Typed) -> sql.Composable:
    """An operand of `||` as SQLite reads it: numbers as SQLite writes them."""
    if t.kind == "text":
        return t.sql
    if t.is_literal and isinstance(t.literal, (int, float)):
        return sql.Literal(_sqlite_text_of_number(t.literal))
    if t.is_literal and t.literal is None and t.kind is None:
        return sql.SQL("CAST(NULL AS text)")
    return _cast(t.sql, "text")


def _concat(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    a = _sub(node.this, ctx, scope, d)
    b = _sub(node.expression, ctx, scope, d)
    return Typed(sql.SQL("({} || {})").format(_as_text(a), _as_text(b)), "text")


_COMPARE = {
    "EQ": "=",
    "NEQ": "<>",
    "GT": ">",
    "GTE": ">=",
    "LT": "<",
    "LTE": "<=",
    "NullSafeEQ": "IS NOT DISTINCT FROM",
    "NullSafeNEQ": "IS DISTINCT FROM",
}


def _convert_for(a: Typed, b: Typed) -> sql.Composable:
    """`b` as SQLite converts it when compared with `a` (https://sqlite.org/datatype3.html 4.2)."""
    text_valued = b.kind == "text" and not b.is_literal
    if a.affinity == "NUMERIC" and b.affinity != "NUMERIC":
        if a.kind == "bool" and b.is_literal and b.literal in (0, 1):
            return sql.SQL("TRUE" if b.literal else "FALSE")
        if b.affinity == "TEXT" or text_valued:
            return _cast(b.sql, "numeric")
        return b.sql
    if a.affinity == "TEXT" and b.affinity is None and b.kind in NUMERIC_KINDS:
        return _as_text(b)
    if a.affinity == "TIME" and a.kind in TIME_KINDS and (b.affinity == "TEXT" or text_valued):
        return _cast(b.sql, TIME_KINDS[a.kind])
    return b.sql


def _pair(a: Typed, b: Typed) -> tuple[sql.Composable, sql.Composable]:
    if b.affinity == "NUMERIC" and a.affinity != "NUMERIC":
        return _convert_for(b, a), b.sql
    if a.affinity in ("NUMERIC", "TEXT", "TIME"):
        return a.sql, _convert_for(a, b)
    if b.affinity in ("TEXT", "TIME"):
        return _convert_for(b, a), b.sql
    return a.sql, b.sql


def _compare(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    this, that = node.this, node.expression
    collations = [str(x.expression.name).upper() for x in (this, that) if _k(x) == "Collate"]
    if collations:
        return _compare_nocase(node, collations, ctx, scope, d)
    a = _sub(this, ctx, scope, d)
    b = _sub(that, ctx, scope, d)
    left, right = _pair(a, b)
    op = _COMPARE[_k(node)]
    return Typed(sql.SQL("({} " + op + " {})").format(left, right), "bool")


_ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def nocase_key(x: sql.Composable) -> sql.Composed:
    """An index key under COLLATE NOCASE: SQLite's fold of the 26 ASCII letters only, so a
    UNIQUE NOCASE index is exactly as strict as SQLite's (lower() folds every letter and would
    make 'Äpfel' and 'äpfel' clash). translate() is immutable, as an index needs."""
    return sql.SQL("translate({}, {}, {})").format(
        x, sql.Literal(_ASCII_UPPER), sql.Literal(_ASCII_UPPER.lower())
    )


def _compare_nocase(
    node: Any, collations: list[str], ctx: Context, scope: Scope | None, d: int
) -> Typed:
    """A comparison under COLLATE NOCASE, between two text values: SQLite folds the 26 ASCII
    letters only and then compares bytes, which is translate(A-Z -> a-z) under the "C"
    collation (lower() would fold every letter). Other collations, and operands that are not
    text (SQLite applies a collation to text only), are refused."""
    if set(collations) != {"NOCASE"}:
        raise UnsupportedError(f"COLLATE {shown(collations[0])} in a comparison")
    sides = []
    for x in (node.this, node.expression):
        t = _sub(x.this if _k(x) == "Collate" else x, ctx, scope, d)
        if t.kind != "text":
            raise UnsupportedError("COLLATE NOCASE over a value that is not text")
        folded = _call(
            ctx, "translate", [t.sql, sql.Literal(_ASCII_UPPER), sql.Literal(_ASCII_UPPER.lower())]
        )
        sides.append(sql.SQL('({} COLLATE "C")').format(folded))
    op = _COMPARE[_k(node)]
    return Typed(sql.SQL("({} " + op + " {})").format(*sides), "bool")


def _logic(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    op = "AND" if _k(node) == "And" else "OR"
    a = _sub(node.this, ctx, scope, d)
    b = _sub(node.expression, ctx, scope, d)
    return Typed(sql.SQL("({} " + op + " {})").format(_truth(a), _truth(b)), "bool")


def _truth(t: Typed) -> sql.Composable:
    """A SQLite truth value (any number) as a PostgreSQL boolean."""
    if t.kind == "bool":
        return t.sql
    if t.kind in NUMERIC_KINDS or (t.is_literal and t.literal is not None):
        return sql.SQL("({} <> 0)").format(t.sql)
    return t.sql


def _not(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    inner = _sub(node.this, ctx, scope, d)
    return Typed(sql.SQL("(NOT {})").format(_truth(inner)), "bool")


def _is(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    exp = _exp()
    if not isinstance(node.expression, exp.Null):
        raise UnsupportedError("IS with something other than NULL")
    inner = _sub(node.this, ctx, scope, d)
    return Typed(sql.SQL("({} IS NULL)").format(inner.sql), "bool")


def _in(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    a = _sub(node.this, ctx, scope, d)
    query = node.args.get("query")
    neg = "IN"  # NOT IN is Not(In)
    if query is not None:
        sub = _subquery_body(query, ctx, scope, d)
        return Typed(sql.SQL("({} " + neg + " {})").format(a.sql, sub), "bool")
    if node.args.get("unnest") or node.args.get("field"):
        raise UnsupportedError("IN over something other than a list or subquery")
    items = [_sub(e, ctx, scope, d) for e in node.expressions]
    if not items:
        return Typed(sql.SQL("FALSE" if neg == "IN" else "TRUE"), "bool")
    right = [_convert_for(a, b) if a.affinity else b.sql for b in items]
    return Typed(sql.SQL("({} " + neg + " ({}))").format(a.sql, sql.SQL(", ").join(right)), "bool")


def _negated(node: Any) -> bool:
    return bool(node.args.get("negate"))


def _between(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    a = _sub(node.this, ctx, scope, d)
    low = _sub(node.args["low"], ctx, scope, d)
    high = _sub(node.args["high"], ctx, scope, d)
    al, lo = _pair(a, low)
    _, hi = _pair(a, high)
    return Typed(sql.SQL("({} BETWEEN {} AND {})").format(al, lo, hi), "bool")


def _like(node: Any, ctx: Context, scope: Scope | None, d: int, escape: Any = None) -> Typed:
    a = _sub(node.this, ctx, scope, d)
    p = _sub(node.expression, ctx, scope, d)
    op = "NOT ILIKE" if _negated(node) else "ILIKE"  # SQLite's LIKE ignores ASCII case
    out = sql.SQL("{} " + op + " {}").format(_as_text(a), _as_text(p))
    if escape is not None:
        e = _sub(escape, ctx, scope, d)
        out = sql.SQL("{} ESCAPE {}").format(out, _as_text(e))
    return Typed(sql.SQL("({})").format(out), "bool")


def _escape(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    exp = _exp()
    if not isinstance(node.this, exp.Like):
        raise UnsupportedError("ESCAPE outside LIKE")
    return _like(node.this, ctx, scope, d, escape=node.expression)


def _glob(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    a = _sub(node.this, ctx, scope, d)
    p = _sub(node.expression, ctx, scope, d)
    if not (p.is_literal and isinstance(p.literal, str)) or "[" in p.literal:
        raise UnsupportedError("GLOB with a pattern other than a literal without [...]")
    pattern = p.literal.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = pattern.replace("*", "%").replace("?", "_")
    op = "NOT LIKE" if _negated(node) else "LIKE"
    return Typed(
        sql.SQL("({} " + op + " {} ESCAPE '\\')").format(_as_text(a), sql.Literal(pattern)),
        "bool",
    )


def _case(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    subject = node.this
    s = _sub(subject, ctx, scope, d) if subject is not None else None
    parts: list[sql.Composable] = [sql.SQL("CASE")]
    if s is not None:
        parts.append(s.sql)
    kinds = []
    for branch in node.args.get("ifs") or []:
        cond = _sub(branch.this, ctx, scope, d)
        then = _sub(branch.args["true"], ctx, scope, d)
        when = _truth(cond)
        if s is not None:
            when = _convert_for(s, cond) if s.affinity else cond.sql
        parts += [sql.SQL("WHEN"), when, sql.SQL("THEN"), then.sql]
        kinds.append(then.kind)
    default = node.args.get("default")
    if default is not None:
        other = _sub(default, ctx, scope, d)
        parts += [sql.SQL("ELSE"), other.sql]
        kinds.append(other.kind)
    parts.append(sql.SQL("END"))
    kind = next((k for k in kinds if k), None)
    return Typed(sql.SQL("({})").format(sql.SQL(" ").join(parts)), kind)


def _iif(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    cond = _sub(node.this, ctx, scope, d)
    then = _sub(node.args["true"], ctx, scope, d)
    other_node = node.args.get("false")
    other = _sub(other_node, ctx, scope, d) if other_node is not None else None
    out = sql.SQL("(CASE WHEN {} THEN {} ELSE {} END)").format(
        _truth(cond), then.sql, other.sql if other is not None else sql.SQL("NULL")
    )
    return Typed(out, then.kind or (other.kind if other else None))


def _cast_node(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    inner = _sub(node.this, ctx, scope, d)
    to = node.to
    name = str(to.args.get("kind") or "") if to.this.name == "USERDEFINED" else to.this.name
    pg_type, kind = _AFFINITY_TYPE[affinity_of(name)]
    value = inner.sql
    if kind == "text" and inner.kind != "text":
        value = _as_text(inner)
    elif kind in ("int", "double", "numeric"):
        value = _numeric_operand(inner, ctx).sql
    return Typed(_cast(value, pg_type), kind, _affinity_of_kind(kind))


def _subquery(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    if node.args.get("alias") is not None:
        raise UnsupportedError("an aliased subquery in an expression")
    body = _subquery_body(node.this, ctx, scope, d)
    return Typed(body)


def _exists(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    body = _subquery_body(node.this, ctx, scope, d)
    return Typed(sql.SQL("(EXISTS {})").format(body), "bool")


def _subquery_body(node: Any, ctx: Context, scope: Scope | None, d: int) -> sql.Composable:
    exp = _exp()
    if not ctx.queries:
        raise UnsupportedError("a subquery (only views may hold queries)")
    if isinstance(node, exp.Subquery):
        node = node.this
    body, _ = query(node, ctx, scope, d)
    return sql.SQL("({})").format(body)


# -- functions --------------------------------------------------------------------------------
def _args(node: Any, ctx: Context, scope: Scope | None, d: int) -> list[Typed]:
    args = [node.this] if node.this is not None else []
    args += list(node.expressions or [])
    return [_sub(a, ctx, scope, d) for a in args]


def _simple(pg: str, kind: str | None, text_args: bool = False) -> Any:
    def handler(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
        args = _args(node, ctx, scope, d)
        rendered = [_as_text(a) if text_args else a.sql for a in args]
        out_kind = kind if kind != "same" else (args[0].kind if args else None)
        return Typed(_call(ctx, pg, rendered), out_kind)

    return handler


def _length(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    (a,) = _args(node, ctx, scope, d)
    return Typed(_call(ctx, "length", [a.sql if a.kind == "bytea" else _as_text(a)]), "int")


def _substring(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    a = _sub(node.this, ctx, scope, d)
    start = _sub(node.args["start"], ctx, scope, d)
    length = node.args.get("length")
    args = [_as_text(a), start.sql]
    if length is not None:
        args.append(_sub(length, ctx, scope, d).sql)
    return Typed(_call(ctx, "substr", args), "text")


def _round(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    a = _numeric_operand(_sub(node.this, ctx, scope, d), ctx)
    digits = node.args.get("decimals")
    args: list[sql.Composable] = [_cast(a.sql, "numeric")]
    if digits is not None:
        args.append(_cast(_sub(digits, ctx, scope, d).sql, "bigint"))
    # SQLite's round() returns a REAL and rounds halves away from zero, as numeric round does
    return Typed(_cast(_call(ctx, "round", args), "double precision"), "double")


def _trim(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    a = _sub(node.this, ctx, scope, d)
    chars = node.args.get("expression")
    position = str(node.args.get("position") or "").upper()
    pg = {"LEADING": "ltrim", "TRAILING": "rtrim"}.get(position, "btrim")
    args = [_as_text(a)]
    if chars is not None:
        args.append(_as_text(_sub(chars, ctx, scope, d)))
    return Typed(_call(ctx, pg, args), "text")


def _replace(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    parts = [node.this, node.expression, node.args.get("replacement")]
    args = [_as_text(_sub(p, ctx, scope, d)) for p in parts]
    return Typed(_call(ctx, "replace", args), "text")


def _strpos(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    if node.args.get("position") is not None or node.args.get("occurrence") is not None:
        raise UnsupportedError("function 'instr' with a start position")
    a = _sub(node.this, ctx, scope, d)
    b = _sub(node.args["substr"], ctx, scope, d)
    return Typed(_call(ctx, "strpos", [_as_text(a), _as_text(b)]), "int")


def _coalesce(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    args = _args(node, ctx, scope, d)
    kind = next((a.kind for a in args if a.kind), None)
    return Typed(_call(ctx, "coalesce", [a.sql for a in args]), kind)


def _least_greatest(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    args = _args(node, ctx, scope, d)
    pg = "least" if _k(node) == "Least" else "greatest"
    # SQLite's scalar min()/max() return NULL when any argument is NULL; least() skips NULLs
    any_null = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(a.sql) for a in args)
    out = sql.SQL("(CASE WHEN {} THEN NULL ELSE {} END)").format(
        any_null, _call(ctx, pg, [a.sql for a in args])
    )
    return Typed(out, next((a.kind for a in args if a.kind), None))


def _aggregate(pg: str, kind: str | None) -> Any:
    def handler(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
        exp = _exp()
        if not ctx.queries:
            raise UnsupportedError(f"aggregate function {pg!r} outside a view")
        arg = node.this
        distinct = isinstance(arg, exp.Distinct)
        if distinct:
            if len(arg.expressions) != 1:
                raise UnsupportedError(f"function {pg!r} with DISTINCT over several values")
            arg = arg.expressions[0]
        if isinstance(arg, exp.Star) and pg == "count":
            return Typed(_call(ctx, "count", [sql.SQL("*")]), "int")
        inner = _sub(arg, ctx, scope, d)
        value = _numeric_operand(inner, ctx).sql if pg in ("sum", "avg") else inner.sql
        body = sql.SQL("DISTINCT {}").format(value) if distinct else value
        return Typed(_call(ctx, pg, [body]), kind if kind != "same" else inner.kind)

    return handler


def _group_concat(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    exp = _exp()
    if not ctx.queries:
        raise UnsupportedError("aggregate function 'group_concat' outside a view")
    arg = node.this
    distinct = isinstance(arg, exp.Distinct)
    if distinct:
        arg = arg.expressions[0] if len(arg.expressions) == 1 else None
        if arg is None:
            raise UnsupportedError("group_concat with DISTINCT over several values")
    value = _as_text(_sub(arg, ctx, scope, d))
    sep_node = node.args.get("separator")
    sep = _as_text(_sub(sep_node, ctx, scope, d)) if sep_node is not None else sql.Literal(",")
    body = sql.SQL("DISTINCT {}").format(value) if distinct else value
    return Typed(_call(ctx, "string_agg", [body, sep]), "text")


def _total(args: list[Typed], ctx: Context) -> Typed:
    if not ctx.queries:
        raise UnsupportedError("aggregate function 'total' outside a view")
    (a,) = args
    value = _cast(_numeric_operand(a, ctx).sql, "double precision")
    return Typed(_call(ctx, "coalesce", [_call(ctx, "sum", [value]), sql.Literal(0.0)]), "double")


_STRFTIME = {  # SQLite strftime -> PostgreSQL to_char
    "%Y": "YYYY",
    "%m": "MM",
    "%d": "DD",
    "%H": "HH24",
    "%M": "MI",
    "%S": "SS",
    "%j": "DDD",
    "%%": "%",
}
_DATE_FORMATS = {
    "date": "YYYY-MM-DD",
    "time": "HH24:MI:SS",
    "datetime": "YYYY-MM-DD HH24:MI:SS",
}


def to_char_format(fmt: str) -> str:
    """A SQLite strftime format as a PostgreSQL to_char template (other text double-quoted)."""
    out: list[str] = []
    i = 0
    while i < len(fmt):
        pair = fmt[i : i + 2]
        if pair in _STRFTIME:
            out.append(_STRFTIME[pair])
            i += 2
            continue
        if fmt[i] == "%":
            raise UnsupportedError(f"strftime format {shown(pair)}")
        j = i
        while j < len(fmt) and fmt[j] != "%":
            j += 1
        chunk = fmt[i:j].replace("\\", "\\\\").replace('"', '\\"')
        out.append(f'"{chunk}"')
        i = j
    return "".join(out)


def _time_value(t: Typed, ctx: Context) -> sql.Composable:
    """A SQLite time value (ISO text, or 'now') as a PostgreSQL timestamp."""
    if t.kind in TIME_KINDS:
        return _cast(t.sql, "timestamp") if t.kind == "date" else t.sql
    if t.is_literal and isinstance(t.literal, str) and t.literal.strip().lower() == "now":
        if ctx.immutable:
            raise UnsupportedError("'now' in an index or generated column")
        return sql.SQL("(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')")
    if t.kind in NUMERIC_KINDS:
        raise UnsupportedError("a date function over a number (Julian day or epoch)")
    if t.is_literal and isinstance(t.literal, str) and not _plain_time_text(t.literal):
        raise UnsupportedError(
            f"a date function over the text {shown(t.literal)} (SQLite applies a trailing "
            "offset and gives NULL for text it cannot read; only YYYY-MM-DD[ HH:MM[:SS[.SSS]]] "
            "is translated)"
        )
    return _cast(t.sql, "timestamp")


_PLAIN_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d)(?:\.\d{1,3})?)?)?")


def _plain_time_text(text: str) -> bool:
    """Whether a time literal reads alike in SQLite and PostgreSQL: a valid calendar date,
    optionally a valid time to milliseconds, no offset (SQLite applies it, a cast to
    timestamp ignores it), nothing SQLite would read as NULL (PostgreSQL would raise)."""
    m = _PLAIN_TIME.fullmatch(text)
    if m is None:
        return False
    year, month, day, hour, minute, second = (int(g or 0) for g in m.groups())
    try:
        dt.datetime(year, month, day, hour, minute, second)  # noqa: DTZ001 - a calendar check
    except ValueError:
        return False
    return True


_MODIFIER_AMOUNT = re.compile(r"([+-]?)(\d{1,7}) (day|hour|minute|second)s?", re.IGNORECASE)
_START_OF = {"start of day": "day", "start of month": "month", "start of year": "year"}


def _modified(value: sql.Composable, modifiers: list[Typed]) -> sql.Composable:
    """SQLite date modifiers whose PostgreSQL equivalent is exact on a timestamp without time
    zone: '±N days|hours|minutes|seconds' (whole N: a fixed number of milliseconds, no time
    zone) and 'start of day|month|year'. Months and years (SQLite normalises 01-31 + 1 month
    to 03-02, PostgreSQL clamps to 02-29), fractions, 'unixepoch', 'localtime', 'utc',
    'weekday N', 'subsec' and the rest are refused by name."""
    for m in modifiers:
        if not (m.is_literal and isinstance(m.literal, str)):
            raise UnsupportedError("a date modifier that is not a string literal")
        text = m.literal
        unit = _START_OF.get(text.lower())
        amount = _MODIFIER_AMOUNT.fullmatch(text)
        if unit is not None:
            value = sql.SQL("date_trunc({}, {})").format(sql.Literal(unit), value)
        elif amount is not None:
            sign, digits, name = amount.groups()
            step = sql.Literal(f"{'-' if sign == '-' else ''}{int(digits)} {name.lower()}s")
            value = sql.SQL("({} + CAST({} AS interval))").format(value, step)
        else:
            raise UnsupportedError(f"date modifier {shown(text)}")
    return value


def _date_function(name: str, args: list[Typed], ctx: Context, fmt: str | None = None) -> Typed:
    if ctx.immutable:
        raise UnsupportedError(f"function {name!r} in an index or generated column (not immutable)")
    if not args:
        raise UnsupportedError(f"function {name!r} without a time value")
    base = _time_value(args[0], ctx)
    if fmt is not None and None in _split_f(fmt) and args[1:]:
        base = _to_sqlite_ms(base, ctx)  # SQLite rounds to milliseconds before modifying
    value = _modified(base, args[1:])
    if args[1:]:
        ctx.functions.add("date_trunc")
    pieces: list[sql.Composable] = []
    for piece in [_DATE_FORMATS[name]] if fmt is None else _split_f(fmt):
        if piece is None:
            pieces.append(_strftime_f(value, ctx, bool(args[1:])))
        else:
            pieces.append(_call(ctx, "to_char", [value, sql.Literal(piece)]))
    out = pieces[0] if len(pieces) == 1 else sql.SQL("({})").format(sql.SQL(" || ").join(pieces))
    return Typed(_in_sqlite_range(value, out, args[1:]), "text")


def _split_f(fmt: str) -> list[str | None]:
    """A strftime format as to_char templates, with None where `%f` stands."""
    out: list[str | None] = []
    i, start = 0, 0
    while i < len(fmt):
        pair = fmt[i : i + 2]
        if pair == "%f":
            if start < i:
                out.append(to_char_format(fmt[start:i]))
            out.append(None)
            i = start = i + 2
            continue
        i += 2 if pair.startswith("%") else 1
    if start < len(fmt) or not out:
        out.append(to_char_format(fmt[start:]))
    return out


def _in_sqlite_range(
    value: sql.Composable, result: sql.Composable, modifiers: list[Typed]
) -> sql.Composable:
    """SQLite's date functions return NULL when the modified time is past 9999-12-31
    23:59:59.999 (date.c's validJulianDay); PostgreSQL's timestamps go on."""
    if not modifiers:
        return result
    return sql.SQL("(CASE WHEN {} < TIMESTAMP '10000-01-01 00:00:00' THEN {} END)").format(
        value, result
    )


_JULIAN_EPOCH_MS = 210_866_760_000_000  # 1970-01-01 00:00 as Julian day 2440587.5, in ms


def _seconds(ts: sql.Composable) -> sql.Composed:
    """The seconds of a time as SQLite parses them (date.c): the double `s + min(frac, 0.999)`."""
    f8 = sql.SQL("double precision")
    micros = sql.SQL("EXTRACT(MICROSECOND FROM {})").format(ts)
    return sql.SQL(
        "(CAST(floor({us} / 1000000) AS {f8}) + "
        "least(CAST(mod({us}, 1000000) AS {f8}) / CAST(1000000 AS {f8}), CAST(0.999 AS {f8})))"
    ).format(us=micros, f8=f8)


def _minute_ms(ts: sql.Composable) -> sql.Composed:
    """The milliseconds into the minute as SQLite keeps them (date.c's computeJD): the parsed
    seconds times 1000 plus 0.5, truncated (0.0005 s is 1 ms)."""
    f8 = sql.SQL("double precision")
    return sql.SQL("trunc({} * CAST(1000 AS {f8}) + CAST(0.5 AS {f8}))").format(_seconds(ts), f8=f8)


def _to_sqlite_ms(ts: sql.Composable, ctx: Context) -> sql.Composed:
    """A time rounded to SQLite's whole milliseconds (computeJD), as a modifier starts from."""
    ctx.functions.update({"extract", "floor", "mod", "least", "trunc", "date_trunc"})
    return sql.SQL("(date_trunc('minute', {}) + {} * INTERVAL '1 millisecond')").format(
        ts, _minute_ms(ts)
    )


def _strftime_f(ts: sql.Composable, ctx: Context, modified: bool) -> sql.Composed:
    """strftime's `%f`: SQLite prints its seconds double with `%06.3f` through its own decimal
    decoding. After a modifier that double is whole milliseconds (k / 1000.0), printed as k
    exactly: rendered from SQLite's rounded milliseconds (to_char's MS truncates). Unmodified,
    it is the parsed seconds (28.4595 prints 28.459 but 00.0195 prints 00.020: the digits
    SQLite's decoding keeps decide), which is refused by name rather than approximated."""
    if not modified:
        raise UnsupportedError(
            "strftime '%f' without a modifier (SQLite rounds the parsed seconds through its "
            "own decimal decoding)"
        )
    ctx.functions.update({"extract", "floor", "mod", "least", "trunc", "to_char"})
    f8 = sql.SQL("double precision")
    x = sql.SQL("({} / CAST(1000 AS {f8}))").format(_minute_ms(ts), f8=f8)
    return sql.SQL("to_char({}, 'FM00.000')").format(x)


def _julianday(args: list[Typed], ctx: Context) -> Typed:
    """julianday(T [, modifiers]) exactly as SQLite computes it: whole milliseconds since the
    Julian epoch (the date part exact; the seconds as the double `s + min(frac, 0.999)`,
    times 1000 plus 0.5, truncated: date.c's computeJD), then divided by 86400000.0."""
    if ctx.immutable:
        raise UnsupportedError("function 'julianday' in an index or generated column")
    if not args:
        raise UnsupportedError("function 'julianday' without a time value")
    ts = _modified(_time_value(args[0], ctx), args[1:])
    ctx.functions.update({"extract", "floor", "mod", "least", "trunc", "date_trunc"})
    f8 = "double precision"
    whole_ms = sql.SQL(
        "((CAST({ts} AS date) - DATE '1970-01-01') * CAST(86400000 AS bigint) + {epoch} "
        "+ EXTRACT(HOUR FROM {ts}) * 3600000 + EXTRACT(MINUTE FROM {ts}) * 60000)"
    ).format(ts=ts, epoch=sql.Literal(_JULIAN_EPOCH_MS))
    ms = _minute_ms(ts)
    out = sql.SQL("((CAST({} AS {f8}) + {}) / CAST(86400000 AS {f8}))").format(
        whole_ms, ms, f8=sql.SQL(f8)
    )
    return Typed(_in_sqlite_range(ts, out, args[1:]), "double")


_PRINTF = re.compile(r"%(.)|[^%]+", re.DOTALL)


def _printf(args: list[Typed], ctx: Context) -> Typed:
    """printf/format with a literal format of `%d` (integer arguments), `%s` (text or integer
    arguments) and `%%`: SQLite writes a NULL as 0 and '' there. Widths, precisions, flags,
    `%f` (SQLite rounds a REAL through its own 16-digit decoding), REAL or BLOB arguments are
    refused by name."""
    if not args or not (args[0].is_literal and isinstance(args[0].literal, str)):
        raise UnsupportedError("function 'printf' with a format that is not a string literal")
    fmt, values = args[0].literal, list(args[1:])
    pieces: list[sql.Composable] = []
    for m in _PRINTF.finditer(fmt):
        if m.group(1) is None:
            pieces.append(sql.Literal(m.group(0)))
            continue
        conv = m.group(1)
        if conv == "%":
            pieces.append(sql.Literal("%"))
            continue
        if conv not in "ds" or not values:
            raise UnsupportedError(f"printf conversion {shown('%' + conv)}")
        a = values.pop(0)
        null = a.is_literal and a.literal is None and a.kind is None
        if null:
            pieces.append(sql.Literal("0" if conv == "d" else ""))
        elif a.kind == "int" or (a.kind == "text" and conv == "s"):
            empty = sql.Literal("0" if conv == "d" else "")
            pieces.append(_call(ctx, "coalesce", [_cast(a.sql, "text"), empty]))
        else:
            raise UnsupportedError(f"printf {shown('%' + conv)} of a {a.kind or 'untyped'} value")
    if values:
        raise UnsupportedError("function 'printf' with more arguments than conversions")
    body = sql.SQL(" || ").join(pieces) if pieces else sql.Literal("")
    return Typed(sql.SQL("CAST(({}) AS text)").format(body), "text")


def _time_to_str(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    fmt = node.args.get("format")
    if fmt is None or not fmt.is_string:
        raise UnsupportedError("function 'strftime' with a format that is not a literal")
    this = node.this
    if _k(this) == "TsOrDsToTimestamp":
        this = this.this
    value = _sub(this, ctx, scope, d)
    return _date_function("strftime", [value], ctx, str(fmt.this))


def _date(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    args = _args(node, ctx, scope, d)
    if node.args.get("zone") is not None:
        raise UnsupportedError("function 'date' with modifiers")
    return _date_function("date", args, ctx)


def _format(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    return _printf(_args(node, ctx, scope, d), ctx)


IS_JSON = sql.SQL(" IS JSON)")  # the one object that closes every rendered `(x IS JSON)`
_ANONYMOUS = {"datetime", "time", "date", "strftime", "julianday", "printf", "total", "json_valid"}


def _anonymous(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    name = str(node.name).lower()
    if name not in _ANONYMOUS:
        raise UnsupportedError(f"function {shown(node.name)}")
    args = [_sub(a, ctx, scope, d) for a in node.expressions]
    if name == "json_valid":
        if len(args) != 1:
            raise UnsupportedError("function 'json_valid' with flags")
        # SQL/JSON's IS JSON (PostgreSQL 16+): RFC 8259 text, NULL for NULL, like json_valid(X);
        # built around the IS_JSON marker, which compat.py finds to refuse it on 14/15
        return Typed(sql.Composed([sql.SQL("("), args[0].sql, IS_JSON]), "bool")
    if name == "total":
        if len(args) != 1:
            raise UnsupportedError("function 'total' with several arguments")
        return _total(args, ctx)
    if name == "julianday":
        return _julianday(args, ctx)
    if name == "printf":
        return _printf(args, ctx)
    if name == "strftime":
        fmt = args[0] if args else None
        if fmt is None or not (fmt.is_literal and isinstance(fmt.literal, str)):
            raise UnsupportedError("function 'strftime' with a format that is not a literal")
        return _date_function(name, args[1:], ctx, fmt.literal)
    return _date_function(name, args, ctx)


def _current_timestamp(node: Any, ctx: Context, scope: Scope | None, d: int) -> Typed:
    if ctx.immutable:
        raise UnsupportedError("CURRENT_TIMESTAMP in an index or generated column")
    utc = sql.SQL("(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')")
    return Typed(_call(ctx, "to_char", [utc, sql.Literal(_DATE_FORMATS["datetime"])]), "text")


_HANDLERS: dict[str, Callable[[Any, Context, Scope | None, int], Typed]] = {
    "Literal": _literal,
    "HexString": _hexstring,
    "Null": _null,
    "Boolean": _boolean,
    "Paren": _paren,
    "Neg": _neg,
    "Column": _column,
    **dict.fromkeys(_ARITH, _arith),
    **dict.fromkeys(_BITS, _arith),
    "BitwiseNot": _bitnot,
    "DPipe": _concat,
    **dict.fromkeys(_COMPARE, _compare),
    "And": _logic,
    "Or": _logic,
    "Not": _not,
    "Is": _is,
    "In": _in,
    "Between": _between,
    "Like": _like,
    "Escape": _escape,
    "Glob": _glob,
    "Case": _case,
    "If": _iif,
    "Cast": _cast_node,
    "Subquery": _subquery,
    "Exists": _exists,
    "Lower": _simple("lower", "text", text_args=True),
    "Upper": _simple("upper", "text", text_args=True),
    "Length": _length,
    "Substring": _substring,
    "Abs": _simple("abs", "same"),
    "Sign": _simple("sign", "same"),
    "Round": _round,
    "Coalesce": _coalesce,
    "Nullif": _simple("nullif", "same"),
    "Trim": _trim,
    "Replace": _replace,
    "StrPosition": _strpos,
    "Least": _least_greatest,
    "Greatest": _least_greatest,
    "Count": _aggregate("count", "int"),
    "Sum": _aggregate("sum", "same"),
    "Avg": _aggregate("avg", "double"),
    "Min": _aggregate("min", "same"),
    "Max": _aggregate("max", "same"),
    "GroupConcat": _group_concat,
    "TimeToStr": _time_to_str,
    "Date": _date,
    "Anonymous": _anonymous,
    "Format": _format,
    "CurrentTimestamp": _current_timestamp,
}
# The PostgreSQL functions this module can emit (the fuzz test checks every output against it).
EMITTED_FUNCTIONS = frozenset(
    {
        "lower",
        "upper",
        "length",
        "substr",
        "substring",
        "abs",
        "sign",
        "round",
        "coalesce",
        "nullif",
        "btrim",
        "ltrim",
        "rtrim",
        "replace",
        "strpos",
        "least",
        "greatest",
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "string_agg",
        "to_char",
        "date_trunc",  # date modifiers 'start of day|month|year'
        "extract",  # julianday: EXTRACT(HOUR|MINUTE|MICROSECOND FROM ...)
        "floor",
        "mod",
        "trunc",
        "translate",  # COLLATE NOCASE: ASCII letters only, as SQLite folds them
    }
)


# -- queries (views) ------------------------------------------------------------------------
def query(
    node: Any, ctx: Context, parent: Scope | None, d: int = 0
) -> tuple[sql.Composable, list[tuple[str, Typed]]]:
    """A SELECT or a compound SELECT as PostgreSQL, with its output columns (name, typed)."""
    if d > MAX_DEPTH:
        raise UnsupportedError(f"query nested deeper than {MAX_DEPTH}")
    kind = _k(node)
    if kind in ("Union", "Except", "Intersect"):
        return _set_operation(node, ctx, parent, d + 1)
    if kind != "Select":
        raise UnsupportedError(f"node kind {kind} as a query")
    return _select(node, ctx, parent, d + 1)


_SET_OPS = {"Union": "UNION", "Except": "EXCEPT", "Intersect": "INTERSECT"}


def _set_operation(
    node: Any, ctx: Context, parent: Scope | None, d: int
) -> tuple[sql.Composable, list[tuple[str, Typed]]]:
    if node.args.get("with_") or node.args.get("with"):
        raise UnsupportedError("node kind With (common table expressions)")
    left, cols = query(node.this, ctx, parent, d)
    right, _ = query(node.expression, ctx, parent, d)
    op = _SET_OPS[_k(node)] + ("" if node.args.get("distinct") else " ALL")
    out: sql.Composable = sql.SQL("({}) " + op + " ({})").format(left, right)
    scope = Scope({}, parent, {name.lower(): t for name, t in cols})
    out = _order_limit(node, out, ctx, scope, d, cols)
    return out, cols


def _order_limit(
    node: Any,
    out: sql.Composable,
    ctx: Context,
    scope: Scope,
    d: int,
    cols: list[tuple[str, Typed]],
) -> sql.Composable:
    order = node.args.get("order")
    if order is not None:
        keys = []
        for o in order.expressions:
            key = _order_key(o.this, ctx, scope, d, cols)
            desc = bool(o.args.get("desc"))
            nulls_first = o.args.get("nulls_first")
            if nulls_first is None:
                nulls_first = not desc  # SQLite: NULLs sort first; PostgreSQL: last
            keys.append(
                sql.SQL("{} {} NULLS {}").format(
                    key,
                    sql.SQL("DESC" if desc else "ASC"),
                    sql.SQL("FIRST" if nulls_first else "LAST"),
                )
            )
        out = sql.SQL("{} ORDER BY {}").format(out, sql.SQL(", ").join(keys))
    for arg, word in (("limit", "LIMIT"), ("offset", "OFFSET")):
        part = node.args.get(arg)
        if part is None:
            continue
        value = part.expression if part.expression is not None else part.this
        if (
            _k(value) != "Literal"
            or value.is_string
            or not re.fullmatch(r"\d{1,18}", str(value.this))
        ):
            raise UnsupportedError(f"{word} other than a whole number")
        out = sql.SQL("{} " + word + " {}").format(out, sql.Literal(int(str(value.this))))
    return out


def _order_key(
    node: Any, ctx: Context, scope: Scope, d: int, cols: list[tuple[str, Typed]]
) -> sql.Composable:
    if _k(node) == "Literal" and not node.is_string and re.fullmatch(r"\d{1,4}", str(node.this)):
        return sql.Literal(int(str(node.this)))  # ORDER BY 2: the select list's position
    if _k(node) == "Column" and not node.table and str(node.name).lower() in scope.output:
        return _ident(ctx.rename(str(node.name)))
    return _sub(node, ctx, scope, d).sql


def _relation(
    node: Any, ctx: Context, parent: Scope | None, d: int
) -> tuple[str, Relation, sql.Composable]:
    """A FROM item: a table or view of the migration, or a subquery; (alias, relation, sql)."""
    exp = _exp()
    alias_node = node.args.get("alias")
    if alias_node is not None and alias_node.args.get("columns"):
        raise UnsupportedError("a FROM alias with a column list")
    alias = alias_node.name if alias_node is not None else None
    if isinstance(node, exp.Table):
        if node.args.get("catalog") or (node.args.get("db") and node.db.lower() != "main"):
            raise UnsupportedError(
                f"relation {shown(node.sql(dialect='sqlite'))} in another schema"
            )
        if (
            node.args.get("joins")
            or node.args.get("laterals")
            or not isinstance(node.this, exp.Identifier)
        ):
            raise UnsupportedError("a FROM item other than a plain table name")
        rel = ctx.relations.get(node.name.lower())
        if rel is None:
            raise UnsupportedError(
                f"relation {shown(node.name)}", "is not a table or view of this migration"
            )
        ref: sql.Composable = _ident(rel.target)
        if alias is not None:
            ref = sql.SQL("{} AS {}").format(ref, _ident(ctx.rename(alias)))
        return (alias or node.name), rel, ref
    if isinstance(node, exp.Subquery):
        if alias is None:
            alias = f"subquery{d}"
        body, cols = query(node.this, ctx, parent, d)
        rel = Relation(
            ctx.rename(alias),
            {n.lower(): (ctx.rename(n), t.kind) for n, t in cols},
            [n for n, _ in cols],
        )
        return alias, rel, sql.SQL("({}) AS {}").format(body, _ident(ctx.rename(alias)))
    raise UnsupportedError(f"node kind {_k(node)} in FROM")


_JOIN_SIDES = {"": "", "LEFT": "LEFT ", "RIGHT": "RIGHT ", "FULL": "FULL "}


def _select(
    node: Any, ctx: Context, parent: Scope | None, d: int
) -> tuple[sql.Composable, list[tuple[str, Typed]]]:
    allowed = {
        "expressions",
        "from_",
        "from",
        "joins",
        "where",
        "group",
        "having",
        "order",
        "limit",
        "offset",
        "distinct",
    }
    extra = sorted(k for k, v in node.args.items() if v and k not in allowed)
    if extra:
        raise UnsupportedError(f"SELECT with {', '.join(extra)}")
    scope = Scope({}, parent)
    parts: list[sql.Composable] = []
    from_node = node.args.get("from_") or node.args.get("from")
    if from_node is not None:
        alias, rel, ref = _relation(from_node.this, ctx, parent, d)
        scope.aliases[alias.lower()] = rel
        joins = [ref]
        for j in node.args.get("joins") or []:
            joins.append(_join(j, ctx, scope, parent, d))
        parts.append(sql.SQL("FROM {}").format(sql.SQL(" ").join(joins)))
    columns = _select_list(node, ctx, scope, d)
    distinct = node.args.get("distinct")
    if distinct is not None and distinct.args.get("on"):
        raise UnsupportedError("DISTINCT ON")
    head = sql.SQL("SELECT {}{}").format(
        sql.SQL("DISTINCT " if distinct is not None else ""),
        sql.SQL(", ").join(c for c, _ in columns),
    )
    where = node.args.get("where")
    if where is not None:
        parts.append(sql.SQL("WHERE {}").format(_truth(_sub(where.this, ctx, scope, d))))
    group = node.args.get("group")
    if group is not None:
        if any(group.args.get(k) for k in ("grouping_sets", "cube", "rollup")):
            raise UnsupportedError("GROUP BY with grouping sets")
        keys = [_order_key(g, ctx, scope, d, []) for g in group.expressions]
        parts.append(sql.SQL("GROUP BY {}").format(sql.SQL(", ").join(keys)))
    having = node.args.get("having")
    if having is not None:
        parts.append(sql.SQL("HAVING {}").format(_truth(_sub(having.this, ctx, scope, d))))
    out: sql.Composable = sql.SQL(" ").join([head, *parts])
    outputs = [(name, t) for (_, (name, t)) in columns]
    return _order_limit(node, out, ctx, scope, d, outputs), outputs


def _join(j: Any, ctx: Context, scope: Scope, parent: Scope | None, d: int) -> sql.Composable:
    if j.args.get("method"):
        raise UnsupportedError(f"{str(j.args['method']).upper()} JOIN")
    alias, rel, ref = _relation(j.this, ctx, parent, d)
    scope.aliases[alias.lower()] = rel
    side = str(j.args.get("side") or "").upper()
    kind = str(j.args.get("kind") or "").upper()
    on, using = j.args.get("on"), j.args.get("using")
    if side not in _JOIN_SIDES or kind not in ("", "INNER", "OUTER", "CROSS"):
        raise UnsupportedError(f"join {side} {kind}")
    if on is None and not using:
        if side:
            raise UnsupportedError(f"{side} JOIN without ON")
        return sql.SQL("CROSS JOIN {}").format(ref)
    head = sql.SQL(_JOIN_SIDES[side] + "JOIN {}").format(ref)
    if on is not None:
        return sql.SQL("{} ON {}").format(head, _truth(_sub(on, ctx, scope, d)))
    names = [_ident(ctx.rename(str(u.name))) for u in using]
    return sql.SQL("{} USING ({})").format(head, sql.SQL(", ").join(names))


def _select_list(
    node: Any, ctx: Context, scope: Scope, d: int
) -> list[tuple[sql.Composable, tuple[str, Typed]]]:
    exp = _exp()
    out: list[tuple[sql.Composable, tuple[str, Typed]]] = []
    for e in node.expressions:
        if isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star)):
            out.extend(_star(e, ctx, scope))
            continue
        if isinstance(e, exp.Alias):
            t = _sub(e.this, ctx, scope, d)
            name = str(e.alias)
            piece: sql.Composable = sql.SQL("{} AS {}").format(t.sql, _ident(ctx.rename(name)))
        else:
            t = _sub(e, ctx, scope, d)
            name = str(e.name) if isinstance(e, exp.Column) else e.sql(dialect="sqlite")
            piece = t.sql
            if not isinstance(e, exp.Column):  # SQLite names it by its text; so does the view
                piece = sql.SQL("{} AS {}").format(t.sql, _ident(ctx.rename(name)))
        scope.output[name.lower()] = t
        out.append((piece, (name, t)))
    return out


def _star(e: Any, ctx: Context, scope: Scope) -> list[tuple[sql.Composable, tuple[str, Typed]]]:
    exp = _exp()
    if isinstance(e, exp.Column):
        rel = scope.aliases.get(e.table.lower())
        if rel is None:
            raise UnsupportedError(f"relation {shown(e.table)} (not in the query's FROM)")
        rels = [(e.table, rel)]
    else:
        rels = list(scope.aliases.items())
    out: list[tuple[sql.Composable, tuple[str, Typed]]] = []
    for alias, rel in rels:
        for col in rel.order:
            target, kind = rel.columns[col.lower()]
            ref = sql.SQL("{}.{}").format(_ident(ctx.rename(alias)), _ident(target))
            out.append((ref, (col, Typed(ref, kind, _affinity_of_kind(kind)))))
    return out
