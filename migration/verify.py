"""Row counts and content checksums, computed identically on both sides.

Each row is rendered canonically (typemap.canon_* in Python, the SQL below in PostgreSQL:
integers as decimal text, floats as the hex of their IEEE-754 bits, text length-prefixed,
bytea as hex, booleans t/f, timestamps to the microsecond, NULL as \\N), joined with U+001F
and hashed with MD5. A table's checksum is the exact sum of the first 120 bits of its row
hashes: every row's hash covers its key, so equal sums mean equal rows, whatever the order,
and the sum needs constant memory on both sides (and combines across several sources).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from migration.plan import TablePlan
from migration.source import Source, qi
from migration.typemap import ColumnPlan

SEP = "\x1f"
CHUNK_BITS = 60  # PostgreSQL sums two 60-bit (15 hex digit) halves: they fit a bigint
BATCH_ROWS = 10_000
_md5 = hashlib.md5


@dataclass
class Sum:
    """Row count and checksum of one table (or part of one)."""

    rows: int = 0
    checksum: int = 0

    def __add__(self, other: Sum) -> Sum:
        return Sum(self.rows + other.rows, self.checksum + other.checksum)

    def __sub__(self, other: Sum) -> Sum:
        return Sum(self.rows - other.rows, self.checksum - other.checksum)

    def short(self) -> str:
        """The checksum as 30 hex digits (for reports)."""
        return format(self.checksum % (1 << 120), "030x")


_PG_CANON = {
    "int": "{c}::text",
    "double": "encode(float8send({c}), 'hex')",
    "text": "length({c})::text || ':' || {c}",
    "bytea": "encode({c}, 'hex')",
    "bool": "CASE WHEN {c} THEN 't' WHEN NOT {c} THEN 'f' END",
    "numeric": "{c}::text",
    "timestamp": "to_char({c}, 'YYYY-MM-DD HH24:MI:SS.US')",
    "date": "to_char({c}, 'YYYY-MM-DD')",
}


def pg_canon(col: ColumnPlan, alias: str | None = None) -> sql.Composable:
    """The SQL rendering of one column, matching `col.canon` in Python."""
    ident: sql.Composable = sql.Identifier(alias, col.name) if alias else sql.Identifier(col.name)
    return sql.SQL("coalesce(" + _PG_CANON[col.kind] + ", {null})").format(
        c=ident, null=sql.Literal("\\N")
    )


def pg_row_hash(cols: list[ColumnPlan], alias: str | None = None) -> sql.Composable:
    """md5 of the canonical row."""
    return sql.SQL("md5(concat_ws({sep}, {parts}))").format(
        sep=sql.Literal(SEP), parts=sql.SQL(", ").join(pg_canon(c, alias) for c in cols)
    )


def pg_sum_of(hash_expr: sql.Composable, from_clause: sql.Composable) -> sql.Composed:
    """SELECT count and the two 60-bit partial sums of `hash_expr` over `from_clause`."""
    return sql.SQL(
        "SELECT count(*), coalesce(sum(('x' || substr(h, 1, 15))::bit(60)::bigint), 0),"
        " coalesce(sum(('x' || substr(h, 16, 15))::bit(60)::bigint), 0)"
        " FROM (SELECT {h} AS h FROM {f}) AS rows_"
    ).format(h=hash_expr, f=from_clause)


def fetch_sum(conn: psycopg.Connection, query: sql.Composed) -> Sum:
    """Run a `pg_sum_of` query."""
    row = conn.execute(query).fetchone()
    if row is None:  # pragma: no cover - an aggregate always returns one row
        return Sum()
    return Sum(int(row[0]), (int(row[1]) << CHUNK_BITS) + int(row[2]))


def target_sum(conn: psycopg.Connection, tp: TablePlan) -> Sum:
    """Count and checksum of the target table."""
    return fetch_sum(conn, pg_sum_of(pg_row_hash(tp.columns), sql.Identifier(tp.target)))


def source_sum(
    src: Source, tp: TablePlan, remap: Callable[[list[list[object]]], None] | None = None
) -> Sum:
    """Count and checksum of one source's table, values converted exactly as they are loaded."""
    st = src.schema.table(tp.table.name)
    cols = tp.columns
    select = ", ".join(
        c.select.replace(qi(c.source.name), qi(st.column(c.source.name).name)) for c in cols
    )
    checks = [c.check for c in cols]
    canons = [c.canon for c in cols]
    total = Sum()
    query = f"SELECT {select} FROM {qi(st.name)}"  # noqa: S608 - identifiers quoted by qi(); read-only SQLite source
    for batch in src.batches(query, BATCH_ROWS):
        columns = [
            list(map(f, col)) for f, col in zip(checks, zip(*batch, strict=True), strict=True)
        ]
        if remap is not None:
            remap(columns)
        rendered = [list(map(f, col)) for f, col in zip(canons, columns, strict=True)]
        acc = 0
        for text in map(SEP.join, zip(*rendered, strict=True)):
            acc += int.from_bytes(_md5(text.encode()).digest()[:15], "big")
        total = total + Sum(len(batch), acc)
    return total
