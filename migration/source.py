"""Open a SQLite source read-only, hold one snapshot for the whole run, and read its schema.

Sources are read with apsw, not the standard library's sqlite3: apsw ships its own, current
SQLite (the same on every machine and in the Job's image), and turns rows into Python
objects in about 55 % of the time sqlite3 takes, which is most of a migration's client-side
cost (see docs/benchmark.md).
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import itertools
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import apsw

from migration import translate
from migration.errors import SourceError, SourceTextError
from migration.model import (
    Check,
    Column,
    ForeignKey,
    Index,
    IndexColumn,
    SourceSchema,
    Table,
    Trigger,
    View,
    name_key,
)

# Seconds to wait for another process's write lock before reporting the file as locked.
BUSY_TIMEOUT_S = float(os.environ.get("MIGRATION_SQLITE_BUSY_TIMEOUT_S", "5"))
SQLITE_HEADER = b"SQLite format 3\x00"
_AUTOINCREMENT = re.compile(r"\bAUTOINCREMENT\b", re.IGNORECASE)
# The tables SQLite makes for itself (AUTOINCREMENT, ANALYZE); any other sqlite_ name was planted.
SQLITE_INTERNAL_TABLES = frozenset(
    {"sqlite_sequence", "sqlite_stat1", "sqlite_stat2", "sqlite_stat3", "sqlite_stat4"}
)
# Python frames allowed while parsing a CREATE TABLE (the default 1000 fails at ~45 nested
# parentheses); Python-to-Python calls use no C stack since 3.11, 20000 was tried at 900 levels.
PARSE_RECURSION_LIMIT = 10_000
_NEEDS_PARSE = re.compile(r"\b(CHECK|AS|COLLATE)\b", re.IGNORECASE)  # else sqlglot is not needed
MB = 1 << 20
# One batch holds at most this many bytes of values (SQLite's record sizes): memory is bounded
# by the data, not by the row count (5,000 rows of 150 KB would be 750 MB in one batch).
BATCH_BYTES = 8 * MB
# A TEXT or BLOB value larger than this is never held whole: it is read in STREAM_CHUNK pieces
# through SQLite's incremental blob I/O (copied and hashed piece by piece).
STREAM_BYTES = 4 * MB
STREAM_CHUNK = 1 * MB
SQLITE_MAX_COLUMNS = 2000  # SQLITE_MAX_COLUMN of apsw's SQLite: result columns of one query
_CODECS = {"UTF-8": "utf-8", "UTF-16LE": "utf-16-le", "UTF-16BE": "utf-16-be"}  # PRAGMA encoding
_ROWID_NAMES = ("rowid", "_rowid_", "oid")  # a table's own column may shadow one or two of them


def qi(name: str) -> str:
    """A SQLite identifier, quoted (used only in queries against the read-only source)."""
    return '"' + name.replace('"', '""') + '"'


def _as_bytes(value: object) -> bytes:
    """A value read as BLOB (or, if SQLite returned it otherwise, its text) as bytes."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return b"" if value is None else str(value).encode()


