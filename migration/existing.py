"""`--schema existing`: load into the tables the app's own migrations created.

The target's catalog is the contract: every source table must exist there; columns are
matched by name under the identifier policy (or `--map-column`), every value is converted to
the target column's type (`convert.py`) or refused, and the tool creates no table, column,
index or constraint of its own and runs no text taken from a source. For speed, the loaded
tables' keys, secondary indexes and foreign keys are dropped before COPY and recreated after it
from their own definitions (read from the target's catalog), in the same transaction; serial
and identity sequences are moved past the loaded ids. Tables already holding rows are
refused unless `--replace` (TRUNCATE, keeping the app's definitions) or `--keep TABLE` (the
target's rows stay, the source's are not loaded).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from migration import catalog, checkrows, convert, preflight
from migration import plan as planmod
from migration.catalog import Rebuilt, TargetTable
from migration.checkrows import Broken
from migration.errors import DataProblemError, Problem, TargetStateError, UsageError
from migration.log import Reporter
from migration.model import Column, Table
from migration.plan import Namer, Plan, TablePlan
from migration.source import Source, qi
from migration.typemap import ColumnPlan, ValueProblem

if TYPE_CHECKING:
    from migration.engine import Options

MODES = ("auto", "create", "existing")


class SchemaMismatchError(DataProblemError):
    """Sources and the app's schema do not match (exit 1); every mismatch is listed."""


@dataclass
class TargetColumnPlan(ColumnPlan):
    """A column loaded into the app's own column: the conversion comes from the target type."""

    pg_canon: str | None = None  # verification's SQL rendering when the kind's does not fit


@dataclass
class ExistingPlan(Plan):
    """A plan against the app's schema: the target tables and what is done around the load."""

    targets: dict[str, TargetTable] = field(default_factory=dict)  # by TablePlan.target
    kept: list[str] = field(default_factory=list)  # source tables whose target rows stay
    filled_by_default: list[str] = field(default_factory=list)
    sequences: dict[str, int] = field(default_factory=dict)  # table -> sqlite_sequence max
    mismatches: list[Problem] = field(default_factory=list)  # kept by `plan` (run refuses)
    app_keys: dict[str, preflight.Keys] = field(default_factory=dict)  # the app's, for preflight


@dataclass
class Prepared:
    """What `prepare` changed, so `finish` can put it back."""

    rebuilt: list[Rebuilt] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)


# -- options -------------------------------------------------------------------------------
def _pairs(items: list[str], flag: str, example: str) -> list[tuple[str, str, str]]:
    out = []
    for item in items:
        left, eq, right = item.partition("=")
        table, dot, column = left.rpartition(".")
        if not dot or not table or not column or (flag == "--map-column") != bool(eq and right):
            raise UsageError(f"{flag} {item!r}: expected {example}")
        out.append((table.lower(), column, right))
    return out


def column_maps(opts: Options) -> tuple[dict[tuple[str, str], str], set[tuple[str, str]]]:
    """`--map-column table.src=dst` and `--ignore-column table.col`, keyed by lower-case table
    and source (or target) column names."""
    maps = {
        (t, c.lower()): dst
        for t, c, dst in _pairs(opts.map_columns, "--map-column", "table.source_column=column")
    }
    ignored = {
        (t, c.lower()) for t, c, _ in _pairs(opts.ignore_columns, "--ignore-column", "table.column")
    }
    return maps, ignored


# -- deciding the mode -------------------------------------------------------------------
def source_tables(sources: list[Source]) -> list[Table]:
    """Every table of the sources once (first source's definition), parents before children."""
    by_name: dict[str, Table] = {}
    for src in sources:
        for t in src.schema.tables:
            by_name.setdefault(t.name.lower(), t)
    return planmod._toposort(list(by_name.values()))


