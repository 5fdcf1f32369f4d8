"""Convert SQLite values to the type of the target column, exactly, or refuse them.

Used by `--schema existing`: the target's catalog (`catalog.py`), not the SQLite declaration,
says what each column is. `converter(spec)` returns a `Converter`: a pure function from a value
as SQLite stores it (None, int, float, str, bytes) to the Python value binary COPY sends for
that type (or `ValueProblem`), the COPY dumper to use, and the canonical rendering that
verification computes on both sides (Python here, SQL in `pg_canon`). Where psycopg has no
binary dumper that takes the exact value (interval with months, inet with its prefix, jsonb
as the app's own text), the converter builds the type's binary wire format itself and COPY
sends it through the bytea dumper (binary COPY fields carry no type: the column's receive
function reads them).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import struct
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from migration.typemap import (
    EPOCH,
    EPOCH_MILLIS_MAX,
    EPOCH_SECONDS_MAX,
    INT_RANGES,
    JULIAN_MAX,
    JULIAN_MIN,
    JULIAN_UNIX_EPOCH,
    NULL_CANON,
    ValueProblem,
    canon_bool,
    canon_bytea,
    canon_date,
    canon_double,
    canon_int,
    canon_numeric,
    canon_text,
    canon_timestamp,
    show,
)

Fn = Callable[[object], object]
US_PER_DAY = 86_400_000_000
INT32 = (-(2**31), 2**31 - 1)
# PostgreSQL's inet family bytes (PGSQL_AF_INET = AF_INET + 0, PGSQL_AF_INET6 = AF_INET + 1)
PG_AF_INET, PG_AF_INET6 = 2, 3
JSONB_VERSION = b"\x01"  # jsonb's binary format: a version byte, then the JSON text
NUMERIC_MAX_SCALE = 16_383  # digits after the point numeric can hold
NUMERIC_MAX_WEIGHT = 131_072  # digits before the point
UTC = dt.UTC

_TS = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_DASHED = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_INT_TEXT = re.compile(r"-?(?:0|[1-9]\d*)")
_ISO_DURATION = re.compile(
    r"(-)?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)(?:\.(\d{1,6}))?S)?)?"
)
_HMS = re.compile(r"(-)?(\d+):([0-5]\d):([0-5]\d)(?:\.(\d{1,6}))?")
_BOOL_WORDS = {
    "t": True,
    "true": True,
    "y": True,
    "yes": True,
    "on": True,
    "1": True,
    "f": False,
    "false": False,
    "n": False,
    "no": False,
    "off": False,
    "0": False,
}  # exactly what PostgreSQL's boolin accepts (case-insensitive, trimmed)


@dataclass(frozen=True)
class TypeSpec:
    """A target column's type as the catalog describes it (domains resolved to their base)."""

    name: str  # pg_type.typname of the base type: int4, varchar, uuid, jsonb, an enum's name
    shown: str  # format_type(): character varying(20), timestamp with time zone, page_status
    typmod: int = -1
    category: str = ""  # pg_type.typcategory: E enum, A array, ...
    labels: tuple[str, ...] = ()  # an enum's labels
    element: TypeSpec | None = None  # an array's element type
    element_oid: int = 0


@dataclass(frozen=True)
class Converter:
    """How one target column's values are converted, copied and compared."""

    fn: Fn
    copy_type: str  # the binary COPY dumper (a type name psycopg knows)
    kind: str  # verification kind (typemap's kinds, or one of PG_CANON's)
    canon: Callable[[object], str]
    accepts: str  # for the plan: what is read and how
    pg_canon: str | None = None  # SQL rendering ({c}) when the kind's standard one does not fit
    passthrough: frozenset[str] = field(default_factory=frozenset)  # see `converter`


class Unsupported(Exception):  # noqa: N818 - a planning signal, reported with table and column
    """No exact conversion to this target type is known."""


def _storage(v: object) -> str:
    return {int: "INTEGER", float: "REAL", str: "TEXT", bytes: "BLOB"}.get(
        type(v), type(v).__name__
    )


