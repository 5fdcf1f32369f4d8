"""The row-by-row baseline: psycopg 3 `executemany` of one INSERT per row, committed once.

Run as its own subprocess by run.py (so its RSS is measured alone):
    python bench/baseline.py --source FILE --target URL --kind pets --table pets --rows N
The target table is pre-created from the reference DDL; rows stream from SQLite in id order.
"""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Iterator

import generate
import psycopg
from psycopg import sql


def _rows(source: str, table: str, columns: list[str], limit: int) -> Iterator[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        query = "SELECT {} FROM {} ORDER BY rowid LIMIT ?".format(
            ", ".join(f'"{c}"' for c in columns), f'"{table}"'
        )
        yield from conn.execute(query, (limit,))
    finally:
        conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--kind", default="pets")
    parser.add_argument("--table", default="pets")
    parser.add_argument("--rows", type=int, default=-1, help="-1: all rows")
    args = parser.parse_args()

    src = sqlite3.connect(f"file:{args.source}?mode=ro", uri=True)
    try:
        columns = [r[1] for r in src.execute(f'PRAGMA table_info("{args.table}")')]
    finally:
        src.close()
    insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(args.table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    with psycopg.connect(args.target) as conn:
        conn.execute(generate.pg_ddl(args.kind, args.table))
        with conn.cursor() as cur:
            cur.executemany(insert, _rows(args.source, args.table, columns, args.rows))
        conn.commit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
