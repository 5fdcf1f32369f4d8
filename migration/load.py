"""Write the plan into PostgreSQL inside the caller's transaction: tables, COPY, merge, keys."""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import itertools
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import _copy_base, sql

from migration import casts, charset, checkrows, chunked, compat, verify
from migration import plan as planmod
from migration.checkrows import Broken
from migration.errors import (
    ConflictError,
    DataProblemError,
    Problem,
    SchemaObjectError,
    SourceTextError,
    TargetStateError,
)
from migration.log import Reporter, duration
from migration.model import name_key
from migration.plan import Namer, Plan, Refusal, TablePlan
from migration.source import Large, Source, no_cycle_collection, qi
from migration.typemap import ColumnPlan, ValueProblem, show

_md5 = chunked.md5
BATCH_ROWS = 5_000  # rows per source batch: large enough to amortise, small for flat memory
CONFLICTS_LISTED = 50  # per table; the count is always exact
# Test hook: after this many rows of the first COPY, announce it and sleep (to be killed).
PAUSE_ENV = "PETSTORE_MIGRATION_PAUSE_AT_ROW"
RENUMBER_TABLE = "petstore_renumber"  # old -> new keys of renumbered rows (pg_temp; see temp_name)


class LoadValueError(Exception):
    """A value failed during COPY (conversion, driver or server); the caller diagnoses the table."""

    def __init__(self, tp: TablePlan, source: Source, cause: BaseException) -> None:
        super().__init__(f"{source.path}: table {tp.table.name!r}: {cause}")
        self.tp = tp
        self.source = source
        self.cause = cause


@dataclass
class TableResult:
    """What happened to one table: rows per source, skipped duplicates, renumbered keys."""

    rows_written: int = 0
    per_source: dict[int, int] = field(default_factory=dict)
    skipped: dict[int, verify.Sum] = field(default_factory=dict)
    renumbered: dict[int, int] = field(default_factory=dict)


@dataclass
class LoadResult:
    """Everything the report and the record need."""

    tables: dict[str, TableResult] = field(default_factory=dict)
    reported: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    mappings: dict[tuple[int, str], dict[int, int]] = field(default_factory=dict)
    source_sums: dict[tuple[str, int], verify.Sum] = field(default_factory=dict)
    streams: dict[str, verify.Stream] = field(default_factory=dict)  # STREAM-verified tables

    def verified_on_load(
        self,
    ) -> tuple[dict[tuple[str, int], verify.Sum], dict[str, verify.Stream]]:
        """What run_verify takes from the load: sources' sums hashed as copied, and streams."""
        return self.source_sums, self.streams

    refused: list[Refusal] = field(default_factory=list)  # DDL PostgreSQL rejected
    created_types: list[str] = field(default_factory=list)  # enums this run created (owns)


def execute_one(conn: psycopg.Connection, stmt: sql.Composed) -> None:
    """Run ONE statement through the extended query protocol, whose Parse message refuses a
    string holding two (psycopg sends text without parameters by the simple protocol, which
    runs any number; asking for binary results forces the extended one)."""
    conn.execute(stmt, binary=True)


def _savepoint(conn: psycopg.Connection, *stmts: sql.Composed | None) -> psycopg.Error | None:
    """Run each statement alone in one savepoint; return the error (the transaction stays
    usable) or None."""
    try:
        with conn.transaction():
            for stmt in stmts:
                if stmt is not None:
                    execute_one(conn, stmt)
    except psycopg.Error as exc:
        return exc
    return None


def create_tables(
    conn: psycopg.Connection, plan: Plan, sources: list[Source], namer: Namer, result: LoadResult
) -> None:
    """CREATE TABLE for every table; a generated expression PostgreSQL rejects is refused by
    name (`generated:TABLE.COLUMN`) and the table created with it as a plain column, so that
    everything else is still tried (the run refuses before commit). The enums casts use are
    created first (`casts.create`). What the server's major lacks (IS JSON before 16) is
    refused before any DDL."""
    charset.check_plan(plan, sources, namer, charset.of(conn))
    major = compat.server_major(conn)
    missing = compat.json_refusals(plan, sources, major)
    if missing:
        raise SchemaObjectError(
            f"{len(missing)} object(s) of the source schema need a newer PostgreSQL than the "
            f"target's {major}; nothing was written: " + "; ".join(r.message() for r in missing)
        )
    result.created_types += casts.create(conn, plan.named_types, result.decisions)
    for tp in plan.tables:
        src = sources[tp.sources[0]]
        stmt, notes = planmod.create_table(tp, src, namer)
        err = _savepoint(conn, stmt)
        if err is not None and any(c.source.generated and not c.plain for c in tp.columns):
            _refuse_rejected_generated(conn, tp, src, namer, result)
            stmt, notes = planmod.create_table(tp, src, namer)
            err = _savepoint(conn, stmt)
        if err is not None and tp.translated_defaults:
            err, notes = _defaults_one_by_one(conn, tp, src, namer, result)
        if err is not None:
            raise err
        result.reported.extend(f"table {tp.table.name!r}: {n}" for n in notes)


def _refuse_rejected_generated(
    conn: psycopg.Connection, tp: TablePlan, src: Source, namer: Namer, result: LoadResult
) -> None:
    """Add the translated generated columns one at a time to a trial table (no defaults,
    rolled back): each one PostgreSQL rejects next to those accepted before it (its own
    expression, or a reference to another generated column) is refused by name and becomes a
    plain column."""
    computed = [c for c in tp.columns if c.source.generated and not c.plain]
    no_default, tp.no_default = tp.no_default, {c.name for c in tp.columns}
    for col in computed:
        col.plain = True
    try:
        for col in computed:
            col.plain = False
            stmt, _notes = planmod.create_table(tp, src, namer)
            try:
                with conn.transaction(force_rollback=True):
                    execute_one(conn, stmt)
            except psycopg.Error as exc:
                col.plain = True
                tp.generated.pop(col.name, None)
                why = f"PostgreSQL rejected the translation ({_first_line(exc)})"
                result.refused.append(planmod.generated_refusal(tp, col, why))
    finally:
        tp.no_default = no_default


