"""Did a load carry the data over? Row counts, every value (compared exactly, in key order),
and the resulting column types and NOT NULLs against the reference schema.

A `real` (float4) column is read back as `float8`, so a value that lost precision shows as
a mismatch instead of being hidden by float4's short text form.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg
from psycopg import sql

FETCH_ROWS = 20_000  # server-side cursor batch: bounded memory on 10M-row checks

COLUMNS_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = %s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY n.nspname = 'public' DESC, n.nspname, a.attnum
"""

Column = tuple[str, str, bool]  # name, type, NOT NULL


@dataclass
class TableCheck:
    """The outcome for one table."""

    table: str
    expected_rows: int
    actual_rows: int | None = None  # None: the table is missing
    compared_rows: int = 0  # rows compared value by value (0: counts only)
    mismatched_rows: int = 0
    first_mismatch: str | None = None
    schema_changes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.actual_rows == self.expected_rows and self.mismatched_rows == 0


@dataclass
class Check:
    """The outcome for one load."""

    tables: list[TableCheck]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    def summary(self) -> str:
        rows = sum(t.actual_rows or 0 for t in self.tables)
        expected = sum(t.expected_rows for t in self.tables)
        compared = sum(t.compared_rows for t in self.tables)
        bad = sum(t.mismatched_rows for t in self.tables)
        missing = [t.table for t in self.tables if t.actual_rows is None]
        if missing:
            return f"FAIL: missing table(s) {', '.join(missing)}"
        if rows != expected:
            return f"FAIL: {rows:,} rows, expected {expected:,}"
        if bad:
            return f"FAIL: {bad:,} of {compared:,} rows differ"
        if compared:
            return f"ok: {rows:,} rows, all values identical"
        return f"ok: {rows:,} rows (counts only)"

    def schema_changes(self) -> list[str]:
        return [f"{t.table}.{c}" for t in self.tables for c in t.schema_changes]


def table_columns(conn: psycopg.Connection[tuple[object, ...]], table: str) -> list[Column]:
    rows = conn.execute(COLUMNS_SQL, (table,)).fetchall()
    seen: dict[str, Column] = {}
    for name, typ, notnull in rows:
        seen.setdefault(str(name), (str(name), str(typ), bool(notnull)))
    return list(seen.values())


def reference_columns(
    url: str, ddl: dict[str, str], password: str | None = None
) -> dict[str, list[Column]]:
    """Create the reference tables in the (scratch) database at `url` and read their columns."""
    out: dict[str, list[Column]] = {}
    with psycopg.connect(url, password=password, autocommit=True) as conn:
        for table, create in ddl.items():
            conn.execute(create)  # type: ignore[call-overload]
            out[table] = table_columns(conn, table)
    return out


FK_SQL = """
SELECT count(*), count(*) FILTER (WHERE NOT con.convalidated)
FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
WHERE c.relname = %s AND con.contype = 'f'
"""
INDEX_SQL = """
SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relname = %s AND NOT i.indisprimary
"""
SEQUENCE_SQL = """
SELECT pg_get_serial_sequence(quote_ident(%s), %s)
"""


def _objects(
    src: sqlite3.Connection,
    conn: psycopg.Connection[tuple[object, ...]],
    table: str,
) -> list[str]:
    """Foreign keys, indexes and the id sequence: what the schema-creating tools carried over."""
    changes: list[str] = []
    want_fks = len({r[0] for r in src.execute(f'PRAGMA foreign_key_list("{table}")')})
    row = conn.execute(FK_SQL, (table,)).fetchone()
    got_fks, not_valid = (int(row[0]), int(row[1])) if row else (0, 0)
    if got_fks != want_fks or not_valid:
        extra = f" ({not_valid} NOT VALID)" if not_valid else ""
        changes.append(f"foreign keys: {want_fks} in SQLite -> {got_fks}{extra}")
    # Explicit indexes and UNIQUE constraints (sqlite_autoindex_*), not the rowid key.
    want_idx = sum(1 for r in src.execute(f'PRAGMA index_list("{table}")') if r[3] != "pk")
    row = conn.execute(INDEX_SQL, (table,)).fetchone()
    got_idx = int(row[0]) if row else 0
    if got_idx != want_idx:
        changes.append(f"indexes: {want_idx} in SQLite -> {got_idx}")
    info = src.execute(f'PRAGMA table_info("{table}")').fetchall()
    pk = [r for r in info if r[5]]
    if len(pk) == 1 and str(pk[0][2]).upper() == "INTEGER":
        key = str(pk[0][1]).lower()
        seq_row = conn.execute(SEQUENCE_SQL, (table, key)).fetchone()
        seq = seq_row[0] if seq_row else None
        if seq is None:
            changes.append(f"{key}: no sequence or identity (an INSERT without {key} fails)")
        else:
            # The next value the app gets must be past every id SQLite ever handed out.
            ids = src.execute(f'SELECT max("{key}") FROM "{table}"').fetchone()
            used = int(ids[0] or 0) if ids else 0
            with contextlib.suppress(sqlite3.Error):
                row_seq = src.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)
                ).fetchone()
                used = max(used, int(row_seq[0]) if row_seq else 0)
            state = conn.execute(
                sql.SQL("SELECT last_value, is_called FROM {}").format(
                    sql.Identifier(*str(seq).replace('"', "").split("."))
                )
            ).fetchone()
            if state is not None:
                nxt = int(state[0]) + (1 if state[1] else 0)
                if nxt <= used:
                    changes.append(
                        f"{key}: sequence would hand out {nxt}, already used (max {used})"
                    )
    return changes


