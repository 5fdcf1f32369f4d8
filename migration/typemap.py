"""Choose each column's PostgreSQL type from its declared type and the values actually stored.

Every kind has: the statistics gathered in one SQLite aggregate pass (C speed), the decision
taken from them, a strict `check` (SQLite value -> value for COPY, or `ValueProblem`), and a
canonical text rendering used by verification on both sides (Python here, SQL in `verify.py`).
"""

from __future__ import annotations

import datetime as dt
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from psycopg import sql

from migration.model import Column
from migration.source import qi

if TYPE_CHECKING:
    from migration.casts import NamedType
    from migration.convert import TypeSpec

Check = Callable[[object], object]
Canon = Callable[[object], str]

INT_RANGES = {2: (-(2**15), 2**15 - 1), 4: (-(2**31), 2**31 - 1), 8: (-(2**63), 2**63 - 1)}
INT_PG = {2: "smallint", 4: "integer", 8: "bigint"}
INT_COPY = {2: "int2", 4: "int4", 8: "int8"}
EXACT_FLOAT_INT = 2**53  # larger integers are not all representable as double precision
EPOCH = dt.datetime(1970, 1, 1)  # noqa: DTZ001 - SQLite timestamps are naive UTC
EPOCH_SECONDS_MAX = 10**11  # |value| below this reads as seconds (up to year 5138)
EPOCH_MILLIS_MAX = 10**14  # below this (and not seconds) reads as milliseconds
JULIAN_MIN, JULIAN_MAX = 1721425.5, 5373484.5  # Julian days of 0001-01-01 and 9999-12-31
JULIAN_UNIX_EPOCH = 2440587.5
ISO_TS = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
INT_TEXT = re.compile(r"[+-]?\d+")
NULL_CANON = "\\N"
_pack = struct.Struct(">d").pack


class ValueProblem(Exception):  # noqa: N818 - a value-level signal, caught and listed by the caller
    """A single value does not fit the column's target type."""


def _storage(v: object) -> str:
    if isinstance(v, bool):
        return "BOOLEAN"
    if isinstance(v, int):
        return "INTEGER"
    if isinstance(v, float):
        return "REAL"
    if isinstance(v, str):
        return "TEXT"
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "BLOB"
    return type(v).__name__


def show(v: object, limit: int = 60) -> str:
    """A value for a report line: repr, shortened."""
    text = repr(bytes(v)) if isinstance(v, (bytearray, memoryview)) else repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- checks (value -> COPY value) ----------------------------------------------------------
def check_int(width: int, permissive: bool = False) -> Check:
    lo, hi = INT_RANGES[width]

    def check(v: object) -> object:
        if v is None:
            return None
        if type(v) is int:
            if lo <= v <= hi:
                return v
            raise ValueProblem(f"integer {v} does not fit {INT_PG[width]}")
        if isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise ValueProblem(f"{v} cannot be stored in an integer column")
            if not v.is_integer():
                raise ValueProblem("REAL value with a fraction in an integer column")
            if not (lo <= int(v) <= hi) or abs(v) >= 2**63:
                raise ValueProblem(
                    f"integer beyond {INT_PG[width]} (SQLite stored it as REAL {v!r})"
                )
            if permissive:
                return int(v)
            raise ValueProblem("REAL value in an integer column")
        if permissive and isinstance(v, str) and INT_TEXT.fullmatch(v.strip()):
            return check(int(v.strip()))
        raise ValueProblem(f"{_storage(v)} value in an integer column")

    return check


def check_double(permissive: bool = False) -> Check:
    def check(v: object) -> object:
        if v is None or type(v) is float:
            return v
        if type(v) is int:
            if abs(v) <= EXACT_FLOAT_INT or float(v) == v:
                return float(v)
            raise ValueProblem(f"integer {v} cannot be represented exactly as double precision")
        if permissive and isinstance(v, str):
            try:
                out = float(v)
            except ValueError:
                pass
            else:
                if repr(out) == v.strip():
                    return out
        raise ValueProblem(f"{_storage(v)} value in a REAL column")

    return check