def _defaults_one_by_one(
    conn: psycopg.Connection, tp: TablePlan, src: Source, namer: Namer, result: LoadResult
) -> tuple[psycopg.Error | None, list[str]]:
    """PostgreSQL rejected the table with its translated DEFAULTs: create it without them, then
    set each alone; each one rejected is refused by name (`default:TABLE.COLUMN`)."""
    translated = []
    for col in tp.columns:
        if col.name in tp.no_default or col.name == tp.identity or col.source.generated:
            continue
        default, note = planmod.default_sql(col, src)
        if default is not None and note and "translated to" in note:
            translated.append((col, default))
            tp.no_default.add(col.name)
    stmt, notes = planmod.create_table(tp, src, namer)
    err = _savepoint(conn, stmt)
    if err is not None:
        return err, notes
    for col, default in translated:
        rejected = _savepoint(
            conn,
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {}").format(
                sql.Identifier(tp.target), sql.Identifier(col.name), default
            ),
        )
        if rejected is not None:
            key = f"default:{tp.table.name}.{col.source.name}"
            why = f"PostgreSQL rejected the translation ({_first_line(rejected)})"
            result.refused.append(
                Refusal(key, f"default of {tp.table.name}.{col.source.name}", why)
            )
    return None, notes


# What depends on a relation, and the relation that owns each dependent (a view's rule, another
# table's foreign key, trigger, policy or default); NULL owner: a free-standing object such as a
# function whose body uses the table. Dependencies on the table's row type count too.
_DEPENDENTS = """
SELECT DISTINCT CASE WHEN r.oid IS NULL THEN pg_describe_object(d.classid, d.objid, 0)
                     ELSE pg_describe_object('pg_class'::regclass, r.ev_class, 0) END,
       coalesce(r.ev_class, c.conrelid, t.tgrelid, p.polrelid, a.adrelid,
                CASE WHEN d.classid = 'pg_class'::regclass THEN d.objid END)
FROM pg_depend d
LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
LEFT JOIN pg_constraint c ON d.classid = 'pg_constraint'::regclass AND c.oid = d.objid
LEFT JOIN pg_trigger t ON d.classid = 'pg_trigger'::regclass AND t.oid = d.objid
LEFT JOIN pg_policy p ON d.classid = 'pg_policy'::regclass AND p.oid = d.objid
LEFT JOIN pg_attrdef a ON d.classid = 'pg_attrdef'::regclass AND a.oid = d.objid
WHERE d.deptype = 'n'
  AND ((d.refclassid = 'pg_class'::regclass AND d.refobjid = %(rel)s)
       OR (d.refclassid = 'pg_type'::regclass
           AND d.refobjid = (SELECT reltype FROM pg_class WHERE oid = %(rel)s)))
ORDER BY 1
"""


def drop_tables(conn: psycopg.Connection, tables: list[str]) -> None:
    """Drop existing target tables the run replaces, never with CASCADE: if anything else in the
    target depends on them (views, other tables' foreign keys, functions), refuse and name it."""
    if not tables:
        return
    oids: dict[str, object] = {}
    for name in tables:
        row = conn.execute(
            "SELECT to_regclass(%s)::oid", (sql.Identifier(name).as_string(conn),)
        ).fetchone()
        oids[name] = row[0] if row else None
    blocking: list[str] = []
    for name, oid in oids.items():
        for what, owner in conn.execute(_DEPENDENTS, {"rel": oid}).fetchall():
            if owner not in oids.values():
                blocking.append(f"{what} (on table {name})")
    if not blocking:
        err = _savepoint(
            conn,
            sql.SQL("DROP TABLE {} RESTRICT").format(
                sql.SQL(", ").join(map(sql.Identifier, tables))
            ),
        )
        if err is None:
            return
        if not isinstance(err, psycopg.errors.DependentObjectsStillExist):
            raise err
        detail = err.diag.message_detail
        blocking.append(_first_line(err) + (f" ({detail})" if detail else ""))
    message = (
        f"cannot replace table(s) {', '.join(tables)} in the target: objects the migration does "
        f"not own depend on them: {'; '.join(blocking)}; nothing was changed (drop or alter "
        "those objects first)"
    )
    named = [t for t in tables if any(b.endswith(f"(on table {t})") for b in blocking)]
    raise TargetStateError(
        message, [Problem("target", t, "-", "*", "--replace", message) for t in named or tables]
    )


