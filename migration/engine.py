"""The commands: plan, run, verify. Opens sources and target, owns the one transaction."""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import psycopg
from psycopg import sql

from migration import (
    __version__,
    casts,
    charset,
    clashes,
    diff,
    existing,
    load,
    predict,
    preflight,
    suggest,
    verify,
)
from migration import plan as planmod
from migration.casts import CastOptions
from migration.checkrows import Broken
from migration.errors import (
    DataProblemError,
    MigrationError,
    Problem,
    TargetConnectionError,
    TargetServerError,
    TargetStateError,
    UsageError,
    VerificationError,
)
from migration.log import Reporter, duration
from migration.model import name_key
from migration.plan import Namer, Plan, TablePlan
from migration.redact import redact, show_target, target_secrets
from migration.source import Source

RECORD_SCHEMA = "petstore_migration"
ADVISORY_LOCK_KEY = 0x7065747374  # "petst": one migration at a time per target
CONNECT_TIMEOUT_S = 10
LOCK_TIMEOUT_S = (
    30.0  # default --lock-timeout: longer than any app transaction, far below the Job's hour
)


@dataclass
class Options:
    """Parsed command-line options shared by the commands."""

    sources: list[str]
    target: str | None = None
    verify: bool = False
    on_conflict: str = "refuse"
    identifiers: str = "lower"
    casts: list[str] = field(default_factory=list)
    replace: bool = False
    schema: str = "auto"  # auto, create, existing (see existing.py)
    map_columns: list[str] = field(default_factory=list)
    ignore_columns: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    source_timezone: str = "UTC"
    lock_timeout_s: float = LOCK_TIMEOUT_S
    source_immutable: bool = False  # sources are copies nobody writes during the run
    skip: list[str] = field(default_factory=list)  # view:NAME, check:TABLE.NAME, ... left out
    cast_declared: list[str] = field(default_factory=list)  # DECLARED=TYPE (create mode)
    enums: list[str] = field(default_factory=list)  # NAME=LABEL,... (create mode)


def announce(command: str, opts: Options, log: Reporter) -> None:
    """The `start` event: command, sources, target (never its password) and options."""
    target = show_target(opts.target) if opts.target else None
    options = {
        "verify": opts.verify,
        "on_conflict": opts.on_conflict,
        "identifiers": opts.identifiers,
        "casts": list(opts.casts),
        "replace": opts.replace,
        "schema": opts.schema,
        "cast_declared": list(opts.cast_declared),
        "enums": list(opts.enums),
        "skip": list(opts.skip),
        "map_columns": list(opts.map_columns),
        "ignore_columns": list(opts.ignore_columns),
        "keep": list(opts.keep),
        "source_timezone": opts.source_timezone,
        "source_immutable": opts.source_immutable,
        "lock_timeout_s": opts.lock_timeout_s,
    }
    chosen = [k for k in ("verify", "replace") if options[k]]
    log.event(
        "start",
        f"{command}: {len(opts.sources)} source(s)"
        + (f" -> {target}" if target else "")
        + (f" ({', '.join(chosen)})" if chosen else ""),
        command=command,
        version=__version__,
        sources=list(opts.sources),
        target=target,
        options=options,
    )


@contextlib.contextmanager
def open_sources(
    paths: list[str], log: Reporter, immutable: bool = False
) -> Iterator[list[Source]]:
    """Open every source read-only (one snapshot each); close them all afterwards."""
    if not paths:
        raise UsageError("no --source given")
    seen = set()
    for p in paths:
        real = os.path.realpath(p)
        if real in seen:
            raise UsageError(f"--source {p} given twice")
        seen.add(real)
    opened: list[Source] = []
    try:
        for i, p in enumerate(paths):
            opened.append(
                Source(p, i, lambda level, msg: log.event("source", msg, level=level), immutable)
            )
            log.data(
                "source",
                f"{p}: opened read-only, one snapshot ({len(opened[-1].schema.tables)} table(s))",
                path=p,
                tables=len(opened[-1].schema.tables),
                immutable=opened[-1].immutable,
            )
        yield opened
    finally:
        for s in opened:
            with contextlib.suppress(Exception):
                s.close()


def connect(url: str | None, lock_timeout_s: float = LOCK_TIMEOUT_S) -> psycopg.Connection:
    """Connect to the target; errors become TargetConnectionError with the password masked.
    Lock waits end after `lock_timeout_s` (0: wait forever) with SQLSTATE 55P03."""
    if not url:
        raise UsageError("no target: pass --target URL or set DATABASE_URL")
    secrets = target_secrets(url)
    try:
        conn = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=False)
    except psycopg.OperationalError as exc:
        raise TargetConnectionError(
            f"cannot connect to the target {show_target(url)}: {redact(str(exc).strip(), secrets)}"
        ) from exc
    except psycopg.ProgrammingError as exc:
        raise UsageError(
            f"invalid target URL {show_target(url)}: {redact(str(exc).strip(), secrets)} "
            "(expected postgresql://USER@HOST:PORT/DATABASE, a password after USER: "
            "percent-encoded, or key=value pairs)"
        ) from exc
    conn.execute("SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET extra_float_digits = 3")
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{lock_timeout_s * 1000:.0f}",))
    conn.commit()  # session settings that a rolled-back attempt does not undo
    return conn


LOCK_HOLDERS = """
SELECT DISTINCT CASE WHEN l.locktype = 'advisory' THEN 'the migration lock (another migration)'
                     ELSE 'table ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) END,
       l.mode, l.pid, coalesce(a.application_name, ''), coalesce(a.state, '')
FROM pg_locks l
LEFT JOIN pg_class c ON c.oid = l.relation
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((l.locktype = 'relation' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND (%(tables)s::text[] IS NULL OR c.relname = ANY(%(tables)s) OR n.nspname = %(record)s))
       OR (l.locktype = 'advisory' AND l.classid::bigint = %(hi)s AND l.objid::bigint = %(lo)s))
ORDER BY 1, 3
"""


@contextlib.contextmanager
def bounded_lock_waits(
    conn: psycopg.Connection, plan: Plan | None, timeout_s: float
) -> Iterator[None]:
    """A lock wait that timed out (lock_timeout) becomes an error naming the locked tables (the
    plan's, or any user table before there is a plan) and the sessions holding them."""
    try:
        yield
    except psycopg.errors.LockNotAvailable as exc:
        conn.rollback()
        params = {
            "tables": [tp.target for tp in plan.tables] if plan is not None else None,
            "record": RECORD_SCHEMA,
            "hi": ADVISORY_LOCK_KEY >> 32,
            "lo": ADVISORY_LOCK_KEY & 0xFFFFFFFF,
        }
        holders = [
            f"{what} held by pid {pid} ({mode}{', ' + app if app else ''}"
            f"{', ' + state if state else ''})"
            for what, mode, pid, app, state in conn.execute(LOCK_HOLDERS, params).fetchall()
        ]
        raise TargetServerError(
            f"waited {timeout_s:g} s for a lock on the target (--lock-timeout) and gave up: "
            + ("; ".join(holders) if holders else "the session holding it has ended")
            + "; nothing was committed (end or wait for that session, then run again)",
            exc.sqlstate,
        ) from exc


