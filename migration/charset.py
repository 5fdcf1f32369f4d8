"""Characters the target cannot hold: a database, or a session, whose encoding is not UTF-8.

psycopg sends text in the session's client encoding and PostgreSQL converts it into the
database's encoding: a character missing from either cannot be stored (psycopg raises
UnicodeEncodeError, the server SQLSTATE 22P05). `plan` and a refusing `run` name every such
value here (`diagnose`: file, table, row, column, the character as U+XXXX, the encoding that
lacks it; capped per column like every value report, counted exactly), and every name of the
migration's own objects such an encoding cannot hold (`check_names`, exit 2), before
anything is written. A UTF-8 session into a UTF-8 (or SQL_ASCII) database holds every
character: then nothing is read. Which characters an encoding holds is Python's codec for it,
as psycopg's own encoding of the values is.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from migration import typemap
from migration.errors import Problem, SchemaError
from migration.plan import (
    PROBLEMS_LISTED_PER_COLUMN,
    Namer,
    Plan,
    TablePlan,
    batch_rows,
    default_sql,
)
from migration.source import Large, Source, qi
from migration.typemap import ColumnPlan, ValueProblem

UNLIMITED = ("UTF8", "SQL_ASCII")  # databases storing what they are sent (SQL_ASCII: as bytes)
OTHERS_NAMED = 3  # further characters a value lacks, named after the first
CHECK_ROWS = 5_000  # rows per read (fewer when records are wide: plan.batch_rows)
NOT_TEXT = frozenset(
    {"int", "double", "float4", "bool", "bytea", "uuid", "numeric", "timestamp", "timestamptz"}
    | {"date", "time", "timetz", "interval", "inet", "cidr"}
)  # kinds whose values reach the target as numbers, bytes or ASCII renderings
_PG_CODECS = {"SQL_ASCII": "ascii", "KOI8R": "koi8_r", "KOI8U": "koi8_u"}


@dataclass(frozen=True)
class Limit:
    """One encoding every text must fit: its PostgreSQL name, Python codec, and how a report
    names it."""

    name: str
    codec: str
    said: str
    database: bool = True  # the database's own (jsonb's \u escapes meet it too: `recoders`)


@dataclass(frozen=True)
class Charset:
    """What the target session can carry: the encodings a text must fit (one or two)."""

    limits: tuple[Limit, ...]

    def lacking(self, text: str, database: bool = False) -> tuple[int, str, Limit] | None:
        """The first character of `text` an encoding lacks (only the database's with
        `database`): its index, itself, the encoding."""
        if text.isascii():  # every encoding PostgreSQL speaks holds ASCII
            return None
        for limit in self.limits:
            if database and not limit.database:
                continue
            try:
                text.encode(limit.codec)
            except UnicodeEncodeError as exc:
                return exc.start, text[exc.start], limit
        return None

    def others(self, text: str, first: str, limit: Limit) -> list[str]:
        """Other characters of `text` the encoding lacks, at most OTHERS_NAMED."""
        found: list[str] = []
        for ch in dict.fromkeys(text):
            if ch != first and not ch.isascii() and self.lacking(ch):
                found.append(ch)
                if len(found) == OTHERS_NAMED:
                    break
        return found


def _codec(pg_name: str) -> str | None:
    """Python's codec for a PostgreSQL encoding name (None: Python has none)."""
    name = _PG_CODECS.get(pg_name, re.sub(r"^WIN", "cp", pg_name))
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def of(conn: psycopg.Connection) -> Charset | None:
    """The session's limits (None: it carries every character)."""
    client = conn.info.parameter_status("client_encoding") or "UTF8"
    server = conn.info.parameter_status("server_encoding") or "UTF8"
    limits: list[Limit] = []
    if client == "SQL_ASCII" and server not in UNLIMITED:
        # psycopg sends UTF-8, which the server stores unconverted as its own encoding's bytes
        said = f"client_encoding SQL_ASCII (no conversion into the database's {server})"
        limits.append(Limit(client, "ascii", said))
    elif client == server and client not in UNLIMITED:
        limits.append(
            Limit(client, conn.info.encoding, f"{server}, the target database's encoding")
        )
    elif client not in ("UTF8", "SQL_ASCII"):
        said = f"client_encoding {client} (the database is {server})"
        limits.append(Limit(client, conn.info.encoding, said, database=False))
    if server not in UNLIMITED and server != client and client != "SQL_ASCII":
        codec = _codec(server)
        if codec is not None:
            limits.append(Limit(server, codec, f"{server}, the target database's encoding"))
    return Charset(tuple(limits)) if limits else None


