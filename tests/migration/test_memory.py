"""Memory bounded by the data: batches sized in bytes, large values streamed and hashed in
pieces, and the fast COPY path checked once (falling back to psycopg's public API).

The byte limits are lowered per test (monkeypatch) so that small files exercise the same code
as the 200 MB values of bench/memory.py, which measures the memory itself."""

from __future__ import annotations

import sqlite3
from types import SimpleNamespace

import psycopg
import pytest
from psycopg import _copy_base

from migration import load, source, typemap, verify
from migration.source import Large, Source
from tests.migration.conftest import query, run_cli

KB = 1024
DOCS = "CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, body TEXT, data BLOB);"
INSERT = "INSERT INTO docs VALUES (?, ?, ?, ?)"


def _open(path: str) -> Source:
    return Source(path, 0, lambda level, msg: None)


def _sizes(src: Source, limit: int) -> list[list[int]]:
    """The ids of each batch of the docs table, as `table_batches` cuts it."""
    exprs = ['"id"', '"title"', '"body"', '"data"']
    streamable: list[tuple[str, str] | None] = [None, None, ("body", "text"), ("data", "blob")]
    return [
        [row[0] for row in batch]  # type: ignore[misc]
        for batch in src.table_batches("docs", exprs, streamable, limit)
    ]


def test_rows_of_3_kb_are_cut_into_batches_of_at_most_the_byte_budget(make_db, monkeypatch):
    monkeypatch.setattr(source, "BATCH_BYTES", 10 * KB)
    rows = [(i, "t", "x" * 3 * KB, None) for i in range(1, 11)]
    src = _open(make_db(DOCS, rows={INSERT: rows}))
    try:
        # each row is ~3 KB of values: three fit in 10 KB, a fourth would not
        assert _sizes(src, 5_000) == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]
        # the row limit still applies when it is the smaller one
        assert _sizes(src, 2) == [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]
    finally:
        src.close()


def test_small_rows_keep_whole_row_count_batches(make_db, monkeypatch):
    monkeypatch.setattr(source, "BATCH_BYTES", 10 * KB)
    rows = [(i, "t", "short", b"\x01") for i in range(1, 21)]
    src = _open(make_db(DOCS, rows={INSERT: rows}))
    try:
        top = src.max_payload("docs")
        assert top is not None
        assert 10 < top < 40  # dbstat's largest record, in bytes
        assert _sizes(src, 8) == [list(range(1, 9)), list(range(9, 17)), list(range(17, 21))]
    finally:
        src.close()


def test_one_large_row_among_small_ones_gets_a_batch_of_its_own(make_db, monkeypatch):
    monkeypatch.setattr(source, "BATCH_BYTES", 10 * KB)
    monkeypatch.setattr(source, "STREAM_BYTES", 6 * KB)
    rows = [(i, "t", "small", None) for i in range(1, 6)]
    rows[2] = (3, "big", "é" * 4 * KB, None)  # 8 KB of UTF-8: streamed, never read whole
    src = _open(make_db(DOCS, rows={INSERT: rows}))
    try:
        batches = list(
            src.table_batches(
                "docs",
                ['"id"', '"title"', '"body"', '"data"'],
                [None, None, ("body", "text"), ("data", "blob")],
                5_000,
            )
        )
        assert [[r[0] for r in b] for b in batches] == [[1, 2], [3], [4, 5]]
        large = batches[1][0][2]
        assert isinstance(large, Large)
        assert (large.size, large.text, large.rowid, large.column) == (8 * KB, True, 3, "body")
        assert large.chars() == 4 * KB
        assert b"".join(large.chunks(1000)) == ("é" * 4 * KB).encode()
        assert batches[1][0][:2] == (3, "big")
    finally:
        src.close()


def test_streamed_hash_equals_the_hash_of_the_whole_row(make_db, monkeypatch):
    """The same row hashed from pieces and from its whole values: one checksum."""
    monkeypatch.setattr(source, "STREAM_BYTES", 1 * KB)
    body, data = "ü€𝄞x" * 2_000, bytes(range(256)) * 40
    src = _open(make_db(DOCS, rows={INSERT: [(1, "a", body, data), (2, None, None, None)]}))
    try:
        rows = [r for b in _batches_of(src) for r in b]
        assert isinstance(rows[0][2], Large)
        assert isinstance(rows[0][3], Large)
        tp = _fake_plan()
        streamed, whole = verify.Hasher(tp), verify.Hasher(tp)
        for row in rows:
            streamed.add([[v] for v in row])
        whole.add([[1, 2], ["a", None], [body, None], [data, None]])
        assert streamed.total == whole.total
        assert streamed.total.rows == 2
    finally:
        src.close()


