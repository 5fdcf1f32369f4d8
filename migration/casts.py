"""Create mode's answers to what the SQLite file forgot: `--cast`, `--cast-declared`, `--enum`.

`--cast TABLE.COLUMN=TYPE` forces one column's type, `--cast-declared DECLARED=TYPE` every
column declared so (e.g. Django's `datetime` -> `timestamptz`), `--enum NAME=LABEL,...` a
PostgreSQL enum type a cast may name. TYPE text is parsed, never pasted: it is looked up in
`SPEC_TYPES` (rendered from that table, lengths as integers) or names a declared enum, or
citext (rendered with `sql.Identifier`). The values of such a column go through the converter
`--schema existing` uses for the same target type (`convert.converter`), so they convert
exactly or are refused, and verification compares them in that type's canonical form.

Enums are created inside the run's transaction (so a failed run leaves none behind); one that
already exists with the same labels is used as is, one with other labels refuses the run;
nothing here ever drops a type. citext is an extension's type: when the target lacks it the
run refuses, naming the fix (the database owner runs `CREATE EXTENSION citext`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from migration import convert, typemap
from migration.errors import TargetStateError, UsageError
from migration.model import Column, name_key
from migration.typemap import Kind

PG_NAME_MAX = 63  # bytes: PostgreSQL's identifier (and enum label) limit, NAMEDATALEN - 1
VARCHAR_MAX = 10_485_760  # PostgreSQL's largest char(n)
_ENUM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CITEXT = "citext"
ENUM_FORM = "--enum NAME=LABEL,LABEL,... (e.g. --enum page_status=draft,published)"
DECLARED_FORM = "--cast-declared DECLARED=TYPE (e.g. --cast-declared datetime=timestamptz)"

# Target types converted by `convert` (upper-case spelling -> pg_type.typname, the type's SQL).
# The spellings `typemap.CAST_TYPES` knows keep their own conversions.
SPEC_TYPES: dict[str, tuple[str, str]] = {
    "UUID": ("uuid", "uuid"),
    "JSON": ("json", "json"),
    "JSONB": ("jsonb", "jsonb"),
    "TIMESTAMPTZ": ("timestamptz", "timestamp with time zone"),
    "TIMESTAMP WITH TIME ZONE": ("timestamptz", "timestamp with time zone"),
    "TIME": ("time", "time without time zone"),
    "TIME WITHOUT TIME ZONE": ("time", "time without time zone"),
    "TIMETZ": ("timetz", "time with time zone"),
    "TIME WITH TIME ZONE": ("timetz", "time with time zone"),
    "INTERVAL": ("interval", "interval"),
    "INET": ("inet", "inet"),
    "CIDR": ("cidr", "cidr"),
    "REAL": ("float4", "real"),
    "FLOAT4": ("float4", "real"),
    "CHAR": ("bpchar", "character"),
    "CHARACTER": ("bpchar", "character"),
    "BPCHAR": ("bpchar", "character"),
    "CITEXT": ("citext", "citext"),
}


# Array element types (upper-case spelling -> typname, SQL, pg_type oid: binary arrays carry it;
# these oids are fixed for built-in types). Values are one-dimensional JSON array text.
ARRAY_ELEMENTS: dict[str, tuple[str, str, int]] = {
    "TEXT": ("text", "text", 25),
    "BIGINT": ("int8", "bigint", 20),
    "INTEGER": ("int4", "integer", 23),
    "INT": ("int4", "integer", 23),
    "SMALLINT": ("int2", "smallint", 21),
    "DOUBLE PRECISION": ("float8", "double precision", 701),
    "REAL": ("float4", "real", 700),
    "BOOLEAN": ("bool", "boolean", 16),
    "UUID": ("uuid", "uuid", 2950),
    "BYTEA": ("bytea", "bytea", 17),
    "DATE": ("date", "date", 1082),
    "TIMESTAMP": ("timestamp", "timestamp without time zone", 1114),
    "TIMESTAMPTZ": ("timestamptz", "timestamp with time zone", 1184),
    "INTERVAL": ("interval", "interval", 1186),
    "INET": ("inet", "inet", 869),
    "CIDR": ("cidr", "cidr", 650),
}


@dataclass(eq=False)
class NamedType:
    """A type the target must hold by name: an enum given with `--enum` (created in the run's
    transaction unless it exists with the same labels) or citext (labels None)."""

    name: str
    labels: tuple[str, ...] | None
    schema: str | None = None  # where the target holds it, once resolved or created
    created: bool = False

    def ident(self) -> sql.Composable:
        """The type's name for DDL, schema-qualified once resolved."""
        if self.schema is None:
            return sql.Identifier(self.name)
        return sql.Identifier(self.schema, self.name)