def drop_views(conn: psycopg.Connection, names: list[str]) -> None:
    """--replace: drop the existing views the run recreates, together and never with CASCADE;
    a view or function of someone else's that depends on them refuses the run, named."""
    views = [
        name
        for name in names
        if conn.execute(
            "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)",
            (sql.Identifier(name).as_string(conn),),
        ).fetchone()
        == ("v",)
    ]
    if not views:
        return
    err = _savepoint(
        conn,
        sql.SQL("DROP VIEW {} RESTRICT").format(sql.SQL(", ").join(map(sql.Identifier, views))),
    )
    if err is None:
        return
    if not isinstance(err, psycopg.errors.DependentObjectsStillExist):
        raise err
    detail = err.diag.message_detail
    raise TargetStateError(
        f"cannot replace view(s) {', '.join(views)} in the target: objects the migration does "
        f"not own depend on them ({(detail or _first_line(err)).replace(chr(10), '; ')}); "
        "nothing was changed (drop or alter those objects first)"
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def copy_rows(
    conn: psycopg.Connection,
    tp: TablePlan,
    src: Source,
    dest: str,
    log: Reporter,
    temp: bool = False,
    hasher: verify.Hasher | verify.WireHasher | verify.Stream | None = None,
) -> int:
    """Stream one source's table into `dest` with binary COPY; returns the row count.

    A `hasher` accumulates the rows' checksum: a Hasher from the converted values, a WireHasher
    from the encoded rows, a Stream from the chunks sent and PostgreSQL's digests of them (the
    fast encoder only: `_source_hasher`)."""
    st = src.schema.table(tp.table.name)
    cols = tp.copied()
    exprs = [c.select.replace(qi(c.source.name), qi(st.column(c.source.name).name)) for c in cols]
    convs = [(i, c.check) for i, c in enumerate(cols) if c.convert_on_load or c.needs_diagnosis]
    recodes = charset.recoders(cols, conn.info.encoding)  # after hashing: UTF-8 is canonical
    converted = {i for i, _ in convs}
    streamable = [
        None if i in converted else verify.streamable_column(c, st.column(c.source.name).name)
        for i, c in enumerate(cols)
    ]
    target = sql.Identifier("pg_temp", dest) if temp else sql.Identifier(dest)
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        target, sql.SQL(", ").join(sql.Identifier(c.name) for c in cols)
    )
    total = tp.row_counts.get(src.index, 0)
    pause = int(os.environ.get(PAUSE_ENV, "0") or 0)
    done = 0
    label = f"{tp.target}" + (f" (+{Path(src.path).name})" if temp else "")
    canon = hasher if isinstance(hasher, verify.Hasher) else None
    wire = hasher if isinstance(hasher, verify.WireHasher) else None
    try:
        with no_cycle_collection(), contextlib.ExitStack() as stack:
            writer = _writer(stack, conn, stmt, target, cols, hasher)
            for batch in src.table_batches(st.name, exprs, streamable, BATCH_ROWS):
                rows: Iterable[Sequence[object]] = batch
                if convs or canon is not None:
                    columns = list(zip(*batch, strict=True))
                    for i, fn in convs:
                        columns[i] = tuple(map(fn, columns[i]))
                    if canon is not None:
                        canon.add(columns)
                    for i, fn in recodes:
                        columns[i] = tuple(map(fn, columns[i]))
                    if convs:
                        rows = zip(*columns, strict=True)
                if len(batch) == 1 and has_large(batch[0]):
                    writer.write_streamed(next(iter(rows)), wire)
                else:
                    writer.write(rows, wire)
                done += len(batch)
                log.progress(label, done, total)
                if pause and done >= pause:
                    log.event(
                        "paused",
                        f"paused after {done} rows of {tp.target} ({PAUSE_ENV})",
                        rows=done,
                    )
                    time.sleep(3600)
            writer.close()
    except (
        ValueProblem,
        TypeError,
        OverflowError,
        psycopg.DataError,
        SourceTextError,
        UnicodeEncodeError,  # a character the session's encoding lacks (charset.diagnose)
    ) as exc:
        raise LoadValueError(tp, src, exc) from exc
    log.progress(label, done, total, final=True)
    return done


def _writer(
    stack: contextlib.ExitStack,
    conn: psycopg.Connection,
    stmt: sql.Composed,
    target: sql.Identifier,
    cols: list[ColumnPlan],
    hasher: verify.Hasher | verify.WireHasher | verify.Stream | None,
) -> _RowWriter | chunked.ChunkedCopy:
    """The rows' writer, its COPY entered on `stack`: one COPY (`_RowWriter`), or chunks
    digested by the server as they are stored for a STREAM-verified table
    (`chunked.ChunkedCopy`)."""
    encode = fast_copy_encoder(_RowWriter.INTERNALS)
    if isinstance(hasher, verify.Stream) and encode is not None:
        coder = (encode, binary_dumpers(conn, cols))
        frame = (COPY_SIGNATURE, COPY_TRAILER)
        chunks = chunked.ChunkedCopy(conn, stmt, target, coder, frame, hasher)
        return stack.enter_context(chunks)
    cur = stack.enter_context(conn.cursor())
    copy = stack.enter_context(cur.copy(stmt))
    copy.set_types([c.copy_type for c in cols])
    return _RowWriter(copy)


# What psycopg's private batch encoder must produce for PROBE_ROW (an int8, a text, a bytea, a
# NULL): a field count, then per field a 4-byte length (-1: NULL) and the value's bytes.
PROBE_TYPES = ("int8", "text", "bytea", "text")
PROBE_ROW = (1, "a", b"\x00", None)
PROBE_BYTES = bytes.fromhex("000400000008000000000000000100000001610000000100")
PROBE_BYTES += bytes.fromhex("ffffffff")
COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # binary COPY header: flags 0, no extension
COPY_TRAILER = b"\xff\xff"


@functools.cache
def fast_copy_encoder(internals: tuple[str, ...]) -> Callable[..., object] | None:
    """psycopg's private batch encoder, if this psycopg's internals still behave as the fast
    path expects (checked once per process: names, header, trailer, and the bytes of a probe
    row); else None, and the public `Copy.write_row` is used. A psycopg upgrade that changes
    them costs speed, never a run (it must not look like bad data)."""
    try:
        if not all(hasattr(_copy_base, n) for n in internals):
            return None
        encode = getattr(_copy_base, internals[0])
        if (
            getattr(_copy_base, internals[1]) != COPY_SIGNATURE
            or getattr(_copy_base, internals[2]) != COPY_TRAILER
        ):
            return None
        tx = psycopg.adapt.Transformer()
        tx.set_dumper_types(
            [psycopg.adapters.types[name].oid for name in PROBE_TYPES], psycopg.pq.Format.BINARY
        )
        out = bytearray()
        encode(PROBE_ROW, tx, out)
    except Exception:  # noqa: BLE001 - any mismatch of private internals means: not usable
        return None
    return encode if bytes(out) == PROBE_BYTES else None


