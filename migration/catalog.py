"""Read the target's own schema from PostgreSQL's catalog (`--schema existing`).

Tables, columns and their types (pg_attribute, pg_type, pg_enum; domains resolved to their
base type), primary keys, the secondary indexes and foreign keys a load may drop and recreate
(their definitions from pg_get_indexdef/pg_get_constraintdef), the tables that reference a
table, and the sequences behind serial and identity columns. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import LiteralString

import psycopg
from psycopg import sql

from migration.convert import TypeSpec

DOMAIN_DEPTH_MAX = 32  # domains over domains: far more than any schema nests


@dataclass(frozen=True)
class TargetColumn:
    """One column of an existing target table."""

    name: str
    type: TypeSpec
    notnull: bool
    has_default: bool  # a DEFAULT, a serial's nextval, an identity, or a domain default
    identity: str  # '' , 'a' (ALWAYS) or 'd' (BY DEFAULT)
    generated: bool  # GENERATED ALWAYS AS (...) STORED: PostgreSQL computes it


@dataclass(frozen=True)
class TargetTable:
    """An existing table of the target, found under the connection's search_path."""

    oid: int
    schema: str
    name: str
    columns: tuple[TargetColumn, ...]
    pk: tuple[str, ...]

    @property
    def ident(self) -> sql.Identifier:
        """The schema-qualified name."""
        return sql.Identifier(self.schema, self.name)

    def column(self, name: str) -> TargetColumn | None:
        """The column called exactly `name`."""
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class Rebuilt:
    """A secondary index or foreign key dropped for the load and recreated after it."""

    kind: str  # index, fk
    name: str
    table: str  # the table's schema-qualified name, for messages
    schema: str
    relation: str  # the table's name (fk) or the index's name (index)
    definition: str  # pg_get_indexdef / pg_get_constraintdef, from the target itself


def find_table(conn: psycopg.Connection, name: str) -> TargetTable | None:
    """The table `name` (an exact, unquoted-as-given name) visible on the search_path."""
    row = conn.execute(
        "SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
        (sql.Identifier(name).as_string(conn),),
    ).fetchone()
    if row is None:
        return None
    oid, schema, relname, relkind = int(row[0]), str(row[1]), str(row[2]), str(row[3])
    if relkind not in ("r", "p"):
        return None
    return TargetTable(oid, schema, relname, _columns(conn, oid), _pk(conn, oid))


def relation_kind(conn: psycopg.Connection, name: str) -> str | None:
    """pg_class.relkind of a visible relation called `name`, or None."""
    row = conn.execute(
        "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)",
        (sql.Identifier(name).as_string(conn),),
    ).fetchone()
    return None if row is None else str(row[0])


def _columns(conn: psycopg.Connection, oid: int) -> tuple[TargetColumn, ...]:
    rows = conn.execute(
        "SELECT a.attname, a.atttypid, a.atttypmod, a.attnotnull, a.atthasdef, a.attidentity, "
        "a.attgenerated FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0 "
        "AND NOT a.attisdropped ORDER BY a.attnum",
        (oid,),
    ).fetchall()
    out = []
    for name, typid, typmod, notnull, hasdef, identity, generated in rows:
        spec, dom_notnull, dom_default = type_spec(conn, int(typid), int(typmod))
        out.append(
            TargetColumn(
                str(name),
                spec,
                bool(notnull) or dom_notnull,
                bool(hasdef) or bool(identity) or dom_default,
                str(identity or ""),
                bool(generated),
            )
        )
    return tuple(out)


def type_spec(conn: psycopg.Connection, typid: int, typmod: int) -> tuple[TypeSpec, bool, bool]:
    """The column type with domains resolved, and whether a domain adds NOT NULL / a default."""
    shown = _one(conn, "SELECT format_type(%s, %s)", (typid, typmod))
    notnull = has_default = False
    for _ in range(DOMAIN_DEPTH_MAX):
        row = conn.execute(
            "SELECT typname, typtype, typcategory, typbasetype, typtypmod, typelem, typnotnull, "
            "typdefault IS NOT NULL FROM pg_type WHERE oid = %s",
            (typid,),
        ).fetchone()
        if row is None:  # pragma: no cover - a column's type always exists
            raise psycopg.ProgrammingError(f"type {typid} not found")
        name, typtype, category, base, base_mod, elem, dom_nn, dom_def = row
        if typtype != "d":
            break
        notnull, has_default = notnull or bool(dom_nn), has_default or bool(dom_def)
        typid, typmod = int(base), typmod if typmod >= 0 else int(base_mod)
    labels: tuple[str, ...] = ()
    if typtype == "e":
        labels = tuple(
            str(r[0])
            for r in conn.execute(
                "SELECT enumlabel FROM pg_enum WHERE enumtypid = %s ORDER BY enumsortorder",
                (typid,),
            )
        )
    element = None
    if category == "A" and int(elem):
        element = type_spec(conn, int(elem), typmod)[0]
    spec = TypeSpec(
        str(name),
        str(shown),
        typmod,
        str(category),
        labels,
        element,
        int(elem) if element else 0,
    )
    return spec, notnull, has_default


def _one(conn: psycopg.Connection, query: LiteralString, params: tuple[object, ...]) -> str:
    row = conn.execute(query, params).fetchone()
    return str(row[0]) if row else ""


def _pk(conn: psycopg.Connection, oid: int) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_constraint c "
        "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
        "WHERE c.conrelid = %s AND c.contype = 'p' ORDER BY k.ord",
        (oid,),
    ).fetchall()
    return tuple(str(r[0]) for r in rows)