@dataclass(frozen=True)
class DeclaredRule:
    """`--cast-declared DECLARED=TYPE`: a base type name and, if given, its arguments."""

    option: str
    base: str
    args: tuple[int | None, int | None] | None
    kind: Kind

    def matches(self, declared: str) -> bool:
        """True if a column's declared type is this one (any arguments if none were given)."""
        base, a, b = typemap.parse_type(declared)
        return base == self.base and (self.args is None or self.args == (a, b))


@dataclass
class CastOptions:
    """Every create-mode type option, parsed."""

    columns: dict[tuple[str, str], Kind] = field(default_factory=dict)
    declared: list[DeclaredRule] = field(default_factory=list)
    enums: dict[str, NamedType] = field(default_factory=dict)  # lower-case name -> type
    zone: dt.tzinfo = dt.UTC

    def kind_for(self, table: str, col: Column, json_checked: frozenset[str]) -> Kind:
        """The column's kind: its --cast, else the first matching --cast-declared, else what
        its declaration says; with the source time zone for timestamptz."""
        kind = self.columns.get((name_key(table), name_key(col.name)))
        if kind is None:
            rule = next((r for r in self.declared if r.matches(col.declared)), None)
            kind = rule.kind if rule is not None else typemap.declared_kind(col, json_checked)
        return dataclasses.replace(kind, zone=self.zone)

    def named_types(self) -> list[NamedType]:
        """The enums and citext some cast uses (each once)."""
        kinds = [*self.columns.values(), *(r.kind for r in self.declared)]
        seen: dict[int, NamedType] = {}
        for k in kinds:
            if k.named is not None:
                seen.setdefault(id(k.named), k.named)
        return list(seen.values())


def parse(
    casts: list[str], declared: list[str], enums: list[str], zone: str = "UTC"
) -> CastOptions:
    """All create-mode type options (UsageError naming the option and its expected form)."""
    try:
        tz = convert.source_zone(zone)
    except ValueError as exc:
        raise UsageError(f"--source-timezone {zone}: {exc}") from None
    out = CastOptions(zone=tz)
    citext = NamedType(CITEXT, None)
    for item in enums:
        named = parse_enum(item)
        if named.name.lower() in out.enums:
            raise UsageError(f"--enum {item!r}: type {named.name!r} is declared twice")
        out.enums[named.name.lower()] = named
    for item in casts:
        table, column, typ = _split_cast(item)
        out.columns[(name_key(table), name_key(column))] = _kind(
            typ, f"--cast {table}.{column}={typ}", out.enums, citext, f"--cast {item!r}"
        )
    for item in declared:
        out.declared.append(_declared_rule(item, out.enums, citext))
    used = {id(t) for t in out.named_types()}
    for named in out.enums.values():
        if id(named) not in used:
            raise UsageError(
                f"--enum {named.name}: no --cast or --cast-declared uses it (e.g. --cast "
                f"TABLE.COLUMN={named.name})"
            )
    return out