def cast_options(opts: Options) -> CastOptions:
    """Create mode's type options: --cast, --cast-declared, --enum, --source-timezone."""
    return planmod.parse_casts(opts.casts, opts.cast_declared, opts.enums, opts.source_timezone)


def make_plan(sources: list[Source], opts: Options, log: Reporter, every: bool) -> Plan:
    """Build the plan and diagnose values (every column with `every`, else flagged ones)."""
    namer = Namer(opts.identifiers)
    plan = planmod.build(sources, namer, cast_options(opts))
    planmod.apply_skips(plan, opts.skip)
    planmod.diagnose(plan, sources, every=every)
    return plan


def _problem_error(plan: Plan) -> DataProblemError:
    total = sum(plan.problem_counts.values())
    cols = len(plan.problem_counts)
    return DataProblemError(
        f"{total} value(s) in {cols} column(s) do not fit their target type; nothing was written "
        "(fix the source, or choose a type with --cast table.column=type)",
        plan.problems,
    )


def describe_plan(plan: Plan, sources: list[Source], opts: Options, log: Reporter) -> None:
    """Print tables, chosen types and why, DDL, notes and problems."""
    namer = Namer(opts.identifiers)
    lines: list[str] = [f"Plan for {', '.join(plan.sources)} (identifiers: {opts.identifiers})", ""]
    conn_free_ddl: list[str] = []
    for tp in plan.tables:
        counts = ", ".join(
            f"{Path(sources[i].path).name}: {tp.row_counts.get(i, 0)}" for i in tp.sources
        )
        lines.append(f"table {tp.table.name} -> {tp.target}  ({counts} rows)")
        for col in tp.columns:
            extra = " identity" if col.name == tp.identity else ""
            gen = " generated" if col.source.generated else ""
            lines.append(
                f"  {col.source.name:<24} {col.source.declared or '(none)':<16} -> "
                f"{col.pg_type}{extra}{gen}: {col.reason}"
            )
            log.data(
                "column",
                f"{tp.table.name}.{col.source.name}: {col.pg_type}",
                table=tp.table.name,
                column=col.source.name,
                declared=col.source.declared,
                type=col.pg_type,
                reason=col.reason,
            )
        for note in tp.notes:
            lines.append(f"  note: {note}")
            log.data(
                "note",
                f"{tp.table.name}: {note}",
                level="warning" if "widened" in note else "info",
                table=tp.table.name,
            )
        stmt, notes = planmod.create_table(tp, sources[tp.sources[0]], namer)
        conn_free_ddl.append(_as_text(stmt) + ";")
        for s in tp.post:
            conn_free_ddl.extend(_as_text(x) + ";" for x in (s.statement, s.validate) if x)
        lines.extend(f"  note: {n}" for n in notes)
        lines.append("")
    for _name, target, query, _error in plan.views:
        if query is not None:
            view = sql.SQL("CREATE VIEW {} AS {}").format(sql.Identifier(target), query)
            conn_free_ddl.append(_as_text(view) + ";")
    lines.append("DDL:")
    lines.extend("  " + d for d in conn_free_ddl)
    lines.append("")
    for statement in conn_free_ddl:
        log.data("ddl", statement)
    if plan.reported:
        lines.append("Not carried over / changed (reported):")
        lines.extend("  - " + r for r in plan.reported)
        for r in plan.reported:
            log.data("reported", r, level="warning")
        lines.append("")
    if plan.problems:
        lines.append(f"Values that do not fit ({sum(plan.problem_counts.values())}):")
        lines.extend("  " + p.describe() for p in plan.problems)
        for (src, table, column), count in plan.problem_counts.items():
            if count > planmod.PROBLEMS_LISTED_PER_COLUMN:
                lines.append(
                    f"  ... {src}: {table}.{column}: {count - planmod.PROBLEMS_LISTED_PER_COLUMN} "
                    "more"
                )
    else:
        lines.append("Every value fits its target type.")
    log.text("\n".join(lines))


def _as_text(stmt: sql.Composable) -> str:
    """Render a Composable without a connection (identifiers quoted, literals quoted)."""
    try:
        return stmt.as_string(None)
    except (psycopg.Error, TypeError, ValueError):
        return repr(stmt)


def cmd_plan(opts: Options, log: Reporter) -> int:
    """`plan`: the complete dry run; writes nothing. Lists everything `run` would refuse (the
    same `problem` records, from the same checks: `_verdict`) and exits as `run` would."""
    announce("plan", opts, log)
    with open_sources(opts.sources, log, opts.source_immutable) as sources:
        if opts.schema == "existing" or (opts.schema == "auto" and opts.target):
            with contextlib.closing(connect(opts.target, opts.lock_timeout_s)) as conn:
                if _mode(conn, sources, opts) == "existing":
                    target_plan = existing.build(conn, sources, opts, collect=True)
                    verdict = _verdict(target_plan, sources, opts, log, conn)
                    existing.describe(target_plan, sources, conn, log)
                    conn.rollback()
                    describe_findings(verdict.found, log)
                    return _plan_verdict(verdict, log)
        plan = planmod.build(sources, Namer(opts.identifiers), cast_options(opts))
        planmod.apply_skips(plan, opts.skip)
        verdict = _verdict(plan, sources, opts, log)
        describe_plan(plan, sources, opts, log)
        suggest.report(suggest.find(plan, sources), log)
        predict.report(verdict.refused, log)
        describe_findings(verdict.found, log)
        return _plan_verdict(verdict, log)


@dataclass
class Verdict:
    """Everything `run` would refuse: what `plan` lists and what a refusing `run` raises."""

    values: list[Problem]  # values that do not fit (listed; counted exactly in value_counts)
    value_counts: dict[tuple[str, str, str], int]
    found: preflight.Findings  # rows across sources: conflicts, UNIQUE clashes, orphans
    refused: list[planmod.Refusal]  # objects that cannot be created
    schema: list[Problem]  # sources against the app's schema (--schema existing)
    state: list[Problem]  # the target's tables: rows, objects depending on them (exit 2)
    broken: Broken = field(default_factory=Broken)  # rows CHECKs refuse

    def problems(self) -> list[Problem]:
        return [
            *self.schema,
            *self.state,
            *self.values,
            *self.found.problems,
            *self.broken.problems,
            *(r.problem() for r in self.refused),
        ]

    def total(self) -> int:
        return (
            sum(self.value_counts.values())
            + sum(self.found.counts.values())
            + len(self.refused)
            + len(self.schema)
            + len(self.state)
            + self.broken.rows
        )

    def exit_code(self) -> int:
        """0: nothing refused; 2: only the target's state (TargetStateError); else 1."""
        if not self.total():
            return 0
        return 2 if self.total() == len(self.state) else 1


