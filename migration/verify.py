"""Row counts and content checksums, computed identically on both sides.

Each row is rendered canonically (typemap.canon_* in Python, the SQL below in PostgreSQL:
integers as decimal text, floats as the hex of their IEEE-754 bits, text length-prefixed,
bytea as hex, booleans t/f, timestamps to the microsecond, NULL as \\N), joined with U+001F
and hashed with MD5. A table's checksum is the exact sum of its rows' 128-bit hashes: every
row's hash covers its key, so equal sums mean equal rows, whatever the order, and the sum
needs constant memory on both sides (and combines across several sources). PostgreSQL sums
the hash in three bigint-sized slices (60 + 60 + 8 bits) that Python recombines.

`run --verify` hashes a table whose every column's binary form is the value itself (integers,
float8, text, bytea, boolean: `wire_form`) in the *wire* form instead: the row as the load's
binary COPY sends it (field count, then per field its length or -1 and its bytes), hashed from
the very bytes sent, against PostgreSQL's rendering of the stored row with the types' send
functions; the checksum is the exact sum of the rows' MD5s cut to 64 bits (signed). No Python
code per value on the source side, a cheaper rendering and a parallel aggregate on the server.
A Sum knows its form: sums of two forms never compare equal and never add up.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import itertools
import operator
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from migration import typemap
from migration.convert import TEXT_SQL
from migration.errors import TargetServerError
from migration.plan import TablePlan
from migration.source import Large, Source, no_cycle_collection, qi
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
# PostgreSQL passes at most 100 arguments to a function (FUNC_MAX_ARGS): a wide row's
# renderings are joined in groups of this many, then the groups (concat_ws skips no value:
# every rendering is non-NULL, so nesting gives the same text).
CONCAT_ARGS = 90
GATHER_ROW_COST = "0.01"  # parallel_tuple_cost while hashing a target table (default 0.1)
try:  # CPython's own MD5 takes ~40 % less time per short row than OpenSSL's behind hashlib
    _md5 = importlib.import_module("_md5").md5
except ImportError:  # pragma: no cover - a Python built without it
    _md5 = hashlib.md5


CANON = "canon"  # the canonical text rendering (module docstring)
WIRE = "wire"  # the binary COPY rendering (`wire_form`)
STREAM = "stream"  # the MD5 of each COPY chunk's rows, in the order sent and stored (`Stream`)


@dataclass
class Sum:
    """Row count and checksum of one table (or part of one), in one form (CANON or WIRE)."""

    rows: int = 0
    checksum: int = 0
    form: str = CANON

    def __add__(self, other: Sum) -> Sum:
        return Sum(self.rows + other.rows, self.checksum + other.checksum, self._form(other))

    def __sub__(self, other: Sum) -> Sum:
        return Sum(self.rows - other.rows, self.checksum - other.checksum, self._form(other))

    def _form(self, other: Sum) -> str:
        """The form of a combination: two forms never mix (an empty Sum adapts)."""
        if other.form == self.form or not (other.rows or other.checksum):
            return self.form
        if not (self.rows or self.checksum):
            return other.form
        raise ValueError(f"a {self.form} checksum cannot be combined with a {other.form} one")

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
    # a column loaded into the app's own type brings its rendering (existing.TargetColumnPlan)
    template = getattr(col, "pg_canon", None) or _PG_CANON[col.kind]
    return sql.SQL("coalesce(" + template + ", {null})").format(c=ident, null=sql.Literal("\\N"))


def pg_row_text(cols: list[ColumnPlan], alias: str | None = None) -> sql.Composable:
    """The canonical row: the columns' renderings joined with SEP (`Hasher.texts` in Python)."""
    return _concat_ws([pg_canon(c, alias) for c in cols])


def _concat_ws(parts: list[sql.Composable]) -> sql.Composable:
    """concat_ws(SEP, parts...), nested in groups when there are more than CONCAT_ARGS."""
    while len(parts) > CONCAT_ARGS:
        parts = [_concat_ws(parts[i : i + CONCAT_ARGS]) for i in range(0, len(parts), CONCAT_ARGS)]
    return sql.SQL("concat_ws({sep}, {parts})").format(
        sep=sql.Literal(SEP), parts=sql.SQL(", ").join(parts)
    )