def check_text(max_len: int | None = None, permissive: bool = False) -> Check:
    def check(v: object) -> object:
        if v is None:
            return None
        if type(v) is str:
            if "\x00" in v:
                raise ValueProblem(
                    "text contains a NUL (0x00) character, which PostgreSQL text cannot hold"
                )
            if max_len is not None and len(v) > max_len:
                raise ValueProblem(f"text longer than {max_len} characters")
            return v
        if isinstance(v, InvalidText):
            raise ValueProblem(f"text is not valid {v.encoding}")
        if permissive:
            if type(v) is int:
                return check(str(v))
            if type(v) is float:
                return check(repr(v))
            if isinstance(v, bytes):
                try:
                    return check(v.decode("utf-8"))
                except UnicodeDecodeError:
                    raise ValueProblem("BLOB is not valid UTF-8 text") from None
        raise ValueProblem(f"{_storage(v)} value in a TEXT column")

    return check


class InvalidText(bytes):
    """Raw bytes of a TEXT value that is not valid in the file's text encoding (only produced
    by the diagnosis pass)."""

    encoding = "UTF-8"  # the source's encoding (PRAGMA encoding) the bytes do not decode in


def check_bytea(permissive: bool = False) -> Check:
    def check(v: object) -> object:
        if v is None:
            return None
        if isinstance(v, InvalidText):
            if permissive:
                return bytes(v)
            raise ValueProblem(f"text is not valid {v.encoding}")
        if isinstance(v, bytes):
            return v
        if permissive and isinstance(v, str):
            return v.encode("utf-8")
        raise ValueProblem(f"{_storage(v)} value in a BLOB column")

    return check


def check_bool(permissive: bool = False) -> Check:
    words = {"true": True, "false": False, "t": True, "f": False, "1": True, "0": False}

    def check(v: object) -> object:
        if v is None:
            return None
        if type(v) is int and v in (0, 1):
            return v == 1
        if permissive and isinstance(v, str) and v.strip().lower() in words:
            return words[v.strip().lower()]
        raise ValueProblem(f"{_storage(v)} value {show(v)} is not a boolean (0 or 1)")

    return check


def check_numeric(precision: int | None, scale: int | None, permissive: bool = False) -> Check:
    quantum = Decimal(1).scaleb(-scale) if scale is not None else None

    def check(v: object) -> object:
        if v is None:
            return None
        if type(v) is int:
            d = Decimal(v)
        elif type(v) is float:
            if v != v or v in (float("inf"), float("-inf")):
                raise ValueProblem(f"{v!r} does not fit numeric")
            d = Decimal(repr(v))
        elif permissive and isinstance(v, str):
            try:
                d = Decimal(v.strip())
            except InvalidOperation:
                raise ValueProblem("text is not a number") from None
            if not d.is_finite():
                raise ValueProblem("text is not a finite number")
        else:
            raise ValueProblem(f"{_storage(v)} value in a NUMERIC column")
        if quantum is not None:
            q = d.quantize(quantum)
            if q != d:
                raise ValueProblem(f"{d} has more than {scale} decimal places")
            d = q
        if precision is not None:
            digits = len(d.as_tuple().digits)
            exp = int(d.as_tuple().exponent)
            if max(digits + exp, 1) > precision - (scale or 0):
                raise ValueProblem(f"{d} does not fit numeric({precision},{scale or 0})")
        if d.is_zero():
            d = d.copy_abs()
        return d

    return check


def _iso_timestamp(v: str) -> dt.datetime:
    if not ISO_TS.fullmatch(v):
        raise ValueProblem("text is not an ISO-8601 timestamp (YYYY-MM-DD[ HH:MM[:SS[.ffffff]]])")
    try:
        return dt.datetime.fromisoformat(v)
    except ValueError:
        raise ValueProblem("text is not a valid date/time") from None


def check_timestamp(rep: str, permissive: bool = False) -> Check:
    def check(v: object) -> object:
        if v is None:
            return None
        try:
            if isinstance(v, str) and (rep == "iso" or permissive):
                return _iso_timestamp(v)
            if type(v) is int and rep == "epoch_s":
                return EPOCH + dt.timedelta(seconds=v)
            if type(v) is int and rep == "epoch_ms":
                return EPOCH + dt.timedelta(milliseconds=v)
            if type(v) in (int, float) and rep == "julian":
                jd = float(v)  # type: ignore[arg-type]
                if not JULIAN_MIN <= jd <= JULIAN_MAX:
                    raise ValueProblem("Julian day out of range")
                micros = round((jd - JULIAN_UNIX_EPOCH) * 86_400_000_000)
                out = EPOCH + dt.timedelta(microseconds=micros)
                if JULIAN_UNIX_EPOCH + micros / 86_400_000_000 != jd:
                    raise ValueProblem("Julian day has more precision than a microsecond timestamp")
                return out
        except (OverflowError, ValueError):
            raise ValueProblem("timestamp out of range") from None
        raise ValueProblem(
            f"{_storage(v)} value does not match the column's timestamp format ({rep})"
        )

    return check