def of_target(
    conn: psycopg.Connection | None,
    target: str | None,
    connect: Callable[[str], psycopg.Connection],
) -> Charset | None:
    """The limits of a session on `conn`, or on a connection of its own to `target` (None
    without a target: `plan` without one does not know them)."""
    if conn is not None:
        return of(conn)
    if not target:
        return None
    with contextlib.closing(connect(target)) as own:
        return of(own)


def reason(text: str, charset: Charset, hit: tuple[int, str, Limit]) -> str:
    """Why a value cannot be stored: the character, where it is, and the encoding."""
    index, ch, limit = hit
    line = (
        f"character {index + 1:,} of the text, {ch!r} (U+{ord(ch):04X}), has no equivalent in "
        f"{limit.said}"
    )
    others = charset.others(text, ch, limit)
    if others:
        line += " (also " + ", ".join(f"U+{ord(c):04X}" for c in others) + ")"
    return line + _hint(limit)


def _hint(limit: Limit) -> str:
    if limit.said.startswith("client_encoding"):
        return "; leave client_encoding out of the target URL and PGCLIENTENCODING"
    return "; a database created with ENCODING 'UTF8' holds every character"


# -- the run's own record -----------------------------------------------------------------
_ESCAPE = re.compile(
    r"\\\\|(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4})"
)


def storable_json(value: object, conn: psycopg.Connection) -> str:
    """`value` as JSON text the target's jsonb can store: a character its database lacks (in
    a reported message, a file name) stays as the text of its escape, `\\u20ac`, where jsonb
    would refuse the escape itself (22P05) and the run with it."""
    text = json.dumps(value)  # plain ASCII: other characters as \\u escapes
    charset = of(conn)
    if charset is None:
        return text

    def kept(m: re.Match[str]) -> str:
        if m.group(1) is None:  # an escaped backslash
            return m.group()
        lacks = charset.lacking(json.loads(f'"{m.group(1)}"'), database=True)
        return m.group() if lacks is None else "\\" + m.group()

    return _ESCAPE.sub(kept, text)


# -- names --------------------------------------------------------------------------------
Names = Iterable[tuple[str, str]]  # (what, its name as shown)


def check_names(names: Names, charset: Charset | None, kind: str = "name(s)") -> None:
    """Refuse (SchemaError, exit 2) naming every object whose PostgreSQL name (or, for `kind`
    definitions, whose definition) has a character the session's encoding lacks: a statement
    holding it could not even be sent."""
    if charset is None:
        return
    found: list[str] = []
    limits: list[Limit] = []
    for what, text in dict.fromkeys(names):
        hit = charset.lacking(text)
        if hit is not None:
            shown = f"{what} {text}:" if kind == "name(s)" else what
            found.append(f"{shown} {hit[1]!r} (U+{ord(hit[1]):04X})")
            limits.append(hit[2])
    if found:
        fix = (
            "rename them in the source"
            if kind == "name(s)"
            else "change them in the source, or leave them out with the --skip shown"
        )
        raise SchemaError(
            f"{len(found)} {kind} have a character with no equivalent in {limits[0].said}, so "
            f"PostgreSQL cannot hold them: {'; '.join(found)}; nothing was written ({fix}"
            f"{_hint(limits[0])})"
        )


def check_plan(plan: Plan, sources: list[Source], namer: Namer, charset: Charset | None) -> None:
    """`check_names` for the names a plan creates, then for the definitions `run` would send
    (create mode): a default, generated column, CHECK, index or view whose text holds such a
    character (a literal) is refused the same way, by object."""
    if charset is None:
        return
    from migration.existing import ExistingPlan  # here: existing imports what imports this

    check_names(plan_names(plan), charset)
    if not isinstance(plan, ExistingPlan):  # the app's own definitions are none of the sources'
        check_names(_definitions(plan, sources, namer), charset, "definition(s)")


def _definitions(plan: Plan, sources: list[Source], namer: Namer) -> Names:
    """(the object and how --skip names it, its text as sent) for each definition."""
    for tp in plan.tables:
        src = sources[tp.sources[0]]
        for col in tp.columns:
            where = f"{tp.table.name}.{col.source.name}"
            if col.name in tp.generated:
                text = _text(tp.generated[col.name])
                yield f"generated column {where} (--skip generated:{where}):", text
            elif col.name not in tp.no_default and col.name != tp.identity:
                default, _note = default_sql(col, src)
                text = "" if default is None else _text(default)
                yield f"default of {where} (--skip default:{where}):", text
        for step in tp.post:
            yield f"{step.what} (--skip {step.key}):", _text(step.statement)
    for name, target, query, _error in plan.views:
        if query is not None:
            yield f"view {target!r} (--skip view:{name}):", _text(query)