def _verdict(
    plan: Plan,
    sources: list[Source],
    opts: Options,
    log: Reporter,
    conn: psycopg.Connection | None = None,
) -> Verdict:
    """Run every check `run` refuses on: every value, rows across sources, the DDL tried in a
    rolled-back transaction, the target's tables (on `conn`, or on a connection of its own when
    there is a target). `plan` and a refusing `run` both report exactly this."""
    plan.problems.clear()
    plan.problem_counts.clear()
    limits = charset.of_target(conn, opts.target, lambda url: connect(url, opts.lock_timeout_s))
    charset.check_plan(plan, sources, Namer(opts.identifiers), limits)
    planmod.diagnose(plan, sources, every=True)
    charset.diagnose(plan, sources, limits)
    by_target = clashes.converted_keys(plan, sources) if opts.target else set()
    fks = clashes.converted_fks(plan, sources) if opts.target else set()
    found = preflight.check(plan, sources, opts.on_conflict, by_target, fks)
    _citext_clashes(plan, sources, opts, conn, found)
    _conversion_clashes(plan, sources, opts, conn, found)
    if isinstance(plan, existing.ExistingPlan):
        if conn is None:  # pragma: no cover - existing mode always has the target's connection
            raise TypeError("--schema existing: no connection to the target")
        preflight.app_expression_clashes(conn, plan, sources, opts.on_conflict, found)
        refused: list[planmod.Refusal] = []
        recorded = _record_state(conn, sources)
        schema = list(plan.mismatches)
        state = recorded if recorded is not None else existing.predict(conn, plan, opts.replace)
        broken = existing.check_violations(conn, plan, sources)
    else:
        namer = Namer(opts.identifiers)
        casts.forget(plan.named_types)  # a rolled-back attempt of run's created none of them
        broken = Broken()
        refused = plan.attributed(
            predict.refusals(plan, sources, namer, opts.target, connect, log, broken)
        )
        schema, state = [], _target_state(plan, sources, opts, conn)
    values = list(plan.problems)
    return Verdict(values, dict(plan.problem_counts), found, refused, schema, state, broken)


def _reused(
    stack: contextlib.ExitStack, conn: psycopg.Connection | None, opts: Options
) -> psycopg.Connection:
    """`conn` if the caller has one to the target, else a connection of its own, closed with
    `stack`."""
    if conn is not None:
        return conn
    return stack.enter_context(contextlib.closing(connect(opts.target, opts.lock_timeout_s)))


def _citext_clashes(
    plan: Plan,
    sources: list[Source],
    opts: Options,
    conn: psycopg.Connection | None,
    found: preflight.Findings,
) -> None:
    """UNIQUE keys over citext, grouped on the target, whose lower() folds them (without a
    target nothing is known of its fold: `run` needs one anyway)."""
    if not opts.target or not any(preflight.citext_keys(plan, tp) for tp in plan.tables):
        return
    with contextlib.ExitStack() as stack:
        conn = _reused(stack, conn, opts)
        preflight.citext_clashes(conn, plan, sources, opts.on_conflict, found)


def _conversion_clashes(
    plan: Plan,
    sources: list[Source],
    opts: Options,
    conn: psycopg.Connection | None,
    found: preflight.Findings,
) -> None:
    """Key values SQLite keeps apart that the target type makes one, grouped on the target
    (without a target `plan` compares them as SQLite does)."""
    if not opts.target or not (found.by_target or found.fks_by_target):
        return
    with contextlib.ExitStack() as stack:
        conn = _reused(stack, conn, opts)
        clashes.conversion_clashes(conn, plan, sources, opts.on_conflict, found, found.by_target)
        clashes.conversion_orphans(conn, plan, sources, found, found.fks_by_target)


def _target_state(
    plan: Plan, sources: list[Source], opts: Options, conn: psycopg.Connection | None
) -> list[Problem]:
    """What `run --schema create` refuses in the target (a completed migration of other files;
    rows without --replace, objects depending on a table --replace drops), tried in a
    transaction rolled back."""
    if not opts.target:
        return []
    with contextlib.ExitStack() as stack:
        conn = _reused(stack, conn, opts)
        try:
            with conn.transaction(force_rollback=True):
                recorded = _record_state(conn, sources)
                if recorded is not None:
                    return recorded
                _check_target_tables(conn, plan, opts, load.LoadResult())
        except TargetStateError as exc:
            return exc.problems
    return []


def _plan_verdict(verdict: Verdict, log: Reporter) -> int:
    """`problem` events for everything `run` would refuse, the closing `plan` event, the exit
    code `run` would give."""
    listed = [*verdict.schema, *verdict.state]
    if listed:
        log.text("Refused against the target:\n" + "\n".join("  " + p.describe() for p in listed))
    if verdict.broken.problems:
        lines = [f"Rows a CHECK refuses ({verdict.broken.rows}):"]
        lines += ["  " + p.describe() for p in verdict.broken.problems]
        log.text("\n".join(lines))
    for p in verdict.problems():
        log.data("problem", p.describe(), level="error", **p.fields())
    total, code = verdict.total(), verdict.exit_code()
    verdict_text = (
        f"run would refuse: {total} problem(s); nothing would be written (exit {code})"
        if total
        else "run would proceed: nothing found that it would refuse"
    )
    log.event(
        "plan",
        verdict_text,
        level="error" if total else "info",
        problems=total,
        elapsed_s=log.elapsed(),
    )
    return code


def describe_findings(found: preflight.Findings, log: Reporter) -> None:
    """The rows `run` would refuse beyond single values (text; JSON gets `problem` events)."""
    lines = []
    if found.problems:
        lines.append(f"Rows that run would refuse ({sum(found.counts.values())}):")
        lines.extend("  " + p.describe() for p in found.problems)
        for (table, what), count in found.counts.items():
            if count > preflight.LISTED_PER_CHECK:
                lines.append(
                    f"  ... table {table}: {count - preflight.LISTED_PER_CHECK} more ({what})"
                )
    else:
        lines.append(
            "No conflicting rows across sources, UNIQUE clashes, NULL keys or orphan foreign keys."
        )
    for d in found.decisions:
        lines.append(f"  decision: {d}")
        log.data("decision", d)
    log.text("\n".join(lines))


def _mode(conn: psycopg.Connection, sources: list[Source], opts: Options) -> str:
    """`--schema` resolved against the target (a completed run keeps the mode it used)."""
    charset.check_names(charset.source_names(sources, Namer(opts.identifiers)), charset.of(conn))
    record = _last_record(conn)
    recorded = str(record.get("schema", "create")) if record is not None else None
    saved: dict[str, Any] = (record or {}).get("schema_options") or {}  # type: ignore[assignment]
    # a rerun or `verify` matches columns as the recorded run did, unless told otherwise
    for name in ("map_columns", "ignore_columns", "keep"):
        if not getattr(opts, name) and saved.get(name):
            setattr(opts, name, [str(v) for v in saved[name]])
    if opts.source_timezone == "UTC" and saved.get("source_timezone"):
        opts.source_timezone = str(saved["source_timezone"])
    if not (opts.casts or opts.cast_declared or opts.enums):  # create mode's, as recorded
        for name in ("casts", "cast_declared", "enums"):
            setattr(opts, name, [str(v) for v in saved.get(name) or []])
    mode = existing.resolve(conn, sources, opts, recorded)
    options = {"--cast": opts.casts, "--cast-declared": opts.cast_declared, "--enum": opts.enums}
    given = [flag for flag, values in options.items() if values]
    if mode == "existing" and given:
        raise UsageError(
            f"{', '.join(given)}: create-mode options, but the tables exist in the target "
            "(--schema existing), where the target's column types decide; nothing was changed "
            "(leave them out, or load into an empty target with --schema create)"
        )
    return mode