class _RowWriter:
    """Binary COPY rows, encoded by psycopg's C row formatter straight into one buffer.

    `Copy.write_row` costs two Python calls per row on top of the C encoder; mapping the
    encoder over a whole batch does the same work without them (about a fifth of the load's
    time on the pets table). The stream is psycopg's own format: its signature, the C-encoded
    rows, its trailer. If the pinned psycopg's internals do not pass `fast_copy_encoder`'s
    check, `write_row` is used.
    """

    FLUSH_BYTES = 1 << 19  # hand libpq ~512 KB at a time: few calls, bounded memory
    INTERNALS = ("format_row_binary", "_binary_signature", "_binary_trailer")  # psycopg 3.3

    def __init__(self, copy: psycopg.Copy) -> None:
        self.copy = copy
        encode = fast_copy_encoder(self.INTERNALS)
        tx = getattr(getattr(copy, "formatter", None), "transformer", None)
        self.fast = encode is not None and tx is not None
        self.buffer = bytearray(COPY_SIGNATURE) if self.fast else bytearray()
        if encode is not None and tx is not None:
            self.encode = encode
            self.tx = tx
            self.transformer = itertools.repeat(tx)

    def write(
        self, rows: Iterable[Sequence[object]], wire: verify.WireHasher | None = None
    ) -> None:
        """Rows, encoded into the buffer; with `wire`, each into its own buffer first, hashed."""
        if not self.fast:
            if wire is not None:  # pragma: no cover - load_tables hashes so only when fast
                raise AssertionError("the wire form needs the fast encoder")
            for row in rows:
                self.copy.write_row(row)
            return
        if wire is not None:  # each row its own buffer, hashed, then the batch joined once
            batch = rows if isinstance(rows, list) else list(rows)
            encoded = list(map(bytearray, itertools.repeat(b"", len(batch))))
            collections.deque(map(self.encode, batch, self.transformer, encoded), maxlen=0)
            wire.add(encoded)
            if self.buffer:
                self.copy.write(self.buffer)
                self.buffer = bytearray()
            self.copy.write(b"".join(encoded))
            return
        collections.deque(
            map(self.encode, rows, self.transformer, itertools.repeat(self.buffer)), maxlen=0
        )
        if len(self.buffer) >= self.FLUSH_BYTES:
            self.copy.write(self.buffer)
            self.buffer = bytearray()

    def write_streamed(self, row: Sequence[object], wire: verify.WireHasher | None = None) -> None:
        """A row holding `Large` values: its other fields encoded as usual; each large value's
        length, then its pieces, go straight to the COPY (never held whole), and with `wire`
        into the row's MD5 too."""
        if not self.fast:  # the public API needs the whole value
            if wire is not None:  # pragma: no cover - load_tables hashes so only when fast
                raise AssertionError("the wire form needs the fast encoder")
            self.copy.write_row([v.value() if isinstance(v, Large) else v for v in row])
            return
        md5 = wire.md5() if wire is not None else None
        self.copy.write(self.buffer)
        encoding = self.copy.connection.info.encoding  # a large TEXT is recoded to it
        *pieces, rest = chunked.streamed_pieces(self.encode, self.tx, row, encoding)
        for piece in pieces:
            self.copy.write(piece)
            if md5 is not None:
                md5.update(piece)
        self.buffer = bytearray(rest)
        if md5 is not None and wire is not None:
            md5.update(self.buffer)
            wire.add_digest(md5.digest())

    def close(self) -> None:
        if self.fast:
            self.buffer += COPY_TRAILER
            self.copy.write(self.buffer)


def source_wire_sum(conn: psycopg.Connection, tp: TablePlan, src: Source) -> verify.Sum | None:
    """One source's table in the wire form, encoded as the load encodes it (to compare with a
    recorded wire-form checksum); None without the fast encoder or for a value too large to
    hold whole."""
    encode = fast_copy_encoder(_RowWriter.INTERNALS)
    if encode is None or not verify.wire_form(conn, tp.columns):
        return None
    tx = binary_dumpers(conn, tp.columns)
    hasher = verify.WireHasher()
    with no_cycle_collection():
        for columns in verify.source_columns(src, tp):
            rows = list(zip(*columns, strict=True))
            if len(rows) == 1 and has_large(rows[0]):
                return None
            encoded = list(map(bytearray, itertools.repeat(b"", len(rows))))
            collections.deque(map(encode, rows, itertools.repeat(tx), encoded), maxlen=0)
            hasher.add(encoded)
    return hasher.total


def source_stream_sum(
    conn: psycopg.Connection, tp: TablePlan, src: Source, counts: Sequence[int]
) -> verify.Sum | None:
    """One source's table in the stream form, in chunks of the recorded row `counts` (to
    compare with a recorded stream checksum; `verify.target_stream_sum` is the target's side);
    None without the fast encoder. A large value is fed to its chunk's MD5 piece by piece."""
    encode = fast_copy_encoder(_RowWriter.INTERNALS)
    if encode is None or not verify.wire_form(conn, tp.columns):
        return None
    tx = binary_dumpers(conn, tp.columns)
    total, sizes, buffer, rows_in = (
        verify.Sum(form=verify.STREAM),
        verify.chunk_sizes(counts),
        bytearray(),
        0,
    )
    size, digest = next(sizes), _md5()
    with no_cycle_collection():
        for columns in verify.source_columns(src, tp):
            rows = list(zip(*columns, strict=True))
            large = len(rows) == 1 and has_large(rows[0])  # alone in its batch
            for row in rows:
                if large:
                    digest.update(buffer)
                    buffer = bytearray()
                    for piece in chunked.streamed_pieces(encode, tx, row):
                        digest.update(piece)
                else:
                    encode(row, tx, buffer)
                rows_in += 1
                if rows_in == size:
                    digest.update(buffer)
                    total = total + _stream_chunk(rows_in, digest)
                    buffer, rows_in, size, digest = bytearray(), 0, next(sizes), _md5()
    if rows_in:
        digest.update(buffer)
        total = total + _stream_chunk(rows_in, digest)
    return total


def _stream_chunk(rows: int, digest: Any) -> verify.Sum:
    """One chunk's part of a stream sum: its rows and its MD5 as a 128-bit integer."""
    return verify.Sum(rows, int.from_bytes(digest.digest()), verify.STREAM)


def binary_dumpers(conn: psycopg.Connection, cols: Sequence[ColumnPlan]) -> psycopg.abc.Transformer:
    """A transformer dumping the columns' COPY types in binary, as `Copy.set_types` sets it
    (for encoding rows outside a COPY: the chunked load, recomputed wire and stream sums)."""
    tx = psycopg.adapt.Transformer(conn)
    tx.set_dumper_types(
        [conn.adapters.types[c.copy_type].oid for c in cols], psycopg.pq.Format.BINARY
    )
    return tx