def _canon(value: object) -> object:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return text + (f".{value.microsecond:06d}" if value.microsecond else "")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _diff(expected: tuple[object, ...], actual: tuple[object, ...]) -> bool:
    if expected == actual:
        return False
    return any(_canon(e) != _canon(a) for e, a in zip(expected, actual, strict=True))


def _why(want: Column | None, got: Column | None) -> str:
    if want is None or got is None:
        return ""
    reasons = []
    if want[1] != got[1]:
        lossy = want[1] == "double precision" and got[1] == "real"
        reasons.append("float4: values rounded" if lossy else "type changed")
    if want[2] and not got[2]:
        reasons.append("NOT NULL dropped")
    if got[2] and not want[2]:
        reasons.append("NOT NULL added")
    return f"  ({', '.join(reasons)})"


def _describe(col: Column | None) -> str:
    if col is None:
        return "(missing)"
    return f"{col[1]}{' NOT NULL' if col[2] else ''}"


def check_load(
    source: str,
    url: str,
    tables: dict[str, int],
    reference: dict[str, list[Column]],
    *,
    values: bool = True,
    limit: int | None = None,
    password: str | None = None,
    objects: bool = False,
) -> Check:
    """Compare the SQLite file `source` with the database at `url`, table by table.

    `tables` maps each table to its expected row count; `limit` restricts the value
    comparison to the first `limit` rows in key order (a partial load, e.g. the baseline);
    `objects` also compares foreign keys, indexes and the id sequence (tools that create the
    schema themselves).
    """
    checks: list[TableCheck] = []
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        with psycopg.connect(url, password=password) as conn:
            for table, expected in tables.items():
                check = TableCheck(table, expected if limit is None else min(limit, expected))
                checks.append(check)
                columns = table_columns(conn, table)
                if not columns:
                    continue
                by_name = {c[0]: c for c in columns}
                ref = {c[0]: c for c in reference.get(table, [])}
                for name in dict.fromkeys([*ref, *by_name]):
                    want, got = ref.get(name), by_name.get(name)
                    if want is None or got is None or want[1:] != got[1:]:
                        change = f"{name}: {_describe(want)} -> {_describe(got)}"
                        check.schema_changes.append(change + _why(want, got))
                if objects:
                    check.schema_changes += _objects(src, conn, table)
                ident = sql.Identifier(table)
                count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
                check.actual_rows = int(count[0]) if count else 0
                if values:
                    _compare_values(src, conn, check, columns, limit)
    finally:
        src.close()
    return Check(checks)


def _compare_values(
    src: sqlite3.Connection,
    conn: psycopg.Connection[tuple[object, ...]],
    check: TableCheck,
    columns: list[Column],
    limit: int | None,
) -> None:
    table = check.table
    info = src.execute(f'PRAGMA table_info("{table}")').fetchall()
    names = [str(r[1]) for r in info]
    keys = [str(r[1]) for r in sorted((r for r in info if r[5]), key=lambda r: int(r[5]))]
    keys = keys or ["rowid"]
    types = {c[0]: c[1] for c in columns}
    present = [n for n in names if n.lower() in types]
    if len(present) != len(names):
        check.mismatched_rows = check.expected_rows
        check.first_mismatch = f"columns missing: {sorted(set(names) - set(present))}"
        return
    select = sql.SQL(", ").join(
        sql.SQL("{}::float8").format(sql.Identifier(n.lower()))
        if types[n.lower()] == "real"
        else sql.Identifier(n.lower())
        for n in names
    )
    order = sql.SQL(", ").join(sql.Identifier(k.lower()) for k in keys)
    lim = sql.SQL("") if limit is None else sql.SQL(" LIMIT {}").format(sql.Literal(limit))
    pg_query = sql.SQL("SELECT {} FROM {} ORDER BY {}{}").format(
        select, sql.Identifier(table), order, lim
    )
    quoted = ", ".join(f'"{n}"' for n in names)
    order_src = ", ".join(f'"{k}"' for k in keys)
    lite_query = f'SELECT {quoted} FROM "{table}" ORDER BY {order_src}'
    if limit is not None:
        lite_query += f" LIMIT {int(limit)}"
    lite = src.execute(lite_query)
    with conn.transaction(), conn.cursor(name=f"bench_check_{table}") as cur:
        cur.itersize = FETCH_ROWS
        cur.execute(pg_query)
        for got in cur:
            want = lite.fetchone()
            check.compared_rows += 1
            if want is None or _diff(tuple(want), tuple(got)):
                check.mismatched_rows += 1
                if check.first_mismatch is None:
                    check.first_mismatch = f"row {check.compared_rows}: {want!r} -> {got!r}"
        while lite.fetchone() is not None:
            check.compared_rows += 1
            check.mismatched_rows += 1