def pg_row_hash(
    cols: list[ColumnPlan], alias: str | None = None, utf8: bool = True
) -> sql.Composable:
    """md5 of the canonical row; in a database whose encoding is not UTF-8 (`utf8` False), of
    its UTF-8 bytes, as Python hashes it (md5 of text hashes the database's bytes)."""
    if not utf8:
        return sql.SQL("md5(convert_to({}, 'UTF8'))").format(pg_row_text(cols, alias))
    return sql.SQL("md5({})").format(pg_row_text(cols, alias))


def utf8_session(conn: psycopg.Connection) -> dict[str, str]:
    """The setting that makes the canonical renderings' `*_send` (an array's text elements)
    UTF-8, as Python renders them, in a session whose client encoding is another."""
    client = conn.info.parameter_status("client_encoding")
    return {} if client in ("UTF8", "SQL_ASCII") else {"client_encoding": "UTF8"}


def utf8_bytes(conn: psycopg.Connection) -> bool:
    """Whether text in the target database hashes as its UTF-8 bytes (`pg_row_hash`)."""
    return conn.info.parameter_status("server_encoding") in ("UTF8", "SQL_ASCII")


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


def target_sum(conn: psycopg.Connection, tp: TablePlan, form: str = CANON) -> Sum:
    """Count and checksum of the target table, in `form`.

    PostgreSQL's cost model sees md5 and the renderings as nearly free, so it would rather hash
    every row in one process than ship the hashes from parallel workers: for this query only,
    gathering a row is made cheap (the workers see this transaction's rows)."""
    if form == WIRE:
        query = pg_wire_sum_of(tp.columns, sql.Identifier(tp.target))
    else:
        row_hash = pg_row_hash(tp.columns, utf8=utf8_bytes(conn))
        query = pg_sum_of(row_hash, sql.Identifier(tp.target))
    with settings(conn, {"parallel_tuple_cost": GATHER_ROW_COST, **utf8_session(conn)}):
        result = conn.execute(query).fetchone()
    total = _wire_sum_from_row(result) if form == WIRE else sum_from_row(result)
    return Sum(total.rows, total.checksum, form)


def source_sum(
    src: Source, tp: TablePlan, remap: Callable[[list[list[object]]], None] | None = None
) -> Sum:
    """Count and checksum of one source's table, values converted exactly as they are loaded."""
    hasher = Hasher(tp)
    with no_cycle_collection():
        for columns in source_columns(src, tp, remap):
            hasher.add(columns)
    return hasher.total


def source_columns(
    src: Source, tp: TablePlan, remap: Callable[[list[list[object]]], None] | None = None
) -> Iterator[list[list[object]]]:
    """One source's table in column-wise batches, values converted exactly as they are loaded
    (and foreign keys renumbered by `remap`)."""
    st = src.schema.table(tp.table.name)
    cols = tp.columns
    # The same conversions as the load: checks only where the load applies them.
    checks = [
        c.check if c.convert_on_load or c.needs_diagnosis or c.source.generated else None
        for c in cols
    ]
    exprs = [c.select.replace(qi(c.source.name), qi(st.column(c.source.name).name)) for c in cols]
    streamable = [
        streamable_column(c, st.column(c.source.name).name) if f is None else None
        for c, f in zip(cols, checks, strict=True)
    ]
    for batch in src.table_batches(st.name, exprs, streamable, BATCH_ROWS):
        columns: list[list[object]] = [
            list(map(f, col)) if f is not None else list(col)
            for f, col in zip(checks, zip(*batch, strict=True), strict=True)
        ]
        if remap is not None:
            remap(columns)
        yield columns


def streamable_column(col: ColumnPlan, name: str) -> tuple[str, str] | None:
    """(source column, storage class) when the column's large values may be streamed: a stored
    text or bytea column selected as is (no conversion needs the whole value)."""
    if col.source.generated or col.select != qi(col.source.name):
        return None
    return {"text": (name, "text"), "bytea": (name, "blob")}.get(col.kind)