def check_date(permissive: bool = False) -> Check:
    def check(v: object) -> object:
        if v is None:
            return None
        if isinstance(v, str) and ISO_DATE.fullmatch(v):
            try:
                return dt.date.fromisoformat(v)
            except ValueError:
                raise ValueProblem("text is not a valid date") from None
        raise ValueProblem(f"{_storage(v)} value is not an ISO date (YYYY-MM-DD)")

    return check


# -- canonical renderings (identical to the SQL in verify.py) --------------------------------
def canon_int(v: object) -> str:
    return NULL_CANON if v is None else str(v)


def canon_double(v: object) -> str:
    return NULL_CANON if v is None else _pack(v).hex()


def canon_text(v: object) -> str:
    return NULL_CANON if v is None else f"{len(v)}:{v}"  # type: ignore[arg-type]


def canon_bytea(v: object) -> str:
    return NULL_CANON if v is None else bytes(v).hex()  # type: ignore[call-overload]


def canon_bool(v: object) -> str:
    return NULL_CANON if v is None else ("t" if v else "f")


def canon_numeric(v: object) -> str:
    return NULL_CANON if v is None else format(v, "f")


def canon_timestamp(v: object) -> str:
    return NULL_CANON if v is None else v.isoformat(" ", "microseconds")  # type: ignore[attr-defined]


def canon_date(v: object) -> str:
    return NULL_CANON if v is None else v.isoformat()  # type: ignore[attr-defined]


# -- planning ------------------------------------------------------------------------------
# What the app meant, where the file says so (issue 8 point 3): kind -> PostgreSQL type.
APP_KINDS = {"jsonb": "jsonb", "uuid": "uuid", "timestamptz": "timestamptz"}
JSON_DECLARED = ("JSON", "JSONB")
TIMESTAMPTZ_DECLARED = ("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE")
_JSON_VALID = re.compile(
    r"""^\(*\s*json_valid\s*\(\s*(?P<q>["`\[]?)(?P<col>[^"`\]\s()]+)["`\]]?\s*\)\s*"""
    r"""(?:or\s+(?P=q)(?P=col)["`\]]?\s+is\s+null\s*)?\)*\s*$""",
    re.IGNORECASE,
)


def json_valid_column(check_sql: str) -> str | None:
    """The column of a CHECK that only says it holds JSON: `json_valid(col)`, optionally
    `OR col IS NULL` (Django writes `(JSON_VALID("col") OR "col" IS NULL)`); else None."""
    m = _JSON_VALID.match(check_sql.strip())
    return m.group("col") if m else None


def implied_by_jsonb(check_sql: str, columns: list[ColumnPlan]) -> bool:
    """A `json_valid` CHECK on a column created as jsonb (PostgreSQL's type enforces it)."""
    name = json_valid_column(check_sql)
    return name is not None and any(
        c.source.name.lower() == name.lower() and c.pg_type == "jsonb" for c in columns
    )


def json_checked_columns(checks: list[str]) -> frozenset[str]:
    """Lower-case names of the columns such CHECKs cover (they become jsonb in create mode)."""
    return frozenset(c.lower() for c in map(json_valid_column, checks) if c)


_TYPE_ARGS = re.compile(r"^\s*([A-Za-z_ ]+?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")


@dataclass
class Kind:
    """A column's target kind before looking at the values."""

    kind: str  # int, double, text, bytea, bool, numeric, timestamp, date, infer, + APP_KINDS
    width: int = 8
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    why: str = ""
    cast: bool = False
    spec: TypeSpec | None = None  # kind "spec": converted by `convert` as in existing mode
    named: NamedType | None = None  # an enum or citext the target must hold
    zone: dt.tzinfo | None = None  # --source-timezone, for timestamptz


