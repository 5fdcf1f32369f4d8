"""Verification's stream form (`run --verify` into tables the run creates): the load sends a
table in chunks, one COPY each, MD5s each chunk's rows as sent, and PostgreSQL MD5s the same
chunk's stored rows in heap order while the next chunk is read. Digests equal chunk by chunk;
a value changed as it is stored moves them; a table written after its digests, or stored out of
order, is settled row by row; errors on either thread end the run with the target untouched."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
import sqlite3
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from migration import chunked, engine, load, verify
from migration.log import Reporter
from migration.plan import Namer, Plan
from migration.source import Source
from tests.migration.conftest import query, run_cli, tables_in
from tests.migration.test_verify_wire import (
    APP_TABLE,
    WIRE_ROWS,
    WIRE_TABLE,
    encoded,
    random_row,
    recorded_checksum,
)

pytestmark = pytest.mark.db

INSERT = "INSERT INTO w VALUES (?, ?, ?, ?, ?, ?)"


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of about 2 KB, read in batches of 20 rows: a few hundred rows make many chunks,
    each MD5ed in several updates."""
    monkeypatch.setattr(chunked, "CHUNK_BYTES", 2048)
    monkeypatch.setattr(chunked, "PIECE_BYTES", 512)
    monkeypatch.setattr(chunked, "HASH_BYTES", 700)
    monkeypatch.setattr(load, "BATCH_ROWS", 20)


def expected_stream(rows: list[bytes], batch: int, chunk_bytes: int) -> tuple[int, int]:
    """The stream checksum and chunk count of encoded rows read `batch` at a time: a chunk ends
    after the batch that brings it to `chunk_bytes` (chunked.ChunkedCopy, written out again)."""
    total = chunks = 0
    current = b""
    for i in range(0, len(rows), batch):
        current += b"".join(rows[i : i + batch])
        if len(current) >= chunk_bytes:
            total += int.from_bytes(hashlib.md5(current, usedforsecurity=False).digest())
            chunks, current = chunks + 1, b""
    if current:
        total += int.from_bytes(hashlib.md5(current, usedforsecurity=False).digest())
        chunks += 1
    return total, chunks


def test_a_created_table_is_verified_chunk_by_chunk_as_sent(make_db, target, small_chunks):
    rnd = random.Random(20261202)  # noqa: S311 - reproducible test values, not secrets
    rows = [random_row(rnd, i) for i in range(1, 700)]
    path = make_db(WIRE_TABLE, rows={INSERT: rows})
    res = run_cli("run", "--source", path, "--target", target, "--verify")
    assert res.code == 0, res.text
    (verified,) = [e for e in res.events if e["event"] == "verified"]
    assert verified["ok"] is True
    assert verified["target_rows"] == 699
    with loaded(make_db, target, [], fresh=False) as (_plan, _sources, conn, _result):
        (tp,) = _plan.tables
        sent = encoded(conn, tp, [tuple(r) for r in rows])
    checksum, chunks = expected_stream(sent, 20, 2048)
    assert chunks > 20  # many chunks, each digested on its own
    recorded = recorded_checksum(target, "w")
    assert recorded == {
        "rows": 699,
        "checksum": str(checksum),
        "form": "stream",
        "chunks": recorded["chunks"],
    }
    assert len(recorded["chunks"]) == chunks  # type: ignore[arg-type]
    assert sum(recorded["chunks"]) == 699  # type: ignore[arg-type]
    assert verified["target_checksum"] == format(checksum % (1 << 128), "032x")
    assert not [e for e in res.events if e["event"] == "note" and "row by row" in e["message"]]


@contextlib.contextmanager
def loaded(
    make_db, target: str, rows: list[tuple[object, ...]], fresh: bool = True, trigger: str = ""
) -> Iterator[tuple[Plan, list[Source], psycopg.Connection, load.LoadResult]]:
    """The `w` table (with `rows`) created and loaded with run --verify's hashing, in an open
    transaction (rolled back after); `trigger`: PL/pgSQL run BEFORE INSERT on each row."""
    path = make_db(WIRE_TABLE, rows={INSERT: rows} if rows else None)
    log = Reporter("json")
    opts = engine.Options(sources=[path])
    with engine.open_sources([path], log) as sources:
        plan = engine.make_plan(sources, opts, log, every=False)
        with contextlib.closing(engine.connect(target)) as conn:
            result = load.LoadResult()
            if fresh:
                load.create_tables(conn, plan, sources, Namer(opts.identifiers), result)
                if trigger:
                    query_in(conn, trigger)
                load.load_tables(conn, plan, sources, result, "refuse", log, True, fresh=True)
            yield plan, sources, conn, result
            conn.rollback()


