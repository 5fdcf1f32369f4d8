"""What the target's PostgreSQL major lacks, found before anything is written.

SQLite's `json_valid(X)` is rendered as SQL/JSON's `X IS JSON` (render.IS_JSON), which exists
from PostgreSQL 16 on; infra/config.py also allows 14 and 15. PostgreSQL 14/15 have no
expression that tells valid JSON text from invalid without raising (`pg_input_is_valid` is 16+
too), and a helper function of our own in the app's database would be an object the app does
not know, so every object that needs it is refused by name, naming the server's version,
before any DDL, unless the user skips it (`--skip`).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from migration import render
from migration.plan import Plan, Refusal, default_sql, generated_refusal
from migration.source import Source

IS_JSON_SINCE = 16  # SQL/JSON predicates (IS JSON) arrived in PostgreSQL 16


def server_major(conn: psycopg.Connection) -> int:
    """The target's PostgreSQL major version (e.g. 15 for 15.8)."""
    return conn.info.server_version // 10_000


def uses_is_json(stmt: sql.Composable | None) -> bool:
    """True when a rendered statement holds the IS JSON predicate (found by identity in the
    composed tree, never by searching text, which may hold the words inside a literal)."""
    if stmt is render.IS_JSON:
        return True
    if isinstance(stmt, sql.Composed):
        return any(uses_is_json(part) for part in stmt)
    return False


def json_refusals(plan: Plan, sources: list[Source], major: int) -> list[Refusal]:
    """Every view, CHECK, index, generated column and default that needs IS JSON, when the
    server's `major` lacks it (none from 16 on)."""
    if major >= IS_JSON_SINCE:
        return []
    why = (
        f"uses IS JSON (SQLite's json_valid), which needs PostgreSQL {IS_JSON_SINCE} or later; "
        f"the target runs PostgreSQL {major}"
    )
    found: list[Refusal] = []
    for tp in plan.tables:
        src = sources[tp.sources[0]]
        for col in tp.columns:
            what = f"{tp.table.name}.{col.source.name}"
            if col.source.generated:
                if not col.plain and uses_is_json(tp.generated.get(col.name)):
                    found.append(generated_refusal(tp, col, why))
            elif col.name not in tp.no_default and col.name != tp.identity:
                default, _note = default_sql(col, src)
                if uses_is_json(default):
                    found.append(Refusal(f"default:{what}", f"default of {what}", why))
        for step in tp.post:
            if uses_is_json(step.statement) or uses_is_json(step.validate):
                found.append(Refusal(step.key, step.what, why))
    for name, _target, query, _error in plan.views:
        if uses_is_json(query):
            found.append(Refusal(f"view:{name}", f"view {name!r}", why))
    return found