def _split_cast(item: str) -> tuple[str, str, str]:
    target, sep, typ = item.partition("=")
    table, dot, column = target.rpartition(".")
    if not sep or not dot or not table or not column or not typ.strip():
        raise UsageError(
            f"--cast {item!r}: expected TABLE.COLUMN=TYPE, e.g. pets.price=numeric(10,2) or "
            "pages.author_id=uuid"
        )
    return table, column, typ.strip()


def parse_enum(item: str) -> NamedType:
    """`NAME=LABEL,LABEL,...`: a valid name and distinct, non-empty labels of at most 63 bytes."""
    name, sep, rest = item.partition("=")
    name = name.strip()
    labels = tuple(label.strip() for label in rest.split(","))
    if not sep or not _ENUM_NAME.fullmatch(name) or not rest.strip():
        raise UsageError(f"--enum {item!r}: expected {ENUM_FORM}")
    if len(name.encode()) > PG_NAME_MAX or name.upper() in SPEC_TYPES:
        raise UsageError(f"--enum {item!r}: {name!r} cannot name a new type (expected {ENUM_FORM})")
    if name.upper() in typemap.CAST_TYPES:
        raise UsageError(f"--enum {item!r}: {name!r} is a built-in type (expected {ENUM_FORM})")
    bad = [lb for lb in labels if not lb or len(lb.encode()) > PG_NAME_MAX]
    if bad:
        raise UsageError(
            f"--enum {item!r}: a label must have 1 to {PG_NAME_MAX} bytes (expected {ENUM_FORM})"
        )
    if len(set(labels)) != len(labels):
        raise UsageError(f"--enum {item!r}: a label is given twice")
    return NamedType(name, labels)


def _declared_rule(item: str, enums: dict[str, NamedType], citext: NamedType) -> DeclaredRule:
    declared, sep, typ = item.partition("=")
    if not sep or not declared.strip() or not typ.strip():
        raise UsageError(f"--cast-declared {item!r}: expected {DECLARED_FORM}")
    base, a, b = typemap.parse_type(declared)
    has_args = "(" in declared
    if not re.fullmatch(r"[A-Z_][A-Z0-9_ ]*", base) or (has_args and a is None):
        raise UsageError(f"--cast-declared {item!r}: expected {DECLARED_FORM}")
    what = f"--cast-declared {declared.strip()}={typ.strip()}"
    kind = _kind(typ.strip(), what, enums, citext, f"--cast-declared {item!r}")
    return DeclaredRule(item, base, (a, b) if has_args else None, kind)


def supported() -> str:
    """The TYPE spellings --cast accepts, for messages and --help."""
    names = {t.lower() for t in typemap.CAST_TYPES} | {t.lower() for t in SPEC_TYPES}
    arrays = "/".join(sorted(t.lower() for t in ARRAY_ELEMENTS if " " not in t))
    return ", ".join(sorted(names)) + f", an --enum type, or an array of {arrays} (e.g. text[])"


def _array_kind(typ: str, why: str, option: str) -> Kind:
    """`ELEMENT[]`: one-dimensional JSON array text converted to a PostgreSQL array."""
    base, a, _ = typemap.parse_type(typ.removesuffix("[]"))
    if base not in ARRAY_ELEMENTS or a is not None:
        raise UsageError(f"{option}: unsupported array type {typ!r}; use one of {supported()}")
    name, shown, oid = ARRAY_ELEMENTS[base]
    element = convert.TypeSpec(name, shown)
    spec = convert.TypeSpec(f"_{name}", f"{shown}[]", -1, "A", (), element, oid)
    return Kind("spec", why=why, cast=True, spec=spec)


