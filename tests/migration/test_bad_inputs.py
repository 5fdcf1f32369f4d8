"""Every bad input: its exit code, its message, and the target left untouched."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from migration import source
from migration.redact import redact
from tests.migration.conftest import (
    REPO,
    locked_by_other_process,
    query,
    run_cli,
    run_subprocess,
    tables_in,
    write_in_other_process,
)

PETS = """CREATE TABLE pets (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(50) NOT NULL,
                             price FLOAT NOT NULL);"""


def big_source(make_db, rows: int) -> str:
    return make_db(
        PETS,
        rows={
            "INSERT INTO pets VALUES (?, ?, ?)": [
                (i, f"pet {i}", i * 0.5) for i in range(1, rows + 1)
            ]
        },
    )


@pytest.mark.db
def test_missing_source_file_exits_2_and_names_it(tmp_path, target):
    res = run_cli("run", "--source", str(tmp_path / "nope.db"), "--target", target)
    assert res.code == 2
    assert res.messages("failed") == [f"source {tmp_path / 'nope.db'}: file does not exist"]
    assert tables_in(target) == []


@pytest.mark.db
def test_file_that_is_not_a_database_exits_2(tmp_path, target):
    path = tmp_path / "notes.db"
    path.write_text("hello, I am a text file, not SQLite\n" * 10)
    res = run_cli("run", "--source", str(path), "--target", target)
    assert res.code == 2
    assert res.messages("failed") == [
        f"source {path}: not a SQLite database (expected the header 'SQLite format 3')"
    ]
    assert tables_in(target) == []


@pytest.mark.db
def test_truncated_database_exits_2_and_writes_nothing(make_db, target):
    src = Path(big_source(make_db, 5000))
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    res = run_cli("run", "--source", str(src), "--target", target)
    assert res.code == 2
    assert f"source {src}" in res.messages("failed")[0]
    assert "malformed" in res.messages("failed")[0]
    assert tables_in(target) == []


@pytest.mark.db
def test_corrupt_pages_exit_2_and_write_nothing(make_db, target):
    src = Path(big_source(make_db, 5000))
    data = bytearray(src.read_bytes())
    data[8192:12288] = b"\xde\xad\xbe\xef" * 1024
    src.write_bytes(bytes(data))
    res = run_cli("run", "--source", str(src), "--target", target)
    assert res.code == 2
    assert "malformed" in res.messages("failed")[0] or "corrupt" in res.messages("failed")[0]
    assert tables_in(target) == []


@pytest.mark.db
def test_locked_source_exits_2_after_the_busy_timeout(make_db, target, monkeypatch):
    src = big_source(make_db, 10)
    monkeypatch.setattr(source, "BUSY_TIMEOUT_S", 0.2)
    with locked_by_other_process(src):
        res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 2
    assert res.messages("failed") == [
        f"source {src}: database is locked by another process (waited 0.2 s for a read snapshot)"
    ]
    assert tables_in(target) == []


def test_unreachable_target_exits_2_without_the_password(make_db):
    src = big_source(make_db, 10)
    res = run_cli(
        "run",
        "--source",
        src,
        "--target",
        "postgresql://app:S3cretPw@127.0.0.1:1/petstore?connect_timeout=2",
    )
    assert res.code == 2
    assert res.messages("failed")[0].startswith(
        "cannot connect to the target postgresql://app:***@127.0.0.1:1/petstore"
    )
    assert "S3cretPw" not in res.text


@pytest.mark.db
def test_wrong_password_exits_2_and_never_prints_it(make_db, pg_server, target):
    if pg_server.server is None:
        pytest.skip(
            "needs the embedded server, whose password this test knows"
        )  # external servers: covered elsewhere
    src = big_source(make_db, 10)
    bad = target.replace(pg_server.server.password, "Wr0ngPassw0rd")
    res = run_cli("run", "--source", src, "--target", bad)
    assert res.code == 2
    assert 'password authentication failed for user "postgres"' in res.messages("failed")[0]
    assert "Wr0ngPassw0rd" not in res.text
    assert tables_in(target) == []


def test_missing_target_is_a_usage_error(make_db, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    res = run_cli("run", "--source", big_source(make_db, 1))
    assert res.code == 2
    assert res.messages("failed") == ["no target: pass --target URL or set DATABASE_URL"]


@pytest.mark.db
def test_target_defaults_to_database_url(make_db, target, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", target)
    assert run_cli("run", "--source", big_source(make_db, 3)).code == 0
    assert query(target, "SELECT count(*) FROM pets") == [(3,)]


def test_unknown_option_is_a_usage_error():
    proc = subprocess.run(
        [sys.executable, "-m", "migration", "run", "--source", "x.db", "--bogus"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "unrecognized arguments: --bogus" in proc.stderr


def test_redact_masks_url_passwords_conninfo_and_known_secrets():
    text = (
        "failed: postgresql://u:p%40ss@h:5432/db?sslmode=verify-full host=h password=hunter22 "
        "user=u; also hunter22 and zz"
    )
    assert redact(text, ("hunter22",)) == (
        "failed: postgresql://u:***@h:5432/db?sslmode=verify-full host=h password=*** user=u; also "
        "*** and zz"
    )


@pytest.mark.db
def test_json_log_lines_are_all_json_and_carry_no_password(make_db, target):
    src = big_source(make_db, 100)
    res = run_subprocess(
        "run", "--source", src, "--target", target, "--verify", "--log-format", "json"
    )
    assert res.code == 0, res.text
    events = [json.loads(line) for line in res.out.splitlines()]
    assert {"ts", "level", "event", "message"} <= set(events[0])
    assert events[-1]["event"] == "done"
    password = target.split(":")[2].split("@")[0]
    assert password not in res.out + res.err


@pytest.mark.db
def test_kill_during_copy_leaves_target_unchanged_and_rerun_migrates(make_db, target):
    src = big_source(make_db, 30_000)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "migration",
            "run",
            "--source",
            src,
            "--target",
            target,
            "--verify",
            "--log-format",
            "json",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PETSTORE_MIGRATION_PAUSE_AT_ROW": "10000"},
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if json.loads(line)["event"] == "paused":
                break
        else:
            pytest.fail(
                f"the run never reached the pause: {proc.stderr.read() if proc.stderr else ''}"
            )
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 20
    while query(
        target,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> "
        "pg_backend_pid()",
    ) != [(0,)]:
        assert time.monotonic() < deadline, "the killed run's backend did not go away"
        time.sleep(0.1)
    assert tables_in(target) == []
    assert query(target, "SELECT to_regclass('petstore_migration.runs')") == [(None,)]
    rerun = run_cli("run", "--source", src, "--target", target, "--verify")
    assert rerun.code == 0, rerun.text
    assert query(target, "SELECT count(*), max(id) FROM pets") == [(30_000, 30_000)]


def _interpreter_for_other_users() -> tuple[str, dict[str, str]]:
    """This Python, or the same version elsewhere, runnable by an unprivileged user (a pyenv
    under /root is not), with this environment's packages on its path."""
    candidates = [
        os.path.realpath(sys.executable),
        f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}",
    ]
    for exe in candidates:
        if Path(exe).exists() and all(p.stat().st_mode & 0o001 for p in Path(exe).parents):
            return exe, {
                "PYTHONPATH": os.pathsep.join([sysconfig.get_paths()["purelib"], str(REPO)])
            }
    pytest.skip(
        f"no Python {sys.version_info.major}.{sys.version_info.minor} executable by other users"
    )


