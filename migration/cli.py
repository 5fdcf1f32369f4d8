"""Command line: parse arguments, run a command, map exceptions to messages and exit codes.

Exit codes: 0 success; 1 data problems (values that do not fit, conflicts, verification
mismatch, constraint violations); 2 usage, configuration, source or connection errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import apsw
import psycopg

from migration import __version__, engine
from migration.errors import (
    MigrationError,
    UsageError,
    context_of,
    describe_server_error,
    server_error_exit_code,
)
from migration.log import Reporter
from migration.redact import target_secrets

EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    invoked = Path(sys.argv[0]).name  # the console script, or __main__.py under python -m
    p = argparse.ArgumentParser(
        prog=invoked if invoked == "sqlite-to-rds" else "python -m migration",
        description="Migrate SQLite files to PostgreSQL, losslessly.",
    )
    p.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__} (SQLite {apsw.sqlitelibversion()}, psycopg "
        f"{psycopg.__version__})",
    )
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser, sources_required: bool = True) -> None:
        sp.add_argument(
            "--source",
            action="append",
            default=[],
            required=sources_required,
            metavar="FILE",
            help="a SQLite file (repeat for several; later files merge into earlier ones)",
        )
        sp.add_argument(
            "--identifiers",
            choices=("lower", "preserve"),
            default="lower",
            help="lower-case every name (default; the app's unquoted SQL keeps working) or keep it",
        )
        sp.add_argument(
            "--cast",
            action="extend",
            nargs="+",
            default=[],
            metavar="TABLE.COLUMN=TYPE",
            help="create: the column's PostgreSQL type, e.g. pets.notes=bytea, "
            "authors.id=uuid, books.price=numeric(8,2), pages.status=ENUM (see --enum)",
        )
        sp.add_argument(
            "--cast-declared",
            action="extend",
            nargs="+",
            default=[],
            metavar="DECLARED=TYPE",
            help="create: the type of every column declared DECLARED in SQLite, e.g. "
            "datetime=timestamptz (Django's DateTimeField with USE_TZ) or char(32)=uuid",
        )
        sp.add_argument(
            "--enum",
            action="append",
            default=[],
            metavar="NAME=LABEL,...",
            help="create: an enum type for --cast, e.g. page_status=draft,published; created "
            "in the run's transaction, or used as is if the target has it with these labels",
        )
        sp.add_argument(
            "--source-immutable",
            action="store_true",
            help="the sources are copies nobody writes during the run (e.g. the Job's backups): "
            "open WAL-mode files with SQLite's immutable=1 so that no -wal/-shm is created next "
            "to them (the run fails if a file changes anyway)",
        )
        sp.add_argument(
            "--log-format",
            choices=("text", "json"),
            default=None,
            help="text (default on a terminal) or JSON lines (default otherwise)",
        )

    def skip(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--skip",
            action="append",
            default=[],
            metavar="KIND:NAME",
            help="migrate without this view, index, CHECK or default: view:NAME, index:NAME, "
            "check:TABLE.NAME (or TABLE.N, the Nth unnamed CHECK), default:TABLE.COLUMN; "
            "generated:TABLE.COLUMN carries a generated column's stored values as a plain column",
        )

    def target(sp: argparse.ArgumentParser) -> None:
        where = sp.add_mutually_exclusive_group()
        where.add_argument(
            "--target",
            default=None,
            metavar="URL",
            help="PostgreSQL URL (default: $DATABASE_URL). A password given here is visible to "
            "other users in ps: keep it out of the command line with $DATABASE_URL, "
            "--target-file, or a URL without it plus libpq's PGPASSFILE (or ~/.pgpass)",
        )
        where.add_argument(
            "--target-file",
            default=None,
            metavar="PATH",
            help="a file holding the PostgreSQL URL (e.g. a mounted Secret; keeps it out of ps)",
        )
        sp.add_argument(
            "--lock-timeout",
            type=_seconds,
            default=engine.LOCK_TIMEOUT_S,
            metavar="SECONDS",
            help="give up (exit 2, naming the locked table and who holds it) when a lock on the "
            f"target is not granted within this time (default {engine.LOCK_TIMEOUT_S:g}; "
            "0 waits forever)",
        )

    def timezone(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--source-timezone",
            default="UTC",
            metavar="ZONE",
            help="the zone naive SQLite datetimes are read in for timestamptz columns "
            "(default UTC)",
        )

    def schema(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--schema",
            choices=("auto", "create", "existing"),
            default="auto",
            help="create the tables from the sources, load into the tables the app's migrations "
            "created (existing), or auto (default): existing if every source table exists, "
            "create if none does",
        )
        sp.add_argument(
            "--map-column",
            action="append",
            default=[],
            metavar="TABLE.SOURCE=COLUMN",
            help="existing: load a source column into a target column of another name",
        )
        sp.add_argument(
            "--ignore-column",
            action="append",
            default=[],
            metavar="TABLE.COLUMN",
            help="existing: do not load this source column / do not require this target column",
        )
        sp.add_argument(
            "--keep-table",
            action="append",
            default=[],
            metavar="TABLE",
            help="existing: keep this table's target rows and skip the source's (e.g. "
            "django_migrations, alembic_version)",
        )
        timezone(sp)

    sp = sub.add_parser(
        "plan", help="show types, DDL and every value that does not fit; writes nothing"
    )
    common(sp)
    sp.add_argument(
        "--on-conflict",
        choices=("refuse", "renumber"),
        default="refuse",
        help="predict `run --on-conflict` (default refuse)",
    )
    sp.add_argument(
        "--replace", action="store_true", help="predict `run --replace` (--schema existing)"
    )
    target(sp)  # also where the translated DDL is tried (rolled back); else embedded
    schema(sp)
    skip(sp)
    sp = sub.add_parser("run", help="migrate in one transaction")
    common(sp)
    skip(sp)
    target(sp)
    schema(sp)
    sp.add_argument(
        "--verify", action="store_true", help="verify counts and checksums before committing"
    )
    sp.add_argument(
        "--on-conflict",
        choices=("refuse", "renumber"),
        default="refuse",
        help="same key, different content across sources: refuse (default) or give new keys",
    )
    sp.add_argument(
        "--replace",
        action="store_true",
        help="target tables that already hold rows: create drops and reloads them, existing "
        "empties them (TRUNCATE) and keeps the app's definitions",
    )
    sp = sub.add_parser("verify", help="compare sources and target per table")
    common(sp)
    target(sp)
    schema(sp)
    sp = sub.add_parser("rehearse", help="run --verify into a throwaway embedded PostgreSQL")
    common(sp, sources_required=False)
    skip(sp)  # what `run` will be told to leave out, rehearsed with it
    timezone(sp)  # as `run` will be told to read naive datetimes
    sp.add_argument(
        "--sample", action="store_true", help="generate a sample petstore SQLite file first"
    )
    sp.add_argument(
        "--rows", type=int, default=1000, help="rows in the sample's pets table (default 1000)"
    )
    sp.add_argument("--on-conflict", choices=("refuse", "renumber"), default="refuse")
    sp.add_argument(
        "--keep",
        action="store_true",
        help="leave the server running for inspection (prints how to stop it)",
    )
    sp.add_argument(
        "--stop",
        metavar="DIR",
        default=None,
        help="stop the server of a rehearsal run with --keep and delete its work directory",
    )
    return p


def _seconds(text: str) -> float:
    """A non-negative number of seconds (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seconds, e.g. 30 or 0.5, not {text!r}"
        ) from None
    if not 0 <= value < 86_400 * 24:  # PostgreSQL's lock_timeout is an int of milliseconds
        raise argparse.ArgumentTypeError(f"expected 0 (no limit) up to a few days, not {text!r}")
    return value