def resolve(
    conn: psycopg.Connection, sources: list[Source], opts: Options, recorded: str | None
) -> str:
    """`auto` becomes `existing` when every source table exists in the target, `create` when
    none does; a mixed target is refused (exit 2) naming both lists. A target that already
    holds a completed run keeps the mode that run used."""
    if opts.schema != "auto":
        return opts.schema
    if recorded is not None:
        return recorded
    namer = Namer(opts.identifiers)
    present: list[str] = []
    absent: list[str] = []
    for t in source_tables(sources):
        (present if catalog.relation_kind(conn, namer(t.name)) else absent).append(namer(t.name))
    if not present:
        return "create"
    if not absent:
        return "existing"
    raise TargetStateError(
        f"--schema auto: the target has some of the source tables ({', '.join(present)}) but not "
        f"others ({', '.join(absent)}); nothing was changed (run the app's migrations so that "
        "every table exists and pass --schema existing, or use an empty target)"
    )


# -- planning ------------------------------------------------------------------------------
def affinity(declared: str) -> str:
    """SQLite's column affinity for a declared type (its documented rules, in order)."""
    up = declared.upper()
    if "INT" in up:
        return "INTEGER"
    if "CHAR" in up or "CLOB" in up or "TEXT" in up:
        return "TEXT"
    if "BLOB" in up or not up.strip():
        return "BLOB"
    if "REAL" in up or "FLOA" in up or "DOUB" in up:
        return "REAL"
    return "NUMERIC"


def build(
    conn: psycopg.Connection, sources: list[Source], opts: Options, collect: bool = False
) -> ExistingPlan:
    """Match every source table and column to the app's schema; list every mismatch at once
    (refusing, or with `collect` keeping them in the plan so `plan` reports them with the rest)."""
    namer = Namer(opts.identifiers)
    try:
        zone = convert.source_zone(opts.source_timezone)
    except ValueError as exc:
        raise UsageError(f"--source-timezone: {exc}") from None
    maps, ignored = column_maps(opts)
    kept = {k.lower() for k in opts.keep}
    tables = source_tables(sources)
    names = {t.name.lower() for t in tables}
    for name in sorted(kept - names):
        raise UsageError(f"--keep-table {name}: no such table in the sources")
    for table_name, column in [*maps, *ignored]:
        if table_name not in names:
            raise UsageError(
                f"--map-column/--ignore-column {table_name}.{column}: no table {table_name!r} in "
                "the sources"
            )
    plan = ExistingPlan([], [], [], [], {}, [s.path for s in sources])
    mismatches: list[Problem] = []
    for t in tables:
        for src in sources:
            if any(x.name.lower() == t.name.lower() for x in src.schema.tables):
                planmod._same_shape(t, src.schema.table(t.name), src.path)
        target = catalog.find_table(conn, namer(t.name))
        if target is None:
            kind = catalog.relation_kind(conn, namer(t.name))
            what = "no table" if kind is None else f"a relation of kind {kind!r}, not a table"
            mismatches.append(
                Problem(
                    "target",
                    t.name,
                    "-",
                    "*",
                    namer(t.name),
                    f"the target has {what} {namer(t.name)!r}",
                )
            )
            continue
        if t.name.lower() in kept:
            plan.kept.append(target.name)
            continue
        tp = _table_plan(t, target, sources, namer, maps, ignored, zone, plan, mismatches)
        if tp is not None:
            plan.tables.append(tp)
            plan.targets[tp.target] = target
    for src in sources:
        plan.reported.extend(f"{src.path}: {s}" for s in src.schema.skipped)
        plan.reported.extend(
            f"{src.path}: trigger {tr.name!r} on {tr.table!r}: not carried over (the app's schema "
            "is the contract)"
            for tr in src.schema.triggers
        )
        plan.reported.extend(
            f"{src.path}: view {v.name!r}: not created (--schema existing creates nothing; the "
            "app's migrations own its views)"
            for v in src.schema.views
        )
    plan.reported.extend(
        f"table {table}: the app's trigger {name} fires for every loaded row (the load does not "
        "disable it; --verify shows whether it changed a value)"
        for table, name in catalog.triggers(conn, [t.oid for t in plan.targets.values()])
    )
    plan.app_keys = app_keys(conn, plan)
    if mismatches and collect:
        plan.mismatches = mismatches
    elif mismatches:
        raise SchemaMismatchError(
            f"{len(mismatches)} mismatch(es) between the sources and the target's schema; nothing "
            "was written (map columns with --map-column table.source_column=column, skip them "
            "with --ignore-column table.column)",
            mismatches,
        )
    return plan