@pytest.fixture
def other_users_dir() -> Iterator[Path]:
    """A directory another user can reach: our own, under the system temp directory (which
    every user can traverse), so no ancestor's permissions are touched. pytest's basetemp is
    0700 and pytest resets it to 0700 whenever another worker first asks for a tmp_path, so
    widening it races with the other workers."""
    path = Path(tempfile.mkdtemp(prefix="petstore-other-user-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for sub in path.rglob("*"):
            if sub.is_dir():
                sub.chmod(0o755)
        shutil.rmtree(path)


def _wal_db(path: Path, rows: int, checkpoint: bool) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(PETS)
    conn.executemany(
        "INSERT INTO pets VALUES (?, ?, ?)", [(i, f"p{i}", 1.0) for i in range(1, rows + 1)]
    )
    if checkpoint:
        conn.close()  # the last connection checkpoints and removes -wal and -shm
        return
    clone = path.with_name("crashed.db")
    shutil.copy(path, clone)
    shutil.copy(
        str(path) + "-wal", str(clone) + "-wal"
    )  # as if the pod died with un-checkpointed changes
    conn.close()


@pytest.mark.db
def test_wal_source_on_read_only_directory_opens_immutable_and_says_so(other_users_dir, target):
    if os.geteuid() != 0:
        pytest.skip(
            "needs root to run the CLI as another, unprivileged user"
        )  # CI and this machine run as root
    ro = other_users_dir / "ro"
    ro.mkdir()
    _wal_db(ro / "pets.db", 50, checkpoint=True)
    _wal_db(ro / "live.db", 5, checkpoint=False)
    assert (ro / "pets.db").read_bytes()[
        18:20
    ] == b"\x02\x02"  # header: WAL mode (read without opening it)
    assert sorted(p.name for p in ro.iterdir()) == [
        "crashed.db",
        "crashed.db-wal",
        "live.db",
        "pets.db",
    ]
    for f in ro.iterdir():
        f.chmod(0o444)
    ro.chmod(0o555)
    python, env = _interpreter_for_other_users()
    res = run_subprocess(
        "run",
        "--source",
        str(ro / "pets.db"),
        "--target",
        target,
        "--verify",
        user="embedded_postgres",
        python=python,
        env=env,
    )
    assert res.code == 0, res.text
    warnings = [
        json.loads(line)["message"] for line in res.out.splitlines() if '"level": "warning"' in line
    ]
    assert any("opened with immutable=1" in w for w in warnings), res.out
    assert query(target, "SELECT count(*) FROM pets") == [(50,)]
    assert sorted(p.name for p in ro.iterdir()) == [
        "crashed.db",
        "crashed.db-wal",
        "live.db",
        "pets.db",
    ]  # nothing written
    with psycopg.connect(target) as conn:
        conn.execute("DROP SCHEMA petstore_migration CASCADE; DROP TABLE pets")
    crashed = run_subprocess(
        "run",
        "--source",
        str(ro / "crashed.db"),
        "--target",
        target,
        user="embedded_postgres",
        python=python,
        env=env,
    )
    assert crashed.code == 2
    assert "un-checkpointed changes in crashed.db-wal on a read-only directory" in crashed.out
    assert tables_in(target) == []


@pytest.mark.db
def test_run_writes_nothing_next_to_the_source_or_in_the_working_directory(
    make_db, tmp_path_factory, target
):
    src = Path(big_source(make_db, 50))
    workdir = tmp_path_factory.mktemp("cwd")
    before = sorted(p.name for p in src.parent.iterdir())
    res = run_subprocess("run", "--source", str(src), "--target", target, "--verify", cwd=workdir)
    assert res.code == 0, res.text
    events = [json.loads(line)["event"] for line in res.out.splitlines()]  # not a TTY: JSON
    assert events[-1] == "done"
    assert sorted(p.name for p in src.parent.iterdir()) == before
    assert list(workdir.iterdir()) == []


@pytest.mark.db
def test_verify_meets_invalid_utf8_in_a_source_and_exits_1_naming_the_file(make_db, target):
    src = big_source(make_db, 10)
    assert run_cli("run", "--source", src, "--target", target).code == 0
    write_in_other_process(src, "UPDATE pets SET name = CAST(X'61ff62' AS TEXT) WHERE id = 7")
    res = run_cli("verify", "--source", src, "--target", target)
    assert res.code == 1
    assert res.messages("failed") == [
        (
            f"source {src}: a TEXT value is not valid UTF-8 (invalid start byte at byte 1); "
            "`plan` lists every such row"
        )
    ]
    plan = run_cli("plan", "--source", src)
    assert plan.code == 1
    assert any(
        "table 'pets' row 7 column 'name': text is not valid UTF-8" in m
        for m in plan.messages(level="error")
    ), plan.text