def _read_target_file(path: str) -> str:
    """The target URL kept in a file (a mounted Secret): its content without surrounding
    whitespace. The message names the file, never its content."""
    try:
        url = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"--target-file {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise UsageError(f"--target-file {path}: not UTF-8 text; expected a URL") from None
    if not url:
        raise UsageError(f"--target-file {path}: the file is empty; expected a postgresql:// URL")
    return url


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    # The Job (no terminal) gets JSON lines; people get text. A rehearsal is always for people.
    fmt = args.log_format or (
        "text" if sys.stdout.isatty() or args.command == "rehearse" else "json"
    )
    try:
        target_file = getattr(args, "target_file", None)
        target = _read_target_file(target_file) if target_file else None
    except UsageError as exc:
        Reporter(fmt, ()).event("failed", str(exc), level="error", exit_code=exc.exit_code)
        return exc.exit_code
    target = target or getattr(args, "target", None) or os.environ.get("DATABASE_URL")
    secrets = target_secrets(target)
    log = Reporter(fmt, secrets)
    opts = engine.Options(
        sources=args.source,
        target=target,
        verify=getattr(args, "verify", False),
        on_conflict=getattr(args, "on_conflict", "refuse"),
        identifiers=args.identifiers,
        casts=args.cast,
        cast_declared=args.cast_declared,
        enums=args.enum,
        replace=getattr(args, "replace", False),
        schema=getattr(args, "schema", "create"),
        map_columns=getattr(args, "map_column", []),
        ignore_columns=getattr(args, "ignore_column", []),
        keep=getattr(args, "keep_table", None) or [],
        source_timezone=getattr(args, "source_timezone", "UTC"),
        lock_timeout_s=getattr(args, "lock_timeout", engine.LOCK_TIMEOUT_S),
        source_immutable=args.source_immutable,
        skip=getattr(args, "skip", []),
    )
    try:
        if args.command == "plan":
            return engine.cmd_plan(opts, log)
        if args.command == "run":
            return engine.cmd_run(opts, log)
        if args.command == "verify":
            return engine.cmd_verify(opts, log)
        from migration import rehearse

        if args.stop is not None:
            return rehearse.cmd_stop(args.stop, log)
        return rehearse.cmd_rehearse(opts, log, sample=args.sample, rows=args.rows, keep=args.keep)
    except MigrationError as exc:
        problems = getattr(exc, "problems", [])
        for p in problems:
            log.event("problem", p.describe(), level="error", **p.fields())
        log.event(
            "failed",
            str(exc),
            level="error",
            exit_code=exc.exit_code,
            error=type(exc).__name__,
            elapsed_s=log.elapsed(),
        )
        return exc.exit_code
    except psycopg.Error as exc:
        code = server_error_exit_code(exc.sqlstate)
        log.event(
            "failed",
            _server_message(exc),
            level="error",
            exit_code=code,
            sqlstate=exc.sqlstate,
            error=type(exc).__name__,
        )
        return code
    except apsw.Error as exc:
        where = context_of(exc)
        log.event(
            "failed",
            f"SQLite error{' ' + where if where else ''}: {exc}",
            level="error",
            exit_code=EXIT_USAGE,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.event("failed", "interrupted; nothing was committed", level="error")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last resort: a message and exit 2, no traceback
        where = context_of(exc) or "while running " + args.command
        log.event(
            "failed",
            f"unexpected error {where}: {type(exc).__name__}: {exc}; nothing was committed "
            "(please report this with the source's schema: sqlite3 FILE .schema)",
            level="error",
            exit_code=EXIT_USAGE,
            error=type(exc).__name__,
        )
        return EXIT_USAGE


def _server_message(exc: psycopg.Error) -> str:
    """A server error by its SQLSTATE class, with PostgreSQL's own text and what was being done."""
    lost = isinstance(exc, psycopg.OperationalError) and not exc.sqlstate
    what = describe_server_error(exc.sqlstate, connection_lost=lost)
    where = context_of(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    code = f" [SQLSTATE {exc.sqlstate}]" if exc.sqlstate else ""
    return f"{what}{' ' + where if where else ''}: {text}{code}; nothing was committed"