def query_in(conn: psycopg.Connection, body: str) -> None:
    conn.execute(
        sql.SQL(
            "CREATE FUNCTION pg_temp.change() RETURNS trigger LANGUAGE plpgsql AS {}; "
            "CREATE TRIGGER change BEFORE INSERT ON w FOR EACH ROW "
            "EXECUTE FUNCTION pg_temp.change()"
        ).format(sql.Literal(f"BEGIN {body} RETURN NEW; END"))
    )


def verify_now(
    plan: Plan, sources: list[Source], conn: psycopg.Connection, result: load.LoadResult
) -> tuple[engine.TableCheck, list[dict[str, object]]]:
    """run_verify as `run` calls it after the load; the check and the JSON events."""
    out = io.StringIO()
    log = Reporter("json", (), out, out)
    (check,) = engine.run_verify(conn, plan, sources, {}, {}, log, *result.verified_on_load())
    return check, [json.loads(line) for line in out.getvalue().splitlines()]


ROWS = [(i, f"pet {i}", "n" * (i % 7), i / 3, bytes([i % 256]), i % 2) for i in range(1, 301)]


def test_rows_loaded_in_chunks_are_digested_alike_on_both_sides(make_db, target, small_chunks):
    with loaded(make_db, target, ROWS) as (plan, sources, conn, result):
        stream = result.streams["w"]
        assert len(stream.counts) == len(stream.bounds) >= 5  # ~16 KB in chunks of 2 KB
        assert stream.source == verify.stream_target_sum(conn, plan.tables[0], stream)
        assert stream.source.rows == stream.stored == 300
        check, events = verify_now(plan, sources, conn, result)
    assert check.ok
    assert check.source.form == verify.STREAM
    assert not [e for e in events if e["event"] == "note"]


def test_a_value_changed_as_it_is_stored_moves_the_chunk_digest(make_db, target, small_chunks):
    """A trigger on the new table rewrites one value: that chunk's digests differ, the row by row
    comparison confirms it, and the mismatch names the key."""
    changed = "IF NEW.id = 123 THEN NEW.name := upper(NEW.name); END IF;"
    with loaded(make_db, target, ROWS, trigger=changed) as (plan, sources, conn, result):
        stream = result.streams["w"]
        stored = verify.stream_target_sum(conn, plan.tables[0], stream)
        assert stored is not None
        assert stream.source.rows == stored.rows == 300
        assert stream.source.checksum != stored.checksum
        check, events = verify_now(plan, sources, conn, result)
    assert not check.ok
    assert check.source.form == verify.WIRE  # settled row by row
    assert check.differing == ["123 (differs)"]
    assert [e["message"] for e in events if e["event"] == "note"] == [
        "w: the chunk digests differ; comparing row by row (wire form)"
    ]


def test_a_table_written_after_its_digests_is_compared_row_by_row(make_db, target, small_chunks):
    """Rows rewritten with the same values move to the end of the heap: the digests no longer
    describe the table, and the row by row comparison finds it equal; a changed value is a
    mismatch naming its key."""
    with loaded(make_db, target, ROWS) as (plan, sources, conn, result):
        conn.execute("UPDATE w SET name = name WHERE id IN (1, 150)")
        assert verify.stream_target_sum(conn, plan.tables[0], result.streams["w"]) is None
        check, events = verify_now(plan, sources, conn, result)
        assert check.ok
        assert check.source.form == verify.WIRE
        assert any("row by row" in str(e.get("message")) for e in events)
        conn.execute("UPDATE w SET price = price + 1 WHERE id = 77")
        check, _events = verify_now(plan, sources, conn, result)
        assert not check.ok
        assert check.differing == ["77 (differs)"]


def test_a_row_deleted_after_its_digest_is_a_mismatch(make_db, target, small_chunks):
    with loaded(make_db, target, ROWS) as (plan, sources, conn, result):
        conn.execute("DELETE FROM w WHERE id = 300")  # the last row: max(ctid) moves back too
        check, _events = verify_now(plan, sources, conn, result)
    assert not check.ok
    assert (check.source.rows, check.target.rows) == (300, 299)


def test_an_empty_table_streams_no_chunk(make_db, target):
    with loaded(make_db, target, []) as (plan, sources, conn, result):
        stream = result.streams["w"]
        assert (stream.counts, stream.bounds, stream.last_tid) == ([], [], "(0,0)")
        assert stream.source == verify.Sum(0, 0, verify.STREAM)
        check, _events = verify_now(plan, sources, conn, result)
    assert check.ok
    assert check.target == verify.Sum(0, 0, verify.STREAM)