def parse_type(text: str) -> tuple[str, int | None, int | None]:
    """Base name (upper case) and up to two integer arguments of a type name."""
    m = _TYPE_ARGS.match(text)
    if not m:
        return text.strip().upper(), None, None
    a = int(m.group(2)) if m.group(2) else None
    b = int(m.group(3)) if m.group(3) else None
    return " ".join(m.group(1).upper().split()), a, b


CAST_TYPES = {
    "TEXT": "text",
    "VARCHAR": "text",
    "CHARACTER VARYING": "text",
    "BYTEA": "bytea",
    "BIGINT": "int",
    "INTEGER": "int",
    "INT": "int",
    "SMALLINT": "int",
    "DOUBLE PRECISION": "double",
    "FLOAT8": "double",
    "NUMERIC": "numeric",
    "DECIMAL": "numeric",
    "BOOLEAN": "bool",
    "TIMESTAMP": "timestamp",
    "DATE": "date",
}


def cast_kind(text: str) -> Kind:
    """The kind forced by `--cast table.column=TYPE` (ValueError for an unsupported TYPE)."""
    base, a, b = parse_type(text)
    if base not in CAST_TYPES:
        raise ValueError(
            f"unsupported type {text!r}; use one of {', '.join(sorted(CAST_TYPES)).lower()}"
        )
    kind = CAST_TYPES[base]
    width = {"SMALLINT": 2, "INTEGER": 4, "INT": 4}.get(base, 8)
    out = Kind(kind, width=width, why=f"--cast {text}", cast=True)
    if kind == "text" and base != "TEXT":
        out.length = a
    if kind == "numeric":
        out.precision, out.scale = a, (b if a is not None else None)
        if a is not None and b is None:
            out.scale = 0
    return out


def declared_kind(col: Column, json_checked: frozenset[str] = frozenset()) -> Kind:
    """The kind suggested by SQLite's declared type (following its affinity rules), or the type
    the app meant where the file says so (`APP_KINDS`). `json_checked`: lower-case names of the
    table's columns under a `CHECK (json_valid(col))` (`json_checked_columns`)."""
    declared = col.declared.strip()
    base, a, b = parse_type(declared)
    up = declared.upper()
    if base in JSON_DECLARED:
        return Kind("jsonb", why=f"declared {declared}: the app stores JSON")
    if col.name.lower() in json_checked:
        return Kind("jsonb", why=f"declared {declared or 'without a type'} with CHECK (json_valid)")
    if base == "UUID":
        return Kind("uuid", why=f"declared {declared}")
    if base in TIMESTAMPTZ_DECLARED:
        return Kind("timestamptz", why=f"declared {declared}: naive values are UTC")
    if not declared:
        return Kind("infer", why="no declared type: chosen from the stored values")
    if "INT" in up:
        if base in ("SMALLINT", "INT2", "TINYINT"):
            return Kind("int", width=2, why=f"declared {declared}")
        if base in ("MEDIUMINT", "INT4"):
            return Kind("int", width=4, why=f"declared {declared}")
        return Kind("int", why=f"declared {declared}: SQLite integers are 64-bit")
    if base in ("BOOL", "BOOLEAN"):
        return Kind("bool", why=f"declared {declared}")
    if base in ("DATETIME", "TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE"):
        return Kind("timestamp", why=f"declared {declared}")
    if base == "DATE":
        return Kind("date", why=f"declared {declared}")
    if "CHAR" in up or "CLOB" in up or "TEXT" in up:
        return Kind("text", length=a if "CHAR" in base else None, why=f"declared {declared}")
    if "BLOB" in up:
        return Kind("bytea", why=f"declared {declared}")
    if "REAL" in up or "FLOA" in up or "DOUB" in up:
        return Kind("double", why=f"declared {declared}: SQLite REAL is an 8-byte float")
    if base in ("NUMERIC", "DECIMAL"):
        return Kind(
            "numeric",
            precision=a,
            scale=b if b is not None else (0 if a is not None else None),
            why=f"declared {declared}",
        )
    return Kind(
        "infer",
        why=f"declared {declared} has no direct PostgreSQL type: chosen from the stored values",
    )