def _schema_options(opts: Options, existing_mode: bool) -> dict[str, object]:
    """What the record keeps of the schema options, so that a rerun or `verify` (with
    `--schema auto`) matches and converts columns as the run did unless told otherwise."""
    if existing_mode:
        return {
            "map_columns": opts.map_columns,
            "ignore_columns": opts.ignore_columns,
            "keep": opts.keep,
            "source_timezone": opts.source_timezone,
        }
    return {
        "casts": opts.casts,
        "cast_declared": opts.cast_declared,
        "enums": opts.enums,
        "source_timezone": opts.source_timezone,
    }


# -- target state and the record ------------------------------------------------------------
def _record_exists(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{RECORD_SCHEMA}.runs",)).fetchone()
    return bool(row and row[0])


def _record_state(conn: psycopg.Connection, sources: list[Source]) -> list[Problem] | None:
    """What a completed migration in the target means for this run, checked before its tables:
    None when there is none; no problem when it is of these sources (`run` re-verifies it, so
    its tables holding rows are expected); one problem when it is of other files (`run` refuses
    that before looking at any table)."""
    record = _last_record(conn)
    if record is None:
        return None
    _skipped, names = _recorded(record)
    if names == _source_identity(sources):
        return []
    return _other_migration(names, sources).problems


def _other_migration(names: list[str], sources: list[Source]) -> TargetStateError:
    message = (
        f"the target already holds a completed migration from {', '.join(names)}; refusing to "
        f"migrate {', '.join(_source_identity(sources))} into it (nothing was changed)"
    )
    record = Problem("target", f"{RECORD_SCHEMA}.runs", "-", "*", "completed migration", message)
    return TargetStateError(message, [record])


def _last_record(conn: psycopg.Connection) -> dict[str, object] | None:
    if not _record_exists(conn):
        return None
    row = conn.execute(
        sql.SQL("SELECT summary FROM {}.runs ORDER BY id DESC LIMIT 1").format(
            sql.Identifier(RECORD_SCHEMA)
        )
    ).fetchone()
    return row[0] if row else None


def _check_target_tables(
    conn: psycopg.Connection, plan: Plan, opts: Options, result: load.LoadResult
) -> None:
    busy = []
    replaced: list[str] = []
    for tp in plan.tables:
        row = conn.execute(
            "SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(%s)",
            (sql.Identifier(tp.target).as_string(conn),),
        ).fetchone()
        if row is None:
            continue
        if row[0] not in ("r", "p"):
            busy.append(f"{tp.target} (exists and is not a table)")
            continue
        has_rows = conn.execute(
            sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(tp.target))
        ).fetchone()
        if has_rows and has_rows[0] and not opts.replace:
            busy.append(tp.target)
            continue
        if not opts.replace:
            result.reported.append(
                f"table {tp.target}: already existed empty in the target: replaced by the migrated "
                "definition"
            )
        else:
            result.reported.append(
                f"table {tp.target}: existed in the target and was replaced (--replace)"
            )
        replaced.append(tp.target)
    if busy:
        message = (
            f"the target already has data in table(s) {', '.join(busy)}; nothing was changed "
            "(pass --replace to drop and reload them)"
        )
        raise TargetStateError(
            message,
            [Problem("target", b.split(" ")[0], "-", "*", "holds rows", message) for b in busy],
        )
    load.drop_tables(conn, replaced)


def _write_record(
    conn: psycopg.Connection, summary: dict[str, object], result: load.LoadResult
) -> None:
    schema = sql.Identifier(RECORD_SCHEMA)
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.runs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY "
            "KEY, "
            "finished_at timestamptz NOT NULL DEFAULT now(), tool_version text NOT NULL, summary "
            "jsonb NOT NULL)"
        ).format(schema)
    )
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.renumbered (run_id bigint NOT NULL, source_index int "
            "NOT NULL, source text NOT NULL, "
            "table_name text NOT NULL, old_key bigint NOT NULL, new_key bigint NOT NULL)"
        ).format(schema)
    )
    row = conn.execute(
        sql.SQL("INSERT INTO {}.runs (tool_version, summary) VALUES (%s, %s) RETURNING id").format(
            schema
        ),
        (__version__, charset.storable_json(summary, conn)),
    ).fetchone()
    if row is None:  # pragma: no cover - INSERT ... RETURNING always returns the row
        raise psycopg.InterfaceError("INSERT ... RETURNING returned nothing")
    run_id = int(row[0])
    sources = list(summary["sources"])  # type: ignore[call-overload]
    with conn.cursor() as cur:
        for (idx, table), mapping in result.mappings.items():
            cur.executemany(
                sql.SQL("INSERT INTO {}.renumbered VALUES (%s, %s, %s, %s, %s, %s)").format(schema),
                [(run_id, idx, sources[idx], table, old, new) for old, new in mapping.items()],
            )


def _source_identity(sources: list[Source]) -> list[str]:
    return [Path(s.path).name for s in sources]


# -- verification -----------------------------------------------------------------------------
def _remapper(
    tp: TablePlan, plan: Plan, src_index: int, mappings: dict[tuple[int, str], dict[int, int]]
) -> object:
    by_name = {name_key(p.table.name): p for p in plan.tables}
    fixes: list[tuple[int, dict[int, int]]] = []
    own = mappings.get((src_index, tp.target))
    if own and tp.pk:
        fixes.append(([c.name for c in tp.columns].index(tp.pk[0]), own))
    for fk in tp.table.fks:
        parent = by_name.get(name_key(fk.ref_table))
        if parent is None or len(fk.columns) != 1:
            continue
        m = mappings.get((src_index, parent.target))
        if m:
            pos = next(
                i
                for i, c in enumerate(tp.columns)
                if name_key(c.source.name) == name_key(fk.columns[0])
            )
            fixes.append((pos, m))
    if not fixes:
        return None

    def remap(columns: list[list[object]]) -> None:
        for pos, m in fixes:
            columns[pos] = [m.get(v, v) if isinstance(v, int) else v for v in columns[pos]]

    return remap


@dataclass
class TableCheck:
    """Verification of one table."""

    table: str
    source: verify.Sum
    target: verify.Sum
    read: int = 0  # rows the files hold (source.rows is what the target must hold)
    differing: list[str] = field(default_factory=list)  # up to ten keys, on a mismatch

    @property
    def ok(self) -> bool:
        return self.source == self.target

    def summary(self) -> str:
        """Both counts and both checksums, and the keys that differ (for a mismatch)."""
        keys = f"; keys that differ: {', '.join(self.differing)}" if self.differing else ""
        return (
            f"table {self.table}: expected {_rows(self.source.rows)}, checksum "
            f"{self.source.short()}; target {_rows(self.target.rows)}, checksum "
            f"{self.target.short()}{keys}"
        )