def has_large(row: Sequence[object]) -> bool:
    """A row from `Source.table_batches` holding a value to stream (alone in its batch)."""
    return any(isinstance(v, Large) for v in row)


def _remap_sql(
    conn: psycopg.Connection,
    tp: TablePlan,
    stage: str,
    src: Source,
    plan: Plan,
    result: LoadResult,
    only_self: bool = False,
) -> None:
    """Rewrite this source's foreign keys that point at rows renumbered in the run (with
    `only_self`, just the table's references to itself, right after renumbering it)."""
    by_name = {name_key(p.table.name): p for p in plan.tables}
    for fk in tp.table.fks:
        parent = by_name.get(name_key(fk.ref_table))
        if (parent is tp) != only_self:
            continue
        if (
            parent is None
            or (src.index, parent.target) not in result.mappings
            or len(fk.columns) != 1
        ):
            continue
        # the FK column's target name
        col = next(c.name for c in tp.columns if name_key(c.source.name) == name_key(fk.columns[0]))
        conn.execute(
            sql.SQL(
                "UPDATE {s} AS s SET {c} = m.new_key FROM {m} m "
                "WHERE m.source_index = %s AND m.table_name = %s AND s.{c} = m.old_key"
            ).format(
                s=sql.Identifier("pg_temp", stage),
                c=sql.Identifier(col),
                m=sql.Identifier("pg_temp", planmod.temp_name(plan, RENUMBER_TABLE)),
            ),
            (src.index, parent.target),
        )


def merge_source(
    conn: psycopg.Connection,
    tp: TablePlan,
    src: Source,
    plan: Plan,
    result: LoadResult,
    policy: str,
    log: Reporter,
    conflicts: list[Problem],
) -> None:
    """A later source via a staging table: identical rows once, conflicts refused or renumbered."""
    stage = planmod.temp_name(plan, f"petstore_stage_{tp.target}")
    renumber = sql.Identifier("pg_temp", planmod.temp_name(plan, RENUMBER_TABLE))
    tres = result.tables[tp.target]
    # only the copied columns, typed as the target's, without its NOT NULLs: a target column
    # no source fills (an app's column with a default) gets its default from the INSERT below
    conn.execute(
        sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            sql.Identifier(stage),
            sql.SQL(", ").join(sql.Identifier(c.name) for c in tp.copied()),
            sql.Identifier(tp.target),
        )
    )
    n = copy_rows(conn, tp, src, stage, log, temp=True)
    tres.per_source[src.index] = n
    _remap_sql(conn, tp, stage, src, plan, result)
    copied = tp.copied()
    s_hash = verify.pg_row_hash(copied, "s")
    t_hash = verify.pg_row_hash(copied, "t")
    full_t = verify.pg_row_hash(tp.columns, "t", verify.utf8_bytes(conn))  # Python's sums
    S, T = sql.Identifier("pg_temp", stage), sql.Identifier(tp.target)  # noqa: N806
    if tp.pk:
        on = sql.SQL(" AND ").join(
            sql.SQL("s.{c} = t.{c}").format(c=sql.Identifier(c)) for c in tp.pk
        )
        diff_rows = conn.execute(
            sql.SQL(
                "SELECT {keys} FROM {S} s JOIN {T} t ON {on} WHERE {sh} <> {th} ORDER BY {keys}"
            ).format(
                keys=sql.SQL(", ").join(sql.SQL("s.{}").format(sql.Identifier(c)) for c in tp.pk),
                S=S,
                T=T,
                on=on,
                sh=s_hash,
                th=t_hash,
            )
        ).fetchall()
        if diff_rows:
            int_key = tp.identity is not None or (
                len(tp.pk) == 1 and next(c for c in tp.columns if c.name == tp.pk[0]).kind == "int"
            )
            if policy == "renumber" and int_key:
                key = sql.Identifier(tp.pk[0])
                base_row = conn.execute(
                    sql.SQL(
                        "SELECT greatest((SELECT max({k}) FROM {T}), (SELECT max({k}) FROM {S}))"
                    ).format(k=key, T=T, S=S)
                ).fetchone()
                base = int(base_row[0]) if base_row and base_row[0] is not None else 0
                mapping = {int(r[0]): base + i for i, r in enumerate(diff_rows, 1)}
                with conn.cursor() as cur:
                    cur.executemany(
                        sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s)").format(renumber),
                        [(src.index, tp.target, old, new) for old, new in mapping.items()],
                    )
                conn.execute(
                    sql.SQL(
                        "UPDATE {S} AS s SET {k} = m.new_key FROM {m} m WHERE "
                        "m.source_index = %s AND m.table_name = %s AND s.{k} = m.old_key"
                    ).format(S=S, k=key, m=renumber),
                    (src.index, tp.target),
                )
                result.mappings[(src.index, tp.target)] = mapping
                _remap_sql(conn, tp, stage, src, plan, result, only_self=True)
                tres.renumbered[src.index] = len(mapping)
                sample = ", ".join(f"{o}->{nw}" for o, nw in list(mapping.items())[:10])
                result.decisions.append(
                    f"{src.path}: table {tp.table.name!r}: {len(mapping)} row(s) share a key with "
                    "an earlier source "
                    f"but differ: given new keys ({sample}{', ...' if len(mapping) > 10 else ''}); "
                    "this file's foreign keys to them rewritten"
                )
            else:
                why = "" if policy == "refuse" else " (renumbering needs a single integer key)"
                for r in diff_rows[:CONFLICTS_LISTED]:
                    conflicts.append(
                        Problem(
                            src.path,
                            tp.table.name,
                            ",".join(map(str, r)),
                            ",".join(tp.pk),
                            show(r[0] if len(r) == 1 else r),
                            f"same key as an earlier source, different content{why}",
                        )
                    )
                if len(diff_rows) > CONFLICTS_LISTED:
                    conflicts.append(
                        Problem(
                            src.path,
                            tp.table.name,
                            "...",
                            ",".join(tp.pk),
                            "",
                            f"{len(diff_rows) - CONFLICTS_LISTED} more conflicting rows",
                        )
                    )
                return
        dup = verify.fetch_sum(
            conn,
            verify.pg_sum_of(
                full_t,
                sql.SQL("{S} s JOIN {T} t ON {on} AND {sh} = {th}").format(
                    S=S, T=T, on=on, sh=s_hash, th=t_hash
                ),
            ),
        )
        conn.execute(
            sql.SQL("DELETE FROM {S} s USING {T} t WHERE {on} AND {sh} = {th}").format(
                S=S, T=T, on=on, sh=s_hash, th=t_hash
            )
        )
    else:
        twins = sql.SQL(
            "(SELECT DISTINCT ON (ch) ch, fh FROM (SELECT {th} AS ch, {ft} AS fh FROM {T} t) x) tw"
        ).format(th=t_hash, ft=full_t, T=T)
        dup = verify.sum_from_row(
            conn.execute(
                sql.SQL("SELECT {sums} FROM {S} s JOIN {tw} ON {sh} = tw.ch").format(
                    sums=verify.sums_select("tw.fh"), S=S, tw=twins, sh=s_hash
                )
            ).fetchone()
        )
        conn.execute(
            sql.SQL("DELETE FROM {S} s WHERE {sh} IN (SELECT {th} FROM {T} t)").format(
                S=S, T=T, sh=s_hash, th=t_hash
            )
        )
    tres.skipped[src.index] = dup
    if dup.rows:
        result.decisions.append(
            f"{src.path}: table {tp.table.name!r}: {dup.rows} row(s) identical to an earlier "
            "source's: stored once"
        )
    cols = sql.SQL(", ").join(sql.Identifier(c.name) for c in copied)
    cur = conn.execute(
        sql.SQL("INSERT INTO {T} ({c}) OVERRIDING SYSTEM VALUE SELECT {c} FROM {S}").format(
            T=T, c=cols, S=S
        )
    )
    tres.rows_written += cur.rowcount
    conn.execute(sql.SQL("DROP TABLE {}").format(S))