_UNIQUES = """
SELECT i.indisprimary, (SELECT c.relname::text FROM pg_class c WHERE c.oid = i.indexrelid),
       ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o)
FROM pg_index i
WHERE i.indrelid = %s AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
ORDER BY i.indexrelid
"""
_FKS = """
SELECT ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o),
       c.confrelid,
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o)
FROM pg_constraint c
WHERE c.conrelid = %s AND c.contype = 'f'
ORDER BY c.conname
"""


def app_keys(conn: psycopg.Connection, plan: ExistingPlan) -> dict[str, preflight.Keys]:
    """The app's primary key, UNIQUE keys (plain columns, no predicate) and foreign keys to
    loaded tables, in source column names: what the loaded rows must satisfy, checked by
    `preflight` before anything is written. A key over a column no source column fills is left
    to PostgreSQL."""
    by_oid = {t.oid: plan_tp for plan_tp in plan.tables for t in [plan.targets[plan_tp.target]]}
    out = {}
    for oid, tp in by_oid.items():
        names = {c.name: c.source.name for c in tp.columns}

        def mapped(cols: list[str], names: dict[str, str] = names) -> list[str] | None:
            return [names[c] for c in cols] if all(c in names for c in cols) else None

        pk: list[str] = []
        pk_name = ""
        uniques = []
        for primary, index, cols in conn.execute(_UNIQUES, (oid,)).fetchall():
            got = mapped(list(cols))
            if got and primary:
                pk, pk_name = got, str(index)
            elif got:
                uniques.append(got)
        fks = []
        for cols, parent_oid, ref in conn.execute(_FKS, (oid,)).fetchall():
            parent = by_oid.get(int(parent_oid))
            got = mapped(list(cols))
            parent_names = {c.name: c.source.name for c in parent.columns} if parent else {}
            if parent is None or got is None or not all(r in parent_names for r in ref):
                continue  # a parent outside the load, or unfilled columns: PostgreSQL checks
            fks.append((got, parent, [parent_names[r] for r in ref]))
        out[tp.target] = preflight.Keys(pk, uniques, fks, app=True, pk_name=pk_name)
    return out


@dataclass
class _Matching:
    """One source table against its target table: what `_match` found."""

    t: Table
    target: TargetTable
    columns: list[ColumnPlan] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    mismatches: list[Problem] = field(default_factory=list)

    def mismatch(self, column: str, value: str, reason: str) -> None:
        self.mismatches.append(Problem("target", self.t.name, "-", column, value, reason))


def _table_plan(
    t: Table,
    target: TargetTable,
    sources: list[Source],
    namer: Namer,
    maps: dict[tuple[str, str], str],
    ignored: set[tuple[str, str]],
    zone: dt.tzinfo,
    plan: ExistingPlan,
    mismatches: list[Problem],
) -> TablePlan | None:
    key = t.name.lower()
    m = _Matching(t, target)
    for col in t.columns:
        if (key, col.name.lower()) in ignored:
            plan.reported.append(
                f"table {t.name!r}: source column {col.name!r} ignored (--ignore-column): its "
                "values are not carried over"
            )
            continue
        _match(m, col, maps.get((key, col.name.lower()), namer(col.name)), zone)
    for tc in target.columns:
        if tc.name in m.used or (key, tc.name.lower()) in ignored or tc.generated:
            continue
        if tc.notnull and not tc.has_default:
            m.mismatch(
                tc.name,
                f"{target.name}.{tc.name}",
                f"target column {target.name}.{tc.name} is NOT NULL without a default and no "
                f"source column of {t.name} fills it (--map-column {t.name}.SOURCE={tc.name})",
            )
        else:
            plan.filled_by_default.append(f"{target.name}.{tc.name}")
    if not m.columns and not m.mismatches:
        m.mismatch("*", target.name, f"no source column of {t.name} is loaded into {target.name}")
    mismatches.extend(m.mismatches)
    if not m.columns:
        return None
    holders = [s.index for s in sources if any(x.name.lower() == key for x in s.schema.tables)]
    tp = TablePlan(t, target.name, m.columns, holders)
    mapped = {c.name for c in m.columns}
    tp.pk = list(target.pk) if target.pk and set(target.pk) <= mapped else []
    for idx in holders:
        st = sources[idx].schema.table(t.name)
        tp.row_counts[idx] = int(str(sources[idx].one(f"SELECT count(*) FROM {qi(st.name)}")[0]))  # noqa: S608 - quoted by qi(); read-only source
        seq = sources[idx].schema.sequences.get(key, 0)
        plan.sequences[tp.target] = max(plan.sequences.get(tp.target, 0), seq)
    return tp