def _kind(typ: str, why: str, enums: dict[str, NamedType], citext: NamedType, option: str) -> Kind:
    """The Kind for a cast's TYPE (UsageError naming `option` when unknown or malformed)."""
    if typ.replace(" ", "").endswith("[]"):
        return _array_kind(typ.strip().removesuffix("[]").strip() + "[]", why, option)
    base, a, b = typemap.parse_type(typ)
    if base in typemap.CAST_TYPES:
        try:
            kind = typemap.cast_kind(typ)
        except ValueError as exc:  # pragma: no cover - base is known here
            raise UsageError(f"{option}: {exc}") from exc
        return dataclasses.replace(kind, why=why)
    named = enums.get(typ.strip().lower())
    if named is not None:
        spec = convert.TypeSpec(named.name, named.name, category="E", labels=named.labels or ())
        return Kind("spec", why=why, cast=True, spec=spec, named=named)
    if base not in SPEC_TYPES or (base == "CITEXT" and a is not None) or b is not None:
        raise UsageError(f"{option}: unsupported type {typ!r}; use one of {supported()}")
    name, shown = SPEC_TYPES[base]
    if name == "bpchar":
        if a is None or not 1 <= a <= VARCHAR_MAX:
            raise UsageError(
                f"{option}: char needs a length from 1 to {VARCHAR_MAX:,}, e.g. char(2)"
            )
        return Kind("spec", why=why, cast=True, spec=convert.TypeSpec(name, f"{shown}({a})", a + 4))
    if a is not None:
        raise UsageError(f"{option}: {shown} takes no length; use one of {supported()}")
    named = citext if name == CITEXT else None
    return Kind("spec", why=why, cast=True, spec=convert.TypeSpec(name, shown), named=named)


# -- on the target ---------------------------------------------------------------------------
def resolve(conn: psycopg.Connection, types: list[NamedType]) -> None:
    """Find each type the target already holds (on its search_path): an enum must have exactly
    the `--enum` labels (TargetStateError otherwise); never changes anything."""
    for named in types:
        if named.schema is not None:
            continue
        row = conn.execute(
            "SELECT n.nspname, t.typtype, ARRAY(SELECT e.enumlabel::text FROM pg_enum e "
            "WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) FROM pg_type t "
            "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid = to_regtype(%s)",
            (sql.Identifier(named.name).as_string(conn),),
        ).fetchone()
        if row is None:
            continue
        schema, typtype, labels = str(row[0]), str(row[1]), tuple(row[2])
        if named.labels is not None and (typtype != "e" or labels != named.labels):
            found = f"enum with labels {', '.join(labels)}" if typtype == "e" else "not an enum"
            raise TargetStateError(
                f"--enum {named.name}: the target already has a type {schema}.{named.name} "
                f"({found}), not the given labels {', '.join(named.labels)}; nothing was changed "
                "(give the same labels, or another name)"
            )
        named.schema = schema


def forget(types: list[NamedType]) -> None:
    """Back to unresolved (after a trial rolled back: the plan shows what `run` will do)."""
    for named in types:
        named.schema, named.created = None, False


def create(conn: psycopg.Connection, types: list[NamedType], decisions: list[str]) -> list[str]:
    """In the caller's transaction: create every enum the target lacks (in its current schema);
    TargetStateError if citext is missing. Returns the names created."""
    resolve(conn, types)
    made = []
    for named in types:
        if named.schema is not None:
            how = "with the same labels" if named.labels is not None else "(an extension's)"
            decisions.append(f"type {named.name}: exists in the target {how}, used")
            continue
        if named.labels is None:
            raise TargetStateError(
                "a --cast uses citext, which the target does not have; nothing was changed (the "
                "database owner runs CREATE EXTENSION citext in the target database, then run "
                "again; the migration does not create extensions)"
            )
        conn.execute(
            sql.SQL("CREATE TYPE {} AS ENUM ({})").format(
                sql.Identifier(named.name), sql.SQL(", ").join(map(sql.Literal, named.labels))
            )
        )
        row = conn.execute("SELECT current_schema()").fetchone()
        named.schema, named.created = str(row[0]) if row else "public", True
        made.append(named.name)
        decisions.append(
            f"type {named.name}: created (enum: {', '.join(named.labels)}), owned by this migration"
        )
    return made
