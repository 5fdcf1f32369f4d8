"""Row counts and content checksums, computed identically on both sides.

Each row is rendered canonically (typemap.canon_* in Python, the SQL below in PostgreSQL:
integers as decimal text, floats as the hex of their IEEE-754 bits, text length-prefixed,
bytea as hex, booleans t/f, timestamps to the microsecond, NULL as \\N), joined with U+001F
and hashed with MD5. A table's checksum is the exact sum of its rows' 128-bit hashes: every
row's hash covers its key, so equal sums mean equal rows, whatever the order, and the sum
needs constant memory on both sides (and combines across several sources). PostgreSQL sums
the hash in three bigint-sized slices (60 + 60 + 8 bits) that Python recombines.
"""

from __future__ import annotations

import hashlib
import operator
import struct
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from migration import typemap
from migration.plan import TablePlan
from migration.source import Source, qi
from migration.typemap import ColumnPlan

SEP = "\x1f"
# The 128-bit hash as bit(128), cast once per row, summed in three bigint-sized slices
# (bits 127-68, 67-8, 7-0): shifts and casts of one bit string, no text slicing.
_BITS = "('x' || {h})::bit(128)"
_SUMS = (
    "count(*), coalesce(sum({b}::bit(60)::bigint), 0),"
    " coalesce(sum(({b} << 60)::bit(60)::bigint), 0),"
    " coalesce(sum(({b} << 120)::bit(8)::int), 0)"
)
BATCH_ROWS = 10_000
GATHER_ROW_COST = "0.01"  # parallel_tuple_cost while hashing a target table (default 0.1)
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
        """The checksum as 32 hex digits (for reports)."""
        return format(self.checksum % (1 << 128), "032x")


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
    """SELECT count and the partial sums of `hash_expr` (an md5 hex) over `from_clause`.

    `OFFSET 0` keeps the subquery from being flattened: flattened, PostgreSQL would compute the
    row hash once per slice (three times per row)."""
    return sql.SQL("SELECT {sums} FROM (SELECT {b} AS b FROM {f} OFFSET 0) AS rows_").format(
        sums=sql.SQL(_SUMS.format(b="b")), b=sql.SQL(_BITS).format(h=hash_expr), f=from_clause
    )


def sums_select(alias_column: str) -> sql.SQL:
    """The aggregate list of `pg_sum_of` over an md5-hex column (a fixed alias like `tw.fh`)."""
    return sql.SQL(_SUMS.format(b=_BITS.format(h=alias_column)))


def sum_from_row(row: tuple[object, ...] | None) -> Sum:
    """A Sum from the count and three partial sums."""
    if row is None:  # pragma: no cover - an aggregate always returns one row
        return Sum()
    count, high, middle, low = (int(str(v)) for v in row[:4])
    return Sum(count, (high << 68) + (middle << 8) + low)


def fetch_sum(conn: psycopg.Connection, query: sql.Composed) -> Sum:
    """Run a `pg_sum_of` query."""
    return sum_from_row(conn.execute(query).fetchone())


def target_sum(conn: psycopg.Connection, tp: TablePlan) -> Sum:
    """Count and checksum of the target table.

    PostgreSQL's cost model sees md5 and the renderings as nearly free, so it would rather hash
    every row in one process than ship the hashes from parallel workers: for this query only,
    gathering a row is made cheap (the workers see this transaction's rows)."""
    query = pg_sum_of(pg_row_hash(tp.columns), sql.Identifier(tp.target))
    row = conn.execute(
        "SELECT current_setting('parallel_tuple_cost'), "
        "set_config('parallel_tuple_cost', %s, true)",
        (GATHER_ROW_COST,),
    ).fetchone()
    total = fetch_sum(conn, query)
    if row is not None:
        conn.execute("SELECT set_config('parallel_tuple_cost', %s, true)", (row[0],))
    return total


def source_sum(
    src: Source, tp: TablePlan, remap: Callable[[list[list[object]]], None] | None = None
) -> Sum:
    """Count and checksum of one source's table, values converted exactly as they are loaded."""
    st = src.schema.table(tp.table.name)
    cols = tp.columns
    select = ", ".join(
        c.select.replace(qi(c.source.name), qi(st.column(c.source.name).name)) for c in cols
    )
    # The same conversions as the load: checks only where the load applies them.
    checks = [
        c.check if c.convert_on_load or c.needs_diagnosis or c.source.generated else None
        for c in cols
    ]
    hasher = Hasher(tp)
    query = f"SELECT {select} FROM {qi(st.name)}"  # noqa: S608 - identifiers quoted by qi(); read-only SQLite source
    for batch in src.batches(query, BATCH_ROWS):
        columns: list[list[object]] = [
            list(map(f, col)) if f is not None else list(col)
            for f, col in zip(checks, zip(*batch, strict=True), strict=True)
        ]
        if remap is not None:
            remap(columns)
        hasher.add(columns)
    return hasher.total


class Hasher:
    """Accumulates a table's Sum from column-wise batches of converted values (the load calls
    it on the batches it copies, so `run --verify` reads each first source only once)."""

    def __init__(self, tp: TablePlan) -> None:
        self.canons = [_COLUMN_CANON.get(c.kind) or _per_value(c.canon) for c in tp.columns]
        self.total = Sum()

    def add(self, columns: list[list[object]] | list[tuple[object, ...]]) -> None:
        """One batch, one sequence of values per column (in `tp.columns` order)."""
        rendered = [f(list(col)) for f, col in zip(self.canons, columns, strict=True)]
        texts = map(SEP.join, zip(*rendered, strict=True))
        acc = sum(map(int.from_bytes, map(_digest, map(_md5, map(str.encode, texts)))))
        self.total = self.total + Sum(len(rendered[0]) if rendered else 0, acc)


_digest = operator.methodcaller("digest")
_pack_double = struct.Struct(">d").pack
NULL = typemap.NULL_CANON


def _per_value(fn: Callable[[object], str]) -> Callable[[list[object]], list[str]]:
    return lambda col: list(map(fn, col))


def _canon_ints(col: list[object]) -> list[str]:
    return [NULL if v is None else str(v) for v in col]


def _canon_doubles(col: list[object]) -> list[str]:
    return [NULL if v is None else _pack_double(v).hex() for v in col]


def _canon_texts(col: list[object]) -> list[str]:
    return [NULL if v is None else f"{len(v)}:{v}" for v in col]  # type: ignore[arg-type]


def _canon_bytes(col: list[object]) -> list[str]:
    return [NULL if v is None else v.hex() for v in col]  # type: ignore[attr-defined]


# Column-at-a-time renderings of the common kinds (same output as typemap.canon_*).
_COLUMN_CANON: dict[str, Callable[[list[object]], list[str]]] = {
    "int": _canon_ints,
    "double": _canon_doubles,
    "text": _canon_texts,
    "bytea": _canon_bytes,
}