def stats_spec(kind: Kind, c: str, optimistic: bool = False) -> list[tuple[str, str]]:
    """SQLite aggregates gathered for a column (one pass per table) and how sources combine them.

    Declared integer, REAL, TEXT and BLOB columns need no storage-class check here: binary
    COPY's dumpers refuse a value of another class (TypeError), the load then rolls back and
    the table is diagnosed row by row. Only what COPY would accept silently is checked.
    `optimistic` skips measuring VARCHAR lengths (see `engine.cmd_run`).
    """
    k = kind.kind
    if kind.cast:
        return []
    if k == "int":
        # integers only: a text or REAL value is the load's to reject (exit 1, listed), and
        # SQLite orders text above every number
        ints = f"CASE WHEN typeof({c}) = 'integer' THEN {c} END"
        return [(f"min({ints})", "min"), (f"max({ints})", "max")] if kind.width < 8 else []
    if k == "text":
        # optimistic (run): the limit is trusted and PostgreSQL enforces it during COPY
        return [(f"max(length({c}))", "max")] if kind.length is not None and not optimistic else []
    if k in ("timestamp", "date"):
        numeric = f"CASE WHEN typeof({c}) IN ('integer','real') THEN {c} END"
        return [
            (f"total(typeof({c})='integer')", "sum"),
            (f"total(typeof({c})='real')", "sum"),
            (f"total(typeof({c})='text')", "sum"),
            (f"total(typeof({c})='blob')", "sum"),
            (f"min({numeric})", "min"),
            (f"max({numeric})", "max"),
            (
                (
                    f"total(typeof({c})='text' AND NOT {c} GLOB "
                    "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*')"
                ),
                "sum",
            ),
        ]
    if k == "jsonb":
        return [(f"total({c} IS NOT NULL AND NOT json_valid({c}))", "sum")]
    if k == "uuid":
        return [(f"total({c} IS NOT NULL AND NOT ({_uuid_sql(c)}))", "sum"), *_infer_stats(c)]
    if k == "timestamptz":
        iso = "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*'"
        bad = f"typeof({c}) = 'blob' OR (typeof({c}) = 'text' AND NOT {c} GLOB {iso})"
        return [(f"total({bad})", "sum")]
    if k == "infer":
        return _infer_stats(c)
    return []


def _infer_stats(c: str) -> list[tuple[str, str]]:
    """Storage-class counts that decide an untyped column (and a UUID column that is not)."""
    return [
        (f"total(typeof({c})='integer')", "sum"),
        (f"total(typeof({c})='real')", "sum"),
        (f"total(typeof({c})='text')", "sum"),
        (f"total(typeof({c})='blob')", "sum"),
        (f"total(typeof({c})='integer' AND abs({c}) > {EXACT_FLOAT_INT})", "sum"),
    ]


_HEX = "[0-9A-Fa-f]"
_DASHED_GLOB = "-".join(_HEX * n for n in (8, 4, 4, 4, 12))


def _uuid_sql(c: str) -> str:
    """SQLite: the value is a UUID as `convert.to_uuid` reads it (32 hex digits as SQLAlchemy
    and Django store it, the dashed form, or 16 bytes)."""
    return (
        f"(typeof({c}) = 'text' AND length({c}) = 32 AND {c} NOT GLOB '*[^0-9A-Fa-f]*')"
        f" OR (typeof({c}) = 'text' AND length({c}) = 36 AND {c} GLOB '{_DASHED_GLOB}')"
        f" OR (typeof({c}) = 'blob' AND length({c}) = 16)"
    )


uuid_sql = _uuid_sql  # for `suggest`: the same test of a UUID value


def merge_stats(how: list[str], a: list[object], b: list[object]) -> list[object]:
    """Combine the statistics of two sources (sums add, min/max combine, NULL means none)."""
    if not a:
        return b
    out: list[object] = []
    for name, x, y in zip(how, a, b, strict=True):
        if x is None or y is None:
            out.append(y if x is None else x)
        elif name == "min":
            out.append(min(x, y))  # type: ignore[call-overload]
        elif name == "max":
            out.append(max(x, y))  # type: ignore[call-overload]
        else:
            out.append(float(x) + float(y))  # type: ignore[arg-type]
    return out


@dataclass
class ColumnPlan:
    """Everything decided about one column: name, type, reason, and how values are handled."""

    source: Column
    name: str
    kind: str
    pg_type: str
    copy_type: str
    reason: str
    check: Check
    canon: Canon
    select: str
    needs_diagnosis: bool = False
    convert_on_load: bool = False
    notes: list[str] = field(default_factory=list)
    rep: str | None = None
    plain: bool = False  # a generated column carried over as a plain column with its values
    pg_canon: str | None = None  # verification's SQL rendering when the kind's standard one differs
    named: NamedType | None = None  # an enum or citext: rendered by name (`casts`)

    def type_sql(self) -> sql.Composable:
        """The column's type for DDL: a named type by identifier, else the planned type."""
        return self.named.ident() if self.named is not None else sql.SQL(self.pg_type)


