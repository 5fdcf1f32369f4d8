"""Fixtures: one real PostgreSQL per test session (per xdist worker), a fresh database per test,
SQLite sources built from SQL strings under tmp_path, and helpers to run the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from migration import cli, embedded

REPO = Path(__file__).resolve().parents[2]
ENV_URL = "PETSTORE_TEST_DATABASE_URL"


class SecretURL(str):
    """A database URL whose repr hides the password: pytest prints fixture values in failure
    reports, and a password must not appear in test output even for a throwaway server."""

    __slots__ = ()

    def __repr__(self) -> str:
        parts = urlsplit(self)
        if parts.password is None:
            return super().__repr__()
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return repr(urlunsplit(parts._replace(netloc=netloc)))


@dataclass
class PgServer:
    """An admin URL to a server on which tests create and drop their own databases."""

    admin_url: str
    server: embedded.Server | None

    def url_for(self, database: str) -> str:
        parts = urlsplit(self.admin_url)
        return SecretURL(urlunsplit(parts._replace(path="/" + database)))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The embedded PostgreSQL 18 (or $PETSTORE_TEST_DATABASE_URL). Each xdist worker starts its
    own server in its own `mkdtemp` directory and port, so workers never share a data directory
    (and not under pytest's numbered tmp tree, which other pytest sessions may prune)."""
    if os.environ.get(ENV_URL):
        yield PgServer(SecretURL(os.environ[ENV_URL]), None)
        return
    server = embedded.start()
    holder = PgServer(SecretURL(server.url()), server)
    try:
        yield holder
    finally:
        if holder.server is not None:
            holder.server.stop(delete=True)


def _ensure_alive(pg_server: PgServer) -> None:
    """Restart the embedded server if something outside this session stopped it (the machine
    is shared: another job's cleanup must not turn the rest of this session into errors)."""
    if pg_server.server is None:
        return
    try:
        psycopg.connect(pg_server.admin_url, connect_timeout=5).close()
    except psycopg.OperationalError:
        pg_server.server.stop(delete=True)
        pg_server.server = embedded.start()
        pg_server.admin_url = SecretURL(pg_server.server.url())


@pytest.fixture
def target(pg_server: PgServer) -> Iterator[str]:
    """A URL to a fresh, empty database (dropped afterwards)."""
    _ensure_alive(pg_server)
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield pg_server.url_for(name)
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextlib.contextmanager
def encoded_database(pg_server: PgServer, encoding: str) -> Iterator[str]:
    """A URL to a fresh database in `encoding` (C collation; dropped afterwards)."""
    _ensure_alive(pg_server)
    name = f"e_{uuid.uuid4().hex[:12]}"
    create = "CREATE DATABASE {} ENCODING {} LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL(create).format(sql.Identifier(name), sql.Literal(encoding)))
    try:
        yield pg_server.url_for(name)
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def make_db(tmp_path: Path) -> Callable[..., str]:
    """Build a SQLite file from a SQL script (and optional parameterised inserts)."""
    counter = iter(range(1000))

    def make(
        script: str,
        name: str | None = None,
        rows: dict[str, list[tuple[object, ...]]] | None = None,
    ) -> str:
        path = tmp_path / (name or f"src{next(counter)}.db")
        conn = sqlite3.connect(path)
        try:
            conn.executescript(script)
            for insert, values in (rows or {}).items():
                conn.executemany(insert, values)
            conn.commit()
        finally:
            conn.close()
        return str(path)

    return make


_HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


@contextlib.contextmanager
def locked_by_other_process(path: str) -> Iterator[None]:
    """Hold an EXCLUSIVE lock on a SQLite file from another process (as the app would).

    It must be another process: POSIX file locks never conflict within one process, and the
    migration reads with apsw's own copy of SQLite, which cannot see this process's sqlite3
    locks either."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def write_in_other_process(path: str, script: str) -> None:
    """Run a SQL script against a SQLite file from another process and commit it."""
    code = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2])"
    subprocess.run([sys.executable, "-c", code, path, script], check=True, timeout=60)


@dataclass
class Result:
    """Exit code and output of one CLI invocation."""

    code: int
    out: str
    err: str

    @property
    def events(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.splitlines() if line.startswith("{")]

    def messages(self, event: str | None = None, level: str | None = None) -> list[str]:
        return [
            str(e["message"])
            for e in self.events
            if (event is None or e["event"] == event) and (level is None or e["level"] == level)
        ]

    @property
    def text(self) -> str:
        return self.out + self.err


def run_cli(*args: str) -> Result:
    """Run `python -m migration ARGS` in-process (JSON lines unless --log-format is given)."""
    argv = list(args)
    if "--log-format" not in argv:
        argv += ["--log-format", "json"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return Result(code, out.getvalue(), err.getvalue())


def run_subprocess(
    *args: str,
    env: dict[str, str] | None = None,
    user: str | None = None,
    timeout: float = 120,
    python: str | None = None,
    cwd: Path | None = None,
) -> Result:
    """Run the CLI as a real process (for kills, read-only users and exit codes end to end)."""
    proc = subprocess.run(
        [python or sys.executable, "-m", "migration", *args],
        cwd=cwd or ("/" if user else REPO),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        user=user,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def query(url: str, statement: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Rows of a query against the target."""
    with psycopg.connect(url) as conn:
        cur = conn.execute(statement, params or None)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def tables_in(url: str) -> list[str]:
    """User tables in the target's public schema."""
    return [
        str(r[0])
        for r in query(
            url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        )
    ]