def _match(m: _Matching, col: Column, name: str, zone: dt.tzinfo) -> None:
    """Source column `col` into target column `name`: a column plan, or a mismatch."""
    t, target = m.t, m.target
    tc = target.column(name)
    if tc is None:
        m.mismatch(
            col.name,
            f"{target.name}.{name}",
            f"source column {t.name}.{col.name} has no column {name!r} in target table "
            f"{target.name} (--map-column {t.name}.{col.name}=COLUMN or --ignore-column "
            f"{t.name}.{col.name})",
        )
        return
    if name in m.used:
        m.mismatch(col.name, name, f"two source columns map to target column {target.name}.{name}")
        return
    m.used.add(name)
    if tc.generated and not col.generated:
        m.mismatch(
            col.name,
            f"{target.name}.{name}",
            f"target column {target.name}.{name} is generated (PostgreSQL computes it) but "
            f"source column {t.name}.{col.name} holds values (--ignore-column "
            f"{t.name}.{col.name})",
        )
        return
    try:
        conv = convert.converter(tc.type, zone)
    except convert.Unsupported as exc:
        m.mismatch(
            col.name,
            tc.type.shown,
            f"target column {target.name}.{name} ({tc.type.shown}): {exc}; --ignore-column "
            f"{t.name}.{col.name} leaves it to its default",
        )
        return
    m.columns.append(_column_plan(col, name, tc, conv))


def _column_plan(
    col: Column, name: str, tc: catalog.TargetColumn, conv: convert.Converter
) -> TargetColumnPlan:
    through = affinity(col.declared) in conv.passthrough and not col.generated
    return TargetColumnPlan(
        col,
        name,
        conv.kind,
        tc.type.shown,
        conv.copy_type,
        conv.accepts,
        _not_null(conv.fn, tc.type.shown) if tc.notnull else conv.fn,
        conv.canon,
        qi(col.name),
        convert_on_load=not through,
        plain=col.generated and not tc.generated,
        pg_canon=conv.pg_canon,
    )


def _not_null(fn: Callable[[object], object], shown: str) -> Callable[[object], object]:
    """The conversion of a NOT NULL target column: NULL is refused as a value (listed with the
    rest by `plan` and by a refusing `run`), not left for COPY to stop at."""

    def check(value: object) -> object:
        if value is None:
            raise ValueProblem(f"NULL in a NOT NULL {shown} column of the target")
        return fn(value)

    return check