class Hasher:
    """Accumulates a table's Sum from column-wise batches of converted values (the load calls
    it on the batches it copies, so `run --verify` reads each first source only once).

    Each row's canonical text is built by one `str.join` over streams prepared a whole column at
    a time: a text column contributes its values as they are and cached `SEP + length + ':'`
    heads, floats are packed by one `struct` call per column, integers go through `map(str)`.
    So the per-row work is that join, the encoding and the MD5, with no Python code per value
    of the common kinds (the rarer kinds use the column's own `canon`)."""

    def __init__(self, tp: TablePlan) -> None:
        self.columns = [
            (c.kind, _STREAMS.get(c.kind) or _per_value(c.canon), SEP if i else "")
            for i, c in enumerate(tp.columns)
        ]
        self.canons = [c.canon for c in tp.columns]
        self.total = Sum()

    def add(self, columns: list[list[object]] | list[tuple[object, ...]]) -> None:
        """One batch, one sequence of values per column (in `tp.columns` order).

        A value of another type than its column's kind (text in a REAL column, say) raises
        TypeError, as binary COPY's dumpers do, so the load diagnoses it the same way."""
        n = self._rows(columns)
        if n == 1 and any(isinstance(col[0], Large) for col in columns):
            self.total = self.total + Sum(1, self._streamed([col[0] for col in columns]))
            return
        try:
            texts = self.texts(columns)
            acc = sum(map(int.from_bytes, map(_digest, map(_md5, map(str.encode, texts)))))
        except (struct.error, AttributeError, ValueError) as exc:
            raise TypeError(f"a value does not match its column's type: {exc}") from exc
        self.total = self.total + Sum(n, acc)

    def _streamed(self, row: list[object]) -> int:
        """One row's hash, fed piece by piece: its large values are never held whole."""
        md5 = _md5()
        for (_kind, _streams, lead), canon, value in zip(
            self.columns, self.canons, row, strict=True
        ):
            md5.update(lead.encode())
            if not isinstance(value, Large):
                md5.update(canon(value).encode())
            elif value.text:
                md5.update(f"{value.chars()}:".encode())
                for piece in value.chunks():
                    md5.update(piece)  # UTF-8 already: the text's encoding
            else:
                for piece in value.chunks():
                    md5.update(piece.hex().encode())
        return int.from_bytes(md5.digest())

    def texts(self, columns: list[list[object]] | list[tuple[object, ...]]) -> Iterator[str]:
        """The canonical text of each row of a batch (`pg_row_text` in PostgreSQL)."""
        if not self._rows(columns):
            return iter(())
        parts: list[Iterable[str]] = []
        for (kind, streams, lead), col in zip(self.columns, columns, strict=True):
            if kind == "text":
                parts += _text_streams(col, lead)
            else:
                if lead:
                    parts.append(itertools.repeat(lead))
                parts.append(streams(col))
        return map("".join, zip(*parts, strict=False))  # the repeat()s are endless

    def _rows(self, columns: list[list[object]] | list[tuple[object, ...]]) -> int:
        n = len(columns[0]) if columns else 0
        if len(columns) != len(self.columns) or any(len(col) != n for col in columns):
            raise ValueError("a batch needs one sequence of values per column, all as long")
        return n


_digest = operator.methodcaller("digest")
NULL = typemap.NULL_CANON
Column = Sequence[object]


def _per_value(fn: Callable[[object], str]) -> Callable[[Column], Iterable[str]]:
    return lambda col: map(fn, col)


def _nones(col: Column) -> list[int]:
    """Positions of the NULLs in a column (found without a Python-level loop)."""
    return list(itertools.compress(range(len(col)), map(operator.is_, col, itertools.repeat(None))))


def _ints(col: Column) -> Iterable[str]:
    if None in col:
        return [NULL if v is None else str(v) for v in col]
    return map(str, col)


