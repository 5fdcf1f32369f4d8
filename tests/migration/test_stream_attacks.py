"""Attacks on run --verify's stream form (migration/chunked.py): interrupts, kills and lost
connections in the middle of a chunked load, server-side refusals in a later chunk, values at
chunk boundaries, many tables of several forms in one run, a non-UTF-8 client encoding. Each is
compared with what a plain run does."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from migration import chunked, load, source, verify
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
def sigint_not_ignored() -> Iterator[None]:
    """A child started inside gets SIGINT as from a terminal. Tests started in the background
    (`make test &` in a shell without job control, some CI runners) inherit SIGINT ignored, and
    a child keeps an ignored signal across exec (Python then installs no handler for it): Ctrl-C
    would never reach the run under test."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@contextlib.contextmanager
def paused_run(src: str, target: str, at: int, *extra: str) -> Iterator[subprocess.Popen[str]]:
    with sigint_not_ignored():  # the child's disposition is set at exec: Popen returns after
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
    assert results[0].code == results[1].code == 1  # a value that does not fit, by name
    for res in results:
        [problem] = [e for e in res.events if e["event"] == "problem"]
        assert (problem["table"], problem["rowid"], problem["column"]) == ("w", "1", "note")
        assert "'日' (U+65E5), has no equivalent in client_encoding LATIN1" in problem["reason"]
        assert "UnicodeEncodeError" not in res.text
    assert tables_in(target) == []


