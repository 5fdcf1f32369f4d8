"""`plan --schema create`'s suggestions: the casts the stored values (or the declarations) give
evidence for. Suggestions only: nothing here changes the plan; the user decides.

Evidence is gathered with one SQLite aggregate query per table with candidate columns, in
every source holding it: a CHAR(32) column whose every value is 32 hex digits looks like a
UUID, a CHAR(39) one holding only address characters like an IP address, a `time` column of
`HH:MM...` text like a time of day. Declarations alone give hints: a naive `datetime` may be
an aware one stored as UTC (Django with USE_TZ, SQLAlchemy `DateTime(timezone=True)`), a
`decimal` without a scale loses trailing zeros, `COLLATE NOCASE` compares like citext.
"""

from __future__ import annotations

from dataclasses import dataclass

from migration import typemap
from migration.log import Reporter
from migration.plan import Plan, TablePlan
from migration.source import Source, qi
from migration.typemap import ColumnPlan

UUID_LENGTHS = (32, 36)  # 32 hex digits (SQLAlchemy's Uuid, Django's UUIDField), dashed
IP_LENGTH = 39  # Django's GenericIPAddressField: char(39), the longest IPv6 text
_TIME_GLOB = "[0-2][0-9]:[0-5][0-9]*"
_IP_CHARS = "*[^0-9A-Fa-f.:]*"


@dataclass(frozen=True)
class Suggestion:
    """One cast the evidence points at, and why."""

    table: str
    column: str  # '' for a rule by declared type
    option: str  # e.g. --cast authors.id=uuid
    why: str


def _evidence(col: ColumnPlan) -> tuple[str, str] | None:
    """(target type, SQLite expression true for a value that looks like it) for a candidate."""
    if col.reason.startswith("--cast") or col.kind != "text":
        return None
    base, length, _ = typemap.parse_type(col.source.declared)
    name = qi(col.source.name)
    if "CHAR" in base and length in UUID_LENGTHS:
        return "uuid", typemap.uuid_sql(name)
    if "CHAR" in base and length == IP_LENGTH:
        return "inet", f"(typeof({name}) = 'text' AND {name} NOT GLOB '{_IP_CHARS}')"
    if base == "TIME":
        return "time", f"(typeof({name}) = 'text' AND {name} GLOB '{_TIME_GLOB}')"
    return None


_WHY = {
    "uuid": "every one of its {n} value(s) is a UUID (32 hex digits or dashed): an ORM's "
    "Uuid/UUIDField; PostgreSQL's uuid type lets the app compare it with a UUID",
    "inet": "every one of its {n} value(s) is made of IP address characters (Django's "
    "GenericIPAddressField is char(39)); each is checked when converted",
    "time": "every one of its {n} value(s) is HH:MM... text: a time of day (Django's TimeField)",
}


def _table_suggestions(tp: TablePlan, sources: list[Source]) -> list[Suggestion]:
    cands = [(c, ev) for c in tp.columns if (ev := _evidence(c)) is not None]
    if not cands:
        return []
    parts = [f"count({qi(c.source.name)}), total({expr})" for c, (_, expr) in cands]
    counts = [[0, 0.0] for _ in cands]
    for idx in tp.sources:
        st = sources[idx].schema.table(tp.table.name)
        row = sources[idx].one(f"SELECT {', '.join(parts)} FROM {qi(st.name)}")  # noqa: S608 - identifiers quoted by qi(); read-only SQLite source
        for i in range(len(cands)):
            counts[i][0] += int(str(row[2 * i]))
            counts[i][1] += float(str(row[2 * i + 1]))
    out = []
    for (col, (typ, _)), (n, good) in zip(cands, counts, strict=True):
        if n and good == n:
            option = f"--cast {tp.table.name}.{col.source.name}={typ}"
            out.append(Suggestion(tp.table.name, col.source.name, option, _WHY[typ].format(n=n)))
    return out


def _hints(plan: Plan) -> list[Suggestion]:
    """What the declarations alone hint at (one per declared type or column)."""
    out: list[Suggestion] = []
    naive: dict[str, int] = {}
    for tp in plan.tables:
        for col in tp.columns:
            if col.reason.startswith("--cast"):
                continue
            base = typemap.parse_type(col.source.declared)[0]
            if col.kind == "timestamp" and base in ("DATETIME", "TIMESTAMP"):
                key = " ".join(col.source.declared.split()).lower()
                naive[key] = naive.get(key, 0) + 1
            elif col.kind == "numeric" and "(" not in col.source.declared:
                out.append(_scale_hint(tp, col))
            elif col.kind == "text" and (col.source.collation or "").upper() == "NOCASE":
                out.append(_citext_hint(tp, col))
    for declared, n in naive.items():
        out.append(
            Suggestion(
                "",
                "",
                f"--cast-declared {declared}=timestamptz",
                f"{n} column(s) declared {declared} hold naive date-times; if the app stores "
                "aware ones as UTC (Django with USE_TZ=True, SQLAlchemy DateTime(timezone=True)) "
                "it needs timestamptz (naive values are read in --source-timezone, default UTC)",
            )
        )
    return out


def _scale_hint(tp: TablePlan, col: ColumnPlan) -> Suggestion:
    return Suggestion(
        tp.table.name,
        col.source.name,
        f"--cast {tp.table.name}.{col.source.name}=numeric(P,S)",
        f"declared {col.source.declared} without a scale (Django's DecimalField): numeric "
        "would read 7.10 back as 7.1; give the model's max_digits and decimal_places",
    )


def _citext_hint(tp: TablePlan, col: ColumnPlan) -> Suggestion:
    return Suggestion(
        tp.table.name,
        col.source.name,
        f"--cast {tp.table.name}.{col.source.name}=citext",
        "COLLATE NOCASE compares without case; citext does so on PostgreSQL (the database "
        "owner runs CREATE EXTENSION citext first)",
    )


def find(plan: Plan, sources: list[Source]) -> list[Suggestion]:
    """Every suggestion for the plan: value evidence first, then declaration hints."""
    out = [s for tp in plan.tables for s in _table_suggestions(tp, sources)]
    return out + _hints(plan)


def report(found: list[Suggestion], log: Reporter) -> None:
    """A text block and one `note` event per suggestion (never applied)."""
    for s in found:
        log.data("note", f"suggestion: {s.option}: {s.why}", table=s.table, column=s.column)
    if found:
        lines = ["Suggested casts (not applied; add them if they say what the app meant):"]
        lines += [f"  {s.option}\n      {s.why}" for s in found]
        log.text("\n".join(lines))