# -- describing (plan) ---------------------------------------------------------------------
def describe(
    plan: ExistingPlan, sources: list[Source], conn: psycopg.Connection, log: Reporter
) -> None:
    """The plan in existing mode: each column's conversion, what is dropped and rebuilt."""
    lines = [
        f"Plan for {', '.join(plan.sources)} into the target's own schema (--schema existing)",
        "",
    ]
    for tp in plan.tables:
        counts = ", ".join(
            f"{Path(sources[i].path).name}: {tp.row_counts.get(i, 0)}" for i in tp.sources
        )
        lines.append(f"table {tp.table.name} -> {tp.target}  ({counts} rows)")
        for col in tp.columns:
            how = "as stored (the server checks it)" if not col.convert_on_load else "converted"
            lines.append(
                f"  {col.source.name:<24} {col.source.declared or '(none)':<16} -> {col.name} "
                f"{col.pg_type}: {col.reason}; {how}"
            )
            log.data(
                "column",
                f"{tp.table.name}.{col.source.name} -> {tp.target}.{col.name}: {col.pg_type}",
                table=tp.table.name,
                column=col.source.name,
                target_column=col.name,
                declared=col.source.declared,
                type=col.pg_type,
                reason=col.reason,
            )
        lines.append("")
    rebuilt = rebuildable(conn, [t.oid for t in plan.targets.values()])
    if rebuilt:
        lines.append("Dropped before the load and recreated after it (same definitions):")
        lines.extend(f"  {r.kind} {r.name} on {r.table}: {r.definition}" for r in rebuilt)
        lines.append("")
    for name in plan.filled_by_default:
        plan.reported.append(f"target column {name}: no source column; filled by its default")
    for name in plan.kept:
        plan.reported.append(
            f"table {name}: kept as it is in the target (--keep-table); not loaded"
        )
    if plan.reported:
        lines.append("Not carried over / changed (reported):")
        lines.extend("  - " + r for r in plan.reported)
        for r in plan.reported:
            log.data("reported", r, level="warning")
        lines.append("")
    if plan.problems:
        lines.append(f"Values that do not convert ({sum(plan.problem_counts.values())}):")
        lines.extend("  " + p.describe() for p in plan.problems)
    else:
        lines.append("Every value converts exactly to its target column's type.")
    log.text("\n".join(lines))


def predict(conn: psycopg.Connection, plan: ExistingPlan, replace: bool) -> list[Problem]:
    """What `prepare` would refuse: tables holding rows (without --replace), or a table outside
    the load that references one --replace would empty."""
    loaded = {t.oid: t for t in plan.targets.values()}
    busy = [t for t in loaded.values() if catalog.has_rows(conn, t)]
    if busy and not replace:
        return _busy(busy)
    try:
        _truncate_set(conn, busy, loaded)
    except TargetStateError as exc:
        return exc.problems
    return []


def _busy(busy: list[TargetTable]) -> list[Problem]:
    """Tables holding rows, as `plan` lists them and `run` refuses them."""
    return [
        Problem(
            "target",
            t.name,
            "-",
            "*",
            "holds rows",
            "the target table already holds rows: run refuses (--replace empties it with "
            "TRUNCATE; --keep-table keeps its rows and skips the source's)",
        )
        for t in busy
    ]


# -- around the load -----------------------------------------------------------------------
def prepare(
    conn: psycopg.Connection, plan: ExistingPlan, replace: bool, reported: list[str]
) -> Prepared:
    """Refuse tables holding rows (or TRUNCATE them with --replace), then drop the loaded
    tables' keys, secondary indexes and foreign keys (recreated by `finish`)."""
    state = Prepared()
    loaded = {t.oid: t for t in plan.targets.values()}
    busy = [t for t in loaded.values() if catalog.has_rows(conn, t)]
    if busy and not replace:
        raise TargetStateError(
            f"target table(s) {', '.join(t.name for t in busy)} already hold rows; nothing was "
            "changed (--replace empties them with TRUNCATE and loads the sources' rows, keeping "
            "the app's definitions; --keep-table TABLE keeps a table's rows and skips the "
            "source's)",
            _busy(busy),
        )
    if busy:
        emptied = _truncate_set(conn, busy, loaded)
        conn.execute(
            sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(loaded[o].ident for o in emptied))
        )
        state.truncated = [loaded[o].name for o in emptied]
        reported.append(f"table(s) {', '.join(state.truncated)}: emptied (--replace) and reloaded")
    state.rebuilt = rebuildable(conn, list(loaded))
    for r in state.rebuilt:  # foreign keys first: they rely on the keys' indexes
        if r.kind == "index":
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(r.schema, r.name)))
        else:
            conn.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    sql.Identifier(r.schema, r.relation), sql.Identifier(r.name)
                )
            )
    return state


