"""Drive the example apps the way their teams would: seed SQLite through the ORM, migrate with
the CLI (`python -m migration run --verify`, a real process), then run the app's own suite on
PostgreSQL and compare every object the ORM reads with its SQLite read.

Each (app, mode) is computed once per test session, under a file lock in the directory that
every xdist worker shares, and cached as JSON, so the per-check tests cost nothing extra.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import functools
import json
import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[2]
MODES = ("sqlite", "postgres", "create", "existing")
SUITE_TIMEOUT_S = 600  # one app suite on a loaded 2-core machine takes ~10 s
DIFFS_SHOWN = 20


@dataclass(frozen=True)
class App:
    """How to seed, snapshot, build and test one example app."""

    name: str
    url_env: str  # the app's database URL variable
    prepared_env: str  # =1: the suite uses the data already in the database
    build_schema: list[str]  # argv (after python) that builds the app's schema on $url_env
    existing_args: tuple[str, ...] = ()  # extra `run` options for --schema existing
    create_args: tuple[str, ...] = ()  # extra `run` options for --schema create (docs/migration.md)
    extensions: tuple[str, ...] = ()  # created by the database owner before --schema create

    @property
    def suite(self) -> Path:
        return REPO / "examples" / self.name / "tests"

    def checks(self) -> list[str]:
        """The suite's test names, read from its source (no import, no database)."""
        names: list[str] = []
        for path in sorted(self.suite.glob("test_*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names += [
                node.name
                for node in tree.body
                if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
            ]
        return names


APPS = {
    "wiki": App(
        "wiki",
        "WIKI_DATABASE_URL",
        "WIKI_PREPARED",
        ["-m", "examples.wiki.db"],  # metadata.create_all
        create_args=(
            "--cast",
            "authors.id=uuid",
            "pages.author_id=uuid",
            "pages.status=page_status",
            "authors.email=citext",
            "--enum",
            "page_status=draft,published,archived",
        ),
        extensions=("citext",),
    ),
    "library": App(
        "library",
        "LIBRARY_DATABASE_URL",
        "LIBRARY_PREPARED",
        ["-m", "examples.library.manage", "migrate", "--verbosity", "0"],
        # `migrate` seeds django_migrations, content types and permissions: replaced by the
        # source's rows (the same migrations wrote them), the app's definitions kept
        ("--replace",),
        create_args=(
            "--cast-declared",
            "datetime=timestamptz",
            "time=time",
            "char(32)=uuid",
            "char(39)=inet",
            "--cast",
            "catalog_book.price=numeric(8,2)",
            "catalog_book.reading_time=interval",
            "catalog_loan.period=interval",
        ),
    ),
}


def _env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without pytest's and the apps' own variables, plus `extra`."""
    apps = {v for app in APPS.values() for v in (app.url_env, app.prepared_env)}
    keep = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k not in apps}
    return {**keep, "PYTHONPATH": str(REPO), **extra}


def python(
    argv: list[str], env: dict[str, str], timeout: float = SUITE_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run `python ARGV` from the repository root."""
    return subprocess.run(
        [sys.executable, *argv],
        cwd=REPO,
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def checked(proc: subprocess.CompletedProcess[str], what: str) -> str:
    """stdout of a step that must succeed (else an error with its output)."""
    if proc.returncode != 0:
        raise RuntimeError(
            f"{what} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def create_extensions(url: str, names: tuple[str, ...]) -> None:
    """What the database owner does before `--schema create` (the tool creates no extension)."""
    with psycopg.connect(url, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name)))


def seed(app: App, url: str) -> None:
    """Build the schema the app's own way and fill it through its ORM."""
    checked(python(["-m", f"examples.{app.name}.seed", url], {}), f"{app.name} seed")


def snapshot(app: App, url: str) -> dict[str, Any]:
    """Every object as the app's ORM reads it (canonical form)."""
    out = checked(python(["-m", f"examples.{app.name}.snapshot", url], {}), f"{app.name} snapshot")
    return dict(json.loads(out))


def run_suite(app: App, url: str | None, prepared: bool, report: Path) -> dict[str, str]:
    """The app's own suite: {test name: "passed" or "failure|error|skipped: first line"}."""
    env = {app.url_env: url} if url else {}
    if prepared:
        env[app.prepared_env] = "1"
    python(
        [
            "-m",
            "pytest",
            str(app.suite),
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            f"--junitxml={report}",
        ],
        env,
    )
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314 - our own report
        name = case.get("name", "")
        problem = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        if problem is None:
            outcomes[name] = "passed"
        else:
            message = (problem.get("message") or "").splitlines()
            outcomes[name] = f"{problem.tag}: {message[0] if message else ''}"[:500]
    return outcomes


def migrate(
    sqlite_file: Path, url: str, mode: str, extra: tuple[str, ...]
) -> subprocess.CompletedProcess[str]:
    """`python -m migration run --verify --schema MODE` as the Job runs it (the target URL in
    $DATABASE_URL, never in the process list)."""
    argv = [
        "-m",
        "migration",
        "run",
        "--source",
        str(sqlite_file),
        "--verify",
        "--log-format",
        "json",
    ]
    if mode != "create" or schema_flag():
        argv += ["--schema", mode]
    return python([*argv, *extra], {"DATABASE_URL": url})


@functools.cache
def schema_flag() -> bool:
    """Whether this CLI has `--schema` (before it, `run` always created the schema)."""
    return "--schema" in checked(python(["-m", "migration", "run", "--help"], {}), "run --help")


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Differences between two snapshots: table, row, attribute, SQLite read, PostgreSQL read."""
    out: list[str] = []
    for table in sorted(set(before) | set(after)):
        rows_a, rows_b = before.get(table, []), after.get(table, [])
        if len(rows_a) != len(rows_b):
            out.append(f"{table}: {len(rows_a)} objects on SQLite, {len(rows_b)} on PostgreSQL")
            continue
        for i, (ra, rb) in enumerate(zip(rows_a, rows_b, strict=True)):
            for (attr, va), (_, vb) in zip(ra, rb, strict=True):
                if va != vb:
                    out.append(f"{table}[{i}].{attr}: SQLite {va} != PostgreSQL {vb}")
    return out


@contextlib.contextmanager
def fresh_database(admin_url: str, url_for: Callable[[str], str]) -> Iterator[str]:
    """A new, empty database on the test server (dropped afterwards)."""
    name = f"ex_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield url_for(name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def compute(
    app: App, mode: str, work: Path, admin_url: str, url_for: Callable[[str], str]
) -> dict[str, Any]:
    """Everything the tests assert about one app in one mode."""
    work.mkdir(parents=True, exist_ok=True)
    report = work / "suite.xml"
    result: dict[str, Any] = {"app": app.name, "mode": mode}
    if mode == "sqlite":
        result["checks"] = run_suite(app, None, prepared=False, report=report)
        return result
    with fresh_database(admin_url, url_for) as url:
        if mode == "postgres":
            result["checks"] = run_suite(app, url, prepared=False, report=report)
            return result
        source = work / f"{app.name}.db"
        source.unlink(missing_ok=True)
        seed(app, f"sqlite:///{source}")
        before = snapshot(app, f"sqlite:///{source}")
        extra: tuple[str, ...] = ()
        if mode == "existing":
            checked(python(app.build_schema, {app.url_env: url}), f"{app.name} schema")
            extra = app.existing_args
        if mode == "create":
            create_extensions(url, app.extensions)
            extra = app.create_args
        proc = migrate(source, url, mode, extra)
        result["migrate"] = {"code": proc.returncode, "output": (proc.stdout + proc.stderr)[-4000:]}
        if proc.returncode != 0:
            result["checks"] = dict.fromkeys(app.checks(), "not run: the migration failed")
            result["diffs"] = ["not compared: the migration failed"]
            return result
        result["diffs"] = diff(before, snapshot(app, url))[:DIFFS_SHOWN]
        result["checks"] = run_suite(app, url, prepared=True, report=report)
    return result


def cached(shared: Path, app: App, mode: str, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`make()` once per test session across xdist workers (file lock + JSON cache)."""
    shared.mkdir(parents=True, exist_ok=True)
    path = shared / f"{app.name}-{mode}.json"
    with (shared / f"{app.name}-{mode}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            path.write_text(json.dumps(make()), encoding="utf-8")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def counts(result: dict[str, Any]) -> str:
    """`passed/total` of a result's checks."""
    checks = result["checks"]
    return f"{sum(v == 'passed' for v in checks.values())}/{len(checks)}"