def _doubles(col: Column) -> Iterable[str]:
    """The big-endian IEEE-754 bits of each value as 16 hex digits: one pack for the column."""
    try:
        return _hex_doubles(col)
    except struct.error:  # a NULL (checked only then: `None in` costs as much as the pack)
        nulls = _nones(col)
        values = list(col)
        for i in nulls:
            values[i] = 0.0
        hexes = _hex_doubles(values)
        for i in nulls:
            hexes[i] = NULL
        return hexes


def _hex_doubles(col: Column) -> list[str]:
    return struct.pack(f">{len(col)}d", *col).hex(" ", 8).split(" ")


def _bytes(col: Column) -> Iterable[str]:
    return [NULL if v is None else v.hex() for v in col]  # type: ignore[attr-defined]


class _Heads(dict[int, str]):
    """`lead + str(length) + ':'` by length, each built once (up to _HEADS_KEPT of them)."""

    def __init__(self, lead: str) -> None:
        super().__init__()
        self.lead = lead

    def __missing__(self, length: int) -> str:
        head = f"{self.lead}{length}:"
        if len(self) < _HEADS_KEPT:
            self[length] = head
        return head


_HEADS_KEPT = 65_536
_HEADS = {"": _Heads(""), SEP: _Heads(SEP)}


def _text_streams(col: Column, lead: str) -> list[Iterable[str]]:
    """Heads (`lead + length + ':'`, or `lead + NULL`) and values ('' for NULL)."""
    head = _HEADS[lead].__getitem__
    try:
        return [list(map(head, map(len, col))), col]  # type: ignore[arg-type, list-item]
    except TypeError:  # a NULL
        nulls = _nones(col)
        values = list(col)
        for i in nulls:
            values[i] = ""
        heads = list(map(head, map(len, values)))  # type: ignore[arg-type]
        for i in nulls:
            heads[i] = lead + NULL
        return [heads, values]  # type: ignore[list-item]


# Column-at-a-time renderings of the common kinds (same output as typemap.canon_*); text is
# handled by _text_streams.
_STREAMS: dict[str, Callable[[Column], Iterable[str]]] = {
    "int": _ints,
    "double": _doubles,
    "bytea": _bytes,
}


# -- the wire form -------------------------------------------------------------------------
# Per (kind, COPY type): the field exactly as binary COPY sends it (4-byte length, then the
# value's bytes), rendered by PostgreSQL from the stored value with the type's send function.
# Only types whose binary form is the value itself: the bytes sent are what is stored, and what
# `send` renders from it (text in the session's client encoding, as sent; `octet_length`
# counts the server's: `wire_form` requires UTF-8 for both).
_WIRE_FIELD = {
    ("int", "int2"): "{n2} || int2send({c})",
    ("int", "int4"): "{n4} || int4send({c})",
    ("int", "int8"): "{n8} || int8send({c})",
    ("double", "float8"): "{n8} || float8send({c})",
    ("bool", "bool"): "{n1} || boolsend({c})",
    ("text", "text"): "int4send(octet_length({c}::text)) || textsend({c}::text)",
    ("bytea", "bytea"): "int4send(octet_length({c})) || {c}",
}
_WIRE_NULL = b"\xff\xff\xff\xff"  # a NULL field: length -1, no bytes
# A column keeps the wire form only with the kind's own SQL rendering, or text's cast to text
# (varchar, citext, enum labels, json text: their binary form is their text).
_WIRE_CANONS = (None, TEXT_SQL)


def wire_form(conn: psycopg.Connection, cols: Sequence[ColumnPlan]) -> bool:
    """Whether a table with these columns may be verified in the wire form on `conn`: UTF-8 on
    both ends of the session (the load streams large text as the file's UTF-8 bytes, and
    `octet_length` counts the server's bytes), every column of a wire type."""
    encodings = {conn.info.parameter_status(p) for p in ("client_encoding", "server_encoding")}
    return encodings == {"UTF8"} and all(_wire_field(c) is not None for c in cols)


def _wire_field(col: ColumnPlan) -> str | None:
    if getattr(col, "pg_canon", None) not in _WIRE_CANONS:
        return None
    return _WIRE_FIELD.get((col.kind, col.copy_type))