def _text(stmt: sql.Composable) -> str:
    """A statement as sent (literals quoted), or "" when it cannot be rendered here."""
    try:
        return stmt.as_string(None)
    except (psycopg.Error, TypeError, ValueError):
        return ""


def plan_names(plan: Plan) -> Names:
    """The names a plan creates: tables, columns, keys and indexes, views."""
    for tp in plan.tables:
        yield "table", repr(tp.target)
        for col in tp.columns:
            yield "column", f"{tp.target!r}.{col.name!r}"
        for step in tp.post:
            if step.name:
                yield "index or constraint", repr(step.name)
    for _name, target, _query, _error in plan.views:
        yield "view", repr(target)


def source_names(sources: list[Source], namer: Callable[[str], str]) -> Names:
    """The sources' table, column and view names as PostgreSQL would get them (`namer`)."""
    for src in sources:
        for t in src.schema.tables:
            yield "table", repr(namer(t.name))
            for col in t.columns:
                yield "column", f"{namer(t.name)!r}.{namer(col.name)!r}"
        for view in src.schema.views:
            yield "view", repr(namer(view.name))


# -- values -------------------------------------------------------------------------------
def diagnose(plan: Plan, sources: list[Source], charset: Charset | None) -> None:
    """Add to `plan.problems` (counted in `plan.problem_counts`, as `plan.diagnose` does) every
    value that fits its type but has a character the session's encoding lacks."""
    if charset is None:
        return
    for tp in plan.tables:
        cols = [c for c in tp.copied() if _textual(c)]
        for idx in tp.sources if cols else []:
            _diagnose_source(plan, tp, sources[idx], cols, charset)


def _textual(col: ColumnPlan) -> bool:
    """Whether values of `col` can reach the target as text (every column but the few whose
    values are numbers, booleans or bytes whatever the source holds)."""
    return col.kind not in NOT_TEXT


def _diagnose_source(
    plan: Plan, tp: TablePlan, src: Source, cols: list[ColumnPlan], charset: Charset
) -> None:
    """One source's values of `cols`: TEXT read as bytes in the file's encoding (text that does
    not decode is `plan.diagnose`'s to name), a large TEXT of a plain text column in pieces."""
    st = src.schema.table(tp.table.name)
    exprs, streamable = [tp.row_id_expr()], []
    for col in cols:
        name = qi(st.column(col.source.name).name)
        exprs += [f"CASE WHEN typeof({name}) = 'text' THEN CAST({name} AS BLOB) ELSE {name} END"]
        exprs += [f"typeof({name})"]
        plain = col.kind == "text" and not col.convert_on_load and not col.needs_diagnosis
        streamable += [(st.column(col.source.name).name, "text") if plain else None, None]
    limit = batch_rows(src, st.name, CHECK_ROWS)
    for batch in src.table_batches(st.name, exprs, [None, *streamable], limit):
        for row in batch:
            for j, col in enumerate(cols):
                raw, storage = row[1 + 2 * j], row[2 + 2 * j]
                found = _lacking(raw, storage, col, src, charset)
                if found is not None:
                    _add(plan, Problem(src.path, tp.table.name, row[0], col.source.name, *found))


def _lacking(
    raw: object, storage: object, col: ColumnPlan, src: Source, charset: Charset
) -> tuple[str, str] | None:
    """(the value as shown, why) when the value as loaded has a character the session
    lacks; None when it has none, or does not fit its type anyway (named by `plan.diagnose`)."""
    if isinstance(raw, Large):
        return _lacking_large(raw, charset)
    value: object = raw
    if storage == "text" and isinstance(raw, bytes):
        try:
            value = raw.decode(src.text_codec)
        except UnicodeDecodeError:
            return None
    try:
        loaded = col.check(value)
    except (ValueProblem, TypeError, ValueError, OverflowError):
        return None
    for where, text in _texts(loaded, col):
        hit = charset.lacking(text, database=col.kind == "jsonb")  # escaped for the client
        if hit is not None:
            return typemap.show(value), where + reason(text, charset, hit)
    return None


def _texts(loaded: object, col: ColumnPlan) -> list[tuple[str, str]]:
    """The texts a loaded value reaches the server as (jsonb: its JSON text; an array: its
    text elements, each with where it is)."""
    if isinstance(loaded, str):
        return [("", loaded)]
    if not isinstance(loaded, (bytes, bytearray)):
        return []
    if col.kind == "jsonb":
        return [("", bytes(loaded[1:]).decode())]
    if col.kind == "array":
        return [(f"element {n}: ", text) for n, text in array_texts(bytes(loaded))]
    return []


