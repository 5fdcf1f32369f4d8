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
    """The target already holds data or another migration and nothing was changed (exit 2);
    `problems` names each table refused (as `plan` predicts it)."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


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

    def fields(self) -> dict[str, str]:
        """The fields of a `problem` event, the same in `plan` and `run` (the row as text: a
        rowid, a key, or `-` for a whole column)."""
        return {
            "source": self.source,
            "table": self.table,
            "rowid": str(self.rowid),
            "column": self.column,
            "value": self.value,
            "reason": self.reason,
        }

    def describe(self) -> str:
        """One line naming the file, table, row, column and value (each once); for an object
        that cannot be created (`column` is its `--skip` key), the file and the refusal, which
        names the object."""
        if ":" in self.column and self.rowid in ("-", "", None) and self.column in self.reason:
            return f"{self.source}: {self.reason}"
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


class SchemaObjectError(DataProblemError):
    """A view, index, CHECK or default cannot be created and was not skipped by name (exit 1)."""


class ConflictError(DataProblemError):
    """Several sources hold the same key with different content (exit 1)."""


class VerificationError(DataProblemError):
    """Source and target differ after loading (exit 1)."""


class TargetServerError(MigrationError):
    """The target failed a statement for an operational reason: a timeout, a lock wait, a full
    disk, memory, a limit, a lost connection (exit 2; `sqlstate` says which)."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class UnexpectedError(MigrationError):
    """Anything the migration did not foresee, named with what it was doing (exit 2)."""


# What a server error means to the person running the migration, by SQLSTATE: the exact code
# first, then its two-character class. Classes 22 (data exception) and 23 (integrity) are the
# data's fault (exit 1); everything else is operational (exit 2, the Job may retry).
SERVER_ERRORS: dict[str, str] = {
    "55P03": "a lock wait timed out (lock_timeout): another session holds a lock the migration "
    "needs",
    "57014": "a statement was cancelled: statement_timeout reached, or cancelled by an "
    "administrator",
    "25P03": "the session was idle in a transaction too long (idle_in_transaction_session_timeout)",
    "57P01": "lost the connection to the target: an administrator ended the session, or the "
    "server is shutting down",
    "57P": "lost the connection to the target: the server is shutting down or restarting",
    "53100": "the target's disk is full",
    "53200": "the target is out of memory (out of shared memory: many tables in one transaction "
    "may need a larger max_locks_per_transaction)",
    "53300": "the target has too many connections",
    "53": "the target ran out of a resource",
    "54000": "a PostgreSQL limit was exceeded (e.g. row is too big, index row too large)",
    "54": "a PostgreSQL limit was exceeded",
    "08": "lost the connection to the target",
    "40P01": "deadlock with another session",
    "40": "the target rolled the transaction back (serialization failure or deadlock)",
    "42501": "permission denied: the target role lacks a privilege",
    "28": "the target refused the login",
    "3D": "the target database does not exist",
    "XX": "internal error in the target server",
}
DATA_CLASSES = ("22", "23")


def describe_server_error(sqlstate: str | None, connection_lost: bool = False) -> str:
    """The meaning of a SQLSTATE, for people; a missing one with a broken connection is a lost
    connection (libpq reports those without a code)."""
    if sqlstate:
        for key in (sqlstate, sqlstate[:3], sqlstate[:2]):
            if key in SERVER_ERRORS:
                return SERVER_ERRORS[key]
        if sqlstate[:2] in DATA_CLASSES:
            return "the target rejected a value or constraint"
        return "PostgreSQL error"
    return "lost the connection to the target" if connection_lost else "PostgreSQL error"


def server_error_exit_code(sqlstate: str | None) -> int:
    """1 for the data's fault (classes 22, 23), else 2."""
    return 1 if sqlstate and sqlstate[:2] in DATA_CLASSES else 2


# Modules whose frames are the COPY's own plumbing, as psycopg's are: an error raised through
# them (the chunked COPY's sender thread, re-raised by the reading thread) is reported from the
# frame that drives the COPY (load.copy_rows), as without them.
COPY_PLUMBING = ("migration.chunked",)


def context_of(exc: BaseException) -> str:
    """What the migration was reading when `exc` was raised, from the innermost frames of the
    migration's own code: "while reading table 'pets' of source a.db (plan.build)"; "" if
    nothing is known. (Tables and sources are found by their classes, so no call site needs to
    announce what it is doing.)"""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    table = source = where = None
    for frame in reversed(frames):  # innermost first
        module = str(frame.f_globals.get("__name__", ""))
        if not module.startswith("migration") or module in COPY_PLUMBING:
            continue
        if where is None and not frame.f_code.co_name.startswith("<"):  # not <listcomp>
            where = f"{module.removeprefix('migration.')}.{frame.f_code.co_name}"
        for value in frame.f_locals.values():
            kind = type(value).__name__
            if table is None and kind == "TablePlan":
                table = value.table.name
            elif table is None and kind == "Table":
                table = value.name
            elif source is None and kind == "Source":
                source = value.path
    what = " ".join(
        part
        for part in (
            f"table {table!r}" if table else "",
            ("of " if table else "") + f"source {source}" if source else "",
        )
        if part
    )
    place = f" ({where})" if where else ""
    if what:
        return f"while reading {what}{place}"
    return f"in {where}" if where else ""