def _refuse(v: object, what: str) -> ValueProblem:
    return ValueProblem(f"{_storage(v)} value {show(v)} is not {what}")


# -- numbers and truth ---------------------------------------------------------------------
def to_bool(v: object) -> object:
    """0/1, or the words PostgreSQL's boolean input accepts (t/f, true/false, yes/no, on/off)."""
    if v is None:
        return None
    if type(v) is int and v in (0, 1):
        return v == 1
    if isinstance(v, str) and v.strip().lower() in _BOOL_WORDS:
        return _BOOL_WORDS[v.strip().lower()]
    raise _refuse(v, "a boolean (0/1, true/false, t/f, yes/no, on/off)")


def to_int(width: int) -> Fn:
    """Integers in range; an integral REAL or canonical decimal text exactly."""
    lo, hi = INT_RANGES[width]
    name = {2: "smallint", 4: "integer", 8: "bigint"}[width]

    def conv(v: object) -> object:
        if v is None:
            return None
        if (type(v) is float and v.is_integer()) or (type(v) is str and _INT_TEXT.fullmatch(v)):
            out = int(v)
        elif type(v) is int:
            out = v
        else:
            raise _refuse(v, f"an integer ({name})")
        if not lo <= out <= hi:
            raise ValueProblem(f"{show(v)} is out of range for {name}")
        return out

    return conv


def to_double(v: object) -> object:
    """REAL as is; an integer only if double precision holds it exactly."""
    if v is None or type(v) is float:
        return v
    if type(v) is int and float(v) == v:
        return float(v)
    if type(v) is str:
        try:
            out = float(v)
        except ValueError:
            pass
        else:
            if repr(out) == v:
                return out
    raise _refuse(v, "exactly a double precision number")


_pack4 = struct.Struct(">f")


def to_real(v: object) -> object:
    """A REAL only if single precision (real/float4) holds it exactly."""
    out = to_double(v)
    if out is None:
        return None
    try:
        single = _pack4.unpack(_pack4.pack(out))[0]
    except OverflowError:
        single = None
    if single != out:
        raise ValueProblem(f"{show(v)} would be rounded to fit real (4-byte float)")
    return out


def numeric_typmod(typmod: int) -> tuple[int | None, int | None]:
    """Precision and scale from numeric's typmod (-1: unconstrained; scale may be negative)."""
    if typmod < 4:
        return None, None
    t = typmod - 4
    return (t >> 16) & 0xFFFF, ((t & 0x7FF) ^ 1024) - 1024


def to_numeric(precision: int | None, scale: int | None) -> Fn:
    """Integers, REALs (by their shortest repr, as the ORM wrote them) and decimal text;
    refused if the column would round it or it has too many digits."""
    quantum = Decimal(1).scaleb(-scale) if scale is not None else None

    def conv(v: object) -> object:
        if v is None:
            return None
        if type(v) is int:
            d = Decimal(v)
        elif type(v) is float and v == v and v not in (float("inf"), float("-inf")):
            d = Decimal(repr(v))
        elif type(v) is str:
            try:
                d = Decimal(v)
            except InvalidOperation:
                raise _refuse(v, "a decimal number") from None
            if not d.is_finite():
                raise _refuse(v, "a finite decimal number")
        else:
            raise _refuse(v, "a finite decimal number")
        if quantum is not None:
            q = d.quantize(quantum) if d.adjusted() < 1000 else d
            if q != d or q.as_tuple().exponent != quantum.as_tuple().exponent:
                raise ValueProblem(f"{show(v)} would be rounded to {scale} decimal place(s)")
            d = q
        if precision is not None and max(d.adjusted() + 1, 0) > precision - (scale or 0):
            raise ValueProblem(f"{show(v)} has too many digits for numeric({precision},{scale})")
        if -int(d.as_tuple().exponent) > NUMERIC_MAX_SCALE or d.adjusted() >= NUMERIC_MAX_WEIGHT:
            raise ValueProblem(f"{show(v)} is beyond numeric's range")
        return d.copy_abs() if d.is_zero() else d

    return conv