class Source:
    """One SQLite file opened read-only inside a single read transaction (one snapshot)."""

    def __init__(
        self, path: str, index: int, log: Callable[[str, str], None], immutable: bool = False
    ) -> None:
        self.path = path
        self._copies = immutable  # --source-immutable: nobody writes the file during the run
        self.index = index
        self.label = path
        self.immutable = False
        self._wal_header = False
        self._opened_as: tuple[int, int, int] | None = None  # file identity when immutable=1
        self._log = log
        self._payloads: dict[str, int | None] = {}
        self.conn = self._open()
        self.encoding, self.text_codec = self._text_encoding()
        self.schema = self._read_schema()

    # -- opening ---------------------------------------------------------------------------
    def _uri(self, immutable: bool) -> str:
        absolute = str(Path(self.path).resolve())
        mode = "immutable=1" if immutable else "mode=ro"
        return f"file:{quote(absolute)}?{mode}"

    def _check_file(self) -> None:
        path = Path(self.path)
        if not path.exists():
            raise SourceError(f"source {self.path}: file does not exist")
        if not path.is_file():
            raise SourceError(f"source {self.path}: not a regular file")
        try:
            with path.open("rb") as fh:
                header = fh.read(100)
        except OSError as exc:
            raise SourceError(f"source {self.path}: cannot be read ({exc.strerror})") from exc
        if len(header) < len(SQLITE_HEADER) or not header.startswith(SQLITE_HEADER):
            raise SourceError(
                f"source {self.path}: not a SQLite database (expected the header 'SQLite format 3')"
            )
        if len(header) < 100:
            raise SourceError(f"source {self.path}: truncated SQLite file (header incomplete)")
        self._wal_header = header[18:20] == b"\x02\x02"  # file format versions: 2 = WAL

    def _connect(self, immutable: bool) -> apsw.Connection:
        conn = apsw.Connection(
            self._uri(immutable), flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
        )
        try:
            conn.set_busy_timeout(int(BUSY_TIMEOUT_S * 1000))
            # One read transaction for every read: a consistent snapshot while the app writes.
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()
        except BaseException:
            conn.close()
            raise
        return conn

    def _quiet_wal(self) -> bool:
        """A WAL-mode file that no process has open (no -shm) and with nothing un-checkpointed
        (no or an empty -wal): `mode=ro` would create -wal and -shm next to it (and, read-only,
        could not remove them); `immutable=1` reads it without creating anything."""
        base = str(Path(self.path).resolve())
        wal, shm = Path(base + "-wal"), Path(base + "-shm")
        return (
            self._wal_header and not shm.exists() and (not wal.exists() or wal.stat().st_size == 0)
        )

    def _wal_bytes(self) -> int:
        """The size of the -wal next to the file (0 when there is none)."""
        wal = Path(str(Path(self.path).resolve()) + "-wal")
        return wal.stat().st_size if wal.exists() else 0

    def _identity(self) -> tuple[int, int, int]:
        st = Path(self.path).resolve().stat()
        return st.st_ino, st.st_size, st.st_mtime_ns

    def _check_unchanged(self) -> None:
        """With immutable=1 SQLite trusts the file not to change: make sure it did not (the app
        may open it and checkpoint into it while the migration reads)."""
        if self._opened_as is not None and self._identity() != self._opened_as:
            raise SourceError(
                f"source {self.path}: the file changed while it was read (it was opened with "
                "immutable=1); nothing was committed: run again without --source-immutable, or "
                "stop the writer first"
            )

    def _open(self) -> apsw.Connection:
        self._check_file()
        directory = Path(self.path).resolve().parent
        if self._quiet_wal() and self._copies:
            self._log(
                "info",
                f"source {self.path}: WAL-mode file with no -wal/-shm next to it: opened with "
                "immutable=1 (--source-immutable), so SQLite creates none; the run fails if the "
                "file changes while it is read",
            )
            self.immutable = True
            self._opened_as = self._identity()
            try:
                return self._connect(immutable=True)
            except (apsw.NotADBError, apsw.CorruptError) as exc:
                raise SourceError(
                    f"source {self.path}: not a usable SQLite database: {exc}"
                ) from exc
            except apsw.Error as exc:
                raise SourceError(f"source {self.path}: cannot be opened: {exc}") from exc
        wal_bytes = self._wal_bytes()
        if self._copies and self._wal_header and wal_bytes:
            self._log(
                "warning",
                f"source {self.path}: --source-immutable not applied: its -wal holds "
                f"{wal_bytes:,} bytes of commits not yet checkpointed into the file, which "
                "immutable=1 would not read; opened read-only through the WAL instead",
            )
        if self._quiet_wal() and os.access(directory, os.W_OK):
            self._log(
                "warning",
                f"source {self.path}: WAL-mode file nobody has open: SQLite creates "
                f"{Path(self.path).name}-wal and -shm next to it for the read snapshot (a "
                "read-only connection cannot remove them; the app's next open uses them). Pass "
                "--source-immutable for copies nobody writes during the run to create none",
            )
        wal = Path(str(Path(self.path).resolve()) + "-wal")
        if (
            self._wal_header
            and wal.exists()
            and wal.stat().st_size > 0
            and not Path(str(Path(self.path).resolve()) + "-shm").exists()
        ):
            self._log(
                "warning",
                f"source {self.path}: its -wal holds commits not yet checkpointed and it has no "
                "-shm: SQLite creates the -shm index next to it to read them (and leaves it)",
            )
        try:
            return self._connect(immutable=False)
        except (apsw.NotADBError, apsw.CorruptError) as exc:
            raise SourceError(f"source {self.path}: not a usable SQLite database: {exc}") from exc
        except apsw.Error as exc:
            text = str(exc)
            if isinstance(exc, apsw.BusyError | apsw.LockedError):
                raise SourceError(
                    f"source {self.path}: database is locked by another process "
                    f"(waited {BUSY_TIMEOUT_S:g} s for a read snapshot)"
                ) from exc
            if os.access(directory, os.W_OK):
                raise SourceError(f"source {self.path}: cannot be opened: {text}") from exc
            wal = Path(str(Path(self.path).resolve()) + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise SourceError(
                    f"source {self.path}: WAL-mode database with un-checkpointed changes in "
                    f"{wal.name} on a read-only directory; its -shm cannot be created and "
                    "opening it immutable would miss those changes (checkpoint it first, or "
                    "mount the directory writable)"
                ) from exc
        self._log(
            "warning",
            f"source {self.path}: directory is read-only and the WAL index (-shm) cannot be "
            "created; opened with immutable=1 (no -wal content exists, so nothing is missed; "
            "the file must not change during the migration)",
        )
        self.immutable = True
        self._opened_as = self._identity()
        try:
            return self._connect(immutable=True)
        except apsw.Error as exc:
            raise SourceError(f"source {self.path}: cannot be opened read-only: {exc}") from exc

    def close(self) -> None:
        """End the read transaction and close the file."""
        with contextlib.suppress(apsw.Error):
            self.conn.execute("COMMIT")
        self.conn.close()

    # -- schema ----------------------------------------------------------------------------
    def _q(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            rows = self.conn.execute(sql, params).fetchall()
        except apsw.Error as exc:
            raise SourceError(f"source {self.path}: cannot read the schema: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"source {self.path}: a name in the schema is not valid UTF-8 ({exc.reason} at "
                f"byte {exc.start} of {exc.object!r}); PostgreSQL needs UTF-8 names: rename it in "
                "the source"
            ) from None
        self._check_unchanged()
        return rows

    def _check_internal(self, name: str) -> None:
        """A `sqlite_` table that SQLite does not make itself (one planted through
        `PRAGMA writable_schema`) would be passed over with its rows: refuse it by name."""
        if name.lower() not in SQLITE_INTERNAL_TABLES:
            raise SourceError(
                f"source {self.path}: table {name!r} has a name SQLite reserves for its own "
                f"tables ({', '.join(sorted(SQLITE_INTERNAL_TABLES))}), so it is not one of them "
                "and its rows would not be migrated; rename it in the source"
            )

    def _read_schema(self) -> SourceSchema:
        objects = []
        for kind, *raw in self._q(  # as bytes: a name that is not UTF-8 is named, not raised
            "SELECT type, CAST(name AS BLOB), CAST(tbl_name AS BLOB), CAST(sql AS BLOB) "
            "FROM sqlite_schema ORDER BY rowid"
        ):
            objects.append(
                (
                    str(kind),
                    *(self._schema_text(v, str(kind), raw[0], i) for i, v in enumerate(raw)),
                )
            )
        listing = {
            str(r[1]): r
            for r in self._q(
                "SELECT schema, name, type, ncol, wr, strict FROM pragma_table_list WHERE schema = "
                "'main'"
            )
        }
        sequences: dict[str, int] = {}
        if any(o[1] == "sqlite_sequence" for o in objects):
            sequences = {
                name_key(str(n)): self._sequence(str(n), s)
                for n, s in self._q("SELECT name, seq FROM sqlite_sequence")
            }
        tables: list[Table] = []
        views: list[View] = []
        triggers: list[Trigger] = []
        skipped: list[str] = []
        for kind, name, tbl_name, sql in objects:
            name, sql_text = str(name), str(sql or "")
            if kind == "table":
                if name.startswith("sqlite_"):
                    self._check_internal(name)
                    continue
                info = listing.get(name)
                ttype = str(info[2]) if info else "table"
                if ttype == "virtual" or sql_text.upper().startswith("CREATE VIRTUAL"):
                    skipped.append(
                        f"virtual table {name!r}: not carried over (module tables have no "
                        "PostgreSQL equivalent)"
                    )
                    continue
                if ttype == "shadow":
                    skipped.append(
                        f"table {name!r}: shadow table of a virtual table, not carried over"
                    )
                    continue
                tables.append(self._table(name, sql_text, info))
            elif kind == "view":
                views.append(View(name, sql_text))
            elif kind == "trigger":
                triggers.append(Trigger(name, str(tbl_name), sql_text))
        return SourceSchema(self.path, tables, views, triggers, sequences, skipped)

    def _schema_text(self, raw: object, kind: str, name: object, field: int) -> str | None:
        """A sqlite_schema value as text, in the file's encoding (UTF-8 or UTF-16le/be); a name
        or definition that does not decode (SQLite stores
        whatever bytes it is given, e.g. through PRAGMA writable_schema) is named and refused."""
        if raw is None or isinstance(raw, str):
            return raw
        try:
            return _as_bytes(raw).decode(self.text_codec)
        except UnicodeDecodeError as exc:
            shown = _as_bytes(name).decode(self.text_codec, "backslashreplace")
            part = "name" if field < 2 else "definition (CREATE statement)"
            raise SourceError(
                f"source {self.path}: {kind} '{shown}': its {part} is not valid {self.encoding} "
                f"({exc.reason} at byte {exc.start}); PostgreSQL needs UTF-8 names and text: "
                "rename or recreate it in the source"
            ) from None

    def _sequence(self, table: str, seq: object) -> int:
        """sqlite_sequence.seq as SQLite's AUTOINCREMENT reads it (an integer, possibly stored
        as integral REAL or integer text); anything else is refused, naming the table."""
        if seq is None:
            return 0
        if isinstance(seq, int):
            return seq
        if isinstance(seq, float) and seq.is_integer():
            return int(seq)
        if isinstance(seq, str) and re.fullmatch(r"\s*[+-]?\d+\s*", seq):
            return int(seq)
        raise SourceError(
            f"source {self.path}: sqlite_sequence row for table {table!r}: seq {seq!r} is not an "
            "integer (expected the largest AUTOINCREMENT id handed out so far, which the "
            "identity column must continue after); fix that row in the source"
        )

    def _table(self, name: str, sql: str, info: tuple[object, ...] | None) -> Table:
        cols = []
        for _cid, cname, ctype, notnull, dflt, pk, hidden in self._q(
            'SELECT cid, name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(?)',
            (name,),
        ):
            cols.append(
                Column(
                    name=str(cname),
                    declared=str(ctype or ""),
                    notnull=bool(notnull),
                    default=None if dflt is None else str(dflt),
                    pk_position=int(str(pk)),
                    hidden=int(str(hidden)),
                )
            )
        pk_cols = [
            c.name for c in sorted((c for c in cols if c.pk_position), key=lambda c: c.pk_position)
        ]
        without_rowid = bool(info[4]) if info else False
        strict = bool(info[5]) if info else False
        rowid_alias = None
        if len(pk_cols) == 1 and not without_rowid:
            col = next(c for c in cols if c.name == pk_cols[0])
            if col.declared.upper() == "INTEGER":
                rowid_alias = col.name
        table = Table(
            name=name,
            sql=sql,
            columns=cols,
            pk=pk_cols,
            rowid_alias=rowid_alias,
            autoincrement=bool(_AUTOINCREMENT.search(sql)),
            without_rowid=without_rowid,
            strict=strict,
        )
        table.indexes = self._indexes(name)
        table.fks = self._fks(name)
        self._parse_extras(table)
        return table  # rows are counted by the plan's statistics query (one pass per table)

    def _indexes(self, table: str) -> list[Index]:
        out = []
        for _seq, iname, unique, origin, partial in self._q(
            'SELECT seq, name, "unique", origin, partial FROM pragma_index_list(?)', (table,)
        ):
            if origin == "pk":
                continue
            parts = [
                IndexColumn(None if cid == -2 else str(cname), bool(desc), str(coll or "BINARY"))
                for _seqno, cid, cname, desc, coll, key in self._q(
                    "SELECT seqno, cid, name, desc, coll, key FROM pragma_index_xinfo(?)",
                    (str(iname),),
                )
                if key
            ]
            sql_rows = self._q(
                "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?", (str(iname),)
            )
            isql = str(sql_rows[0][0]) if sql_rows and sql_rows[0][0] else None
            out.append(Index(str(iname), bool(unique), str(origin), bool(partial), parts, isql))
        return out

    def _fks(self, table: str) -> list[ForeignKey]:
        groups: dict[int, list[tuple[object, ...]]] = {}
        for row in self._q(
            'SELECT id, seq, "table", "from", "to", on_update, on_delete FROM '
            "pragma_foreign_key_list(?)",
            (table,),
        ):
            groups.setdefault(int(str(row[0])), []).append(row)
        out = []
        for rows in groups.values():
            rows.sort(key=lambda r: int(str(r[1])))
            to = [r[4] for r in rows]
            out.append(
                ForeignKey(
                    columns=[str(r[3]) for r in rows],
                    ref_table=str(rows[0][2]),
                    ref_columns=None if any(t is None for t in to) else [str(t) for t in to],
                    on_update=str(rows[0][5]),
                    on_delete=str(rows[0][6]),
                )
            )
        return out

    def _parse_extras(self, table: Table) -> None:
        """CHECK constraints, generated-column expressions and column collations from the DDL."""
        if not _NEEDS_PARSE.search(table.sql):
            return
        limit = sys.getrecursionlimit()
        try:  # sqlglot recurses ~20 frames per parenthesis: SQLite allows 1000 levels
            sys.setrecursionlimit(max(limit, PARSE_RECURSION_LIMIT))
            extras = translate.table_extras(table.sql)
        except RecursionError:
            extras = None
            why = "the CREATE TABLE statement is nested too deeply to parse (over ~400 levels)"
        else:
            why = "sqlglot could not parse the CREATE TABLE statement"
        finally:
            sys.setrecursionlimit(limit)
        if extras is None:
            for col in table.columns:
                if col.generated:
                    col.generated_error = why
            if "CHECK" in table.sql.upper():
                table.checks.append(Check(None, table.sql, None, why))
            return
        checks, generated, collations = extras
        table.checks.extend(Check(name, text, None, node=node) for name, text, node in checks)
        for col in table.columns:
            col.generated_node = generated.get(col.name.lower())
            col.collation = collations.get(col.name.lower())

    # -- data ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _reading(self, failed: str) -> Iterator[None]:
        """Turn what SQLite raises while reading data into the migration's errors."""
        try:
            yield
        except UnicodeDecodeError as exc:
            raise SourceTextError(
                f"source {self.path}: a TEXT value is not valid UTF-8 ({exc.reason} at byte "
                f"{exc.start}); `plan` lists every such row"
            ) from exc
        except (apsw.CorruptError, apsw.NotADBError, apsw.IOError) as exc:
            raise SourceError(f"source {self.path}: read failed (corrupt file?): {exc}") from exc
        except apsw.Error as exc:
            raise SourceError(f"source {self.path}: {failed}: {exc}") from exc
        self._check_unchanged()

    def batches(self, sql: str, size: int) -> Iterator[list[tuple[object, ...]]]:
        """Rows of `sql` in lists of at most `size`; SQLite errors become SourceError.

        TEXT that is not valid UTF-8 raises SourceTextError (the load diagnoses it)."""
        with self._reading("read failed"):
            cur = self.conn.execute(sql)
            while batch := list(itertools.islice(cur, size)):
                yield batch

    def one(self, sql: str, params: tuple[object, ...] = ()) -> tuple[object, ...]:
        """The single row of an aggregate query."""
        with self._reading("query failed"):
            row = self.conn.execute(sql, params).fetchone()
        if row is None:  # pragma: no cover - callers only run aggregates
            raise SourceError(f"source {self.path}: query returned no row: {sql}")
        return tuple(row)

    def value(self, sql: str) -> object:
        """The first column of the first row of `sql` (None if there is no row); apsw errors
        propagate (the caller reports them)."""
        row = self.conn.execute(sql).fetchone()
        return None if row is None else row[0]

    # -- batches sized in bytes, large values streamed ---------------------------------------
    def max_payload(self, table: str) -> int | None:
        """The largest record of `table` in bytes (SQLite's dbstat: page headers only, no value
        is read); None if SQLite cannot tell."""
        if table not in self._payloads:
            try:
                row = self.conn.execute(
                    "SELECT mx_payload FROM dbstat('main', 1) WHERE name = ?", (table,)
                ).fetchone()
            except apsw.Error:
                row = None
            self._payloads[table] = int(str(row[0])) if row and row[0] is not None else None
        return self._payloads[table]

    def table_batches(
        self,
        table: str,
        exprs: list[str],
        streamable: list[tuple[str, str] | None],
        limit: int,
    ) -> Iterator[list[tuple[object, ...]]]:
        """Rows of `SELECT exprs FROM table` in lists of at most `limit` rows and, beyond the
        first row, at most BATCH_BYTES of values.

        `streamable[i]` is (column, 'text' or 'blob') when `exprs[i]` is that stored column
        as is: a value of that storage class above STREAM_BYTES comes as a `Large` (read in
        pieces by its consumer), in a batch of its own. Tables whose largest record fits
        `limit` times in BATCH_BYTES (known from dbstat) are read in fixed-size batches at C
        speed; others are measured row by row (SQLite's octet_length reads no value)."""
        if any(c.generated for c in self.schema.table(table).columns):
            streamable = [None] * len(exprs)  # SQLite opens no blob of such a table: read whole
        top = self.max_payload(table)
        if top is not None and top * limit <= BATCH_BYTES and top <= STREAM_BYTES:
            yield from self.batches(f"SELECT {', '.join(exprs)} FROM {qi(table)}", limit)  # noqa: S608 - identifiers quoted by qi(); read-only SQLite source
            return
        query, streams = self._measured_query(table, exprs, streamable)
        width = len(exprs)
        with self._reading("read failed"):
            batch: list[tuple[object, ...]] = []
            used = 0
            for row in self.conn.execute(query):
                sizes = row[width + 2 :]
                if streams and any(n is not None for n in sizes):
                    if batch:
                        yield batch
                        batch, used = [], 0
                    yield [self._with_large(table, row, width, streams)]
                    continue
                size = int(row[width])
                if batch and (used + size > BATCH_BYTES or len(batch) >= limit):
                    yield batch
                    batch, used = [], 0
                batch.append(row[:width])
                used += size
            if batch:
                yield batch

    def _measured_query(
        self, table: str, exprs: list[str], streamable: list[tuple[str, str] | None]
    ) -> tuple[str, list[tuple[int, str, str]]]:
        """The SELECT with each row's size, its rowid and, per streamable column, the size of
        a value too large to read whole (which the value's own column then leaves NULL)."""
        streams = [(i, s[0], s[1]) for i, s in enumerate(streamable) if s is not None]
        names = {c.name.lower() for c in self.schema.table(table).columns}
        rowid = next((r for r in _ROWID_NAMES if r not in names), None)
        text_ok = self._utf8()
        streams = [(i, c, k) for i, c, k in streams if k == "blob" or text_ok]
        if rowid is None or self.schema.table(table).without_rowid:
            streams = []
        if len(exprs) + 2 + len(streams) > SQLITE_MAX_COLUMNS:
            streams = []  # too wide to flag each value: rows are still batched by size
        cols = list(exprs)
        flags = []
        for i, name, kind in streams:
            big = f"typeof({qi(name)}) = '{kind}' AND octet_length({qi(name)}) > {STREAM_BYTES}"
            cols[i] = f"CASE WHEN {big} THEN NULL ELSE {exprs[i]} END"
            flags.append(f"CASE WHEN {big} THEN octet_length({qi(name)}) END")
        size = balanced_sum([f"coalesce(octet_length({c}), 0)" for c in cols])
        extra = [size, rowid if streams and rowid else "NULL", *flags]
        return f"SELECT {', '.join(cols + extra)} FROM {qi(table)}", streams  # noqa: S608 - identifiers quoted by qi(); read-only SQLite source

    def _with_large(
        self, table: str, row: tuple[object, ...], width: int, streams: list[tuple[int, str, str]]
    ) -> tuple[object, ...]:
        values = list(row[:width])
        rowid = int(row[width + 1])  # type: ignore[call-overload]
        for (i, column, kind), size in zip(streams, row[width + 2 :], strict=True):
            if size is not None:
                values[i] = Large(self, table, column, rowid, int(size), kind == "text")  # type: ignore[call-overload]
        return tuple(values)

    def _utf8(self) -> bool:
        """TEXT is stored as UTF-8 (then a streamed value's bytes are what PostgreSQL takes)."""
        return self.text_codec == "utf-8"

    def _text_encoding(self) -> tuple[str, str]:
        """The file's text encoding as SQLite names it and as Python's codec: what
        CAST(text AS BLOB) returns (names, definitions and values are decoded with it)."""
        rows = self._q("PRAGMA encoding")
        name = str(rows[0][0]) if rows else "UTF-8"
        codec = _CODECS.get(name.upper())
        if codec is None:
            raise SourceError(f"source {self.path}: unknown text encoding {name!r}")
        return name, codec


@contextlib.contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Stream rows without the cyclic garbage collector: rows are tuples of atoms (no cycles
    to find), and the collector's passes over the millions of young tuples of a large table
    cost a fifth of a load (more while hashing). Re-enabled afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def balanced_sum(terms: list[str]) -> str:
    """`a + b + ...` as a balanced tree: SQLite refuses expressions deeper than 1,000 levels,
    which a chain over a wide table's columns would be."""
    if len(terms) <= 2:
        return " + ".join(terms) or "0"
    half = len(terms) // 2
    return f"({balanced_sum(terms[:half])}) + ({balanced_sum(terms[half:])})"


@dataclass(frozen=True)
class Large:
    """A TEXT or BLOB value too large to hold whole, read in pieces with apsw's incremental
    blob I/O (`Connection.blob_open`) inside the source's read snapshot."""

    source: Source
    table: str
    column: str
    rowid: int
    size: int  # bytes (UTF-8 for TEXT)
    text: bool

    def chunks(self, size: int = STREAM_CHUNK) -> Iterator[bytes]:
        """The value's bytes, `size` at a time."""
        src = self.source
        with src._reading("read failed"):
            blob = src.conn.blob_open("main", self.table, self.column, self.rowid, False)
            try:
                for offset in range(0, self.size, size):
                    yield blob.read(min(size, self.size - offset))
            finally:
                blob.close()

    def chars(self) -> int:
        """A TEXT value's length in characters (as SQLite's and PostgreSQL's length()); invalid
        UTF-8 raises SourceTextError, as reading it whole would."""
        decoder = codecs.getincrementaldecoder("utf-8")()
        with self.source._reading("read failed"):
            total = sum(len(decoder.decode(piece)) for piece in self.chunks())
            return total + len(decoder.decode(b"", final=True))

    def value(self) -> str | bytes:
        """The whole value (for paths that cannot stream: psycopg's public write_row)."""
        data = b"".join(self.chunks())
        if not self.text:
            return data
        with self.source._reading("read failed"):
            return data.decode("utf-8")
