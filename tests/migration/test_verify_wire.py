"""Verification's wire form (`run --verify` on tables of integers, float8, text, bytea and
booleans): each row hashed as the binary COPY bytes the load sends, against PostgreSQL's
rendering of the stored row with the types' send functions. The same sums on both sides, a sum
that moves with any changed, missing, duplicated or swapped value, and a server-side change
(a trigger) caught by `run --verify`."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import random
import struct
from collections.abc import Iterator
from typing import cast

import psycopg
import pytest
from psycopg import sql
from psycopg.adapt import Transformer

from migration import engine, load, source, verify
from migration.log import Reporter
from migration.plan import TablePlan
from tests.migration.conftest import query, run_cli

pytestmark = pytest.mark.db

WIRE_TABLE = """
CREATE TABLE w (
    id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL, note TEXT, price FLOAT, raw BLOB,
    ok BOOLEAN
);
"""
WIRE_ROWS = [
    (1, "Rex", "a\x1fb\nc", 12.5, b"\x00\xff", 1),
    (2, "", None, None, None, None),
    (3, "é日本🐍", "", -0.0, b"", 0),
    (4, "Tom", "\\N", 5e-324, b"\\N", 1),
    (5, "x" * 20, "naïve", float("inf"), b"x" * 40, 0),
]


APP_TABLE = (  # the `w` table as an app's own migrations would create it (--schema existing)
    "CREATE TABLE w (id bigint PRIMARY KEY, name varchar(20) NOT NULL, note text, "
    "price double precision, raw bytea, ok boolean)"
)


def kept_storage(table: str) -> str:
    """SQL giving an app's table a TRUNCATE trigger: the run may not renew its storage (so its
    rows may be stored out of the order sent) and verifies it in the wire form, row by row."""
    return (
        "CREATE OR REPLACE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$BEGIN RETURN NULL; END$$; CREATE TRIGGER keep BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION keep()"
    )


@contextlib.contextmanager
def migrated(
    make_db, target: str, schema: str = "create"
) -> Iterator[tuple[TablePlan, psycopg.Connection]]:
    """The `w` table migrated with `run --verify` (into the app's own table with `schema`
    "existing", one whose storage the run may not renew: the wire form), its plan and an open
    transaction on it."""
    path = make_db(WIRE_TABLE, rows={"INSERT INTO w VALUES (?, ?, ?, ?, ?, ?)": WIRE_ROWS})
    if schema == "existing":
        query(target, APP_TABLE + "; " + kept_storage("w"))
    res = run_cli("run", "--source", path, "--target", target, "--verify", "--schema", schema)
    assert res.code == 0, res.text
    log = Reporter("json")
    with engine.open_sources([path], log) as sources:
        plan = engine.make_plan(sources, engine.Options(sources=[path]), log, every=False)
        (tp,) = plan.tables
        with contextlib.closing(engine.connect(target)) as conn:
            yield tp, conn
            conn.rollback()


def encoded(conn: psycopg.Connection, tp: TablePlan, rows: list[tuple[object, ...]]) -> list[bytes]:
    """The rows as the load's binary COPY encodes them (its fast encoder, its dumpers)."""
    encode = load.fast_copy_encoder(load._RowWriter.INTERNALS)
    assert encode is not None
    tx = Transformer(conn)
    tx.set_dumper_types(
        [psycopg.adapters.types[c.copy_type].oid for c in tp.columns], psycopg.pq.Format.BINARY
    )
    out = []
    for row in rows:
        buf = bytearray()
        encode(row, tx, buf)
        out.append(bytes(buf))
    return out


def wire_sum(rows: list[bytes]) -> verify.Sum:
    hasher = verify.WireHasher()
    hasher.add(rows)
    return hasher.total


def target_rows(conn: psycopg.Connection, tp: TablePlan) -> list[tuple[object, ...]]:
    return conn.execute(
        sql.SQL("SELECT {} FROM w ORDER BY id").format(
            sql.SQL(", ").join(sql.Identifier(c.name) for c in tp.columns)
        )
    ).fetchall()


def recorded_checksum(target: str, table: str) -> dict[str, object]:
    ((summary,),) = query(target, "SELECT summary::text FROM petstore_migration.runs")
    return json.loads(str(summary))["tables"][table]["checksum"]  # type: ignore[no-any-return]