def run_verify(
    conn: psycopg.Connection,
    plan: Plan,
    sources: list[Source],
    skipped: dict[str, dict[int, verify.Sum]],
    mappings: dict[tuple[int, str], dict[int, int]],
    log: Reporter,
    known: dict[tuple[str, int], verify.Sum] | None = None,
    streams: dict[str, verify.Stream] | None = None,
) -> list[TableCheck]:
    """Compare every table's count and checksum between the sources and the target.

    PostgreSQL computes its side in a background thread (on this connection, so it sees this
    transaction's rows) while Python computes the sources' side: the two overlap. A table whose
    only source the load hashed in the wire form (`known`) is compared in that form; one the
    load digested chunk by chunk (`streams`) in the stream form, if the table is as digested;
    a stream-form difference is settled in the wire form (rows hashed one by one, any order).
    """
    checks = []
    forms = [
        _known_form(tp, skipped, known, _remapper(tp, plan, tp.sources[0], mappings) is None)
        for tp in plan.tables
    ]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        targets = [
            pool.submit(_target_sum, conn, tp, form, (streams or {}).get(tp.target))
            for tp, form in zip(plan.tables, forms, strict=True)
        ]
        try:
            for tp, form, future in zip(plan.tables, forms, targets, strict=True):
                expected, read = verify.Sum(form=form), 0
                for idx in tp.sources:
                    remap = _remapper(tp, plan, idx, mappings)
                    part = (known or {}).get((tp.target, idx)) if remap is None else None
                    if part is None or part.form != form:
                        part = verify.source_sum(sources[idx], tp, remap)  # type: ignore[arg-type]
                    expected, read = expected + part, read + part.rows
                    expected -= skipped.get(tp.target, {}).get(idx, verify.Sum(form=form))
                checks.append(TableCheck(tp.target, expected, future.result(), read))
        except BaseException:  # Ctrl-C, a source's error: the server's checksums are not awaited
            _abandon(conn, targets)
            raise
    checks = [_settled(conn, plan, sources, c, log) for c in checks]
    for tp, c in zip(plan.tables, checks, strict=True):
        if not c.ok:
            c.differing = _differing(conn, plan, tp, sources, mappings)
    _report_checks(checks, log)
    return checks


def _abandon(conn: psycopg.Connection, futures: list[concurrent.futures.Future[Any]]) -> None:
    """The server's checksums given up: those not started never run, the running one's query
    is cancelled (again each CANCEL_RETRY_S, should the cancel land between two of its queries),
    so the run ends without waiting for them. Their errors are left unread: the caller's stands."""
    for future in futures:
        future.cancel()
    while not all(f.done() for f in futures):
        with contextlib.suppress(Exception):  # never hides the caller's error
            conn.cancel_safe(timeout=CANCEL_RETRY_S)
        concurrent.futures.wait(futures, timeout=CANCEL_RETRY_S)


CANCEL_RETRY_S = 1.0  # a cancel that found no query running is sent again after this


def _target_sum(
    conn: psycopg.Connection, tp: TablePlan, form: str, stream: verify.Stream | None
) -> verify.Sum:
    """The target's sum in `form`; in the stream form, the digests taken during the load if the
    table still holds exactly what they covered (else a sum no source can equal: `_settled`
    then compares row by row)."""
    if form != verify.STREAM:
        return verify.target_sum(conn, tp, form)
    current = verify.stream_target_sum(conn, tp, stream) if stream is not None else None
    return current if current is not None else verify.Sum(-1, 0, verify.STREAM)


def _settled(
    conn: psycopg.Connection, plan: Plan, sources: list[Source], check: TableCheck, log: Reporter
) -> TableCheck:
    """A stream-form check that differs, recomputed row by row in the wire form (any order):
    the rows may be stored out of the order sent, or the table written since its digests."""
    if check.ok or check.source.form != verify.STREAM:
        return check
    tp = next(t for t in plan.tables if t.target == check.table)
    source = load.source_wire_sum(conn, tp, sources[tp.sources[0]])
    form = verify.WIRE if source is not None else verify.CANON
    if source is None:
        source = verify.source_sum(sources[tp.sources[0]], tp)
    log.event(
        "note",
        f"{check.table}: the chunk digests differ; comparing row by row ({form} form)",
        table=check.table,
    )
    return TableCheck(check.table, source, verify.target_sum(conn, tp, form), check.read)


def _known_form(
    tp: TablePlan,
    skipped: dict[str, dict[int, verify.Sum]],
    known: dict[tuple[str, int], verify.Sum] | None,
    as_loaded: bool,
) -> str:
    """WIRE or STREAM when the load hashed the table's only source in that form (and its keys
    are compared as loaded, not renumbered), else CANON."""
    part = (known or {}).get((tp.target, tp.sources[0]))
    alone = len(tp.sources) == 1 and not skipped.get(tp.target) and as_loaded
    if alone and part is not None and part.form in (verify.WIRE, verify.STREAM):
        return part.form
    return verify.CANON


def _differing(
    conn: psycopg.Connection,
    plan: Plan,
    tp: TablePlan,
    sources: list[Source],
    mappings: dict[tuple[int, str], dict[int, int]],
) -> list[str]:
    remaps = {i: _remapper(tp, plan, i, mappings) for i in tp.sources}
    try:
        return diff.differing_keys(conn, plan, tp, sources, remaps)  # type: ignore[arg-type]
    except (psycopg.Error, TypeError, ValueError) as exc:
        return [f"(not listed: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc})"]


def _report_checks(checks: list[TableCheck], log: Reporter) -> None:
    """The verification table (text) and one `verified` event per table (JSON)."""
    head = f"{'table':<32} {'expected rows':>13} {'target rows':>12}  {'checksum':<32} result"
    lines = ["", head]
    for c in checks:
        merged = c.read - c.source.rows
        note = f" ({_rows(c.read)} in the files, {_rows(merged, 'duplicate')} stored once)"
        lines.append(
            f"{c.table:<32} {c.source.rows:>13,} {c.target.rows:>12,}  {c.target.short():<32} "
            f"{'ok' if c.ok else 'MISMATCH'}{note if merged > 0 else ''}"
        )
        if not c.ok:
            lines.append(f"  {c.summary()}")
        log.data(
            "verified",
            f"{c.table}: {'ok' if c.ok else 'MISMATCH'}",
            level="info" if c.ok else "error",
            table=c.table,
            ok=c.ok,
            source_rows=c.read,
            expected_rows=c.source.rows,
            target_rows=c.target.rows,
            source_checksum=c.source.short(),
            target_checksum=c.target.short(),
            differing_keys=c.differing,
        )
    log.text("\n".join(lines))


def _mismatch(checks: list[TableCheck]) -> VerificationError:
    bad = [c for c in checks if not c.ok]
    return VerificationError(
        "verification failed: " + " | ".join(c.summary() for c in bad),
        [Problem("target", c.table, "-", "*", "", c.summary()) for c in bad],
    )


def _recorded(record: dict[str, object]) -> tuple[dict[str, dict[int, verify.Sum]], list[str]]:
    skipped: dict[str, dict[int, verify.Sum]] = {}
    tables: dict[str, Any] = record.get("tables") or {}  # type: ignore[assignment]
    for name, info in tables.items():
        for idx, s in (info.get("skipped") or {}).items():
            skipped.setdefault(name, {})[int(idx)] = _sum_from_json(s)
    names: list[object] = record.get("source_names") or []  # type: ignore[assignment]
    return skipped, [str(n) for n in names]