def rebuildable(conn: psycopg.Connection, oids: list[int]) -> list[Rebuilt]:
    """What the load drops and recreates, in drop order: foreign keys, then primary keys and
    UNIQUE constraints, then secondary indexes (each rebuilt in one sorted pass afterwards,
    instead of being maintained row by row during COPY)."""
    fks = catalog.foreign_keys(conn, oids)
    keys = catalog.key_constraints(conn, oids, [f.name for f in fks])
    return fks + keys + catalog.secondary_indexes(conn, oids)


def _truncate_set(
    conn: psycopg.Connection, busy: list[TargetTable], loaded: dict[int, TargetTable]
) -> list[int]:
    """The busy tables plus every loaded table that references them (TRUNCATE needs them
    together); a table outside the load that references one is refused, named."""
    todo = [t.oid for t in busy]
    out: list[int] = []
    while todo:
        oid = todo.pop()
        if oid in out:
            continue
        out.append(oid)
        for con, table, ref in catalog.referencing(conn, [oid]):
            if ref not in loaded:
                message = (
                    f"--replace would empty {loaded[oid].name}, but table {table} (not a source "
                    f"table) references it (foreign key {con}); nothing was changed (never "
                    "emptying a table that is not a source table)"
                )
                problem = Problem("target", loaded[oid].name, "-", "*", "--replace", message)
                raise TargetStateError(message, [problem])
            todo.append(ref)
    return out


def finish(
    conn: psycopg.Connection, plan: ExistingPlan, state: Prepared, decisions: list[str]
) -> None:
    """Recreate the dropped indexes and foreign keys from their definitions; move sequences."""
    problems: list[Problem] = []
    order = {"key": 0, "index": 1, "fk": 2}  # keys before the foreign keys that need them
    for r in sorted(state.rebuilt, key=lambda r: order[r.kind]):
        # the definitions come from the target's own catalog (pg_get_*def), never from a source
        stmt: str | sql.Composed = r.definition
        if r.kind != "index":
            stmt = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
                sql.Identifier(r.schema, r.relation), sql.Identifier(r.name)
            ) + sql.SQL(r.definition)
        try:
            with conn.transaction():
                conn.execute(stmt)
        except psycopg.Error as exc:
            if not isinstance(exc, psycopg.IntegrityError):
                if problems:  # a foreign key whose key could not be rebuilt: already reported
                    continue
                raise
            detail = f" ({exc.diag.message_detail})" if exc.diag.message_detail else ""
            problems.append(
                Problem("target", r.table, "-", r.name, r.definition, _first_line(exc) + detail)
            )
    if problems:
        raise DataProblemError(
            "the data breaks the app's constraint(s) "
            + ", ".join(f"{p.column} on {p.table}" for p in problems)
            + "; nothing was written",
            problems,
        )
    for tp in plan.tables:
        _move_sequences(conn, plan.targets[tp.target], plan.sequences.get(tp.target, 0), decisions)


def _move_sequences(
    conn: psycopg.Connection, table: TargetTable, floor: int, decisions: list[str]
) -> None:
    """Serial and identity sequences continue after the largest loaded id (and, for the key,
    after SQLite's AUTOINCREMENT high-water mark); never moved backwards."""
    for column, schema, name in catalog.sequences(conn, table):
        top = conn.execute(
            sql.SQL("SELECT max({})::bigint FROM {}").format(sql.Identifier(column), table.ident)
        ).fetchone()
        want = max(
            int(top[0]) if top and top[0] is not None else 0, floor if column in table.pk else 0
        )
        seq = sql.Identifier(schema, name)
        state = conn.execute(
            sql.SQL(
                "SELECT s.last_value, s.is_called, q.seqincrement FROM {} s, pg_sequence q "
                "WHERE q.seqrelid = %s::regclass"
            ).format(seq),
            (seq.as_string(conn),),
        ).fetchone()
        if state is None or want == 0:
            continue
        last, called, step = int(state[0]), bool(state[1]), int(state[2])
        if step <= 0 or (called and last >= want):
            continue
        conn.execute("SELECT setval(%s::regclass, %s, true)", (seq.as_string(conn), want))
        decisions.append(f"table {table.name}: {column} continues after {want} ({schema}.{name})")


