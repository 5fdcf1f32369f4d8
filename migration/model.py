"""Plain data describing a SQLite source schema, as read by `source.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def name_key(name: str) -> str:
    """SQLite's identity of a table or column name: case-insensitive for ASCII letters only
    (`Pets` is `pets`, but `Äpfel` and `äpfel` are two tables)."""
    return name.translate(_ASCII_LOWER)


@dataclass
class Column:
    """One column as SQLite declares it."""

    name: str
    declared: str
    notnull: bool
    default: str | None
    pk_position: int
    hidden: int  # 0 normal, 2 generated VIRTUAL, 3 generated STORED
    generated_sql: str | None = None  # the expression, already translated to PostgreSQL
    generated_error: str | None = None
    collation: str | None = None
    generated_node: Any = field(default=None, repr=False, compare=False)

    @property
    def generated(self) -> bool:
        """True for generated (computed) columns, which PostgreSQL computes itself."""
        return self.hidden in (2, 3)


@dataclass
class IndexColumn:
    """One key part of an index: a column name or an expression (name None)."""

    name: str | None
    desc: bool
    collation: str


@dataclass
class Index:
    """A UNIQUE constraint (origin 'u') or a CREATE INDEX (origin 'c')."""

    name: str
    unique: bool
    origin: str
    partial: bool
    columns: list[IndexColumn]
    sql: str | None


@dataclass
class ForeignKey:
    """A (possibly composite) foreign key with its actions."""

    columns: list[str]
    ref_table: str
    ref_columns: list[str] | None
    on_update: str
    on_delete: str


@dataclass
class Check:
    """A CHECK constraint, translated to PostgreSQL (or with the reason it could not be)."""

    name: str | None
    source_sql: str
    target_sql: str | None
    error: str | None = None
    node: Any = field(default=None, repr=False, compare=False)


@dataclass
class Table:
    """A user table of a source."""

    name: str
    sql: str
    columns: list[Column]
    pk: list[str]
    rowid_alias: str | None
    autoincrement: bool
    without_rowid: bool
    strict: bool
    indexes: list[Index] = field(default_factory=list)
    fks: list[ForeignKey] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def stored_columns(self) -> list[Column]:
        """Columns whose values are copied (generated columns are computed by PostgreSQL)."""
        return [c for c in self.columns if not c.generated]

    def column(self, name: str) -> Column:
        """The column called `name` (SQLite names are case-insensitive for ASCII letters)."""
        low = name_key(name)
        for col in self.columns:
            if name_key(col.name) == low:
                return col
        raise KeyError(name)


@dataclass
class View:
    """A view and its SQLite definition."""

    name: str
    sql: str


@dataclass
class Trigger:
    """A trigger; always reported, never carried over."""

    name: str
    table: str
    sql: str


@dataclass
class SourceSchema:
    """Everything read from one SQLite file's schema."""

    path: str
    tables: list[Table]
    views: list[View]
    triggers: list[Trigger]
    sequences: dict[str, int]
    skipped: list[str]  # objects not carried over, with the reason

    def table(self, name: str) -> Table:
        """The table called `name` (case-insensitive for ASCII letters, as SQLite)."""
        low = name_key(name)
        for table in self.tables:
            if name_key(table.name) == low:
                return table
        raise KeyError(name)