def pg_wire_hash(cols: Sequence[ColumnPlan], alias: str | None = None) -> sql.Composable:
    """md5 of the stored row as binary COPY sends it (field count, then each field)."""
    return sql.SQL("md5({})").format(pg_wire_row(cols, alias))


def pg_wire_row(cols: Sequence[ColumnPlan], alias: str | None = None) -> sql.Composable:
    """The stored row as binary COPY sends it (field count, then each field), as a bytea."""
    lengths = {f"n{n}": sql.Literal(n.to_bytes(4, "big")) for n in (1, 2, 4, 8)}
    parts: list[sql.Composable] = [sql.Literal(len(cols).to_bytes(2, "big"))]
    for col in cols:
        template = _wire_field(col)
        if template is None:
            raise ValueError(f"column {col.name!r} has no wire form ({col.kind}, {col.copy_type})")
        ident = sql.Identifier(alias, col.name) if alias else sql.Identifier(col.name)
        field = sql.SQL(template).format(c=ident, **lengths)
        parts.append(sql.SQL("coalesce({}, {})").format(field, sql.Literal(_WIRE_NULL)))
    return sql.SQL(" || ").join(parts)


def pg_wire_sum_of(cols: Sequence[ColumnPlan], from_clause: sql.Composable) -> sql.Composed:
    """SELECT the count and the wire checksum: the sum of each row's hash as a signed 64-bit
    integer (the first 16 hex digits of its MD5). One expression per row, so PostgreSQL's
    parallel workers aggregate their share themselves (a partial aggregate): the leader only
    adds up their sums."""
    return sql.SQL(
        "SELECT count(*), coalesce(sum(('x' || left({h}, 16))::bit(64)::bigint), 0) FROM {f}"
    ).format(h=pg_wire_hash(cols), f=from_clause)


def _wire_sum_from_row(row: tuple[object, ...] | None) -> Sum:
    if row is None:  # pragma: no cover - an aggregate always returns one row
        return Sum(form=WIRE)
    return Sum(int(str(row[0])), int(str(row[1])), WIRE)


class WireHasher:
    """Accumulates a table's WIRE Sum from the rows' binary COPY bytes, as the load encodes
    them: one MD5 per row, no Python code per value; each row's hash is the MD5's first 8 bytes
    as a signed big-endian integer (`pg_wire_sum_of`), unpacked for a whole batch at once."""

    def __init__(self) -> None:
        self.total = Sum(form=WIRE)

    def add(self, rows: Sequence[bytes | bytearray]) -> None:
        """A batch of encoded rows (each: field count, then its fields)."""
        digests = b"".join(map(_digest, map(_md5, rows)))
        acc = sum(struct.unpack(">" + _WIRE_ROW_HASH * len(rows), digests))
        self.total = self.total + Sum(len(rows), acc, WIRE)

    def md5(self) -> Any:
        """An MD5 to feed one row's bytes piece by piece (`add_digest` it after)."""
        return _md5()

    def add_digest(self, digest: bytes) -> None:
        """One row hashed piece by piece (a row with large values)."""
        (value,) = struct.unpack(">" + _WIRE_ROW_HASH, digest)
        self.total = self.total + Sum(1, value, WIRE)


_WIRE_ROW_HASH = "q8x"  # of each 16-byte MD5: the first 8 bytes as a signed integer, then skip 8


