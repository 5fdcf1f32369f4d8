"""Peak memory of the migration on large values: is it bounded by the data, not the batch?

    python bench/memory.py            # print the table
    python bench/memory.py --check    # ... and exit 1 if a run is over its bound
    python bench/memory.py --commands plan   # only some of: plan, run, run --verify

Builds, under a temporary directory, the two files of issue 9 point 4 (one 200 MB blob; 5,000
rows of 150 KB of text), starts the embedded PostgreSQL (migration.embedded), and runs
`python -m migration plan` and `run` on each, `run` with and without `--verify`, each into a
fresh database,
as a subprocess measured by bench/measure.py (the kernel's peak RSS of the process, via
/usr/bin/time, and the sampled peak of its process tree). The bound is the issue's: at most
100 MB plus twice the largest single value.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import measure
import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from migration import embedded  # noqa: E402 - needs the path above

MB = 1024 * 1024
BASE_MB = 100  # the allowance on top of the values: interpreter, modules, buffers
VALUE_FACTOR = 2  # ... plus this many times the largest single value
CHUNK = 4 * MB  # the generator writes large values through SQLite's blob API in these pieces
TIMEOUT_S = 600
COMMANDS = ("plan", "run", "run --verify")  # plan: the dry run reads every value too


@dataclass(frozen=True)
class Case:
    """One source file: a name, how to build it, and its largest single value in bytes."""

    name: str
    build: Callable[[Path], None]
    largest: int


def _random_bytes(n: int, seed: int) -> bytes:
    """Incompressible but cheap: a block of os.urandom repeated with a varying first byte."""
    block = os.urandom(min(n, MB))
    out = bytearray()
    while len(out) < n:
        out += bytes([seed % 256]) + block[1 : n - len(out)]
        seed += 1
    return bytes(out[:n])


def one_blob(size: int) -> Callable[[Path], None]:
    """A table with one row holding a `size`-byte BLOB, written in pieces (the generator
    itself stays small)."""

    def build(path: Path) -> None:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, name TEXT, data BLOB)")
        conn.execute("INSERT INTO blobs VALUES (1, 'big', zeroblob(?))", (size,))
        conn.commit()
        with conn.blobopen("blobs", "data", 1) as blob:
            for offset in range(0, size, CHUNK):
                blob.write(_random_bytes(min(CHUNK, size - offset), offset))
        conn.commit()
        conn.close()

    return build


def many_values(rows: int, size: int, blob: bool) -> Callable[[Path], None]:
    """`rows` rows of `size` bytes each, ASCII text or a BLOB (plus a key and a short column)."""

    def build(path: Path) -> None:
        conn = sqlite3.connect(path)
        kind = "BLOB" if blob else "TEXT"
        conn.execute(f"CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, body {kind})")
        base = _random_bytes(size, 7).hex()[:size]
        for start in range(0, rows, 100):
            values = [(i, f"{i:08d}" + base[8:]) for i in range(start, min(rows, start + 100))]
            conn.executemany(
                "INSERT INTO docs VALUES (?, ?, ?)",
                [(i, f"doc {i}", v.encode() if blob else v) for i, v in values],
            )
        conn.commit()
        conn.close()

    return build


def one_text(size: int) -> Callable[[Path], None]:
    """A table with one row holding `size` characters of ASCII text, written in pieces."""

    def build(path: Path) -> None:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE texts (id INTEGER PRIMARY KEY, name TEXT, body TEXT)")
        conn.execute("INSERT INTO texts VALUES (1, 'big', CAST(zeroblob(?) AS TEXT))", (size,))
        conn.commit()
        with conn.blobopen("texts", "body", 1) as blob:
            for offset in range(0, size, CHUNK):
                n = min(CHUNK, size - offset)
                blob.write(_random_bytes(n // 2 + 1, offset).hex().encode()[:n])
        conn.commit()
        conn.close()

    return build


CASES = [
    Case("one 200 MB blob", one_blob(200 * MB), 200 * MB),
    Case("one 200 MB text", one_text(200 * MB), 200 * MB),
    Case("5,000 rows of 150 KB text", many_values(5_000, 150 * 1024, blob=False), 150 * 1024),
    Case("5,000 rows of 150 KB blob", many_values(5_000, 150 * 1024, blob=True), 150 * 1024),
]


def bound_mb(case: Case) -> float:
    return BASE_MB + VALUE_FACTOR * case.largest / MB


def fresh_database(server: embedded.Server, name: str) -> str:
    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return server.url(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a run is over its bound")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (files and logs)")
    parser.add_argument(
        "--commands",
        default=",".join(COMMANDS),
        help=f"comma-separated, of: {', '.join(COMMANDS)} (default: all)",
    )
    args = parser.parse_args(argv)
    commands = [c.strip() for c in args.commands.split(",")]
    if not set(commands) <= set(COMMANDS):
        parser.error(f"--commands: expected some of {', '.join(COMMANDS)}")
    work = Path(tempfile.mkdtemp(prefix="petstore-memory-"))
    server = embedded.start()  # its own directory: the server user must reach it
    over = failed = 0
    print(
        f"{'case':<28} {'command':<14} {'exit':>4} {'wall s':>7} {'peak RSS MB':>12} "
        f"{'bound MB':>9}  result"
    )
    try:
        for i, case in enumerate(CASES):
            path = work / f"case{i}.sqlite"
            case.build(path)
            for n, command in enumerate(commands):
                url = fresh_database(server, f"memory_{i}_{n}")
                cmd = [sys.executable, "-m", "migration", *command.split(" ", 1)[:1]]
                cmd += ["--source", str(path), "--log-format", "json", *command.split(" ")[1:]]
                env = {**os.environ, "DATABASE_URL": url}
                sample = measure.run_measured(
                    cmd,
                    log=work / f"case{i}-{n}.log",
                    timeout_s=TIMEOUT_S,
                    env=env,
                    cwd=REPO,
                )
                bound = bound_mb(case)
                ok = sample.returncode == 0 and sample.peak_rss_mb <= bound
                over += sample.peak_rss_mb > bound
                failed += sample.returncode != 0
                result = "ok" if ok else ("OVER" if sample.returncode == 0 else "FAILED")
                print(
                    f"{case.name:<28} {command:<14} {sample.returncode:>4} {sample.wall_s:>7.2f} "
                    f"{sample.peak_rss_mb:>12.1f} {bound:>9.0f}  {result}",
                    flush=True,
                )
                if sample.returncode != 0:
                    print("  " + "\n  ".join(sample.log.read_text().splitlines()[-5:]))
    finally:
        server.stop(delete=not args.keep)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"bound: {BASE_MB} MB + {VALUE_FACTOR} x the largest single value (issue 9 point 4)")
    if args.check and (over or failed):
        print(f"FAIL: {over} run(s) over the bound, {failed} run(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