# -- text, bytes, identifiers --------------------------------------------------------------
def to_text(max_len: int | None = None, what: str = "text") -> Fn:
    """Text (length-checked for varchar(n)/char(n)); an integer as its decimal text."""

    def conv(v: object) -> object:
        if v is None:
            return None
        if type(v) is int:
            v = str(v)
        if type(v) is not str:
            raise _refuse(v, what)
        if "\x00" in v:
            raise ValueProblem("text contains a NUL (0x00) character, which PostgreSQL cannot hold")
        if max_len is not None and len(v) > max_len:
            raise ValueProblem(f"text of {len(v)} characters is longer than {what}")
        return v

    return conv


def to_bytea(v: object) -> object:
    """BLOBs byte for byte."""
    if v is None or type(v) is bytes:
        return v
    raise _refuse(v, "a BLOB (bytea)")


def to_uuid(v: object) -> object:
    """32 hex digits (as Django and SQLAlchemy store it), the dashed form, or 16 bytes."""
    if v is None:
        return None
    if type(v) is str and (_HEX32.fullmatch(v) or _DASHED.fullmatch(v)):
        return uuid.UUID(v)
    if type(v) is bytes and len(v) == 16:
        return uuid.UUID(bytes=v)
    raise _refuse(v, "a UUID (32 hex digits, dashed, or 16 bytes)")


def to_enum(labels: tuple[str, ...], shown: str) -> Fn:
    """Text that is one of the enum's labels, exactly."""
    known = frozenset(labels)

    def conv(v: object) -> object:
        if v is None:
            return None
        if type(v) is str and v in known:
            return v
        raise _refuse(v, f"a label of enum {shown} ({', '.join(labels)})")

    return conv


# -- JSON ----------------------------------------------------------------------------------
def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def parse_json(text: str) -> object:
    """Parse strictly as PostgreSQL does (no NaN/Infinity; numbers kept exact)."""
    return json.loads(text, parse_float=Decimal, parse_constant=_no_constant)


def _walk_strings(node: object) -> bool:
    """True if every string in the tree is encodable (no lone surrogates) and has no NUL."""
    if isinstance(node, str):
        try:
            node.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return "\x00" not in node
    if isinstance(node, dict):
        return all(_walk_strings(k) and _walk_strings(x) for k, x in node.items())
    if isinstance(node, list):
        return all(map(_walk_strings, node))
    return True


def _json_text(v: object) -> str:
    if type(v) is int:
        return str(v)
    if type(v) is float and v == v and v not in (float("inf"), float("-inf")):
        return repr(v)
    if type(v) is not str:
        raise _refuse(v, "JSON text")
    return v


def to_json(v: object) -> object:
    """Valid JSON text, kept verbatim (json keeps the text; JSON null stays the text `null`)."""
    if v is None:
        return None
    text = _json_text(v)
    try:
        tree = parse_json(text)
    except ValueError as exc:
        raise ValueProblem(f"{show(v)} is not valid JSON ({exc})") from None
    if not _walk_strings(tree) or "\x00" in text:
        raise ValueProblem(
            f"{show(v)} has a NUL or an unpaired surrogate, which PostgreSQL refuses"
        )
    return text


def to_jsonb(v: object) -> object:
    """Valid JSON text as jsonb's binary format (PostgreSQL parses it; JSON null stays null)."""
    text = to_json(v)
    return None if text is None else JSONB_VERSION + text.encode()  # type: ignore[attr-defined]


def _json_string(s: str) -> str:
    out = []
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[ch])
        elif ch < " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_JSON_ESCAPES = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _jsonb_key(k: str) -> tuple[int, bytes]:
    b = k.encode()
    return len(b), b  # jsonb orders object keys by length, then bytes