def test_run_verify_compares_a_table_of_wire_types_in_the_wire_form(make_db, target):
    """Into the app's own table whose storage the run may not renew (see test_verify_stream.py
    for the tables it creates or renews)."""
    with migrated(make_db, target, "existing") as (tp, conn):
        assert verify.wire_form(conn, tp.columns)
        rows = encoded(conn, tp, target_rows(conn, tp))
        # a row is the field count, then per field its length (-1: NULL) and its bytes
        assert rows[1] == bytes.fromhex("000600000008000000000000000200000000") + (
            b"\xff\xff\xff\xff" * 4
        )
        python = wire_sum(rows)
        assert verify.target_sum(conn, tp, verify.WIRE) == python
        # the sum of each row's MD5 cut to its first 8 bytes, as signed big-endian integers
        halves = [hashlib.md5(r, usedforsecurity=False).digest()[:8] for r in rows]
        assert python.checksum == sum(int.from_bytes(h, signed=True) for h in halves)
        assert any(h[0] >= 0x80 for h in halves)  # a negative one among them
        assert python.rows == 5
        assert python.form == verify.WIRE
        assert verify.target_sum(conn, tp) != python  # the canonical form: another checksum
        recorded = recorded_checksum(target, "w")
        assert recorded == {"rows": 5, "checksum": str(python.checksum), "form": "wire"}


