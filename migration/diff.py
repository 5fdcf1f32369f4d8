"""Which rows differ when a table's counts or checksums do not match (the mismatch report).

Only run on a mismatch: every source row's key and hash (the very canonical text `verify`
hashes) is copied into a temporary table, and PostgreSQL finds the keys whose row is missing
on one side or differs, the first `limit` of them in key order. Memory stays at one batch.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable

import psycopg
from psycopg import sql

from migration import plan as planmod
from migration import verify
from migration.plan import Plan, TablePlan
from migration.source import Source

KEYS_LISTED = 10  # differing keys named per table in a mismatch report
ROWS_TABLE = "petstore_verify_rows"
Remap = Callable[[list[list[object]]], None] | None


def _key_positions(tp: TablePlan) -> list[int]:
    names = [c.name for c in tp.columns]
    return [names.index(k) for k in tp.pk]


def copy_source_rows(
    conn: psycopg.Connection, table: str, src: Source, tp: TablePlan, remap: Remap
) -> None:
    """(key, shown key, row hash) of every row of one source into the temp table."""
    hasher = verify.Hasher(tp)
    keys = _key_positions(tp)
    cols = tp.columns
    stmt = sql.SQL("COPY {} (k, shown, h) FROM STDIN").format(sql.Identifier(table))
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        for columns in verify.source_columns(src, tp, remap):
            texts = list(hasher.texts(columns))
            for i, text in enumerate(texts):
                digest = hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()
                if keys:
                    values = [columns[p][i] for p in keys]
                    key = verify.SEP.join(
                        cols[p].canon(v) for p, v in zip(keys, values, strict=True)
                    )
                    shown = ",".join("NULL" if v is None else str(v) for v in values)
                else:
                    key, shown = digest, text[:60]
                copy.write_row((key, shown, digest))


def differing_keys(
    conn: psycopg.Connection,
    plan: Plan,
    tp: TablePlan,
    sources: list[Source],
    remaps: dict[int, Remap],
    limit: int = KEYS_LISTED,
) -> list[str]:
    """Up to `limit` keys (rows, for a table without a primary key) whose row differs, each
    with how: `differs`, `missing in the target`, `only in the target`; shorter keys first
    (integers in numeric order)."""
    table = planmod.temp_name(plan, ROWS_TABLE)
    ident = sql.Identifier(table)
    with conn.transaction():  # a savepoint: the temp table goes, whatever happens
        conn.execute(sql.SQL("CREATE TEMP TABLE {} (k text, shown text, h text)").format(ident))
        for idx in tp.sources:
            copy_source_rows(conn, table, sources[idx], tp, remaps.get(idx))
        conn.execute(sql.SQL("CREATE INDEX ON {} (k)").format(ident))
        pos = _key_positions(tp)
        row_hash = verify.pg_row_hash(tp.columns, "t", verify.utf8_bytes(conn))
        key: sql.Composable
        shown: sql.Composable
        if pos:
            key = sql.SQL("concat_ws({}, {})").format(
                sql.Literal(verify.SEP),
                sql.SQL(", ").join(verify.pg_canon(tp.columns[p], "t") for p in pos),
            )
            shown = sql.SQL("concat_ws(',', {})").format(
                sql.SQL(", ").join(
                    sql.SQL("coalesce({}::text, 'NULL')").format(
                        sql.Identifier("t", tp.columns[p].name)
                    )
                    for p in pos
                )
            )
        else:
            key = row_hash
            shown = sql.SQL("left({}, 60)").format(verify.pg_row_text(tp.columns, "t"))
        query = sql.SQL(
            "SELECT shown, array_agg(DISTINCT side ORDER BY side) FROM ("
            " SELECT s.k, s.shown, 'source' AS side FROM (SELECT DISTINCT k, shown, h FROM {s})"
            " s WHERE NOT EXISTS (SELECT 1 FROM {t} t WHERE {key} = s.k AND {h} = s.h)"
            " UNION ALL"
            " SELECT {key}, {shown}, 'target' FROM {t} t WHERE NOT EXISTS"
            " (SELECT 1 FROM {s} s WHERE s.k = {key} AND s.h = {h})"
            ') d GROUP BY k, shown ORDER BY length(k), k COLLATE "C" LIMIT %s'
        ).format(s=ident, t=sql.Identifier(tp.target), key=key, h=row_hash, shown=shown)
        utf8 = verify.utf8_session(conn)  # an array's text elements rendered as Python does
        with verify.settings(conn, utf8) if utf8 else contextlib.nullcontext():
            rows = conn.execute(query, (limit,)).fetchall()
        conn.execute(sql.SQL("DROP TABLE {}").format(ident))
    how = {
        ("source", "target"): "differs",
        ("source",): "missing in the target",
        ("target",): "only in the target",
    }
    return [f"{shown} ({how.get(tuple(sides), 'differs')})" for shown, sides in rows]