def has_rows(conn: psycopg.Connection, table: TargetTable) -> bool:
    """True if the table holds at least one row."""
    row = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(table.ident)).fetchone()
    return bool(row and row[0])


def referencing(conn: psycopg.Connection, oids: list[int]) -> list[tuple[str, str, int]]:
    """Foreign keys pointing at any of `oids`: (constraint, referencing table, its oid)."""
    rows = conn.execute(
        "SELECT c.conname, c.conrelid::regclass::text, c.conrelid FROM pg_constraint c "
        "WHERE c.contype = 'f' AND c.confrelid = ANY(%s) ORDER BY 2, 1",
        (oids,),
    ).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def secondary_indexes(conn: psycopg.Connection, oids: list[int]) -> list[Rebuilt]:
    """Indexes of `oids` that no constraint owns or uses, recreatable from their definition.

    Left in place (never dropped): primary key, UNIQUE and exclusion constraints' indexes, any
    index a foreign key relies on, invalid ones, clustered or replica-identity ones, indexes
    in another tablespace or with a comment (pg_get_indexdef does not carry those)."""
    rows = conn.execute(
        "SELECT n.nspname, ic.relname, i.indrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
        "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = ic.relnamespace "
        "WHERE i.indrelid = ANY(%s) AND ic.relkind = 'i' AND NOT i.indisprimary "
        "AND i.indisvalid AND i.indisready AND i.indislive AND NOT i.indisclustered "
        "AND NOT i.indisreplident AND ic.reltablespace = 0 "
        "AND obj_description(i.indexrelid, 'pg_class') IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
        "ORDER BY i.indrelid, ic.relname",
        (oids,),
    ).fetchall()
    return [Rebuilt("index", str(r[1]), str(r[2]), str(r[0]), str(r[1]), str(r[3])) for r in rows]


def foreign_keys(conn: psycopg.Connection, oids: list[int]) -> list[Rebuilt]:
    """Foreign keys declared on `oids` (not inherited from a partitioned parent, no comment)."""
    rows = conn.execute(
        "SELECT n.nspname, c.conname, t.relname, c.conrelid::regclass::text, "
        "pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE c.contype = 'f' AND c.conrelid = ANY(%s) AND c.conparentid = 0 "
        "AND obj_description(c.oid, 'pg_constraint') IS NULL ORDER BY c.conrelid, c.conname",
        (oids,),
    ).fetchall()
    return [Rebuilt("fk", str(r[1]), str(r[3]), str(r[0]), str(r[2]), str(r[4])) for r in rows]


def key_constraints(
    conn: psycopg.Connection, oids: list[int], dropped_fks: list[str]
) -> list[Rebuilt]:
    """PRIMARY KEY and UNIQUE constraints of `oids` that can be rebuilt after the load: not on
    a partitioned table, no comment, an ordinary index (not clustered, not the replica
    identity), and no foreign key outside `dropped_fks` relying on their index."""
    rows = conn.execute(
        "SELECT n.nspname, c.conname, t.relname, c.conrelid::regclass::text, "
        "pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "JOIN pg_index i ON i.indexrelid = c.conindid "
        "WHERE c.contype IN ('p', 'u') AND c.conrelid = ANY(%s) AND t.relkind = 'r' "
        "AND NOT i.indisclustered AND NOT i.indisreplident "
        "AND obj_description(c.oid, 'pg_constraint') IS NULL "
        "AND obj_description(c.conindid, 'pg_class') IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' "
        "AND f.conindid = c.conindid AND NOT (f.conname = ANY(%s) AND f.conrelid = ANY(%s))) "
        "ORDER BY c.conrelid, c.contype, c.conname",
        (oids, dropped_fks, oids),
    ).fetchall()
    return [Rebuilt("key", str(r[1]), str(r[3]), str(r[0]), str(r[2]), str(r[4])) for r in rows]


def triggers(conn: psycopg.Connection, oids: list[int]) -> list[tuple[str, str]]:
    """(table, trigger) for the app's own enabled row triggers on `oids` (they fire during COPY)."""
    rows = conn.execute(
        "SELECT t.tgrelid::regclass::text, t.tgname FROM pg_trigger t WHERE t.tgrelid = ANY(%s) "
        "AND NOT t.tgisinternal AND t.tgenabled <> 'D' ORDER BY 1, 2",
        (oids,),
    ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def definitions(conn: psycopg.Connection, oids: list[int]) -> dict[str, str]:
    """Every index and constraint definition of `oids`, keyed by name (for before/after checks)."""
    rows = conn.execute(
        "SELECT 'index ' || ic.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = ANY(%s) "
        "UNION ALL SELECT 'constraint ' || c.conname, pg_get_constraintdef(c.oid) || "
        "CASE WHEN c.condeferrable THEN ' [deferrable]' ELSE '' END || "
        "CASE WHEN c.convalidated THEN '' ELSE ' [not valid]' END "
        "FROM pg_constraint c WHERE c.conrelid = ANY(%s)",
        (oids, oids),
    ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def sequences(conn: psycopg.Connection, table: TargetTable) -> list[tuple[str, str, str]]:
    """(column, sequence schema, sequence name) for every serial or identity column."""
    rows = conn.execute(
        "SELECT a.attname, n.nspname, s.relname FROM pg_attribute a "
        "CROSS JOIN LATERAL pg_get_serial_sequence(format('%%I.%%I', %s::text, %s::text), "
        "a.attname) AS g(seq) JOIN pg_class s ON s.oid = g.seq::regclass "
        "JOIN pg_namespace n ON n.oid = s.relnamespace "
        "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (table.schema, table.name, table.oid),
    ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]