def _batches_of(src: Source) -> list[list[tuple[object, ...]]]:
    exprs = ['"id"', '"title"', '"body"', '"data"']
    return list(
        src.table_batches("docs", exprs, [None, None, ("body", "text"), ("data", "blob")], 100)
    )


def _fake_plan() -> object:
    """A TablePlan-like object with the docs table's column kinds (what Hasher reads)."""
    kinds = ("int", "text", "text", "bytea")
    cols = [SimpleNamespace(kind=k, canon=getattr(typemap, f"canon_{k}")) for k in kinds]
    return SimpleNamespace(columns=cols)


@pytest.mark.db
def test_large_values_are_streamed_into_the_target_and_verified(make_db, target, monkeypatch):
    monkeypatch.setattr(source, "BATCH_BYTES", 16 * KB)
    monkeypatch.setattr(source, "STREAM_BYTES", 8 * KB)
    monkeypatch.setattr(source, "STREAM_CHUNK", 3 * KB)
    body, data = "añb€" * 5_000, bytes(range(256)) * 100  # 40 KB of UTF-8, 25.6 KB
    rows = [(i, f"t{i}", f"body {i}" * 100, bytes([i]) * 1_000) for i in range(1, 40)]
    rows[5] = (6, "big", body, data)
    rows[9] = (10, "blob only", None, data)
    src = make_db(DOCS, rows={INSERT: rows})
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert res.messages("verified") == ["docs: ok"]
    assert query(target, "SELECT id, title, body, data FROM docs ORDER BY id") == rows
    # the same through the standalone verify (source side read again, streamed)
    again = run_cli("verify", "--source", src, "--target", target)
    assert again.code == 0, again.text


@pytest.mark.db
def test_a_changed_large_value_fails_verification(make_db, target, monkeypatch):
    monkeypatch.setattr(source, "STREAM_BYTES", 8 * KB)
    body = "x" * 20 * KB
    src = make_db(DOCS, rows={INSERT: [(1, "a", body, None)]})
    assert run_cli("run", "--source", src, "--target", target, "--verify").code == 0
    query(target, "UPDATE docs SET body = overlay(body placing 'y' from 10000)")
    res = run_cli("verify", "--source", src, "--target", target)
    assert res.code == 1, res.text
    assert res.messages("verified") == ["docs: MISMATCH"]


@pytest.fixture
def fresh_probe():
    load.fast_copy_encoder.cache_clear()
    yield
    load.fast_copy_encoder.cache_clear()