def _load_mappings(conn: psycopg.Connection) -> dict[tuple[int, str], dict[int, int]]:
    out: dict[tuple[int, str], dict[int, int]] = {}
    if not _record_exists(conn):
        return out
    rows = conn.execute(
        sql.SQL(
            "SELECT source_index, table_name, old_key, new_key FROM {}.renumbered WHERE run_id = "
            "(SELECT max(id) FROM {}.runs)"
        ).format(sql.Identifier(RECORD_SCHEMA), sql.Identifier(RECORD_SCHEMA))
    ).fetchall()
    for idx, table, old, new in rows:
        out.setdefault((int(idx), str(table)), {})[int(old)] = int(new)
    return out


def cmd_verify(opts: Options, log: Reporter) -> int:
    """`verify`: compare sources and target per table; exit 1 on any difference."""
    announce("verify", opts, log)
    with open_sources(opts.sources, log, opts.source_immutable) as sources:
        if opts.schema == "create":
            plan = make_plan(sources, opts, log, every=False)
        with (
            contextlib.closing(connect(opts.target, opts.lock_timeout_s)) as conn,
            bounded_lock_waits(conn, None, opts.lock_timeout_s),
        ):
            if opts.schema != "create":
                mode = _mode(conn, sources, opts)
                plan = (
                    existing.build(conn, sources, opts)
                    if mode == "existing"
                    else make_plan(sources, opts, log, every=False)
                )
            if plan.problems:
                raise _problem_error(plan)
            record = _last_record(conn)
            skipped, _names = _recorded(record) if record else ({}, [])
            missing = [
                tp.target
                for tp in plan.tables
                if conn.execute(
                    "SELECT to_regclass(%s)", (sql.Identifier(tp.target).as_string(conn),)
                ).fetchone()
                == (None,)
            ]
            if missing:
                raise VerificationError(
                    f"verification failed: table(s) missing in the target: {', '.join(missing)}"
                )
            checks = run_verify(conn, plan, sources, skipped, _load_mappings(conn), log)
            conn.rollback()
    if not all(c.ok for c in checks):
        raise _mismatch(checks)
    log.event(
        "done",
        f"verified {len(checks)} table(s): source and target match ({duration(log.elapsed())})",
        tables=len(checks),
        rows=sum(c.target.rows for c in checks),
        elapsed_s=log.elapsed(),
    )
    return 0


def cmd_run(opts: Options, log: Reporter) -> int:
    """`run`: plan, refuse bad values, then load all in one transaction (optionally verify).

    VARCHAR limits are first trusted without a statistics pass (PostgreSQL rejects any value
    that does not fit while it is copied); if one does not fit, the transaction is rolled back
    and the run starts over with the lengths measured, widening that column to text.
    """
    if opts.on_conflict not in ("refuse", "renumber"):
        raise UsageError(f"--on-conflict {opts.on_conflict!r}: expected refuse or renumber")
    announce("run", opts, log)
    with open_sources(opts.sources, log, opts.source_immutable) as sources:
        if opts.schema != "create":
            with (
                contextlib.closing(connect(opts.target, opts.lock_timeout_s)) as conn,
                bounded_lock_waits(conn, None, opts.lock_timeout_s),
            ):
                if _mode(conn, sources, opts) == "existing":
                    return _run_existing(conn, sources, opts, log)
                conn.rollback()
        plan = _checked_plan(sources, opts, log, optimistic=True)
        with (
            contextlib.closing(connect(opts.target, opts.lock_timeout_s)) as conn,
            bounded_lock_waits(conn, plan, opts.lock_timeout_s),
        ):
            outcome = _attempt(conn, plan, sources, opts, log)
            if isinstance(outcome, int):
                return outcome
            if isinstance(outcome.cause, psycopg.errors.StringDataRightTruncation):
                log.event(
                    "replan",
                    f"table {outcome.tp.table.name!r}: a value is longer than its declared VARCHAR "
                    "limit; nothing was written; planning again with measured lengths",
                    level="warning",
                )
                plan = _checked_plan(sources, opts, log, optimistic=False)
                outcome = _attempt(conn, plan, sources, opts, log)
                if isinstance(outcome, int):
                    return outcome
            failure = outcome
            log.event(
                "diagnose",
                f"a value was rejected while loading ({failure}); the transaction was rolled back; "
                "finding every such value",
                level="warning",
            )
            try:
                _raise_all_problems(
                    plan,
                    sources,
                    opts,
                    log,
                    DataProblemError(f"loading failed and nothing was written: {failure}"),
                    announced=True,
                )
            except DataProblemError as exc:
                raise exc from failure


def _attempt(
    conn: psycopg.Connection, plan: Plan, sources: list[Source], opts: Options, log: Reporter
) -> int | load.LoadValueError:
    """One `_run_once` of create mode: its exit code, or the value PostgreSQL rejected while
    loading (rolled back, for the caller to replan or diagnose). A refusal lists every problem
    `plan` would, unless it is one `plan` cannot list (e.g. a lock)."""
    try:
        return _run_once(conn, plan, sources, opts, log)
    except load.LoadValueError as exc:
        conn.rollback()
        return exc
    except (DataProblemError, TargetStateError) as exc:
        conn.rollback()
        if isinstance(exc, TargetStateError) and not exc.problems:
            raise
        _raise_all_problems(plan, sources, opts, log, exc, conn=conn)


def _run_existing(
    conn: psycopg.Connection, sources: list[Source], opts: Options, log: Reporter
) -> int:
    """`run --schema existing`: one attempt. A mismatch with the app's schema, a busy target
    table, a value rejected while loading or a constraint the data breaks rolls it back, and
    then every check `plan` makes is run, so the report lists everything at once."""
    plan = existing.build(conn, sources, opts, collect=True)
    rerun = _last_record(conn) is not None  # _run_once re-verifies a completed migration
    if not rerun and (plan.mismatches or existing.predict(conn, plan, opts.replace)):
        conn.rollback()
        _raise_all_problems(plan, sources, opts, log, None, conn=conn)
    log.event("schema", f"loading into the target's own schema ({len(plan.tables)} table(s))")
    try:
        return _run_once(conn, plan, sources, opts, log)
    except load.LoadValueError as exc:
        conn.rollback()
        log.event(
            "diagnose",
            f"a value was rejected while loading ({exc}); the transaction was rolled back; "
            "finding every such value",
            level="warning",
        )
        failure = DataProblemError(f"loading failed and nothing was written: {exc}")
        _raise_all_problems(plan, sources, opts, log, failure, announced=True, conn=conn)
    except (DataProblemError, TargetStateError) as exc:
        conn.rollback()
        if isinstance(exc, TargetStateError) and not exc.problems:
            raise
        better = existing.constraint_error(exc) if isinstance(exc, DataProblemError) else exc
        _raise_all_problems(plan, sources, opts, log, better, conn=conn)


def _checked_plan(sources: list[Source], opts: Options, log: Reporter, optimistic: bool) -> Plan:
    namer = Namer(opts.identifiers)
    plan = planmod.build(sources, namer, cast_options(opts), optimistic=optimistic)
    planmod.apply_skips(plan, opts.skip)
    planmod.diagnose(plan, sources)
    for tp in plan.tables:
        for note in tp.notes:
            level = "warning" if "widened" in note else "info"
            log.event("note", f"{tp.table.name}: {note}", level=level, table=tp.table.name)
    if plan.problems:
        _raise_all_problems(plan, sources, opts, log, _problem_error(plan), subset=True)
    return plan