def jsonb_text(node: object) -> str:
    """A parsed JSON value as PostgreSQL prints the jsonb (key order, spacing, numbers)."""
    if node is None:
        return "null"
    if node is True:
        return "true"
    if node is False:
        return "false"
    if isinstance(node, int):
        return str(node)
    if isinstance(node, Decimal):
        return format(node.copy_abs() if node.is_zero() else node, "f")
    if isinstance(node, str):
        return _json_string(node)
    if isinstance(node, list):
        return "[" + ", ".join(map(jsonb_text, node)) + "]"
    if isinstance(node, dict):
        keys = sorted(node, key=_jsonb_key)
        return "{" + ", ".join(f"{_json_string(k)}: {jsonb_text(node[k])}" for k in keys) + "}"
    raise TypeError(f"not a JSON value: {node!r}")


def canon_jsonb(v: object) -> str:
    """jsonb compared as parsed JSON: its canonical text, length-prefixed."""
    if v is None:
        return NULL_CANON
    if not isinstance(v, bytes):
        raise TypeError("a jsonb value must be its binary format")
    return canon_text(jsonb_text(parse_json(v[1:].decode())))


# -- dates and times -----------------------------------------------------------------------
def source_zone(name: str) -> dt.tzinfo:
    """The `--source-timezone` (ValueError naming it if unknown)."""
    if name.upper() == "UTC":
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (an IANA name, e.g. Europe/Paris)") from exc


def _offset(text: str) -> dt.timezone:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def parse_timestamp(v: str) -> dt.datetime:
    """ISO 8601 text (space or T, up to microseconds, optional offset); naive if no offset."""
    m = _TS.fullmatch(v)
    if not m:
        raise _refuse(v, "an ISO 8601 timestamp (YYYY-MM-DD[ HH:MM[:SS[.ffffff]]][+HH:MM])")
    y, mo, d, h, mi, s, frac, off = m.groups()
    try:
        out = dt.datetime(  # noqa: DTZ001 - naive on purpose: the zone is decided by the caller
            int(y),
            int(mo),
            int(d),
            int(h or 0),
            int(mi or 0),
            int(s or 0),
            int((frac or "0").ljust(6, "0")),
        )
    except ValueError as exc:
        raise ValueProblem(f"{show(v)} is not a valid date/time ({exc})") from None
    return out.replace(tzinfo=_offset(off)) if off else out


def _from_number(v: object) -> dt.datetime | None:
    """Epoch seconds/milliseconds (integers) or a Julian day (REAL), as naive UTC; else None."""
    try:
        if type(v) is int:
            if abs(v) < EPOCH_SECONDS_MAX:
                return EPOCH + dt.timedelta(seconds=v)
            if abs(v) < EPOCH_MILLIS_MAX:
                return EPOCH + dt.timedelta(milliseconds=v)
            raise ValueProblem(f"integer {v} is neither epoch seconds nor milliseconds")
        if type(v) is float:
            if not JULIAN_MIN <= v <= JULIAN_MAX:
                raise ValueProblem(f"REAL {v!r} is not a Julian day number in 0001..9999")
            micros = round((v - JULIAN_UNIX_EPOCH) * US_PER_DAY)
            if JULIAN_UNIX_EPOCH + micros / US_PER_DAY != v:
                raise ValueProblem(f"Julian day {v!r} is finer than a microsecond")
            return EPOCH + dt.timedelta(microseconds=micros)
    except OverflowError:
        raise ValueProblem(f"{show(v)} is out of the timestamp range") from None
    return None


