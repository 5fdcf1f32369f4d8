"""Attacks on run --verify's stream form (migration/chunked.py): interrupts, kills and lost
connections in the middle of a chunked load, server-side refusals in a later chunk, values at
chunk boundaries, many tables of several forms in one run, a non-UTF-8 client encoding. Each is
compared with what a plain run does."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from migration import chunked, load, source
from tests.migration.conftest import REPO, SecretURL, query, run_cli, tables_in
from tests.migration.test_verify_wire import WIRE_TABLE, recorded_checksum

pytestmark = pytest.mark.db

INSERT = "INSERT INTO w VALUES (?, ?, ?, ?, ?, ?)"
ROWS = [(i, f"pet {i}", "n" * (i % 7), i / 3, bytes([i % 256]), i % 2) for i in range(1, 301)]


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of about 2 KB, read in batches of 20 rows: a few hundred rows make many chunks."""
    monkeypatch.setattr(chunked, "CHUNK_BYTES", 2048)
    monkeypatch.setattr(chunked, "PIECE_BYTES", 512)
    monkeypatch.setattr(load, "BATCH_ROWS", 20)


def without_ts(events: list[dict[str, object]], kind: str) -> list[dict[str, object]]:
    return [
        {k: v for k, v in e.items() if k not in ("ts", "elapsed_s")}
        for e in events
        if e["event"] == kind
    ]


def backends(url: str) -> list[tuple[object, ...]]:
    return query(
        url,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()",
    )


# -- a lost connection ------------------------------------------------------------------------
def test_a_connection_lost_mid_chunk_is_a_lost_connection_not_bad_data(
    make_db, target, small_chunks, monkeypatch: pytest.MonkeyPatch
):
    """The run's backend is terminated from another session while the load is paused in the
    middle of a later chunk (earlier chunks stored): the run ends (no hang) as a plain run does,
    exit 2, naming a lost connection, not a value, and nothing is left in the target."""
    monkeypatch.setenv(load.PAUSE_ENV, "150")

    def terminate(_seconds: float) -> None:
        for (pid,) in backends(target):
            query(target, "SELECT pg_terminate_backend(%s)", (pid,))

    monkeypatch.setattr(load.time, "sleep", terminate)
    path = make_db(WIRE_TABLE, rows={INSERT: ROWS})
    plain, _checked = compare_plain_and_verified(path, target)
    assert plain.code == 2, plain.text  # type: ignore[attr-defined]
    assert without_ts(plain.events, "problem") == []  # type: ignore[attr-defined]
    (failed,) = plain.messages("failed")  # type: ignore[attr-defined]
    assert failed.startswith("lost the connection to the target"), failed
    assert "(load.copy_rows)" in failed, failed
    assert tables_in(target) == []


# -- a server-side refusal in a later chunk ----------------------------------------------------
def large_bad_utf8(make_db, at: int) -> str:
    """The `w` table with 300 rows whose row `at` holds a note larger than STREAM_BYTES (so it
    is streamed as the file's bytes) that is not valid UTF-8 in its middle."""
    path = make_db(WIRE_TABLE, rows={INSERT: ROWS})
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        blob = b"a" * (source.STREAM_BYTES + 10) + b"\xff\xfe" + b"b" * 10
        conn.execute("UPDATE w SET note = CAST(? AS TEXT) WHERE id = ?", (blob, at))
    return path


def compare_plain_and_verified(path: str, target: str, *extra: str) -> list[object]:
    results = [
        run_cli("run", "--source", path, "--target", target, *extra, *verified)
        for verified in ((), ("--verify",))
    ]
    plain, checked = results
    assert plain.code == checked.code, (plain.text, checked.text)
    assert without_ts(plain.events, "problem") == without_ts(checked.events, "problem")
    assert plain.messages("failed") == checked.messages("failed")
    return [plain, checked]


def test_invalid_utf8_in_a_streamed_value_of_a_later_chunk_is_reported_as_without_verify(
    make_db, target, small_chunks
):
    plain, _checked = compare_plain_and_verified(large_bad_utf8(make_db, 250), target)
    assert plain.code != 0, plain.text  # type: ignore[attr-defined]
    assert tables_in(target) == []