def _raise_all_problems(
    plan: Plan,
    sources: list[Source],
    opts: Options,
    log: Reporter,
    failure: MigrationError | None,
    announced: bool = False,
    subset: bool = False,
    conn: psycopg.Connection | None = None,
) -> NoReturn:
    """`run` refuses: raise one error listing exactly what `plan` lists (`_verdict`: every
    value, rows across sources, objects, the target's tables), not only what stopped it, so one
    fix round is enough. A problem of the failure's that the verdict does not explain (no
    problem of the verdict in the same table) is kept too: nothing PostgreSQL said is lost.
    `subset`: the failure's problems are part of what the verdict lists (flagged columns)."""
    if isinstance(failure, VerificationError):
        raise failure
    if not announced:
        log.event(
            "diagnose",
            f"refusing ({failure or 'see the problems'}); listing every problem, as plan does",
            level="warning",
        )
    verdict = _verdict(plan, sources, opts, log, conn)
    listed = verdict.problems()
    given: list[Problem] = getattr(failure, "problems", [])
    own = [p for p in given if not subset and not any(_explains(q, p) for q in listed)]
    if not listed or (
        failure is not None and {p.describe() for p in listed} == {p.describe() for p in given}
    ):
        raise failure or DataProblemError("refused; nothing was written")
    parts = [str(failure).removesuffix("; nothing was written")] if own else []
    hints = []
    if verdict.schema:
        parts.append(
            f"{len(verdict.schema)} mismatch(es) between the sources and the target's schema"
        )
        hints.append("map columns with --map-column table.source_column=column, skip them "
                     "with --ignore-column table.column")  # fmt: skip
    busy = [p.table for p in verdict.state if p.value == "holds rows"]
    if busy:
        parts.append(f"target table(s) {', '.join(busy)} already hold rows")
        hints.append("--replace empties them and loads the sources' rows")
    parts.extend(dict.fromkeys(p.reason for p in verdict.state if p.value != "holds rows"))
    if verdict.values:
        parts.append(
            f"{sum(verdict.value_counts.values())} value(s) in {len(verdict.value_counts)} "
            "column(s) do not fit their target type"
        )
        hints.append("fix the source, or choose a type with --cast table.column=type")
    if verdict.found.problems:
        parts.append(
            f"{sum(verdict.found.counts.values())} row(s) conflict across sources or break a key"
        )
        if any(what == "conflict" for _table, what in verdict.found.counts):
            hints.append("--on-conflict renumber gives the later file's conflicting rows new keys")
    parts.extend(verdict.broken.summary())
    if verdict.refused:
        parts.append(
            f"{len(verdict.refused)} object(s) of the source schema cannot be created in "
            "PostgreSQL: " + "; ".join(r.message() for r in verdict.refused)
        )
    hint = f" ({'; '.join(hints)})" if hints else ""
    message = "; ".join(parts) + f"; nothing was written{hint}"
    if not own and verdict.exit_code() == 2:
        raise TargetStateError(message, listed)
    raise DataProblemError(message, [*listed, *own])


def _explains(found: Problem, seen: Problem) -> bool:
    """True when `found` (a check's record) is what PostgreSQL reported as `seen`: same table,
    and the same column, or the column named in the constraint it broke, or (an index that
    could not be built, reported as "<what>: <error>") the same index named first, or (a row
    an app's CHECK refused while loading) the constraint named."""
    if found.table != seen.table or seen.source not in (found.source, "target"):
        return False
    named = {f"({found.column})", f"({', '.join(found.column.split(','))})"}  # as PostgreSQL
    what = seen.reason.partition(": ")[0]
    return (
        found.column == seen.column
        or any(n in seen.value or n in seen.reason for n in named)
        or (seen.column == "-" and found.reason.startswith(f"{what}: "))
        or f'constraint "{seen.column}"' in found.reason  # the rows breaking that constraint
        or (  # a domain's CHECK: "<constraint> of domain <type>"
            " of domain " in seen.column
            and f'constraint "{seen.column.partition(" of domain ")[0]}"' in found.reason
        )
    )