def constraint_error(exc: DataProblemError) -> DataProblemError:
    """A constraint of the app's schema refused a row while loading (NOT NULL, CHECK, UNIQUE):
    say which, on which table, with PostgreSQL's detail (the load's generic primary-key
    message would mislead here). Other errors are returned unchanged."""
    cause = exc.__cause__
    if type(exc) is not DataProblemError or not isinstance(cause, psycopg.IntegrityError):
        return exc
    fallback = exc.problems[0].table if exc.problems else "?"
    table, what, problem = _integrity(cause, fallback)
    return DataProblemError(
        f"table {table}: the data breaks the app's constraint {what}: {_first_line(cause)}; "
        "nothing was written",
        [problem],
    )


def _integrity(cause: psycopg.IntegrityError, fallback: str) -> tuple[str, str, Problem]:
    """The table, the constraint and the problem record of a row a constraint refused."""
    diag = cause.diag
    table = diag.table_name or fallback
    what = diag.constraint_name or (f"NOT NULL on {diag.column_name}" if diag.column_name else "")
    if diag.datatype_name and not diag.table_name:
        what = f"{what} of domain {diag.datatype_name}"
    problem = Problem(
        "target",
        table,
        "-",
        diag.column_name or what or "-",
        diag.message_detail or "-",
        _first_line(cause),
    )
    return table, what, problem


_CHECKED = """
SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = %(rel)s AND contype = 'c')
    OR EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
               WHERE a.attrelid = %(rel)s AND a.attnum > 0 AND NOT a.attisdropped
                 AND t.typtype = 'd')
"""

_APP_CHECKS = """
SELECT c.conname::text, pg_get_expr(c.conbin, c.conrelid), pg_get_constraintdef(c.oid),
       coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum) FROM pg_attribute a
                 WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)), '{}')
FROM pg_constraint c WHERE c.conrelid = %s AND c.contype = 'c' ORDER BY c.conname
"""


def check_violations(conn: psycopg.Connection, plan: ExistingPlan, sources: list[Source]) -> Broken:
    """The rows that break the app's CHECKs, per file (`checkrows`): each loaded table holding
    one is copied, one source at a time, into a temporary twin (LIKE ..., its NOT NULLs
    dropped: `diagnose` lists NULLs) with each row's name in its file alongside, and PostgreSQL
    counts and lists the rows each CHECK refuses, with the expression from the catalog; all
    rolled back. The twin's domain columns are their base types, so the COPY takes every row,
    and each CHECK of those domains is counted and listed the same way (`_domain_check`). A
    value that does not convert is loaded as NULL (`lenient`): `diagnose` lists it."""
    from migration import load  # here: load imports plan modules this one also uses

    quiet = Reporter("json", (), io.StringIO(), io.StringIO())
    out = Broken()
    for tp in plan.tables:
        target = plan.targets[tp.target]
        row = conn.execute(_CHECKED, {"rel": target.oid}).fetchone()
        if not (row and row[0]):
            continue
        checks = conn.execute(_APP_CHECKS, (target.oid,)).fetchall()
        domain_checks = conn.execute(
            _DOMAIN_CHECKS, (target.oid, preflight.DOMAIN_LEVELS)
        ).fetchall()
        twin = sql.Identifier("pg_temp", target.name)
        for idx in tp.sources:
            path = sources[idx].path
            with conn.transaction(force_rollback=True):
                conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {})").format(twin, target.ident))
                for col in target.columns:
                    conn.execute(
                        sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(
                            twin, sql.Identifier(col.name)
                        )
                    )
                _unwrap_domains(conn, target.name)
                filled, named, row_type = checkrows.with_row(load.lenient(tp))
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                        twin, sql.Identifier(named), row_type
                    )
                )
                try:
                    with conn.transaction():
                        load.copy_rows(conn, filled, sources[idx], target.name, quiet, temp=True)
                except psycopg.IntegrityError as exc:
                    if exc.sqlstate != "23502":  # a NULL: diagnose lists it as a value
                        table, what, problem = _integrity(exc, target.name)
                        if problem not in out.problems:  # as run's load reports it
                            out.extend(Broken([problem], 1, {(table, f"the app's {what}"): 1}))
                    continue
                except (load.LoadValueError, psycopg.DataError):
                    continue
                for name, expr, definition, columns in checks:
                    out.extend(
                        _app_check(
                            conn, tp, twin, named, path, name, expr, definition, list(columns)
                        )
                    )
                for domain_check in domain_checks:
                    out.extend(_domain_check(conn, tp, twin, named, path, domain_check))
    return out