def _count_write_row(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = psycopg.Copy.write_row
    monkeypatch.setattr(
        psycopg.Copy, "write_row", lambda self, row: calls.append(1) or real(self, row)
    )
    return calls


def test_the_pinned_psycopg_passes_the_fast_copy_probe(fresh_probe):
    assert load.fast_copy_encoder(load._RowWriter.INTERNALS) is _copy_base.format_row_binary


@pytest.mark.parametrize(
    "change",
    [
        "signature",  # the encoder takes other arguments
        "output",  # it encodes differently
        "header",  # the binary COPY header moved
    ],
)
def test_a_changed_private_encoder_is_detected_at_start_up(fresh_probe, monkeypatch, change):
    real = _copy_base.format_row_binary
    if change == "signature":
        monkeypatch.setattr(_copy_base, "format_row_binary", lambda row, tx: b"")
    elif change == "output":
        monkeypatch.setattr(
            _copy_base, "format_row_binary", lambda row, tx, out: real(row[::-1], tx, out)
        )
    else:
        monkeypatch.setattr(_copy_base, "_binary_signature", b"PGCOPY\n\xff\r\n\x00" + bytes(4))
    assert load.fast_copy_encoder(load._RowWriter.INTERNALS) is None


@pytest.mark.db
def test_a_changed_private_encoder_falls_back_to_write_row_and_migrates_exactly(
    fresh_probe, make_db, target, monkeypatch
):
    # as if a psycopg upgrade had changed the encoder's signature: calling it would raise
    # TypeError, which the load would take for a bad value (exit 1). (psycopg's own write_row
    # uses the real encoder, so the changed one is installed under another name.)
    monkeypatch.setattr(_copy_base, "format_row_binary_v4", lambda row, tx: b"", raising=False)
    internals = ("format_row_binary_v4", *load._RowWriter.INTERNALS[1:])
    monkeypatch.setattr(load._RowWriter, "INTERNALS", internals)
    monkeypatch.setattr(source, "STREAM_BYTES", 8 * KB)
    calls = _count_write_row(monkeypatch)
    rows = [(1, "a", "b" * 20 * KB, b"\x00" * 9 * KB), (2, None, "c", None)]
    src = make_db(DOCS, rows={INSERT: rows})
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert len(calls) == 2
    assert query(target, "SELECT id, title, body, data FROM docs ORDER BY id") == rows
    assert res.messages("verified") == ["docs: ok"]


@pytest.mark.db
def test_invalid_utf8_in_a_streamed_text_is_a_listed_data_problem(make_db, target, monkeypatch):
    monkeypatch.setattr(source, "STREAM_BYTES", 8 * KB)
    src = make_db(DOCS, rows={INSERT: [(1, "ok", "fine", None), (2, "bad", "x" * 9 * KB, None)]})
    # make the large value invalid UTF-8 in place (SQLite keeps the bytes as TEXT)
    conn = sqlite3.connect(src)
    conn.execute("UPDATE docs SET body = CAST(x'ff' || CAST(body AS BLOB) AS TEXT) WHERE id = 2")
    conn.commit()
    conn.close()
    for args in ((), ("--verify",)):
        res = run_cli("run", "--source", src, "--target", target, *args)
        assert res.code == 1, res.text
        problems = [e for e in res.events if e["event"] == "problem"]
        assert [(str(p["rowid"]), p["column"]) for p in problems] == [("2", "body")]
        assert query(target, "SELECT count(*) FROM pg_tables WHERE tablename = 'docs'") == [(0,)]


@pytest.mark.db
def test_large_values_of_a_without_rowid_table_are_batched_alone_not_streamed(
    make_db, target, monkeypatch
):
    """blob_open needs a rowid: such values are read whole, one row per batch."""
    monkeypatch.setattr(source, "BATCH_BYTES", 16 * KB)
    monkeypatch.setattr(source, "STREAM_BYTES", 8 * KB)
    ddl = DOCS.replace(");", ") WITHOUT ROWID;")
    rows = [(i, "t", "b" * (i % 3) * 10 * KB, bytes([i]) * 3 * KB) for i in range(1, 10)]
    src = make_db(ddl, rows={INSERT: rows})
    s = _open(src)
    try:
        batches = _batches_of(s)
        assert not any(isinstance(v, Large) for b in batches for r in b for v in r)
        assert max(len(b) for b in batches) <= 5  # ~3 KB rows; the 13 and 23 KB rows alone
        assert [len(b) for b in batches if any(len(r[2]) > 16 * KB for r in b)] == [1, 1, 1]
    finally:
        s.close()
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert query(target, "SELECT id, title, body, data FROM docs ORDER BY id") == rows


def test_a_utf16_source_streams_blobs_but_reads_its_texts_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "STREAM_BYTES", 1 * KB)
    path = tmp_path / "utf16.db"
    conn = sqlite3.connect(path)
    conn.executescript("PRAGMA encoding = 'UTF-16le';" + DOCS)
    conn.execute(INSERT, (1, "a", "ü" * 2 * KB, b"\x00" * 2 * KB))
    conn.commit()
    conn.close()
    src = _open(str(path))
    try:
        [[row]] = _batches_of(src)
        assert row[2] == "ü" * 2 * KB  # UTF-16 bytes are not what PostgreSQL takes
        assert isinstance(row[3], Large)
        assert b"".join(row[3].chunks()) == b"\x00" * 2 * KB
    finally:
        src.close()


def test_plan_reads_wide_records_in_batches_of_at_most_the_byte_budget(make_db, monkeypatch):
    from migration import plan

    monkeypatch.setattr(plan, "BATCH_BYTES", 10 * KB)
    rows = [(i, "t", "x" * 3 * KB, None) for i in range(1, 21)] + [(21, "t", "x", b"\x00")]
    two = [(i, "t", "x" * 3 * KB, None) for i in range(101, 104)]
    path = make_db(
        DOCS + "CREATE TABLE tags (doc INTEGER REFERENCES docs(id));", rows={INSERT: rows}
    )
    other = make_db(DOCS, rows={INSERT: two})
    read: list[int] = []
    batches = Source.batches

    def spy(self: Source, sql: str, size: int):  # type: ignore[no-untyped-def]
        for batch in batches(self, sql, size):
            read.append(len(batch))
            yield batch

    monkeypatch.setattr(Source, "batches", spy)
    assert plan.batch_rows(_open(path), "docs", 5000) == 3  # 10 KB / a record of 3 KB and a bit
    res = run_cli("plan", "--source", path, "--source", other, "--cast", "docs.title=integer")
    assert res.code == 1, res.text  # no title is an integer
    assert sum(1 for e in res.events if e["event"] == "problem") == 24, res.text
    assert read, "nothing was read through Source.batches"
    assert max(read) <= 3, read  # diagnose and preflight's streams alike