# -- the stream form -------------------------------------------------------------------------
# A table this transaction created is written only by its COPY statements, and PostgreSQL then
# skips the free space map (copyfrom.c: TABLE_INSERT_SKIP_FSM): every row lands after the rows
# stored before it, so the heap holds the rows in the order they were sent. The load sends such a
# table in chunks, one COPY each, MD5s each chunk's encoded rows as it sends them (a few large
# updates: no Python code per row) and notes where in the heap the chunk ended (`chunk_end`, a
# look at the heap's last pages). At verification PostgreSQL MD5s each chunk's stored rows,
# rendered as in the wire form and read in heap order (`pg_chunk_digests`): one aggregate per
# chunk over a TID range scan, the chunks spread over its parallel workers (a Parallel Append
# runs each whole in one process, so each sees its rows in order).
# The rows of a chunk just COPYed end the heap, so its last row is in the heap's last pages (the
# COPY leaves a few pages it extended the heap by empty at the end: 16 at most here).
_HEAP_BLOCKS = "SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::bigint"
_LAST_TID = "SELECT max(ctid)::text FROM {table} WHERE ctid > %s::tid AND ctid >= %s::tid"
TAIL_BLOCKS = 64  # the pages searched first for a chunk's last row (then all of the chunk's)
_CHUNK_DIGEST = (
    "SELECT count(*), md5(string_agg({row}, ''::bytea)) FROM {table} "
    "WHERE ctid > %s::tid AND ctid <= %s::tid"
)
FIRST_TID = "(0,0)"  # before the first row of a table (line pointers start at 1)
DIGESTS_PER_QUERY = 32  # chunks digested by one query (its Parallel Append's branches)
# For the digest query only: starting workers and gathering 32 rows costs next to nothing
# against MD5ing 32 chunks of ~4 MB, but PostgreSQL's defaults (1000, 0.1) make it run serially.
PARALLEL_SETTINGS = {"parallel_setup_cost": "0", "parallel_tuple_cost": "0"}


def chunk_end(conn: psycopg.Connection, table: sql.Identifier, regclass: str, after: str) -> str:
    """The last ctid of the rows stored after `after` (a chunk just COPYed), `after` if none:
    looked for in the heap's last TAIL_BLOCKS pages, then, should they hold none of those rows,
    in all the pages after `after` (a scan of the chunk's own pages)."""
    row = conn.execute(_HEAP_BLOCKS, (regclass,)).fetchone()
    blocks = int(str(row[0])) if row else 0
    query = sql.SQL(_LAST_TID).format(table=table)
    for first in dict.fromkeys((max(blocks - TAIL_BLOCKS, 0), 0)):
        last = conn.execute(query, (after, f"({first},0)")).fetchone()
        if last is not None and last[0] is not None:
            return str(last[0])
    return after


def pg_chunk_digests(
    cols: Sequence[ColumnPlan], table: sql.Composable, chunks: int
) -> sql.Composed:
    """Count and MD5 of the rows' wire bytes concatenated in heap order, for each of `chunks`
    TID ranges (lo, hi] passed as parameters: one aggregate per range, UNION ALL."""
    one = sql.SQL(_CHUNK_DIGEST).format(row=pg_wire_row(cols), table=table)
    return sql.SQL(" UNION ALL ").join([one] * chunks)


def stream_form(conn: psycopg.Connection, cols: Sequence[ColumnPlan]) -> bool:
    """Whether the server can digest chunks (TID range scans and max(tid): PostgreSQL 14) and
    the columns have a wire form (`wire_form`)."""
    if not wire_form(conn, cols):
        return False
    row = conn.execute("SELECT to_regprocedure('pg_catalog.max(tid)') IS NOT NULL").fetchone()
    return bool(row and row[0]) and conn.info.server_version >= 140000


@dataclass
class Stream:
    """A table sent in chunks: `source`, the STREAM sum of the bytes sent (each chunk's MD5);
    `bounds`, each chunk's TID range (lo, hi] as stored; `stored`, the rows PostgreSQL counted in
    them. `counts` are the rows sent per chunk, recorded so that a rerun can digest both sides
    alike again (`target_stream_sum`, `load.source_stream_sum`). `broken` says why no digest
    stands for the table (then it is verified in another form)."""

    source: Sum = field(default_factory=lambda: Sum(form=STREAM))
    bounds: list[tuple[str, str]] = field(default_factory=list)
    stored: int = 0
    counts: list[int] = field(default_factory=list)
    broken: str | None = None

    @property
    def last_tid(self) -> str:
        return self.bounds[-1][1] if self.bounds else FIRST_TID

    def add(self, rows: int, digest: bytes, end: tuple[int, str]) -> None:
        """One chunk: `rows` sent with MD5 `digest`; `end`: the rows the server's COPY stored and
        the last one's ctid."""
        count, last = end
        self.source = self.source + Sum(rows, int.from_bytes(digest), STREAM)
        self.counts.append(rows)
        if count:
            self.bounds.append((self.last_tid, last))
            self.stored += count