def _localize(wall: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """A naive wall time read in `zone`; refused if the zone's clock skips or repeats it."""
    if zone is UTC:
        return wall.replace(tzinfo=UTC)
    early, late = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
    if early.utcoffset() != late.utcoffset():
        raise ValueProblem(
            f"{wall.isoformat(' ')} does not name one instant in {zone} (a clock change skips or "
            "repeats it)"
        )
    return early.astimezone(UTC)


def to_timestamptz(zone: dt.tzinfo) -> Fn:
    """Naive text read in the source time zone, text with an offset, epoch s/ms, Julian day."""

    def conv(v: object) -> object:
        if v is None:
            return None
        if type(v) is str:
            ts = parse_timestamp(v)
            return ts.astimezone(UTC) if ts.tzinfo else _localize(ts, zone)
        number = _from_number(v)
        if number is None:
            raise _refuse(v, "a timestamp")
        return number.replace(tzinfo=UTC)

    return conv


def to_timestamp(v: object) -> object:
    """Naive text as written; epoch s/ms and Julian days as UTC; an offset is refused."""
    if v is None:
        return None
    if type(v) is str:
        ts = parse_timestamp(v)
        if ts.tzinfo is not None:
            raise ValueProblem(
                f"{show(v)} carries a UTC offset, which timestamp without time zone would drop"
            )
        return ts
    number = _from_number(v)
    if number is None:
        raise _refuse(v, "a timestamp")
    return number


def to_date(v: object) -> object:
    """YYYY-MM-DD text."""
    if v is None:
        return None
    if type(v) is str and _DATE.fullmatch(v):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            pass
    raise _refuse(v, "a date (YYYY-MM-DD)")


def to_time(with_zone: bool) -> Fn:
    """HH:MM[:SS[.ffffff]] text (with an offset for time with time zone)."""

    def conv(v: object) -> object:
        if v is None:
            return None
        m = _TIME.fullmatch(v) if type(v) is str else None
        if m is None or bool(m.group(5)) != with_zone:
            raise _refuse(
                v, "a time of day (HH:MM[:SS[.ffffff]]" + ("+HH:MM)" if with_zone else ")")
            )
        h, mi, s, frac, off = m.groups()
        try:
            out = dt.time(int(h), int(mi), int(s or 0), int((frac or "0").ljust(6, "0")))
        except ValueError:
            raise _refuse(v, "a valid time of day") from None
        return out.replace(tzinfo=_offset(off)) if off else out

    return conv


def _time_micros(t: dt.time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def canon_time(v: object) -> str:
    """time as time_send's bytes (microseconds since midnight), in hex."""
    return NULL_CANON if v is None else struct.pack(">q", _time_micros(v)).hex()  # type: ignore[arg-type]


def canon_timetz(v: object) -> str:
    """timetz as timetz_send's bytes (microseconds, zone in seconds west of UTC), in hex."""
    if v is None:
        return NULL_CANON
    offset = v.utcoffset()  # type: ignore[attr-defined]
    return struct.pack(">qi", _time_micros(v), -int(offset.total_seconds())).hex()  # type: ignore[arg-type]


def canon_timestamptz(v: object) -> str:
    """An instant: its UTC wall time to the microsecond."""
    if v is None:
        return NULL_CANON
    if not isinstance(v, dt.datetime):
        raise TypeError("a timestamptz value must be a datetime")
    return v.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def interval_wire(months: int, days: int, micros: int) -> bytes:
    """interval's binary format (interval_recv): microseconds, days, months."""
    if not (INT32[0] <= months <= INT32[1] and INT32[0] <= days <= INT32[1]) or not (
        INT_RANGES[8][0] <= micros <= INT_RANGES[8][1]
    ):
        raise ValueProblem("duration out of the interval range")
    return struct.pack(">qii", micros, days, months)


def _duration(text: str) -> tuple[int, int, int] | None:
    m = _ISO_DURATION.fullmatch(text)
    if m and any(m.group(i) for i in range(2, 9)) and not text.endswith("T"):
        neg, y, mo, w, d, h, mi, s, frac = m.groups()
        sign = -1 if neg else 1
        months = int(y or 0) * 12 + int(mo or 0)
        days = int(w or 0) * 7 + int(d or 0)
        micros = ((int(h or 0) * 60 + int(mi or 0)) * 60 + int(s or 0)) * 1_000_000
        micros += int((frac or "0").ljust(6, "0"))
        return sign * months, sign * days, sign * micros
    m = _HMS.fullmatch(text)
    if m:
        neg, h, mi, s, frac = m.groups()
        micros = ((int(h) * 60 + int(mi)) * 60 + int(s)) * 1_000_000 + int(
            (frac or "0").ljust(6, "0")
        )
        return 0, 0, -micros if neg else micros
    return None


def to_interval(v: object) -> object:
    """Integer microseconds (Django), ISO 8601 durations (P1Y2M3DT4H5M6.5S), [-]HH:MM:SS[.f],
    and SQLAlchemy's epoch-based datetime text (1970-01-01 + the duration)."""
    if v is None:
        return None
    if type(v) is int:
        days, micros = divmod(v, US_PER_DAY)  # as psycopg sends a timedelta: days + micros
        return interval_wire(0, days, micros)
    if type(v) is str:
        parts = _duration(v)
        if parts is not None:
            return interval_wire(*parts)
        if v.startswith("19") and _TS.fullmatch(v):
            ts = parse_timestamp(v)
            if ts.tzinfo is None:
                return to_interval((ts - EPOCH) // dt.timedelta(microseconds=1))
    raise _refuse(
        v, "a duration (integer microseconds, ISO 8601 PnDTnHnMnS, or [-]HH:MM:SS[.ffffff])"
    )


def to_inet(cidr: bool) -> Fn:
    """An address (with optional /prefix) as inet's binary format; cidr refuses host bits."""

    def conv(v: object) -> object:
        if v is None:
            return None
        if type(v) is not str or "%" in v:
            raise _refuse(v, "an IP address" + (" network" if cidr else ""))
        try:
            if cidr:
                net = ipaddress.ip_network(v, strict=True)
                addr, prefix = net.network_address, net.prefixlen
            else:
                iface = ipaddress.ip_interface(v)
                addr, prefix = iface.ip, iface.network.prefixlen
        except ValueError as exc:
            what = "network" if cidr else "address"
            raise ValueProblem(f"{show(v)} is not an IP {what} ({exc})") from None
        family = PG_AF_INET if addr.version == 4 else PG_AF_INET6
        return bytes([family, prefix, int(cidr), len(addr.packed)]) + addr.packed

    return conv


def canon_wire(v: object) -> str:
    """A value sent in its type's binary format, compared as those bytes (`<type>_send`)."""
    return NULL_CANON if v is None else bytes(v).hex()  # type: ignore[call-overload]


def canon_float4(v: object) -> str:
    return NULL_CANON if v is None else _pack4.pack(v).hex()


def canon_uuid(v: object) -> str:
    return NULL_CANON if v is None else str(v)


def canon_bpchar(v: object) -> str:
    """char(n) compares without its padding (as PostgreSQL's char semantics do)."""
    return NULL_CANON if v is None else canon_text(v.rstrip(" "))  # type: ignore[attr-defined]


# -- arrays (from JSON text, as ORMs store a list on SQLite) ----------------------------------
PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL's binary date/time origin
_ELEMENT_WIRE: dict[str, Callable[[object], bytes]] = {
    "text": lambda v: v.encode(),  # type: ignore[attr-defined]
    "int2": struct.Struct(">h").pack,
    "int4": struct.Struct(">i").pack,
    "int8": struct.Struct(">q").pack,
    "float8": struct.Struct(">d").pack,
    "float4": _pack4.pack,
    "bool": lambda v: b"\x01" if v else b"\x00",
    "uuid": lambda v: v.bytes,  # type: ignore[attr-defined]
    "bytea": bytes,  # type: ignore[dict-item]
    "date": lambda v: struct.pack(">i", (v - PG_EPOCH.date()).days),  # type: ignore[operator]
    "timestamptz": lambda v: struct.pack(">q", (v - PG_EPOCH) // dt.timedelta(microseconds=1)),  # type: ignore[operator]
    "timestamp": lambda v: struct.pack(
        ">q",
        (v - PG_EPOCH.replace(tzinfo=None)) // dt.timedelta(microseconds=1),  # type: ignore[operator]
    ),
}
# element kinds whose send(recv(bytes)) gives the same bytes back (jsonb, numeric do not)
_ARRAY_KINDS = {
    "text",
    "int",
    "double",
    "float4",
    "bool",
    "uuid",
    "bytea",
    "date",
    "timestamptz",
    "timestamp",
    "interval",
    "inet",
    "cidr",
}


def _element_value(v: object) -> object:
    """A JSON array element as SQLite would hold the scalar (a Decimal as an exact float)."""
    if isinstance(v, Decimal):
        f = float(v)
        if Decimal(f) == v or repr(f) == str(v):
            return f
        raise ValueProblem(f"{v} is not exactly a double precision number")
    if isinstance(v, bool):
        return int(v)
    return v


def to_array(element: Converter, element_oid: int, shown: str) -> Fn:
    """JSON array text (one dimension) as the array's binary format; a JSON null or a null
    element is NULL (a PostgreSQL array has no JSON null)."""
    wire = _ELEMENT_WIRE[element.copy_type]

    def conv(v: object) -> object:
        if v is None:
            return None
        try:
            items = parse_json(v) if type(v) is str else v
        except ValueError as exc:
            raise ValueProblem(f"{show(v)} is not a JSON array ({exc})") from None
        if items is None:
            return None
        if not isinstance(items, list) or any(isinstance(x, (list, dict)) for x in items):
            raise _refuse(v, f"a one-dimensional JSON array for {shown}")
        parts = []
        for item in items:
            value = None if item is None else element.fn(_element_value(item))
            data = b"" if value is None else wire(value)
            parts.append(
                struct.pack(">i", -1) if value is None else struct.pack(">i", len(data)) + data
            )
        has_null = int(any(x is None for x in items))
        if not items:
            return struct.pack(">iii", 0, 0, element_oid)
        head = struct.pack(">iiiii", 1, has_null, element_oid, len(items), 1)
        return head + b"".join(parts)

    return conv


# SQL renderings matching the canon_* above ({c} is the column)
TEXT_SQL = "length({c}::text)::text || ':' || {c}::text"
PG_CANON = {
    "uuid": "{c}::text",
    "jsonb": TEXT_SQL,
    "timestamptz": "to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')",
    "time": "encode(time_send({c}), 'hex')",
    "timetz": "encode(timetz_send({c}), 'hex')",
    "interval": "encode(interval_send({c}), 'hex')",
    "inet": "encode(inet_send({c}), 'hex')",
    "cidr": "encode(cidr_send({c}), 'hex')",
    "float4": "encode(float4send({c}), 'hex')",
    "bpchar": "length({c})::text || ':' || rtrim({c}::text, ' ')",
    "array": "encode(array_send({c}), 'hex')",
}


# -- choosing ------------------------------------------------------------------------------
def _length(typmod: int) -> int | None:
    return typmod - 4 if typmod >= 4 else None


def converter(spec: TypeSpec, zone: dt.tzinfo = UTC) -> Converter:
    """The converter for a target type; Unsupported if no exact conversion is known.

    `passthrough` names the SQLite affinities whose values may go to COPY unconverted: the
    binary dumper refuses any other storage class (TypeError) and PostgreSQL enforces the rest
    (a varchar limit, a NUL), and the load then diagnoses every value with `fn`.
    """
    n = spec.name
    if spec.category == "E":
        return Converter(
            to_enum(spec.labels, spec.shown),
            "text",
            "text",
            canon_text,
            f"text that is one of {len(spec.labels)} labels",
            TEXT_SQL,
        )
    simple = _SIMPLE.get(n)
    if simple is not None:
        return simple
    if n in ("int2", "int4"):
        width = 2 if n == "int2" else 4
        return Converter(to_int(width), n, "int", canon_int, f"integers in {spec.shown} range")
    if n in ("varchar", "bpchar"):
        limit = _length(spec.typmod)
        what = spec.shown
        fn = to_text(limit, what)
        if n == "bpchar":
            return Converter(
                fn,
                "text",
                "bpchar",
                canon_bpchar,
                f"text up to {limit} characters",
                PG_CANON["bpchar"],
            )
        return Converter(
            fn,
            "text",
            "text",
            canon_text,
            f"text up to {limit} characters" if limit else "text",
            TEXT_SQL,
            frozenset({"TEXT"}),
        )
    if n == "numeric":
        p, s = numeric_typmod(spec.typmod)
        return Converter(
            to_numeric(p, s),
            "numeric",
            "numeric",
            canon_numeric,
            "integers, REALs (shortest repr) and decimal text, refused if rounded",
        )
    if n == "timestamptz":
        return Converter(
            to_timestamptz(zone),
            "timestamptz",
            "timestamptz",
            canon_timestamptz,
            f"ISO text (naive read in {zone}; with offset as given), epoch s/ms, Julian day",
            PG_CANON["timestamptz"],
        )
    if spec.category == "A" and spec.element is not None:
        inner = converter(spec.element, zone)
        if inner.kind not in _ARRAY_KINDS and not (spec.element.category == "E"):
            raise Unsupported(f"no exact conversion to {spec.shown} (arrays of {inner.kind})")
        return Converter(
            to_array(inner, spec.element_oid, spec.shown),
            "bytea",
            "array",
            canon_wire,
            f"JSON arrays of {spec.element.shown} (JSON null is NULL)",
            PG_CANON["array"],
        )
    if n in ("inet", "cidr"):
        return Converter(to_inet(n == "cidr"), "bytea", n, canon_wire, f"{n} text", PG_CANON[n])
    raise Unsupported(
        f"no exact conversion to {spec.shown} is known (supported: boolean, smallint, integer, "
        "bigint, numeric, real, double precision, text, varchar, char, citext, bytea, uuid, "
        "json, jsonb, timestamptz, timestamp, date, time, timetz, interval, inet, cidr, enums, "
        "and arrays of these from JSON text)"
    )


_SIMPLE = {
    "bool": Converter(to_bool, "bool", "bool", canon_bool, "0/1 and true/false words"),
    "int8": Converter(
        to_int(8), "int8", "int", canon_int, "integers", passthrough=frozenset({"INTEGER"})
    ),
    "float8": Converter(
        to_double,
        "float8",
        "double",
        canon_double,
        "REALs bit for bit; integers if exact",
        passthrough=frozenset({"REAL"}),
    ),
    "float4": Converter(
        to_real,
        "float4",
        "float4",
        canon_float4,
        "REALs that real holds exactly",
        PG_CANON["float4"],
    ),
    "text": Converter(to_text(), "text", "text", canon_text, "text", TEXT_SQL, frozenset({"TEXT"})),
    "citext": Converter(
        to_text(), "text", "text", canon_text, "text", TEXT_SQL, frozenset({"TEXT"})
    ),
    "bytea": Converter(
        to_bytea, "bytea", "bytea", canon_bytea, "BLOBs byte for byte", None, frozenset({"BLOB"})
    ),
    "uuid": Converter(
        to_uuid,
        "uuid",
        "uuid",
        canon_uuid,
        "32-hex or dashed text, 16-byte BLOBs",
        PG_CANON["uuid"],
    ),
    "json": Converter(to_json, "text", "text", canon_text, "valid JSON text, verbatim", TEXT_SQL),
    "jsonb": Converter(
        to_jsonb,
        "bytea",
        "jsonb",
        canon_jsonb,
        "valid JSON text (null stays JSON null)",
        PG_CANON["jsonb"],
    ),
    "timestamp": Converter(
        to_timestamp,
        "timestamp",
        "timestamp",
        canon_timestamp,
        "naive ISO text, epoch s/ms (UTC), Julian day",
    ),
    "date": Converter(to_date, "date", "date", canon_date, "YYYY-MM-DD text"),
    "time": Converter(
        to_time(False), "time", "time", canon_time, "HH:MM[:SS[.ffffff]] text", PG_CANON["time"]
    ),
    "timetz": Converter(
        to_time(True), "timetz", "timetz", canon_timetz, "HH:MM:SS+HH:MM text", PG_CANON["timetz"]
    ),
    "interval": Converter(
        to_interval,
        "bytea",
        "interval",
        canon_wire,
        "integer microseconds, ISO 8601 durations, HH:MM:SS",
        PG_CANON["interval"],
    ),
}