# -- values at chunk boundaries ----------------------------------------------------------------
def boundary_rows() -> list[tuple[object, ...]]:
    """Large streamed values as the first row, in the middle and as the last row (a chunk ends
    after each), NULL-only rows, empty strings and bytes, astral code points, -0.0, infinities
    and the smallest subnormal, around them."""
    big_text = "🐍" * (source.STREAM_BYTES // 4 + 3) + "é"  # > STREAM_BYTES in UTF-8
    big_blob = bytes(range(256)) * (source.STREAM_BYTES // 256 + 5)
    rows: list[tuple[object, ...]] = [(1, "big first", big_text, -0.0, big_blob, 1)]
    for i in range(2, 200):
        kind = i % 5
        if kind == 0:
            rows.append((i, "", None, None, None, None))  # nothing but the key and ''
        elif kind == 1:
            rows.append((i, "\U0001f40d\U00010348", "", float("-inf"), b"", 0))
        elif kind == 2:
            rows.append((i, "n", "NUL-free \\N", 5e-324, b"\x00", 1))
        else:
            rows.append((i, f"r{i}", "x" * (i * 7), -0.0, b"\xff" * i, None))
    rows[100] = (101, "big middle", "a" * (source.STREAM_BYTES + 1), 1.5, big_blob, 0)
    rows.append((200, "big last", big_text, float("inf"), big_blob, 1))
    return rows


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def test_values_at_chunk_boundaries_verify_in_the_stream_form(make_db, target, small_chunks):
    rows = boundary_rows()
    path = make_db(WIRE_TABLE.replace("NOT NULL", ""), rows={INSERT: rows})
    res = run_cli("run", "--source", path, "--target", target, "--verify")
    assert res.code == 0, res.text[-3000:]
    (verified,) = [e for e in res.events if e["event"] == "verified"]
    assert (verified["ok"], verified["target_rows"]) == (True, 200)
    assert not [e for e in res.events if e["event"] == "note"]  # digests equal, no settling
    recorded = recorded_checksum(target, "w")
    assert recorded["form"] == "stream"
    chunks = recorded["chunks"]
    assert isinstance(chunks, list)
    assert chunks[0] == 1  # the first row alone: a large value ends its chunk
    assert sum(chunks) == 200
    assert len(chunks) > 10
    stored = query(
        target,
        "SELECT id, md5(note), md5(raw), float8send(price), name FROM w "
        "WHERE id IN (1, 101, 200, 5, 6) ORDER BY id",
    )
    with contextlib.closing(sqlite3.connect(path)) as src:  # as SQLite reads them (-0.0: 0.0)
        by_id = {r[0]: r for r in src.execute("SELECT * FROM w WHERE id IN (1, 101, 200, 5, 6)")}
    for id_, note_md5, raw_md5, price, name in stored:
        note, raw = by_id[id_][2], by_id[id_][4]
        assert note_md5 == (None if note is None else md5_hex(str(note).encode()))
        assert raw_md5 == (None if raw is None else md5_hex(raw))  # type: ignore[arg-type]
        expected = by_id[id_][3]
        assert price == (None if expected is None else struct.pack(">d", expected))
        assert name == by_id[id_][1]


def test_a_value_changed_next_to_a_large_value_is_found(make_db, target, small_chunks):
    """A rerun after the app changed the row stored right after a streamed value: the rerun's
    canonical comparison fails and the recorded chunks say it was the target that moved."""
    rows = boundary_rows()
    path = make_db(WIRE_TABLE.replace("NOT NULL", ""), rows={INSERT: rows})
    assert run_cli("run", "--source", path, "--target", target, "--verify").code == 0
    query(target, "UPDATE w SET price = 2.5 WHERE id = 102")
    again = run_cli("run", "--source", path, "--target", target, "--verify")
    assert again.code == 2
    (failed,) = again.messages("failed")
    assert "table w: the target changed since the migration (200 rows then, 200 now" in failed


# -- many tables of several forms in one run ---------------------------------------------------
MANY = """
CREATE TABLE owners (id INTEGER PRIMARY KEY, name TEXT NOT NULL, photo BLOB);
CREATE TABLE pets (id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES owners(id), name TEXT,
                   weight REAL, vaccinated BOOLEAN);
CREATE TABLE prices (id INTEGER PRIMARY KEY, amount NUMERIC(10, 2), label TEXT);
CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT, shout TEXT
                   GENERATED ALWAYS AS (upper(label)) STORED);
CREATE TABLE empty (id INTEGER PRIMARY KEY, note TEXT);
"""


def many_rows(offset: int) -> dict[str, list[tuple[object, ...]]]:
    n = range(offset + 1, offset + 301)
    return {
        "INSERT INTO owners VALUES (?, ?, ?)": [(i, f"owner {i}", bytes([i % 256]) * 9) for i in n],
        "INSERT INTO pets VALUES (?, ?, ?, ?, ?)": [(i, i, f"pet {i} 🐾", i / 7, i % 2) for i in n],
        "INSERT INTO prices VALUES (?, ?, ?)": [(i, f"{i}.25", f"p{i}") for i in n],
        "INSERT INTO tags (id, label) VALUES (?, ?)": [(i, f"tag {i}") for i in n],
    }


def test_many_tables_of_several_forms_verify_in_one_run(make_db, target, small_chunks):
    """Single-source tables of wire types stream; a table with NUMERIC or a generated column is
    verified canonically; with two files every table is merged and verified canonically."""
    one = make_db(MANY, "one.db", rows=many_rows(0))
    res = run_cli("run", "--source", one, "--target", target, "--verify")
    assert res.code == 0, res.text[-3000:]
    verified = {
        e["table"]: (e["ok"], e["target_rows"]) for e in res.events if e["event"] == "verified"
    }
    assert verified == {
        "owners": (True, 300), "pets": (True, 300), "prices": (True, 300), "tags": (True, 300),
        "empty": (True, 0),
    }  # fmt: skip
    forms = {t: recorded_checksum(target, t).get("form", "canon") for t in verified}
    assert forms == {
        "owners": "stream", "pets": "stream", "prices": "canon", "tags": "canon", "empty": "stream",
    }  # fmt: skip
    assert len(recorded_checksum(target, "pets")["chunks"]) > 3  # type: ignore[arg-type]
    assert not [e for e in res.events if e["event"] == "note" and "row by row" in e["message"]]


def test_two_sources_are_verified_canonically_with_the_stream_form_nowhere(
    make_db, target, small_chunks
):
    one = make_db(MANY, "one.db", rows=many_rows(0))
    two = make_db(MANY, "two.db", rows=many_rows(300))
    res = run_cli("run", "--source", one, "--source", two, "--target", target, "--verify")
    assert res.code == 0, res.text[-3000:]
    verified = {
        e["table"]: (e["ok"], e["target_rows"]) for e in res.events if e["event"] == "verified"
    }
    assert verified == {
        "owners": (True, 600), "pets": (True, 600), "prices": (True, 600), "tags": (True, 600),
        "empty": (True, 0),
    }  # fmt: skip
    assert {recorded_checksum(target, t).get("form", "canon") for t in verified} == {"canon"}


def test_a_value_longer_than_its_varchar_in_a_later_chunk_is_handled_as_without_verify(
    make_db, target, small_chunks
):
    """SQLite does not enforce VARCHAR(n): create mode's first attempt declares it, PostgreSQL
    refuses the long value in a later chunk, and the second attempt (measured lengths) loads
    it; with --verify the retried table still verifies in the stream form."""
    rows = [(i, f"p{i}", "n", 1.0, b"", 1) for i in range(1, 301)]
    rows[260] = (261, "a name far longer than twenty characters", "n", 1.0, b"", 1)
    path = make_db(WIRE_TABLE, rows={INSERT: rows})
    res = run_cli("run", "--source", path, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert len([e for e in res.events if e["event"] == "replan"]) == 1
    assert [e["ok"] for e in res.events if e["event"] == "verified"] == [True]
    assert not [e for e in res.events if e["event"] == "note" and "row by row" in e["message"]]
    assert recorded_checksum(target, "w")["form"] == "stream"
    assert query(target, "SELECT name FROM w WHERE id = 261") == [(rows[260][1],)]


def test_kill_in_a_later_chunk_leaves_nothing_and_a_rerun_verifies(make_db, target):
    src = pets_source(make_db, 300_000)
    with paused_run(src, target, 150_000, "--verify") as proc:
        proc.send_signal(signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 20
    while backends(target):
        assert time.monotonic() < deadline, "the killed run's backend did not go away"
        time.sleep(0.1)
    assert tables_in(target) == []
    rerun = run_cli("run", "--source", src, "--target", target, "--verify")
    assert rerun.code == 0, rerun.text
    assert query(target, "SELECT count(*), max(id) FROM pets") == [(300_000, 300_000)]
    assert len(recorded_checksum(target, "pets")["chunks"]) == 3  # type: ignore[arg-type]


def interrupted_in_process(make_db, target: str) -> None:
    path = make_db(WIRE_TABLE, rows={INSERT: ROWS})
    res = run_cli("run", "--source", path, "--target", target, "--verify")
    assert res.code == 130, res.text
    assert res.messages("failed") == ["interrupted; nothing was committed"]
    assert [t.name for t in threading.enumerate() if t.name == "chunked-copy"] == []
    assert tables_in(target) == []
    assert backends(target) == []


@pytest.mark.parametrize("at", [1, 7, 15])
def test_an_interrupt_while_handing_a_piece_to_the_sender_stops_it(
    make_db, target, small_chunks, monkeypatch: pytest.MonkeyPatch, at
):
    """Ctrl-C lands in the reading thread while it hands the sender a piece (first, in a later
    chunk): the COPY in progress is abandoned, the sender ends, nothing is committed."""
    calls = iter(range(1, 10_000))
    put = chunked.ChunkedCopy._put

    def interrupting(self: chunked.ChunkedCopy, item: tuple[object, ...]) -> None:
        if next(calls) == at:
            raise KeyboardInterrupt
        put(self, item)

    monkeypatch.setattr(chunked.ChunkedCopy, "_put", interrupting)
    interrupted_in_process(make_db, target)


def test_an_interrupt_while_waiting_for_the_last_chunk_stops_cleanly(
    make_db, target, small_chunks, monkeypatch: pytest.MonkeyPatch
):
    """Ctrl-C lands while close() waits for the sender to store the last chunk."""
    stop = chunked.ChunkedCopy._stop

    def interrupting(self: chunked.ChunkedCopy, item: tuple[object, ...]) -> None:
        if item == ("stop",):
            self.queue.put(item)
            raise KeyboardInterrupt
        stop(self, item)

    monkeypatch.setattr(chunked.ChunkedCopy, "_stop", interrupting)
    interrupted_in_process(make_db, target)


def test_a_connection_lost_while_digesting_is_a_lost_connection(
    make_db, target, small_chunks, monkeypatch: pytest.MonkeyPatch
):
    """The run's backend is terminated as verification starts digesting the chunks."""
    digest = verify.stream_target_sum

    def terminated(*args: object) -> object:
        for (pid,) in backends(target):
            query(target, "SELECT pg_terminate_backend(%s)", (pid,))
        return digest(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(verify, "stream_target_sum", terminated)
    path = make_db(WIRE_TABLE, rows={INSERT: ROWS})
    res = run_cli("run", "--source", path, "--target", target, "--verify")
    assert res.code == 2, res.text
    (failed,) = res.messages("failed")
    assert failed.startswith("lost the connection to the target"), failed
    assert tables_in(target) == []


def test_a_connection_lost_during_the_digest_query_is_a_lost_connection(
    make_db, target, small_chunks, monkeypatch: pytest.MonkeyPatch
):
    """Terminated between the digest query's settings and the query itself: the query fails on
    a lost connection, which is said as such (not "PostgreSQL failed to digest")."""
    settings = verify.settings

    @contextlib.contextmanager
    def terminated(conn: object, values: dict[str, str]) -> Iterator[None]:
        with settings(conn, values):  # type: ignore[arg-type]
            for (pid,) in backends(target):
                query(target, "SELECT pg_terminate_backend(%s)", (pid,))
            yield

    monkeypatch.setattr(verify, "settings", terminated)
    path = make_db(WIRE_TABLE, rows={INSERT: ROWS})
    res = run_cli("run", "--source", path, "--target", target, "--verify")
    assert res.code == 2, res.text
    (failed,) = res.messages("failed")
    assert failed.startswith("lost the connection to the target"), failed
    assert tables_in(target) == []


def test_a_null_key_in_a_later_chunk_is_reported_as_without_verify(make_db, target, small_chunks):
    """SQLite lets a non-integer PRIMARY KEY hold NULL: refused by name, the same with or
    without --verify."""
    rows = [(f"k{i}", i) for i in range(1, 301)]
    rows[270] = (None, 271)
    path = make_db(
        "CREATE TABLE k (name TEXT PRIMARY KEY, n INTEGER)",
        rows={"INSERT INTO k VALUES (?, ?)": rows},
    )
    plain, _checked = compare_plain_and_verified(path, target)
    assert plain.code == 1  # type: ignore[attr-defined]
    assert tables_in(target) == []


# -- memory ------------------------------------------------------------------------------------
def queued_bytes(items: list[tuple[object, ...]]) -> int:
    """The bytes the queue's items keep alive: each distinct buffer once (a memoryview slice
    keeps its whole buffer)."""
    buffers: dict[int, int] = {}
    for item in items:
        if item[0] == "data":
            piece = item[1]
            whole = piece.obj if isinstance(piece, memoryview) else piece
            buffers[id(whole)] = len(whole)  # type: ignore[arg-type]
    return sum(buffers.values())


def test_what_waits_for_a_slow_sender_is_bounded_by_pieces_not_batches(
    make_db, target, monkeypatch: pytest.MonkeyPatch
):
    """Rows of 20 KB read in batches of 1 MB: each batch is encoded whole before it is handed
    over, so a queue of QUEUED whole batches would keep QUEUED MB alive while the sender is
    slow. What waits is at most QUEUED pieces of PIECE_BYTES (at most two batches' buffers)."""
    monkeypatch.setattr(source, "BATCH_BYTES", 1 << 20)
    monkeypatch.setattr(chunked, "PIECE_BYTES", 64 * 1024)
    monkeypatch.setattr(chunked, "CHUNK_BYTES", 512 * 1024)
    peak = 0
    put = queue.Queue.put

    def watched(
        self: queue.Queue[tuple[object, ...]], item: tuple[object, ...], *a: object
    ) -> None:
        nonlocal peak
        put(self, item, *a)  # type: ignore[arg-type]
        with self.mutex:
            peak = max(peak, queued_bytes(list(self.queue)))

    ended = chunked.ChunkedCopy._ended

    def slow(self: chunked.ChunkedCopy, *args: object) -> None:
        time.sleep(0.05)  # the server is slow to store each chunk: the queue fills
        ended(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(queue.Queue, "put", watched)
    monkeypatch.setattr(chunked.ChunkedCopy, "_ended", slow)
    rows = [(i, f"r{i}", "x" * 20_000, 1.0, b"", 1) for i in range(1, 401)]  # ~8 MB
    res = run_cli(
        "run", "--source", make_db(WIRE_TABLE, rows={INSERT: rows}), "--target", target,
        "--verify",
    )  # fmt: skip
    assert res.code == 0, res.text
    assert recorded_checksum(target, "w")["form"] == "stream"
    assert 0 < peak <= 2 * ((1 << 20) + 64 * 1024), peak


@pytest.mark.parametrize("verified", [(), ("--verify",)])
def test_a_large_value_in_a_table_with_a_generated_column_is_migrated(make_db, target, verified):
    """SQLite's incremental blob I/O refuses a table with generated columns ("cannot open table
    with generated columns"): such a table's large values are read whole instead of streamed,
    and migrated exactly."""
    big = "é" * (source.STREAM_BYTES // 2 + 10)
    path = make_db(
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT, data BLOB,"
        " chars INTEGER GENERATED ALWAYS AS (length(label)) STORED)",
        rows={"INSERT INTO tags (id, label, data) VALUES (?, ?, ?)": [
            (1, "small", b"x"), (2, big, bytes(source.STREAM_BYTES + 7)), (3, "last", None),
        ]},
    )  # fmt: skip
    res = run_cli("run", "--source", path, "--target", target, *verified)
    assert res.code == 0, res.text[-2000:]
    assert query(
        target, "SELECT id, md5(label), octet_length(data), chars FROM tags ORDER BY id"
    ) == [
        (1, md5_hex(b"small"), 1, 5),
        (2, md5_hex(big.encode()), source.STREAM_BYTES + 7, len(big)),
        (3, md5_hex(b"last"), None, 4),
    ]
    if verified:
        assert [e["ok"] for e in res.events if e["event"] == "verified"] == [True]


def test_a_refusal_in_a_later_table_after_streamed_tables_is_reported_as_without_verify(
    make_db, target, small_chunks
):
    """owners and pets are streamed (chunks stored, digests noted), then a later table's
    large value is not UTF-8: the same report as a plain run, nothing written."""
    path = make_db(MANY, "one.db", rows=many_rows(0))
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        blob = b"a" * (source.STREAM_BYTES + 10) + b"\xff\xfe"
        conn.execute("UPDATE tags SET label = CAST(? AS TEXT) WHERE id = 250", (blob,))
    plain, _checked = compare_plain_and_verified(path, target)
    assert plain.code == 1, plain.text  # type: ignore[attr-defined]
    problems = without_ts(plain.events, "problem")  # type: ignore[attr-defined]
    assert [(p["table"], p["rowid"], p["column"]) for p in problems] == [
        ("tags", "250", "label"),  # not UTF-8
        ("tags", "250", "shout"),  # upper() of it
    ]
    assert tables_in(target) == []


# -- an interrupt during verification ----------------------------------------------------------
def test_an_interrupt_during_verification_cancels_the_servers_checksum(
    make_db, target, monkeypatch: pytest.MonkeyPatch
):
    """Ctrl-C while PostgreSQL still computes a table's checksum (here: one that would take a
    minute) and the reading thread hashes the sources: the server's query is cancelled, the run
    ends at once with 130 and commits nothing (the wait for the checksum used to outlast it)."""
    from migration import engine

    target_sum = engine._target_sum

    def slow(conn, *args):  # type: ignore[no-untyped-def]
        conn.execute("SELECT pg_sleep(60)")
        return target_sum(conn, *args)

    def interrupted(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        time.sleep(0.5)  # the server's query is running by now
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "_target_sum", slow)
    monkeypatch.setattr(verify, "source_sum", interrupted)
    pods = [make_db(WIRE_TABLE, f"pod{i}.db", rows={INSERT: ROWS[i::2]}) for i in range(2)]
    started = time.monotonic()
    res = run_cli("run", "--source", pods[0], "--source", pods[1], "--target", target, "--verify")
    assert res.code == 130, res.text
    assert time.monotonic() - started < 20, "the run waited for the server's checksum"
    assert res.messages("failed") == ["interrupted; nothing was committed"]
    assert tables_in(target) == []
    assert backends(target) == []