def _app_column(col: Column, target_name: str, kind: Kind, select: str) -> ColumnPlan:
    """A column created with the type the app meant: values converted by `convert` exactly as
    when loading into the app's own schema (`--schema existing`)."""
    from migration import convert  # here: convert imports this module's constants

    pg_type = APP_KINDS[kind.kind]
    conv = convert.converter(convert.TypeSpec(pg_type, pg_type), kind.zone or dt.UTC)
    return ColumnPlan(
        col,
        target_name,
        conv.kind,
        pg_type,
        conv.copy_type,
        f"{kind.why}; {conv.accepts}",
        conv.fn,
        conv.canon,
        select,
        convert_on_load=True,
        pg_canon=conv.pg_canon,
    )


def _spec_column(col: Column, target_name: str, kind: Kind, select: str) -> ColumnPlan:
    """A column whose type a cast chose from `casts.SPEC_TYPES` or an enum: its values go
    through the converter `--schema existing` uses for that type."""
    from migration import convert  # here: convert imports this module's constants

    assert kind.spec is not None  # noqa: S101 - the caller checked
    conv = convert.converter(kind.spec, kind.zone or dt.UTC)
    accepts = conv.accepts
    if kind.spec.name == "citext":
        accepts += " (the target needs the citext extension: CREATE EXTENSION citext)"
    plan = ColumnPlan(
        col,
        target_name,
        conv.kind,
        kind.spec.shown,
        conv.copy_type,
        f"{kind.why}; {accepts}",
        conv.fn,
        conv.canon,
        select,
        convert_on_load=True,
        pg_canon=conv.pg_canon,
        named=kind.named,
    )
    if col.collation and col.collation != "BINARY" and kind.spec.name != "citext":
        plan.notes.append(f"column collation {col.collation} not carried over")
    return plan


def _n(x: object) -> int:
    return int(x) if x is not None else 0  # type: ignore[call-overload]