def test_a_statement_timeout_in_a_later_chunk_is_reported_as_without_verify(
    make_db, target, small_chunks, monkeypatch: pytest.MonkeyPatch
):
    """statement_timeout (from the URL's options) cancels the COPY that is open while the load
    is paused in the middle of a later chunk: the same failure as a plain run's."""
    monkeypatch.setenv(load.PAUSE_ENV, "150")
    real_sleep = time.sleep
    monkeypatch.setattr(load.time, "sleep", lambda _s: real_sleep(1.0))
    path = make_db(WIRE_TABLE, rows={INSERT: ROWS})
    url = SecretURL(target + "?options=-c%20statement_timeout%3D300")
    plain, _checked = compare_plain_and_verified(path, url)
    assert plain.code == 2, plain.text  # type: ignore[attr-defined]
    assert "57014" in plain.messages("failed")[0]  # type: ignore[attr-defined]
    assert tables_in(target) == []


# -- interrupts and kills ----------------------------------------------------------------------
def pets_source(make_db, rows: int) -> str:
    return make_db(
        "CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price FLOAT NOT NULL)",
        rows={
            "INSERT INTO pets VALUES (?, ?, ?)": [
                (i, f"pet {i:09d}", i * 0.5) for i in range(1, rows + 1)
            ]
        },
    )


@contextlib.contextmanager
def paused_run(src: str, target: str, at: int, *extra: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "migration", "run", "--source", src, "--target", target,
         "--log-format", "json", *extra],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), load.PAUSE_ENV: str(at)},
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if json.loads(line)["event"] == "paused":
                break
        else:
            pytest.fail(f"never paused: {proc.stderr.read() if proc.stderr else ''}")
        yield proc
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("at", [1, 150_000, 299_000])
def test_sigint_during_a_chunked_load_ends_interrupted_with_nothing_committed(make_db, target, at):
    src = pets_source(make_db, 300_000)  # ~8 MB of rows: two chunks and a piece
    with paused_run(src, target, at, "--verify") as proc:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [e["message"] for e in events if e["event"] == "failed"] == [
        "interrupted; nothing was committed"
    ]
    assert "Traceback" not in err, err
    deadline = time.monotonic() + 20
    while backends(target):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert tables_in(target) == []


# -- a client encoding other than UTF-8 ----------------------------------------------------------
@pytest.mark.parametrize("verified", [(), ("--verify",)])
def test_a_latin1_client_encoding_stores_a_streamed_text_exactly(make_db, target, verified):
    """A TEXT larger than STREAM_BYTES is streamed as the file's UTF-8 bytes: with the URL's
    client_encoding LATIN1 they must be recoded, not stored as mojibake ('Ã©' for 'é'); with
    --verify the table is compared canonically, not in the stream or wire form."""
    big = "é" * (source.STREAM_BYTES // 2 + 10) + "ÿ"  # > STREAM_BYTES in UTF-8: streamed
    rows = [(1, "a", big, 1.0, b"", 1), (2, "b", "ü", 2.0, b"", 0)]
    path = make_db(WIRE_TABLE, rows={INSERT: rows})
    url = SecretURL(target + "?client_encoding=LATIN1")
    res = run_cli("run", "--source", path, "--target", url, *verified)
    assert res.code == 0, res.text
    stored = query(
        target, "SELECT id, length(note), right(note, 3), octet_length(note) FROM w ORDER BY id"
    )
    assert stored == [(1, len(big), "ééÿ", 2 * len(big)), (2, 1, "ü", 2)]
    if verified:
        assert [e["ok"] for e in res.events if e["event"] == "verified"] == [True]
        assert "form" not in recorded_checksum(target, "w")  # canonical


def test_a_streamed_text_the_client_encoding_lacks_fails_as_a_small_one_does(make_db, target):
    small = [(1, "a", "日", 1.0, b"", 1)]
    big = [(1, "a", "é" * (source.STREAM_BYTES // 2 + 10) + "日", 1.0, b"", 1)]
    url = SecretURL(target + "?client_encoding=LATIN1")
    results = [
        run_cli("run", "--source", make_db(WIRE_TABLE, rows={INSERT: rows}), "--target", url)
        for rows in (small, big)
    ]
    assert results[0].code == results[1].code != 0
    for res in results:
        assert "UnicodeEncodeError: 'latin-1' codec can't encode character" in res.text
    assert tables_in(target) == []