def test_a_chunk_too_large_to_digest_is_verified_in_another_form(
    make_db, target, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(chunked, "DIGEST_MAX_BYTES", 64)
    res = run_cli(
        "run", "--source", make_db(WIRE_TABLE, rows={INSERT: WIRE_ROWS}), "--target", target,
        "--verify",
    )  # fmt: skip
    assert res.code == 0, res.text
    notes = [e["message"] for e in res.events if e["event"] == "note"]
    assert any("is not digested by the server; verified per row" in str(n) for n in notes), notes
    assert recorded_checksum(target, "w")["rows"] == 5
    assert "form" not in recorded_checksum(target, "w")  # the canonical form


def test_chunks_are_digested_in_parallel_each_whole_in_one_process(make_db, target, small_chunks):
    """The plan the stream form stands on: a Parallel Append whose branches are one aggregate
    over one TID range each (a branch runs whole in one process: its rows in heap order), and
    the settings that make PostgreSQL choose it are restored after."""
    with loaded(make_db, target, ROWS) as (plan, _sources, conn, result):
        stream = result.streams["w"]
        (tp,) = plan.tables
        query = verify.pg_chunk_digests(tp.columns, sql.Identifier("w"), 3)
        before = conn.execute("SELECT current_setting('parallel_setup_cost')").fetchone()
        with verify.settings(conn, verify.PARALLEL_SETTINGS):
            shape = [
                line.strip().split(" on w")[0]
                for (line,) in conn.execute(
                    sql.SQL("EXPLAIN (COSTS OFF) {}").format(query),
                    [t for b in stream.bounds[:3] for t in b],
                )
                if "Cond" not in line
            ]
        assert shape == [
            "Gather",
            "Workers Planned: 2",
            "->  Parallel Append",
            *["->  Aggregate", "->  Tid Range Scan"] * 3,
        ]
        after = conn.execute("SELECT current_setting('parallel_setup_cost')").fetchone()
        assert before == after == ("1000",)


def test_a_value_refused_in_a_later_chunk_is_reported_as_without_verify(
    make_db, target, small_chunks
):
    """A value the conversion refuses (an invalid uuid in row 250, read while earlier chunks
    are being digested): run --verify reports exactly what run does, and writes nothing."""
    rows = [(i, f"{i:032x}") for i in range(1, 300)]
    rows[249] = (250, "not a uuid")
    path = make_db("CREATE TABLE u (id INTEGER PRIMARY KEY, ref TEXT)", rows={
        "INSERT INTO u VALUES (?, ?)": rows
    })  # fmt: skip
    results = [
        run_cli("run", "--source", path, "--target", target, "--cast", "u.ref=uuid", *extra)
        for extra in ((), ("--verify",))
    ]
    plain, verified = ([e for e in r.events if e["event"] == "problem"] for r in results)
    assert results[0].code == results[1].code != 0
    assert [(p["table"], p["rowid"], p["value"]) for p in verified] == [
        ("u", "250", "'not a uuid'")
    ]
    strip = [{k: v for k, v in p.items() if k != "ts"} for p in plain]
    assert strip == [{k: v for k, v in p.items() if k != "ts"} for p in verified]
    assert tables_in(target) == []


def test_a_failing_digest_ends_the_run_and_leaves_the_target_untouched(
    make_db, target, small_chunks, monkeypatch: pytest.MonkeyPatch
):
    """The sender thread's own error (here, the digest query fails) reaches the reading thread:
    the run fails instead of hanging, and nothing is committed."""
    monkeypatch.setattr(
        verify,
        "_CHUNK_DIGEST",
        "SELECT 1 / 0, '' FROM {table} WHERE ctid > %s::tid AND ctid <= %s::tid AND {row} <> ''",
    )
    res = run_cli("run", "--source", make_db(WIRE_TABLE, rows={INSERT: ROWS}), "--target",
                  target, "--verify")  # fmt: skip
    assert res.code == 2  # not the data's fault
    assert "PostgreSQL failed to digest the stored rows of table w (division by zero)" in res.text
    assert tables_in(target) == []


def test_heap_order_is_the_order_sent_for_a_table_created_in_the_transaction(make_db, target):
    """What the stream form stands on (copyfrom.c skips the free space map for a table created
    in the same transaction): rows of very different sizes, COPYed in several statements, come
    back from a plain heap scan in the order they were sent."""
    rnd = random.Random(3)  # noqa: S311 - reproducible test values, not secrets
    sizes = [rnd.choice([1, 10, 500, 3000]) for _ in range(2000)]
    with contextlib.closing(engine.connect(target)) as conn:
        conn.execute("CREATE TABLE h (n int, t text)")
        for start in range(0, len(sizes), 300):
            with conn.cursor().copy("COPY h FROM STDIN") as copy:
                for n in range(start, min(start + 300, len(sizes))):
                    copy.write_row((n, "x" * sizes[n]))
        got = [r[0] for r in conn.execute("SELECT n FROM h WHERE ctid > '(0,0)'::tid")]
        conn.rollback()
    assert got == list(range(2000))


@pytest.mark.parametrize(
    ("app_write", "source_write", "said"),
    [
        ("UPDATE w SET name = 'renamed' WHERE id = 150", None,
         ("table w: the target changed since the migration (300 rows then, 300 now; written after "
         "the migration, e.g. by the app), the sources did not")),
        (None, "UPDATE w SET note = 'edited' WHERE id = 7",
         ("table w: the sources changed since the migration (300 rows then, 300 now), the target "
         "did not")),
        ("DELETE FROM w WHERE id = 1", "DELETE FROM w WHERE id = 2",
         "both changed since the migration (300 rows then)"),
    ],
)  # fmt: skip
def test_a_rerun_of_a_stream_verified_migration_says_which_side_moved(
    make_db, target, small_chunks, app_write, source_write, said
):
    """The recorded chunk row counts let a rerun digest both sides in the same chunks again."""
    path = make_db(WIRE_TABLE, rows={INSERT: ROWS})
    assert run_cli("run", "--source", path, "--target", target, "--verify").code == 0
    assert len(recorded_checksum(target, "w")["chunks"]) >= 5  # type: ignore[arg-type]
    if app_write:
        query(target, app_write)
    if source_write:
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            conn.execute(source_write)
    again = run_cli("run", "--source", path, "--target", target, "--verify")
    assert again.code == 2
    (failed,) = again.messages("failed")
    assert "source and target differ now: table w: " in failed
    assert failed.endswith(f"{said}; nothing was changed"), failed


def test_the_apps_empty_table_gets_new_storage_and_is_verified_as_a_stream(make_db, target):
    """--schema existing: the app's empty table is TRUNCATEd in the run's transaction (new
    storage, so COPY skips the free space map and stores the rows in the order sent); the
    app's definitions (its CHECK, its key) stay."""
    query(target, APP_TABLE.replace("boolean)", "boolean, CHECK (id > 0))"))
    (before,) = query(target, "SELECT relfilenode FROM pg_class WHERE relname = 'w'")
    path = make_db(WIRE_TABLE, rows={INSERT: ROWS})
    res = run_cli("run", "--source", path, "--target", target, "--schema", "existing", "--verify")
    assert res.code == 0, res.text
    recorded = recorded_checksum(target, "w")
    assert (recorded["form"], recorded["rows"]) == ("stream", 300)
    assert query(target, "SELECT relfilenode FROM pg_class WHERE relname = 'w'") != [before]
    assert query(target, "SELECT count(*), sum(id) FROM w") == [(300, 45150)]
    kinds = "SELECT contype FROM pg_constraint WHERE conrelid = 'w'::regclass AND contype <> 'n'"
    assert query(target, kinds + " ORDER BY 1") == [("c",), ("p",)]


def test_the_apps_table_another_table_references_keeps_its_storage(make_db, target):
    """A table outside the load holds a foreign key to it: TRUNCATE would refuse, so the
    storage is kept and the table verified in the wire form."""
    query(target, APP_TABLE + "; CREATE TABLE audit (w_id bigint REFERENCES w (id))")
    path = make_db(WIRE_TABLE, rows={INSERT: ROWS[:5]})
    res = run_cli("run", "--source", path, "--target", target, "--schema", "existing", "--verify")
    assert res.code == 0, res.text
    assert recorded_checksum(target, "w")["form"] == "wire"


@pytest.mark.parametrize("tail", [0, 1, verify.TAIL_BLOCKS])
def test_a_chunks_last_row_is_found_past_the_empty_pages_its_copy_left(
    target, monkeypatch: pytest.MonkeyPatch, tail
):
    """COPY extends the heap by several pages at a time and leaves the last few empty: the last
    row is found in the heap's last TAIL_BLOCKS pages, or (tail too short for them) by the scan
    of every page after the previous chunk; a chunk that stored nothing ends where it began."""
    monkeypatch.setattr(verify, "TAIL_BLOCKS", tail)
    with psycopg.connect(target) as conn:
        conn.execute("CREATE TABLE c (id bigint, name text)")
        with conn.cursor().copy("COPY c FROM STDIN") as copy:
            for i in range(20_000):
                copy.write_row((i, f"name {i}" * 4))
        blocks, last, last_block = conn.execute(
            "SELECT pg_relation_size('c') / current_setting('block_size')::int, max(ctid)::text,"
            " (max(ctid)::text::point)[0]::int FROM c"
        ).fetchone()
        assert blocks > last_block + 1  # the premise: empty pages after the last row
        table = sql.Identifier("c")
        assert verify.chunk_end(conn, table, "c", "(0,0)") == last
        assert verify.chunk_end(conn, table, "c", "(40,3)") == last
        assert verify.chunk_end(conn, table, "c", last) == last  # nothing stored after it