def _run_once(
    conn: psycopg.Connection, plan: Plan, sources: list[Source], opts: Options, log: Reporter
) -> int:
    """One attempt inside one transaction; LoadValueError leaves it to the caller to roll back."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
    record = _last_record(conn)
    if record is not None:
        return _rerun(conn, plan, sources, record, log)
    result = load.LoadResult(reported=list(plan.reported))
    n = len(plan.tables)
    started = dt.datetime.now(dt.UTC)
    prepared = None
    with log.phase("schema", f"{n} table(s) prepared", tables=n):
        if isinstance(plan, existing.ExistingPlan):  # the app's schema: created by nothing here
            prepared = existing.prepare(conn, plan, opts.replace, result.reported)
        else:
            _check_target_tables(conn, plan, opts, result)
            load.create_tables(conn, plan, sources, Namer(opts.identifiers), result)
    with log.phase("load", f"{n} table(s) loaded", tables=n) as done:
        load.load_tables(
            conn,
            plan,
            sources,
            result,
            opts.on_conflict,
            log,
            hash_sources=opts.verify,
            fresh=prepared is None,
        )
        done["rows"] = sum(t.rows_written for t in result.tables.values())
    problems: list[Problem] = []
    with log.phase("keys", "UNIQUE constraints and indexes built"):
        if prepared is not None:  # the app's own indexes and foreign keys, recreated
            existing.finish(conn, plan, prepared, result.decisions)  # type: ignore[arg-type]
        load.post_steps(conn, plan, result, ("unique", "index"), problems)
    with log.phase("constraints", "CHECK and foreign key constraints validated"):
        load.post_steps(conn, plan, result, ("check", "fk"), problems)
    load.refuse_violations(problems)
    with log.phase("views", "views created") as done:
        views = load.create_views(conn, plan, result, opts.replace)
        done["views"] = len(views)
    load.refuse_unmigrated(plan, result)
    with log.phase("sequences", "identity sequences set past the loaded keys"):
        load.reset_sequences(conn, plan, result)
    with log.phase("analyze", "planner statistics gathered"):
        for tp in plan.tables:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(tp.target)))
    skipped = {name: t.skipped for name, t in result.tables.items()}
    verified: dict[str, verify.Sum] = {}
    if opts.verify:
        with log.phase("verify", "counts and checksums compared", tables=n):
            checks = run_verify(
                conn, plan, sources, skipped, result.mappings, log, *result.verified_on_load()
            )
        if not all(c.ok for c in checks):
            conn.rollback()
            raise _mismatch(checks)
        verified = {c.table: c.target for c in checks}
    summary = {
        "started_at": started.isoformat(),
        "sources": [s.path for s in sources],
        "source_names": _source_identity(sources),
        "identifiers": opts.identifiers,
        "schema": "existing" if prepared is not None else "create",
        "schema_options": _schema_options(opts, existing_mode=prepared is not None),
        "on_conflict": opts.on_conflict,
        "created_types": result.created_types,
        "views": views,
        "reported": result.reported,
        "decisions": result.decisions,
        "verified": bool(opts.verify),
        "tables": {
            name: {
                "rows": t.rows_written,
                "per_source": {str(k): v for k, v in t.per_source.items()},
                "skipped": {str(k): _sum_json(v) for k, v in t.skipped.items()},
                "renumbered": {str(k): v for k, v in t.renumbered.items()},
            }
            | (
                {"checksum": _sum_json(verified[name], result.streams, name)}
                if name in verified
                else {}
            )
            for name, t in result.tables.items()
        },
    }
    with log.phase("commit", "record written and transaction committed"):
        _write_record(conn, summary, result)
        conn.commit()
    _report_run(result, plan, views, log)
    return 0


def _report_run(result: load.LoadResult, plan: Plan, views: list[str], log: Reporter) -> None:
    lines = ["", f"{'table':<32} {'rows':>12}  notes"]
    for tp in plan.tables:
        t = result.tables.get(tp.target, load.TableResult())
        extra = []
        if any(s.rows for s in t.skipped.values()):
            extra.append(
                _rows(sum(s.rows for s in t.skipped.values()), "duplicate") + " stored once"
            )
        if t.renumbered:
            extra.append(f"{sum(t.renumbered.values())} rows renumbered")
        lines.append(f"{tp.target:<32} {t.rows_written:>12,}  {'; '.join(extra)}")
    if views:
        lines.append(f"views created: {', '.join(views)}")
    for d in result.decisions:
        log.event("decision", d)
    for r in result.reported:
        log.data("reported", r, level="warning")
    if result.reported:
        lines.append("Not carried over / changed (reported):")
        lines.extend("  - " + r for r in result.reported)
    log.text("\n".join(lines))
    rows = sum(t.rows_written for t in result.tables.values())
    log.event(
        "done",
        f"migrated {len(plan.tables)} table(s) ({_rows(rows)}) and {len(views)} view(s) in one "
        f"transaction; committed ({duration(log.elapsed())})",
        tables=len(plan.tables),
        rows=rows,
        views=len(views),
        elapsed_s=log.elapsed(),
    )


def _rerun(
    conn: psycopg.Connection,
    plan: Plan,
    sources: list[Source],
    record: dict[str, object],
    log: Reporter,
) -> int:
    skipped, names = _recorded(record)
    if names != _source_identity(sources):
        raise _other_migration(names, sources)
    log.event(
        "rerun",
        "the target already holds a completed migration of these sources: re-verifying, nothing "
        "will be written",
    )
    checks = run_verify(conn, plan, sources, skipped, _load_mappings(conn), log)
    conn.rollback()
    if not all(c.ok for c in checks):
        at_migration = _recorded_checksums(record)
        changed = []
        for c in (c for c in checks if not c.ok):
            recorded = at_migration.get(c.table)
            chunks = _recorded_chunks(record, c.table)
            check = _as_recorded(conn, plan, sources, c, recorded, chunks)
            changed.append(_what_changed(check, recorded))
        raise TargetStateError(
            "the target already holds a completed migration of files with these names, but "
            "source and target differ now: " + "; ".join(changed) + "; nothing was changed"
        )
    log.event(
        "done",
        "already migrated and verified: nothing to do",
        tables=len(checks),
        rows=sum(c.target.rows for c in checks),
        views=0,
        elapsed_s=log.elapsed(),
    )
    return 0


def _sum_json(
    total: verify.Sum, streams: dict[str, verify.Stream] | None = None, table: str = ""
) -> dict[str, object]:
    """A Sum as stored in the record (the checksum as a string: it exceeds JSON's safe ints;
    the form only when not the canonical one, as records before the wire form were; a stream
    sum with its chunks' row counts, to recompute it alike on a rerun)."""
    form = {} if total.form == verify.CANON else {"form": total.form}
    chunks = {}
    if total.form == verify.STREAM and streams and table in streams:
        chunks = {"chunks": streams[table].counts}
    return {"rows": total.rows, "checksum": str(total.checksum)} | form | chunks


def _sum_from_json(stored: dict[str, Any]) -> verify.Sum:
    """The inverse of `_sum_json`."""
    form = str(stored.get("form", verify.CANON))
    return verify.Sum(int(stored["rows"]), int(stored["checksum"]), form)


def _recorded_checksums(record: dict[str, object]) -> dict[str, verify.Sum]:
    """The verified per-table checksums a `run --verify` recorded (none for unverified runs)."""
    tables: dict[str, Any] = record.get("tables") or {}  # type: ignore[assignment]
    return {
        name: _sum_from_json(info["checksum"])
        for name, info in tables.items()
        if info.get("checksum")
    }


def _recorded_chunks(record: dict[str, object], table: str) -> list[int]:
    """The row counts of a stream-verified table's chunks, as recorded (none for other forms)."""
    tables: dict[str, Any] = record.get("tables") or {}  # type: ignore[assignment]
    checksum = (tables.get(table) or {}).get("checksum") or {}
    return [int(n) for n in checksum.get("chunks") or []]


def _as_recorded(
    conn: psycopg.Connection,
    plan: Plan,
    sources: list[Source],
    check: TableCheck,
    recorded: verify.Sum | None,
    chunks: list[int] | None = None,
) -> TableCheck:
    """The check recomputed in the form its recorded checksum has (a run verified in the wire
    form, or in the stream form in the recorded `chunks`), when it can be; else as it is."""
    if recorded is None or recorded.form == check.source.form or recorded.form == verify.CANON:
        return check
    tp = next(t for t in plan.tables if t.target == check.table)
    if len(tp.sources) != 1:
        return check
    src = sources[tp.sources[0]]
    if recorded.form == verify.STREAM:
        source = load.source_stream_sum(conn, tp, src, chunks or [])
        target = verify.target_stream_sum(conn, tp, chunks or [])
    else:
        source, target = (
            load.source_wire_sum(conn, tp, src),
            verify.target_sum(conn, tp, verify.WIRE),
        )
    if source is None:
        return check
    return TableCheck(check.table, source, target, check.read)


def _what_changed(check: TableCheck, recorded: verify.Sum | None) -> str:
    """Which side of a table moved since the recorded, verified migration."""
    now = (
        f"table {check.table}: sources {check.source.rows} rows / {check.source.short()}, "
        f"target {check.target.rows} rows / {check.target.short()}"
    )
    if recorded is None or recorded.form != check.source.form:  # not comparable
        return now
    if check.source == recorded:
        return (
            f"table {check.table}: the target changed since the migration ({recorded.rows} rows "
            f"then, {check.target.rows} now; written after the migration, e.g. by the app), the "
            "sources did not"
        )
    if check.target == recorded:
        return (
            f"table {check.table}: the sources changed since the migration ({recorded.rows} rows "
            f"then, {check.source.rows} now), the target did not"
        )
    return f"{now}; both changed since the migration ({recorded.rows} rows then)"


def _rows(count: int, what: str = "") -> str:
    """`1 duplicate row`, `2 duplicate rows`: a count with its noun in the right number."""
    noun = f"{what} row" if what else "row"
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
