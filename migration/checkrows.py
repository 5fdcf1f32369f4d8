"""Every row a CHECK constraint refuses, named as `diagnose` names a value: file, table, row
(SQLite's rowid, or the key of a WITHOUT ROWID table), the columns the constraint reads, their
values and the constraint; at most CHECKS_LISTED per constraint and file, with the exact count.

PostgreSQL finds the rows in a table filled from one file (a count, and a SELECT ... WHERE NOT
(expression) with a LIMIT): they never all come into Python. The expression is the one the
constraint was created from (rendered from the parsed tree, or the app's from the catalog)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import psycopg
from psycopg import sql

from migration.errors import Problem
from migration.plan import PostStep, TablePlan

CHECKS_LISTED = 50  # rows named per constraint and file (as load.CONFLICTS_LISTED); count exact
ROW_COLUMN = "petstore_row"  # the extra column holding each row's name in its file
VALUE_SHOWN = 60  # characters of one value in a report line


@dataclass
class Broken:
    """The rows the data's CHECKs refuse: the records listed, and how many rows there are."""

    problems: list[Problem] = field(default_factory=list)
    rows: int = 0
    counts: dict[tuple[str, str], int] = field(default_factory=dict)  # (table, CHECK) -> rows

    def extend(self, other: Broken) -> None:
        self.problems.extend(other.problems)
        self.rows += other.rows
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n

    def summary(self) -> list[str]:
        """One line per table and constraint: how many rows of all the files break it."""
        return [
            f"table {table}: {n} row(s) break {what}" for (table, what), n in self.counts.items()
        ]


def _rowid(value: object) -> object:
    return value if type(value) is int else None


def _text(value: object) -> object:
    return None if value is None else str(value)


def with_row(tp: TablePlan) -> tuple[TablePlan, str, sql.SQL]:
    """`tp` with one more copied column, each row's name in its file (what `diagnose` calls
    the row: `TablePlan.row_id_expr`), that column's name (none of the table's) and type."""
    taken = {c.name for c in tp.columns}
    name = ROW_COLUMN
    while name in taken:
        name += "_"
    keyed = tp.table.without_rowid  # named by its key, as text
    row = replace(
        tp.copied()[0],  # a column of the file's table: copy_rows looks its source up
        name=name,
        select=tp.row_id_expr(),
        pg_type="text" if keyed else "bigint",
        copy_type="text" if keyed else "int8",
        check=_text if keyed else _rowid,
        convert_on_load=True,
        needs_diagnosis=False,
        named=None,
    )
    return replace(tp, columns=[*tp.columns, row]), name, sql.SQL(row.pg_type)


def breaking(
    conn: psycopg.Connection,
    relation: sql.Composable,
    alias: str,
    expr: sql.Composable,
    columns: list[str],
    row: str,
) -> tuple[int, list[tuple[object, ...]]] | str:
    """How many rows of `relation` (seen as `alias`, the name the expression qualifies columns
    with) break `expr` (false: NULL passes a CHECK), and the first CHECKS_LISTED of them in row
    order: the row's name, then each of `columns` as text. PostgreSQL's message when evaluating
    the expression fails on some row (e.g. a division by zero)."""
    a = sql.Identifier(alias)
    where = sql.SQL("FROM {} AS {} WHERE NOT ({})").format(relation, a, expr)
    shown = [sql.SQL("{}.{}").format(a, sql.Identifier(row))]
    shown += [sql.SQL("{}.{}::text").format(a, sql.Identifier(c)) for c in columns]
    try:
        with conn.transaction():
            counted = conn.execute(sql.SQL("SELECT count(*) {}").format(where)).fetchone()
            listed = conn.execute(
                sql.SQL("SELECT {} {} ORDER BY 1 LIMIT {}").format(
                    sql.SQL(", ").join(shown), where, sql.Literal(CHECKS_LISTED)
                )
            ).fetchall()
    except psycopg.DataError as exc:
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    return (int(counted[0]) if counted else 0), [tuple(r) for r in listed]


def _shown(value: object) -> str:
    text = "NULL" if value is None else str(value)
    return text if len(text) <= VALUE_SHOWN else text[: VALUE_SHOWN - 3] + "..."


def records(
    path: str,
    table: str,
    what: str,
    names: list[str],
    found: tuple[int, list[tuple[object, ...]]],
) -> Broken:
    """The problem records of the rows of one file that break one constraint (`breaking`):
    one per row listed, then one saying how many more (the count is exact)."""
    count, listed = found
    column = ",".join(names) or "-"
    why = f"breaks {what} ({count} row{'' if count == 1 else 's'} of this file)"
    out = Broken(rows=count, counts={(table, what): count})
    for row, *values in listed:
        shown = ", ".join(
            _shown(v) if len(names) == 1 else f"{n}={_shown(v)}"
            for n, v in zip(names, values, strict=True)
        )
        out.problems.append(Problem(path, table, row, column, shown, why))
    if count > len(listed):
        more = f"{count - len(listed)} more rows break {what} ({count} in this file)"
        out.problems.append(Problem(path, table, "...", column, "", more))
    return out


def source_names(tp: TablePlan, columns: list[str]) -> list[str]:
    """The source names of target columns of `tp` (the names a report uses)."""
    by_target = {c.name: c.source.name for c in tp.columns}
    return [by_target.get(c, c) for c in columns]


def of_step(
    conn: psycopg.Connection, tp: TablePlan, step: PostStep, row: str, path: str, error: str
) -> Broken:
    """The rows of one file (loaded into `tp.target` with its names in `row`) that break a
    CHECK of the plan; PostgreSQL's first line (`error`) when they cannot be listed."""
    names = source_names(tp, step.columns)
    found: tuple[int, list[tuple[object, ...]]] | str = "no expression to list them with"
    if step.expr is not None:
        found = breaking(conn, sql.Identifier(tp.target), tp.target, step.expr, step.columns, row)
    if isinstance(found, str):
        why = f"{step.what}: {error} (the rows cannot be listed: {found})"
        problem = Problem(path, tp.table.name, "-", ",".join(names) or "-", "-", why)
        return Broken([problem], 1, {(tp.table.name, step.what): 1})
    return records(path, tp.table.name, step.what, names, found)