def load_tables(
    conn: psycopg.Connection,
    plan: Plan,
    sources: list[Source],
    result: LoadResult,
    policy: str,
    log: Reporter,
    hash_sources: bool = False,
    fresh: bool = False,
) -> None:
    """COPY every table (first source directly, later ones merged); primary keys right after.

    With `hash_sources` (run --verify), the first source's checksum is computed from the very
    batches being copied, when every column is copied (no computed generated columns); `fresh`:
    this transaction created the tables (the STREAM form may be used)."""
    multi = len(sources) > 1
    if multi:
        conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE {} (source_index int, table_name text, old_key bigint, "
                "new_key bigint) ON COMMIT DROP"
            ).format(sql.Identifier(planmod.temp_name(plan, RENUMBER_TABLE)))
        )
    conflicts: list[Problem] = []
    for tp in plan.tables:
        began = time.monotonic()
        tres = result.tables.setdefault(tp.target, TableResult())
        first = sources[tp.sources[0]]
        hasher = _source_hasher(conn, tp, fresh) if hash_sources else None
        try:
            n = copy_rows(conn, tp, first, tp.target, log, hasher=hasher)
            _keep_sum(result, tp, first, hasher, log)
            tres.per_source[first.index] = n
            tres.rows_written += n
            for step in tp.post:  # the key after the bulk load: one sorted build, not 1M inserts
                if step.kind == "pkey":
                    execute_one(conn, step.statement)
            for idx in tp.sources[1:]:
                merge_source(conn, tp, sources[idx], plan, result, policy, log, conflicts)
        except psycopg.IntegrityError as exc:  # NULL or duplicate primary keys in the data
            raise _key_problem(tp, sources, exc) from exc
        _loaded(log, tp, sources, tres, time.monotonic() - began)
    if conflicts:
        raise ConflictError(
            f"{len({(p.source, p.table) for p in conflicts})} table(s) hold rows with the same key "
            "but different content "
            "in several sources; nothing was written (use --on-conflict renumber to give the later "
            "file's rows new keys)",
            conflicts,
        )


def _source_hasher(
    conn: psycopg.Connection, tp: TablePlan, fresh: bool = False
) -> verify.Hasher | verify.WireHasher | verify.Stream | None:
    """What hashes the first source while it is copied (run --verify), for a single-source
    table of wire types when the fast encoder is in use: the stream form when this transaction
    created the table (`fresh`) or gave the app's empty table new storage (`_renewed`): its rows
    are then stored in the order sent; else the wire form;
    for other tables the canonical form; none when some column is computed by the target
    (generated) rather than copied."""
    if tp.copied() != tp.columns:
        return None
    fast = fast_copy_encoder(_RowWriter.INTERNALS) is not None
    alone = fast and len(tp.sources) == 1
    if alone and verify.stream_form(conn, tp.columns) and (fresh or _renewed(conn, tp.target)):
        return verify.Stream()
    if alone and verify.wire_form(conn, tp.columns):
        return verify.WireHasher()
    return verify.Hasher(tp)


# An empty table of the app's whose storage TRUNCATE may renew: a plain table (not partitioned),
# the privilege, no TRUNCATE trigger of the app's to fire, no other table's foreign key to it
# (TRUNCATE would refuse: `existing.prepare` drops only the loaded tables' own).
_RENEWABLE = """
SELECT c.relkind = 'r' AND NOT c.relispartition AND has_table_privilege(c.oid, 'TRUNCATE')
   AND NOT EXISTS (SELECT FROM pg_trigger g WHERE g.tgrelid = c.oid AND g.tgtype & 32 <> 0)
   AND NOT EXISTS (SELECT FROM pg_constraint f
                   WHERE f.contype = 'f' AND f.confrelid = c.oid AND f.conrelid <> c.oid)
   AND NOT EXISTS (SELECT FROM pg_inherits i WHERE i.inhparent = c.oid)
FROM pg_class c WHERE c.oid = to_regclass(%s)
"""


