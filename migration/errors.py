"""The migration's exception hierarchy; only `cli.py` turns these into messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass


class MigrationError(Exception):
    """Base class of every error the migration reports to its user."""

    exit_code = 2


class UsageError(MigrationError):
    """The command line or configuration is wrong (exit 2)."""


class SourceError(MigrationError):
    """A SQLite source cannot be opened or read: missing, not SQLite, corrupt, locked (exit 2)."""


class TargetConnectionError(MigrationError):
    """The target PostgreSQL cannot be reached or refuses the login (exit 2)."""


class TargetStateError(MigrationError):
    """The target already holds data or another migration and nothing was changed (exit 2)."""


class SchemaError(MigrationError):
    """The source schema cannot be mapped as asked, e.g. colliding names (exit 2)."""


@dataclass(frozen=True)
class Problem:
    """One value (or row) that cannot be carried over as planned."""

    source: str
    table: str
    rowid: object
    column: str
    value: str
    reason: str

    def describe(self) -> str:
        """One line naming the file, table, row, column and value (each once)."""
        row = "" if self.rowid in ("-", "", None) else f" row {self.rowid}"
        value = (
            ""
            if not self.value or f"value {self.value}" in self.reason
            else f" (value {self.value})"
        )
        return (
            f"{self.source}: table {self.table!r}{row} column {self.column!r}: {self.reason}{value}"
        )


class DataProblemError(MigrationError):
    """Values do not fit their target type, or constraints fail on the data (exit 1)."""

    exit_code = 1

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class SourceTextError(DataProblemError):
    """A source's TEXT value is not valid UTF-8 (exit 1; `plan` lists every such row)."""


class ConflictError(DataProblemError):
    """Several sources hold the same key with different content (exit 1)."""


class VerificationError(DataProblemError):
    """Source and target differ after loading (exit 1)."""