def test_a_table_with_another_type_keeps_the_canonical_form(make_db, target):
    path = make_db(
        "CREATE TABLE m (id INTEGER PRIMARY KEY, amount NUMERIC(8, 2), at TIMESTAMP);",
        rows={"INSERT INTO m VALUES (?, ?, ?)": [(1, "1.50", "2024-01-02 03:04:05")]},
    )
    res = run_cli("run", "--source", path, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert set(recorded_checksum(target, "m")) == {"rows", "checksum"}  # no form: canonical


def test_wire_form_needs_utf8_on_both_ends_of_the_session(make_db, target):
    with migrated(make_db, target) as (tp, conn):
        assert verify.wire_form(conn, tp.columns)
        conn.execute("SET client_encoding TO 'LATIN1'")
        assert not verify.wire_form(conn, tp.columns)
        conn.execute("SET client_encoding TO 'UTF8'")
        assert verify.wire_form(conn, tp.columns)


def test_python_and_postgresql_agree_on_random_rows(make_db, target):
    """Random values of every wire type (NULLs anywhere, any float bit pattern, astral code
    points, empty text and bytea) written to the target, hashed on both sides."""
    rnd = random.Random(20261201)  # noqa: S311 - reproducible test values, not secrets
    with migrated(make_db, target) as (tp, conn):
        conn.execute("DELETE FROM w")
        rows = [random_row(rnd, i) for i in range(1, 400)]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO w VALUES (%s, %s, %s, %s, %s, %s)", rows)
        assert verify.target_sum(conn, tp, verify.WIRE) == wire_sum(
            encoded(conn, tp, target_rows(conn, tp))
        )


def random_row(rnd: random.Random, key: int) -> tuple[object, ...]:
    def text(n: int) -> str:
        return "".join(chr(rnd.choice([0x1F, 0x5C, 0x41, 0xE9, 0x65E5, 0x1F40D])) for _ in range(n))

    def maybe(value: object) -> object:
        return None if rnd.random() < 0.2 else value

    double = struct.unpack(">d", rnd.getrandbits(64).to_bytes(8, "big"))[0]
    if double != double:
        double = float("nan")
    return (
        key,
        text(rnd.randrange(21)),
        maybe(text(rnd.choice([0, 1, 300]))),
        maybe(double),
        maybe(rnd.randbytes(rnd.choice([0, 1, 17]))),
        maybe(rnd.choice([True, False])),
    )


def test_the_wire_sum_moves_with_any_changed_missing_duplicated_or_swapped_value(make_db, target):
    """Mutations of a random table, each of which a badly chosen order-independent aggregate
    could miss (a xor cancels duplicated rows; per-column sums miss swaps; unframed fields let
    bytes move between them): every one moves the sum, each to a different one, and
    PostgreSQL's sum of a mutated table is Python's."""
    rnd = random.Random(7)  # noqa: S311 - reproducible test values, not secrets
    with migrated(make_db, target) as (tp, conn):
        base = [random_row(rnd, i) for i in range(1, 60)]
        base[5] = (6, "one", None, 1.0, None, None)
        base[6] = (7, "zero", None, 0.0, None, None)
        base[10] = (11, "same", "same", 1.0, b"s", True)
        before = wire_sum(encoded(conn, tp, base))
        assert wire_sum(encoded(conn, tp, base[::-1])) == before  # order does not matter
        mutations = dict(mutated_tables(base))
        sums = {why: wire_sum(encoded(conn, tp, rows)) for why, rows in mutations.items()}
        for why, after in sums.items():
            assert after != before, why
        assert len({s.checksum for s in sums.values()}) == len(sums)
        # a table holding a row twice against one holding another row twice (xor: both 0)
        twice = [*base, base[20]]
        other = [*base[:20], base[21], *base[21:], base[21]]
        assert len(twice) == len(other)
        assert wire_sum(encoded(conn, tp, twice)) != wire_sum(encoded(conn, tp, other))
        swapped = mutations["value swapped between two rows"]
        conn.execute("DELETE FROM w")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO w VALUES (%s, %s, %s, %s, %s, %s)", swapped)
        assert verify.target_sum(conn, tp, verify.WIRE) == sums["value swapped between two rows"]


def mutated_tables(
    base: list[tuple[object, ...]],
) -> Iterator[tuple[str, list[tuple[object, ...]]]]:
    def with_row(row: tuple[object, ...]) -> list[tuple[object, ...]]:
        i = int(str(row[0])) - 1
        return [*base[:i], row, *base[i + 1 :]]

    a, b, c, d = base[3], base[4], base[8], base[1]
    yield "one character", with_row((a[0], str(a[1]) + "x", *a[2:]))
    yield "empty text vs NULL", with_row((*d[:2], "" if d[2] is None else None, *d[3:]))
    yield "one ulp", with_row((6, "one", None, 1.0000000000000002, None, None))
    yield "0.0 vs -0.0", with_row((7, "zero", None, -0.0, None, None))
    yield "NULL vs false", with_row((7, "zero", None, 0.0, None, False))
    yield "missing row", [*base[:8], *base[9:]]
    yield "duplicated row", [*base, base[8]]
    yield "value swapped between two rows", [
        *base[:3], (a[0], b[1], *a[2:]), (b[0], a[1], *b[2:]), *base[5:]
    ]  # fmt: skip
    yield "values swapped between two columns", with_row((c[0], c[2] or "", c[1], *c[3:]))
    yield "bytes moved between two fields", with_row((11, "sam", "esame", 1.0, b"s", True))
    yield "key changed", [*base[:12], (999, *base[12][1:]), *base[13:]]


def test_a_value_changed_by_the_server_is_a_mismatch(make_db, target):
    """A trigger on the app's table changes a value as it is stored: the bytes sent are not what
    the target holds, and `run --verify` refuses, naming both checksums and the key."""
    query(
        target,
        APP_TABLE + "; CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN IF NEW.id = 4 THEN NEW.name := upper(NEW.name); END IF; RETURN NEW; END$$; "
        "CREATE TRIGGER w_shout BEFORE INSERT ON w FOR EACH ROW EXECUTE FUNCTION shout()",
    )
    path = make_db(WIRE_TABLE, rows={"INSERT INTO w VALUES (?, ?, ?, ?, ?, ?)": WIRE_ROWS})
    res = run_cli("run", "--source", path, "--target", target, "--schema", "existing", "--verify")
    assert res.code != 0, res.text
    (verified,) = [e for e in res.events if e["event"] == "verified"]
    assert verified["ok"] is False
    assert verified["source_checksum"] != verified["target_checksum"]
    assert verified["expected_rows"] == verified["target_rows"] == 5
    assert verified["differing_keys"] == ["4 (differs)"]
    assert query(target, "SELECT count(*) FROM w") == [(0,)]  # rolled back


def test_sums_of_two_forms_never_compare_equal_nor_combine():
    canon, wire = verify.Sum(2, 99), verify.Sum(2, 99, verify.WIRE)
    assert canon != wire
    assert verify.Sum() + wire == wire
    assert wire - verify.Sum() == wire
    assert (wire + wire).form == verify.WIRE
    with pytest.raises(ValueError, match="cannot be combined"):
        canon + wire
    with pytest.raises(ValueError, match="cannot be combined"):
        wire - canon


def test_rows_hashed_in_batches_or_one_by_one_sum_alike(make_db, target):
    with migrated(make_db, target) as (tp, conn):
        rows = encoded(conn, tp, target_rows(conn, tp))
    whole = wire_sum(rows)
    parts = verify.WireHasher()
    for chunk in (rows[:2], [], rows[2:]):
        parts.add(chunk)
    one = verify.WireHasher()
    for row in rows:
        md5 = one.md5()
        for i in range(0, len(row), 3):
            md5.update(row[i : i + 3])
        one.add_digest(md5.digest())
    assert parts.total == one.total == whole


@pytest.mark.parametrize(
    ("schema", "form"), [("existing", "wire"), ("existing", "stream"), ("create", "stream")]
)
def test_an_empty_table_and_streamed_large_values_verify_as_sent(make_db, target, schema, form):
    """Large values are streamed to the COPY in pieces and hashed as they go: in the wire form
    into the app's own tables whose storage the run may not renew, in the stream form into
    tables it creates or renews (a chunk ends after the large row: two chunks, two MD5s)."""
    big_text = "é" * (source.STREAM_BYTES // 2 + 10)  # over STREAM_BYTES in UTF-8: streamed
    big_blob = bytes(range(256)) * (source.STREAM_BYTES // 256 + 1)
    path = make_db(
        "CREATE TABLE big (id INTEGER PRIMARY KEY, t TEXT, b BLOB); CREATE TABLE nada (x INT);",
        rows={"INSERT INTO big VALUES (?, ?, ?)": [(1, big_text, big_blob), (2, "s", b"s")]},
    )
    if schema == "existing":
        query(target, "CREATE TABLE big (id bigint PRIMARY KEY, t text, b bytea)")
        query(target, "CREATE TABLE nada (x bigint)")
    if form == "wire":
        query(target, kept_storage("big") + "; " + kept_storage("nada"))
    res = run_cli("run", "--source", path, "--target", target, "--verify", "--schema", schema)
    assert res.code == 0, res.text
    chunks: dict[str, object] = {} if form == "wire" else {"chunks": []}
    assert recorded_checksum(target, "nada") == {"rows": 0, "checksum": "0", "form": form} | chunks
    big = recorded_checksum(target, "big")
    rows = [(1, big_text, big_blob), (2, "s", b"s")]
    with contextlib.closing(engine.connect(target)) as conn:
        cols = [Col("id", "int", "int8"), Col("t", "text", "text"), Col("b", "bytea", "bytea")]
        tp = cast(TablePlan, Plain(columns=cols))
        sent = encoded(conn, tp, rows)
    if form == "wire":
        checksum = wire_sum(sent).checksum
    else:
        checksum = sum(int.from_bytes(hashlib.md5(r, usedforsecurity=False).digest()) for r in sent)
        chunks = {"chunks": [1, 1]}  # the large row fills a chunk: each row in its own
    assert big == {"rows": 2, "checksum": str(checksum), "form": form} | chunks


@dataclasses.dataclass
class Col:
    """What the wire form reads of a column plan."""

    name: str
    kind: str
    copy_type: str
    pg_canon: str | None = None


@dataclasses.dataclass
class Plain:
    columns: list[Col]


@pytest.mark.parametrize("form", ["wire", "stream"])
def test_the_apps_integer_enum_and_json_columns_verify_as_sent(make_db, target, form):
    """`--schema existing`: smallint, integer, boolean, an enum and json travel as their binary
    form or their text, and PostgreSQL renders the stored values back to the same bytes, row by
    row (wire) or chunk by chunk (stream: the run renews the empty table's storage)."""
    query(
        target,
        "CREATE TYPE mood AS ENUM ('calm', 'busy'); CREATE TABLE e (id integer PRIMARY KEY, "
        "n smallint, f boolean, m mood, j json, t text)"
        + ("; " + kept_storage("e") if form == "wire" else ""),
    )
    path = make_db(
        "CREATE TABLE e (id INTEGER PRIMARY KEY, n INTEGER, f BOOLEAN, m TEXT, j TEXT, t TEXT);",
        rows={
            "INSERT INTO e VALUES (?, ?, ?, ?, ?, ?)": [
                (1, -32768, 1, "calm", '{"b": 1,  "a": [1, 2.50]}', "日本"),
                (2, None, 0, "busy", None, ""),
                (3, 32767, None, None, "[]", None),
            ]
        },
    )
    res = run_cli("run", "--source", path, "--target", target, "--schema", "existing", "--verify")
    assert res.code == 0, res.text
    recorded = recorded_checksum(target, "e")
    assert recorded["form"] == form
    assert recorded["rows"] == 3
    assert query(target, "SELECT j::text FROM e WHERE id = 1") == [('{"b": 1,  "a": [1, 2.50]}',)]