def _renewed(conn: psycopg.Connection, table: str) -> bool:
    """Give an empty table of the app's (`--schema existing`) new storage in this transaction
    (locked, checked empty, TRUNCATEd in a savepoint): PostgreSQL then skips the free space map
    for the COPY, so the rows are stored in the order sent, as in a table the run created
    (`verify.Stream`). False, with nothing changed, when it cannot (`_RENEWABLE`)."""
    ident = sql.Identifier(table)
    row = conn.execute(_RENEWABLE, (ident.as_string(conn),)).fetchone()
    if not (row and row[0]):
        return False
    try:
        with conn.transaction():
            conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(ident))
            if conn.execute(sql.SQL("SELECT EXISTS (SELECT FROM {})").format(ident)).fetchone() != (
                False,
            ):
                return False
            conn.execute(sql.SQL("TRUNCATE {}").format(ident))
    except psycopg.Error:
        return False
    return True


def _keep_sum(
    result: LoadResult,
    tp: TablePlan,
    src: Source,
    hasher: verify.Hasher | verify.WireHasher | verify.Stream | None,
    log: Reporter,
) -> None:
    """The first source's sum, computed while it was copied, kept for run_verify (a Stream
    with no digest left to stand says why, and the table is verified in another form)."""
    if isinstance(hasher, verify.Stream):
        if hasher.broken is None:
            result.source_sums[(tp.target, src.index)] = hasher.source
            result.streams[tp.target] = hasher
        else:
            log.event("note", f"{tp.target}: {hasher.broken}; verified per row", table=tp.target)
    elif hasher is not None:
        result.source_sums[(tp.target, src.index)] = hasher.total


def _loaded(
    log: Reporter, tp: TablePlan, sources: list[Source], tres: TableResult, took: float
) -> None:
    """The `table` event: one table loaded (rows stored, rows read per file)."""
    log.event(
        "table",
        f"{tp.target}: {tres.rows_written:,} row(s) loaded ({duration(took)})",
        table=tp.target,
        rows=tres.rows_written,
        per_source={Path(sources[i].path).name: n for i, n in tres.per_source.items()},
        elapsed_s=round(took, 3),
    )


def _key_problem(tp: TablePlan, sources: list[Source], exc: psycopg.Error) -> DataProblemError:
    """The primary key rejected rows: name it and count the NULL keys in each source."""
    problems = []
    # (a source table without a primary key, loaded into the app's keyed table, has none to count)
    for idx in tp.sources if tp.table.pk else []:
        src = sources[idx]
        st = src.schema.table(tp.table.name)
        nulls = " OR ".join(f"{qi(st.column(c).name)} IS NULL" for c in tp.table.pk)
        row = src.one(f"SELECT count(*) FROM {qi(st.name)} WHERE {nulls}")  # noqa: S608 - identifiers quoted by qi(); read-only SQLite source
        count = int(str(row[0]))
        if count:
            problems.append(
                Problem(
                    src.path,
                    tp.table.name,
                    "-",
                    ",".join(tp.table.pk),
                    f"{count} row(s) with NULL in the key",
                    _first_line(exc),
                )
            )
    if not problems:
        problems.append(
            Problem(
                sources[tp.sources[0]].path,
                tp.table.name,
                "-",
                ",".join(tp.table.pk),
                "-",
                _first_line(exc),
            )
        )
    return DataProblemError(
        f"primary key of {tp.table.name!r}: the data violates it; nothing was written", problems
    )


def _violations(
    conn: psycopg.Connection, tp: TablePlan, step: planmod.PostStep, plan: Plan
) -> list[Problem]:
    """Rows that break a unique key or foreign key, for the report."""
    out: list[Problem] = []
    if step.kind == "unique":
        cols = [c.strip() for c in step.what.split("(")[1].split(")")[0].split(",")]
        idents = sql.SQL(", ").join(map(sql.Identifier, cols))
        for row in conn.execute(
            sql.SQL(
                "SELECT {c}, count(*) FROM {t} GROUP BY {c} HAVING count(*) > 1 LIMIT 50"
            ).format(c=idents, t=sql.Identifier(tp.target))
        ):
            out.append(
                Problem(
                    "target",
                    tp.table.name,
                    "-",
                    ",".join(cols),
                    show(row[:-1]),
                    f"{row[-1]} rows share this UNIQUE value",
                )
            )
    return out


POST_KINDS = ("unique", "index", "check", "fk")


def post_steps(
    conn: psycopg.Connection,
    plan: Plan,
    result: LoadResult,
    kinds: tuple[str, ...] = POST_KINDS,
    collect: list[Problem] | None = None,
) -> None:
    """UNIQUE, indexes, CHECKs and foreign keys (NOT VALID, then VALIDATE), after all the data.

    Rows that break one are refused at the end (DataProblemError), or added to `collect` for the
    caller to refuse with those of later kinds (`refuse_violations`)."""
    problems: list[Problem] = collect if collect is not None else []
    for kind in kinds:
        for tp in plan.tables:
            for step in tp.post:
                if step.kind != kind:
                    continue
                err = _savepoint(conn, step.statement, step.validate)
                if err is None:
                    continue
                state = getattr(err, "sqlstate", None) or ""
                if state in (
                    "23505",
                    "23514",
                    "23503",
                ):  # unique, check, foreign key violated by the data
                    listed = _violations(conn, tp, step, plan)
                    problems.extend(
                        listed
                        or [
                            Problem(
                                "target",
                                tp.table.name,
                                "-",
                                ",".join(checkrows.source_names(tp, step.columns)) or "-",
                                "-",
                                f"{step.what}: {_first_line(err)}",
                            )
                        ]
                    )
                else:
                    why = f"PostgreSQL rejected the translation ({_first_line(err)})"
                    result.refused.append(Refusal(step.key, step.what, why))
    if collect is None:
        refuse_violations(problems)


def refuse_violations(problems: list[Problem]) -> None:
    """Refuse the run if the data broke any constraint `post_steps` created."""
    if problems:
        raise DataProblemError(
            "the data breaks constraints declared in the source schema; nothing was written",
            problems,
        )