def decide(col: Column, target_name: str, kind: Kind, stats: list[object]) -> ColumnPlan:
    """The column's plan from its kind and the combined statistics of every source."""
    if kind.spec is not None:
        return _spec_column(col, target_name, kind, qi(col.name))
    c = qi(col.name)
    k, why, perm = kind.kind, kind.why, kind.cast
    bad = 0
    select = c
    notes: list[str] = []
    rep = None
    if k == "uuid" and _n(stats[0] if stats else 0):
        notes.append(
            f"declared {col.declared} but {_n(stats[0])} value(s) are not UUIDs: type chosen "
            "from the stored values"
        )
        k, why, stats = "infer", f"{why}; not every value is a UUID", stats[1:]
    if k == "infer":
        n_int, n_real, n_text, n_blob, n_big = (_n(s) for s in stats)
        present = {
            name: n
            for name, n in (("int", n_int), ("double", n_real), ("text", n_text), ("bytea", n_blob))
            if n
        }
        if not present:
            k, why = "text", f"{why}; no values, so text"
        elif set(present) <= {"int", "double"} and "double" in present:
            k, why = "double", f"{why}; REAL (and integer) values"
            bad = n_big
        else:
            k = max(present, key=lambda name: present[name])
            why = f"{why}; {'only' if len(present) == 1 else 'mostly'} {k} values"
            bad = sum(present.values()) - present[k]
        kind = Kind(k, why=why)
    if k in ("timestamp", "date"):
        values: list[object] = stats or [0, 0, 0, 0, None, None, 0]
        n_int, n_real, n_text, n_blob = (_n(x) for x in values[:4])
        lo, hi, bad_text = values[4], values[5], _n(values[6])
        total = n_int + n_real + n_text + n_blob
        if perm or total == 0 or n_text == total or k == "date":
            rep = "iso"
            bad = total - n_text + bad_text if not perm else 0
        elif n_int == total and max(abs(_n(lo)), abs(_n(hi))) < EPOCH_SECONDS_MAX:
            rep, why = "epoch_s", f"{why}; integer Unix epoch seconds"
        elif n_int == total and max(abs(_n(lo)), abs(_n(hi))) < EPOCH_MILLIS_MAX:
            rep, why = "epoch_ms", f"{why}; integer Unix epoch milliseconds"
        elif (
            n_real
            and n_text == 0
            and n_blob == 0
            and float(str(lo)) >= JULIAN_MIN
            and float(str(hi)) <= JULIAN_MAX
        ):
            rep, why = "julian", f"{why}; Julian day numbers"
        else:
            counts = {"iso": n_text, "epoch_s": n_int, "julian": n_real}
            rep = max(counts, key=lambda name: counts[name])
            bad = total - counts[rep]
            why = f"{why}; mixed representations, mostly {rep}"
        if k == "timestamp" and rep == "iso" and not perm and n_text:
            why = f"{why}; ISO-8601 text" if "ISO" not in why else why
    if k in APP_KINDS:
        plan = _app_column(col, target_name, kind, select)
        bad = _n(stats[0]) if stats and k != "uuid" else 0
    elif k == "int":
        width = kind.width
        if width < 8 and not perm:
            lo_v, hi_v = _n(stats[0]), _n(stats[1])
            rlo, rhi = INT_RANGES[width]
            if not (rlo <= lo_v and hi_v <= rhi):
                notes.append(
                    f"declared {col.declared} but values reach {lo_v}..{hi_v}: widened to bigint"
                )
                width = 8
            else:
                why = f"{why}; every value fits {INT_PG[width]}"
        plan = ColumnPlan(
            col,
            target_name,
            "int",
            INT_PG[width],
            INT_COPY[width],
            why,
            check_int(width, perm),
            canon_int,
            select,
        )
    elif k == "double":
        plan = ColumnPlan(
            col,
            target_name,
            k,
            "double precision",
            "float8",
            why,
            check_double(perm),
            canon_double,
            select,
        )
    elif k == "text":
        length = kind.length
        pg = "text"
        if length is not None:
            longest = _n(stats[0]) if stats else 0
            if perm or longest <= length:
                pg = f"varchar({length})"
                why = f"{why}; every value fits {length} characters" if not perm else why
            else:
                notes.append(
                    f"{col.declared} widened to text: the longest value has {longest} characters "
                    "(SQLite never enforces a declared length)"
                )
                why = f"{why}; widened to text"
        limit = length if pg != "text" else None  # varchar(n): PostgreSQL refuses longer values
        plan = ColumnPlan(
            col, target_name, k, pg, "text", why, check_text(limit, perm), canon_text, select
        )
    elif k == "bytea":
        if perm:
            select = f"CASE WHEN typeof({c}) = 'text' THEN CAST({c} AS BLOB) ELSE {c} END"
        plan = ColumnPlan(
            col, target_name, k, "bytea", "bytea", why, check_bytea(perm), canon_bytea, select
        )
    elif k == "bool":
        plan = ColumnPlan(
            col,
            target_name,
            k,
            "boolean",
            "bool",
            why,
            check_bool(perm),
            canon_bool,
            select,
            convert_on_load=True,
        )
    elif k == "numeric":
        pg = f"numeric({kind.precision},{kind.scale})" if kind.precision is not None else "numeric"
        plan = ColumnPlan(
            col,
            target_name,
            k,
            pg,
            "numeric",
            why,
            check_numeric(kind.precision, kind.scale, perm),
            canon_numeric,
            select,
            convert_on_load=True,
        )
    elif k == "timestamp":
        rep = rep or "iso"
        plan = ColumnPlan(
            col,
            target_name,
            k,
            "timestamp",
            "timestamp",
            why,
            check_timestamp(rep, perm),
            canon_timestamp,
            select,
            convert_on_load=True,
            rep=rep,
        )
    elif k == "date":
        plan = ColumnPlan(
            col,
            target_name,
            k,
            "date",
            "date",
            why,
            check_date(perm),
            canon_date,
            select,
            convert_on_load=True,
            rep="iso",
        )
    else:  # pragma: no cover - kinds are closed
        raise AssertionError(k)
    if perm:
        plan.convert_on_load = True
    plan.needs_diagnosis = bad > 0
    plan.notes.extend(notes)
    if col.collation and col.collation != "BINARY":
        plan.notes.append(
            f"column collation {col.collation} not carried over: PostgreSQL compares this column "
            "case- and space-sensitively (consider citext or lower() in queries)"
        )
    return plan