def _lacking_large(value: Large, charset: Charset) -> tuple[str, str] | None:
    """A large TEXT read in pieces: the first character the session lacks and where."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    seen = 0
    head = ""
    try:
        for piece in value.chunks():
            text = decoder.decode(piece)
            head = head or text[:60]
            hit = charset.lacking(text)
            if hit is not None:
                index, ch, limit = hit
                return typemap.show(head), reason(text, charset, (seen + index, ch, limit))
            seen += len(text)
    except UnicodeDecodeError:
        return None
    return None


def _add(plan: Plan, problem: Problem) -> None:
    key = (problem.source, problem.table, problem.column)
    plan.problem_counts[key] = plan.problem_counts.get(key, 0) + 1
    if plan.problem_counts[key] <= PROBLEMS_LISTED_PER_COLUMN:
        plan.problems.append(problem)


# -- what psycopg does not encode: jsonb and arrays, sent in their binary formats --------------
TEXT_OIDS = frozenset({25, 1042, 1043, 19})  # text, bpchar, varchar, name
FIRST_USER_OID = 16384  # an enum's or citext's oid: its elements are sent as text
_ARRAY_HEAD = struct.Struct(">iiI")
_INT4 = struct.Struct(">i")
_NOT_ASCII = re.compile(r"[^\x00-\x7f]")


def recoders(cols: list[ColumnPlan], encoding: str) -> list[tuple[int, Recode]]:
    """For a session whose client `encoding` is not UTF-8, per jsonb or array column (its index
    in `cols`), what makes the text its converted value carries readable in that encoding.

    jsonb and arrays go in their binary formats, whose text PostgreSQL reads in the client
    encoding (sent as UTF-8 into a LATIN1 session, 'é' was stored as 'Ã©'): jsonb's JSON text
    goes with every other character as a \\u escape (plain ASCII; the server turns it into its
    own encoding's character or refuses it, 22P05), an array's text elements recoded (a
    character the encoding lacks: ValueProblem). `diagnose` names both kinds of value."""
    codec = codecs.lookup(encoding).name
    if codec in ("utf-8", "ascii"):  # ascii: SQL_ASCII, to which psycopg sends UTF-8 too
        return []
    return [
        (i, _escaped_json if c.kind == "jsonb" else _array_recoder(codec, encoding))
        for i, c in enumerate(cols)
        if c.kind in ("jsonb", "array")
    ]


Recode = Callable[[object], object]


def _escaped_json(v: object) -> object:
    """jsonb's binary format with its JSON text in plain ASCII (\\u escapes)."""
    if not isinstance(v, (bytes, bytearray)) or v.isascii():
        return v
    text = bytes(v[1:]).decode()
    return v[:1] + _NOT_ASCII.sub(lambda m: json.dumps(m.group())[1:-1], text).encode()


def _array_recoder(codec: str, encoding: str) -> Recode:
    def recode(v: object) -> object:
        if not isinstance(v, (bytes, bytearray)) or v.isascii():
            return v
        try:
            return _recode_array(bytes(v), codec)
        except UnicodeEncodeError as exc:
            ch = exc.object[exc.start]
            raise ValueProblem(
                f"{ch!r} (U+{ord(ch):04X}) has no equivalent in client_encoding {encoding}"
            ) from None

    return recode


def _text_elements(data: bytes) -> bool:
    _ndim, _flags, oid = _ARRAY_HEAD.unpack_from(data)
    return oid in TEXT_OIDS or oid >= FIRST_USER_OID


def array_texts(data: bytes) -> list[tuple[int, str]]:
    """The text elements of an array in binary format with their positions (from 1); none
    for other element types."""
    if not _text_elements(data):
        return []
    pos, texts, n = _ARRAY_HEAD.size + 8 * _ARRAY_HEAD.unpack_from(data)[0], [], 0
    while pos < len(data):
        (size,) = _INT4.unpack_from(data, pos)
        pos, n = pos + 4, n + 1
        if size >= 0:
            texts.append((n, data[pos : pos + size].decode()))
            pos += size
    return texts


def _recode_array(data: bytes, codec: str) -> bytes:
    """An array in binary format with its text elements in `codec` instead of UTF-8."""
    if not _text_elements(data):
        return data
    pos = _ARRAY_HEAD.size + 8 * _ARRAY_HEAD.unpack_from(data)[0]
    out = bytearray(data[:pos])
    while pos < len(data):
        (size,) = _INT4.unpack_from(data, pos)
        pos += 4
        if size < 0:
            out += _INT4.pack(size)
            continue
        element = data[pos : pos + size].decode().encode(codec)
        out += _INT4.pack(len(element)) + element
        pos += size
    return bytes(out)