def stream_target_sum(conn: psycopg.Connection, tp: TablePlan, stream: Stream) -> Sum | None:
    """The target's STREAM sum: each chunk's stored rows digested (`pg_chunk_digests`, with
    parallel workers); None if rows were stored after the last chunk since (the table is then
    compared row by row). A row changed or deleted inside the chunks changes their digests."""
    table = sql.Identifier(tp.target)
    after = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE ctid > %s::tid").format(table), (stream.last_tid,)
    ).fetchone()
    if after is None or int(str(after[0])):
        return None
    total = Sum(form=STREAM)
    try:
        with settings(conn, PARALLEL_SETTINGS):
            for i in range(0, len(stream.bounds), DIGESTS_PER_QUERY):
                group = stream.bounds[i : i + DIGESTS_PER_QUERY]
                query = pg_chunk_digests(tp.columns, table, len(group))
                for count, md5_hex in conn.execute(query, [t for b in group for t in b]):
                    total = total + Sum(int(str(count)), int(str(md5_hex or "0"), 16), STREAM)
    except psycopg.Error as exc:  # not the data's fault: the rows are stored
        if conn.broken:  # a lost connection is said as such (cli), not as a failed digest
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TargetServerError(
            f"PostgreSQL failed to digest the stored rows of table {tp.target} ({first}); "
            "nothing was committed",
            exc.sqlstate,
        ) from exc
    return total


@contextlib.contextmanager
def settings(conn: psycopg.Connection, values: dict[str, str]) -> Iterator[None]:
    """Settings changed for the enclosed statements of this transaction, then restored."""
    names = list(values)
    row = conn.execute(
        sql.SQL("SELECT {}").format(
            sql.SQL(", ").join(
                sql.SQL("current_setting({}), set_config({}, {}, true)").format(
                    sql.Literal(n), sql.Literal(n), sql.Literal(values[n])
                )
                for n in names
            )
        )
    ).fetchone()
    try:
        yield
    finally:
        if row is not None and conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
            conn.execute(
                sql.SQL("SELECT {}").format(
                    sql.SQL(", ").join(
                        sql.SQL("set_config({}, {}, true)").format(
                            sql.Literal(n), sql.Literal(str(row[2 * i]))
                        )
                        for i, n in enumerate(names)
                    )
                )
            )


def target_stream_sum(conn: psycopg.Connection, tp: TablePlan, counts: Sequence[int]) -> Sum:
    """The target's STREAM sum recomputed in chunks of the recorded row `counts`, in heap order
    (a rerun of a stream-verified migration: equal to the recorded sum if the table is as it
    was then); rows beyond them in further chunks of the largest count."""
    query = sql.SQL(
        "SELECT count(*), md5(string_agg(r, ''::bytea)), max(t)::text FROM "
        "(SELECT ctid AS t, {row} AS r FROM {table} WHERE ctid > %s::tid LIMIT %s) AS chunk"
    ).format(row=pg_wire_row(tp.columns), table=sql.Identifier(tp.target))
    total, last = Sum(form=STREAM), FIRST_TID
    with settings(conn, {"max_parallel_workers_per_gather": "0"}):
        for n in chunk_sizes(counts):
            row = conn.execute(query, (last, n)).fetchone()
            if row is None or not int(str(row[0])):
                break
            total = total + Sum(int(str(row[0])), int(str(row[1]), 16), STREAM)
            last = str(row[2])
    return total


def chunk_sizes(counts: Sequence[int]) -> Iterator[int]:
    """Rows per chunk when a stream sum is recomputed: the recorded counts, then (for rows the
    recording did not have) chunks of the largest of them, on both sides alike."""
    yield from counts
    yield from itertools.repeat(max(counts, default=0) or BATCH_ROWS)