def _unwrap_domains(conn: psycopg.Connection, name: str) -> None:
    """The temporary twin's domain columns as their base types: the COPY no longer stops at
    the first value a domain's CHECK refuses (`_domain_check` names every such row)."""
    for _level in range(preflight.DOMAIN_LEVELS):
        for column, base in conn.execute(preflight._DOMAIN_COLUMNS, (name,)).fetchall():
            conn.execute(
                sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {}").format(
                    sql.Identifier("pg_temp", name),
                    sql.Identifier(column),
                    sql.SQL(base),  # the target's catalog
                )
            )


# every CHECK of the domains a column's type is, down the chain (a domain over a domain)
_DOMAIN_CHECKS = """
WITH RECURSIVE chain AS (
    SELECT a.attname::text AS col, a.attnum, a.atttypid AS typ, 0 AS depth
    FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
    SELECT chain.col, chain.attnum, t.typbasetype, chain.depth + 1
    FROM chain JOIN pg_type t ON t.oid = chain.typ
    WHERE t.typtype = 'd' AND chain.depth < %s
)
SELECT chain.col, chain.typ::regtype::text, c.conname::text, pg_get_expr(c.conbin, 0),
       pg_get_constraintdef(c.oid)
FROM chain JOIN pg_constraint c ON c.contypid = chain.typ AND c.contype = 'c'
ORDER BY chain.attnum, chain.depth, c.conname
"""


def _domain_check(
    conn: psycopg.Connection,
    tp: TablePlan,
    twin: sql.Identifier,
    row: str,
    path: str,
    check: tuple[str, str, str, str, str],
) -> Broken:
    """The rows of one file (in `twin`, the column as its base type) that break one CHECK of
    a domain the column's type is: the catalog's expression, its VALUE the row's value (a
    one-column subquery named `value`)."""
    column, domain, name, expr, definition = check
    if column not in {c.name for c in tp.copied()}:
        return Broken()  # a column the load does not fill: its default, PostgreSQL's to check
    what = f'the app\'s domain {domain}: constraint "{name}" ({definition})'
    names = checkrows.source_names(tp, [column])
    alias = tp.target
    value = sql.SQL("(SELECT {} FROM (SELECT {}.{} AS value) AS petstore_domain)").format(
        sql.SQL(expr),  # the target's catalog
        sql.Identifier(alias),
        sql.Identifier(column),
    )
    found = checkrows.breaking(conn, twin, alias, value, [column], row)
    if isinstance(found, str):
        why = f"{what}: the rows cannot be listed ({found})"
        problem = Problem(path, tp.table.name, "-", ",".join(names), "-", why)
        return Broken([problem], 1, {(tp.table.name, what): 1})
    if not found[0]:
        return Broken()
    return checkrows.records(path, tp.table.name, what, names, found)


def _app_check(
    conn: psycopg.Connection,
    tp: TablePlan,
    twin: sql.Identifier,
    row: str,
    path: str,
    name: str,
    expr: str,
    definition: str,
    columns: list[str],
) -> Broken:
    """The rows of one file (in `twin`) that break one CHECK of the app's table."""
    what = f'the app\'s constraint "{name}" ({definition})'
    names = checkrows.source_names(tp, columns)
    alias = tp.target
    found = checkrows.breaking(conn, twin, alias, sql.SQL(expr), columns, row)
    if isinstance(found, str):
        why = f"{what}: the rows cannot be listed ({found})"
        problem = Problem(path, tp.table.name, "-", ",".join(names) or "-", "-", why)
        return Broken([problem], 1, {(tp.table.name, what): 1})
    if not found[0]:
        return Broken()
    return checkrows.records(path, tp.table.name, what, names, found)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
