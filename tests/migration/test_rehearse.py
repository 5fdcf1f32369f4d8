"""The rehearsal's lifecycle and the embedded server's footprint: nothing outside the server's
own work directory changes permission, the printed stop command works where it is printed, no
work directory is left behind, and the sample generator streams."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from migration import embedded
from tests.migration.conftest import REPO, run_subprocess


def _modes(paths: list[Path]) -> dict[Path, int]:
    return {p: p.stat().st_mode for p in paths}


def _ancestors(path: Path) -> list[Path]:
    return [path, *path.parents]


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory every user may traverse (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="petstore-test-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.db
def test_starting_a_server_changes_no_permission_outside_its_work_directory(scratch):
    venv = Path(sys.prefix)
    watched = sorted(
        {*_ancestors(embedded.bin_dir()), *_ancestors(venv), *_ancestors(scratch), *REPO.parents}
    )
    before = _modes(watched)
    server = embedded.start(scratch)
    try:
        with psycopg.connect(server.url()) as conn:
            row = conn.execute("SELECT 1").fetchone()
        assert row == (1,)
        assert _modes(watched) == before
        if os.geteuid() == 0:  # the server itself never runs as root
            assert server.pgdata.stat().st_uid != 0
            assert server.run_as == embedded.SYSTEM_USER
            assert server.binary("postgres").is_relative_to(server.root)
    finally:
        server.stop(delete=True)
    assert list(scratch.iterdir()) == []


@pytest.mark.db
@pytest.mark.skipif(os.geteuid() != 0, reason="only root switches to the server user")
def test_a_parent_other_users_cannot_traverse_is_refused_not_opened_up(scratch):
    private = scratch / "private"
    private.mkdir(mode=0o700)
    inner = private / "inner"
    inner.mkdir(mode=0o755)
    with pytest.raises(RuntimeError, match=r"cannot reach .*: .*private lets no other user"):
        embedded.start(inner)
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert list(inner.iterdir()) == []  # the failed server's directory is gone too


def _rehearsals(tmpdir: Path) -> list[str]:
    return sorted(p.name for p in tmpdir.iterdir() if p.name.startswith("petstore-"))


@pytest.mark.db
@pytest.mark.slow
def test_kept_rehearsal_prints_a_stop_command_that_works_from_another_directory(scratch):
    res = run_subprocess(
        "rehearse", "--sample", "--rows", "50", "--keep", env={"TMPDIR": str(scratch)}
    )
    assert res.code == 0, res.text
    stop = re.search(r"^  stop it:  (.+)$", res.out, re.MULTILINE)
    port = re.search(r"127\.0\.0\.1:(\d+)/petstore", res.out)
    assert stop, res.out
    assert port, res.out
    assert "sudo" not in stop.group(1)
    [workdir] = _rehearsals(scratch)
    done = subprocess.run(
        ["/bin/sh", "-c", stop.group(1)], cwd="/", capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"stopped 1 server(s) and deleted {scratch / workdir}" in done.stdout
    assert _rehearsals(scratch) == []
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"postgresql://postgres@127.0.0.1:{port.group(1)}/petstore").close()


@pytest.mark.db
@pytest.mark.slow
def test_failed_kept_rehearsal_says_how_to_connect_and_stop(scratch, make_db):
    bad = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, flag BOOLEAN); INSERT INTO t VALUES (1, 7);"
    )
    res = run_subprocess("rehearse", "--source", bad, "--keep", env={"TMPDIR": str(scratch)})
    assert res.code == 1, res.text
    assert "Rehearsal failed. The server keeps running for inspection:" in res.out
    stop = re.search(r"^  stop it:  (.+)$", res.out, re.MULTILINE)
    assert stop, res.out
    subprocess.run(["/bin/sh", "-c", stop.group(1)], cwd="/", check=True, capture_output=True)
    assert _rehearsals(scratch) == []


@pytest.mark.db
@pytest.mark.slow
def test_rehearsal_without_keep_leaves_no_directory_behind_even_when_it_fails(scratch, make_db):
    bad = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, flag BOOLEAN); INSERT INTO t VALUES (1, 7);"
    )
    res = run_subprocess("rehearse", "--source", bad, env={"TMPDIR": str(scratch)})
    assert res.code == 1, res.text
    assert "Rehearsal failed. The throwaway server is stopped and deleted now" in res.out
    assert _rehearsals(scratch) == []


def test_rehearsal_takes_the_skips_run_will_be_given(scratch, make_db):
    src = make_db(
        "CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT, "
        "h TEXT GENERATED ALWAYS AS (hex(name)) STORED); "
        "INSERT INTO pets (id, name) VALUES (1, 'Rex');"
    )
    env = {"TMPDIR": str(scratch)}
    refused = run_subprocess("rehearse", "--source", src, env=env)
    assert refused.code == 1, refused.text
    assert "--skip generated:pets.h" in refused.text
    res = run_subprocess("rehearse", "--source", src, "--skip", "generated:pets.h", env=env)
    assert res.code == 0, res.text
    assert "Rehearsal succeeded" in res.out, res.out
    assert _rehearsals(scratch) == []


def test_stop_refuses_a_directory_that_is_not_a_rehearsal(scratch):
    res = run_subprocess("rehearse", "--stop", str(scratch))
    assert res.code == 2
    assert "expected a rehearsal work directory" in res.err
    assert scratch.is_dir()


@pytest.mark.slow
def test_sample_generator_streams_with_memory_of_one_chunk(tmp_path):
    rows = 400_000  # a list of them would hold ~120 MB; one 50,000-row chunk ~15 MB
    code = (
        "import resource, sys; from pathlib import Path; from migration import rehearse; "
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
        f"rehearse.make_sample(Path(sys.argv[1]), {rows}); "
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    grown_mb = int(done.stdout.strip())
    assert grown_mb < 40, f"peak RSS grew by {grown_mb} MB while writing {rows} rows"
    with sqlite3.connect(tmp_path / "petstore-sample.db") as conn:
        assert conn.execute("SELECT count(*), max(id) FROM pets").fetchone() == (rows, rows)
        assert conn.execute("SELECT count(*) FROM owners").fetchone() == (rows // 10,)


PARIS_NAIVE = (
    "CREATE TABLE events (id INTEGER PRIMARY KEY, at TIMESTAMPTZ);"
    "INSERT INTO events VALUES (1, '2024-07-01 12:00:00'), (2, '2024-01-15 08:30:00');"
)


@pytest.mark.db
@pytest.mark.slow
def test_rehearsal_reads_naive_datetimes_in_the_source_timezone(scratch, make_db):
    src = make_db(PARIS_NAIVE)
    res = run_subprocess(
        "rehearse", "--source", src, "--source-timezone", "Europe/Paris", "--keep",
        env={"TMPDIR": str(scratch)},
    )  # fmt: skip
    stop = re.search(r"^  stop it:  (.+)$", res.out, re.MULTILINE)
    assert stop, res.text
    try:
        assert res.code == 0, res.text
        url = re.search(r"(postgresql://postgres@127\.0\.0\.1:\d+/petstore)", res.out)
        secret = re.search(r"\(password in (\S+)\)", res.out)
        assert url, res.out
        assert secret, res.out
        password = Path(secret.group(1)).read_text().strip()
        with psycopg.connect(url.group(1), password=password) as conn:
            rows = conn.execute("SELECT id, at FROM events ORDER BY id").fetchall()
    finally:
        subprocess.run(["/bin/sh", "-c", stop.group(1)], cwd="/", check=True, capture_output=True)
    assert rows == [  # 12:00 in Paris in July is 10:00 UTC; 08:30 in January is 07:30 UTC
        (1, dt.datetime(2024, 7, 1, 10, 0, tzinfo=dt.UTC)),
        (2, dt.datetime(2024, 1, 15, 7, 30, tzinfo=dt.UTC)),
    ]
    assert _rehearsals(scratch) == []


def test_rehearsal_refuses_an_unknown_source_timezone_before_starting_a_server(scratch, make_db):
    src = make_db(PARIS_NAIVE)
    res = run_subprocess(
        "rehearse", "--source", src, "--source-timezone", "Mars/Olympus",
        env={"TMPDIR": str(scratch)},
    )  # fmt: skip
    assert res.code == 2, res.text
    assert "--source-timezone Mars/Olympus: unknown time zone 'Mars/Olympus'" in res.text
    assert "starting a throwaway PostgreSQL" not in res.text
    assert _rehearsals(scratch) == []


@pytest.mark.db
@pytest.mark.slow
def test_a_skipped_wall_time_in_the_source_timezone_fails_the_rehearsal(scratch, make_db):
    src = make_db(  # 02:30 on 2024-03-31 does not exist in Paris (clocks jump 02:00 -> 03:00)
        "CREATE TABLE events (id INTEGER PRIMARY KEY, at TIMESTAMPTZ);"
        "INSERT INTO events VALUES (1, '2024-03-31 02:30:00');"
    )
    env = {"TMPDIR": str(scratch)}
    assert run_subprocess("rehearse", "--source", src, env=env).code == 0
    res = run_subprocess("rehearse", "--source", src, "--source-timezone", "Europe/Paris", env=env)
    assert res.code == 1, res.text
    assert "2024-03-31 02:30:00" in res.text, res.text
    assert _rehearsals(scratch) == []