def create_views(
    conn: psycopg.Connection, plan: Plan, result: LoadResult, replace: bool
) -> list[str]:
    """Create the translated views (retrying those that depend on later ones); report the rest."""
    pending = [(n, t, q) for n, t, q, e in plan.views if q is not None]
    created: list[str] = []
    errors: dict[str, str] = {}
    if replace:
        drop_views(conn, [target for _name, target, _query in pending])
    progress = True
    while pending and progress:
        progress = False
        for item in list(pending):
            name, target, query = item
            err = _savepoint(
                conn, sql.SQL("CREATE VIEW {} AS {}").format(sql.Identifier(target), query)
            )
            if err is None:
                pending.remove(item)
                created.append(target)
                progress = True
            else:
                errors[name] = _first_line(err)
    for name, _target, query in pending:
        why = (
            f"PostgreSQL rejected the translation ({errors[name]}); translated SQL: "
            f"{query.as_string(conn)}"
        )
        result.refused.append(Refusal(f"view:{name}", f"view {name!r}", why))
    return created


def refuse_unmigrated(plan: Plan, result: LoadResult) -> None:
    """Before commit: every view, index, CHECK or default that cannot be created, and was not
    skipped by name, refuses the run (the app's schema is the contract)."""
    refused = plan.refusals + result.refused
    if refused:
        raise SchemaObjectError(
            f"{len(refused)} object(s) of the source schema cannot be created in PostgreSQL; "
            "nothing was written: " + "; ".join(r.message() for r in refused),
            [r.problem() for r in plan.attributed(refused)],
        )


def try_ddl(
    conn: psycopg.Connection,
    plan: Plan,
    sources: list[Source],
    namer: Namer,
    own_server: bool = False,
    violations: Broken | None = None,
) -> list[Refusal]:
    """What `run` would refuse: create every table (empty), key, index, CHECK and view in a
    scratch schema inside a transaction that is rolled back (`plan`'s prediction). The types
    casts name are looked up on the server first (`own_server`: the throwaway embedded one,
    where citext is created for the trial; the report says the target needs it). With
    `violations`, the CHECKs are also tried on the data (`check_violations`)."""
    result = LoadResult()
    scratch = sql.Identifier(f"petstore_plan_{os.getpid()}")
    with conn.transaction(force_rollback=True):
        if own_server and any(t.labels is None for t in plan.named_types):
            conn.execute("CREATE EXTENSION IF NOT EXISTS citext")
        casts.resolve(conn, plan.named_types)
        execute_one(conn, sql.SQL("CREATE SCHEMA {}").format(scratch))
        execute_one(conn, sql.SQL("SET LOCAL search_path TO {}").format(scratch))
        create_tables(conn, plan, sources, namer, result)
        if violations is not None:
            violations.extend(check_violations(conn, plan, sources))
        for tp in plan.tables:
            for step in tp.post:
                if step.kind == "pkey":
                    err = _savepoint(conn, step.statement)
                    if err is not None:
                        why = f"PostgreSQL rejected it ({_first_line(err)})"
                        result.refused.append(Refusal(step.key, step.what, why))
        post_steps(conn, plan, result)
        create_views(conn, plan, result, replace=False)
    casts.forget(plan.named_types)
    plan.reported.extend(result.reported)
    return plan.refusals + result.refused


def lenient(tp: TablePlan) -> TablePlan:
    """The table with every value converted and a value that does not convert loaded as NULL
    (it is a problem of its own, listed by `diagnose`): constraints can then be tried on the
    rest of its rows."""

    def forgiving(check: Callable[[object], object]) -> Callable[[object], object]:
        def convert(value: object) -> object:
            try:
                return check(value)
            except Exception:  # noqa: BLE001 - any refused value is listed by diagnose
                return None

        return convert

    columns = [replace(c, check=forgiving(c.check), convert_on_load=True) for c in tp.columns]
    return replace(tp, columns=columns)


def check_violations(conn: psycopg.Connection, plan: Plan, sources: list[Source]) -> Broken:
    """The rows that break the CHECKs, per file (`checkrows`): each table holding a CHECK is
    filled from one source at a time (its tables already created, empty, e.g. by `try_ddl`),
    each row's name in its file alongside, and each CHECK added and validated; PostgreSQL
    counts and lists the rows of one the data breaks. All rolled back. A value that does not
    convert is loaded as NULL (`lenient`): `diagnose` lists that value."""
    quiet = Reporter("json", (), io.StringIO(), io.StringIO())
    out = Broken()
    for tp in plan.tables:
        checks = [s for s in tp.post if s.kind == "check"]
        for idx in tp.sources if checks else []:
            with conn.transaction(force_rollback=True):
                for c in tp.columns:  # a value loaded as NULL (lenient) is listed already
                    if c.source.notnull and c.name != tp.identity:
                        conn.execute(
                            sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP NOT NULL").format(
                                sql.Identifier(tp.target), sql.Identifier(c.name)
                            )
                        )
                filled, row, row_type = checkrows.with_row(lenient(tp))
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                        sql.Identifier(tp.target), sql.Identifier(row), row_type
                    )
                )
                try:
                    with conn.transaction():
                        copy_rows(conn, filled, sources[idx], tp.target, quiet)
                except (LoadValueError, psycopg.DataError, psycopg.IntegrityError):
                    continue
                for step in checks:
                    err = _savepoint(conn, step.statement, step.validate)
                    if err is not None and getattr(err, "sqlstate", None) == "23514":
                        path = sources[idx].path
                        out.extend(checkrows.of_step(conn, tp, step, row, path, _first_line(err)))
    return out


def reset_sequences(conn: psycopg.Connection, plan: Plan, result: LoadResult) -> None:
    """Identity columns continue after max(max(id), sqlite_sequence.seq)."""
    for tp in plan.tables:
        if tp.identity is None:
            continue
        row = conn.execute(
            sql.SQL("SELECT max({}) FROM {}").format(
                sql.Identifier(tp.identity), sql.Identifier(tp.target)
            )
        ).fetchone()
        top = max(int(row[0]) if row and row[0] is not None else 0, tp.restart_after)
        conn.execute(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} RESTART WITH {}").format(
                sql.Identifier(tp.target), sql.Identifier(tp.identity), sql.Literal(top + 1)
            )
        )
        result.decisions.append(
            f"table {tp.table.name!r}: identity {tp.identity} continues at {top + 1}"
        )
