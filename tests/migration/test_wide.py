"""PostgreSQL's widest tables (1,600 columns) with --verify and with several sources: no
function gets more than 100 arguments, no SQLite query more than 2,000 result columns."""

from __future__ import annotations

import pytest

from migration import source
from tests.migration.conftest import query, run_cli

pytestmark = pytest.mark.db

WIDTH = 1_600  # PostgreSQL's MaxHeapAttributeNumber
KINDS = ("INTEGER", "TEXT", "REAL", "BLOB", "VARCHAR(10)", "SMALLINT", "NUMERIC(8,2)", "")


def _ddl(width: int) -> str:
    cols = ", ".join(f"c{i} {KINDS[i % len(KINDS)]}" for i in range(1, width))
    return f"CREATE TABLE wide (id INTEGER PRIMARY KEY, {cols});"


def _row(key: int, width: int) -> tuple[object, ...]:
    values: list[object] = [key]
    for i in range(1, width):
        kind = KINDS[i % len(KINDS)]
        if (i + key) % 3:  # a PostgreSQL row must fit one 8 KB page: mostly NULLs
            values.append(None)
        elif kind in ("INTEGER", "SMALLINT"):
            values.append(i * key)
        elif kind == "REAL":
            values.append(i / 3 + key)
        elif kind == "BLOB":
            values.append(bytes([i % 256, key]))
        elif kind == "NUMERIC(8,2)":
            values.append(i + key / 4)
        else:
            values.append(f"v{i}.{key}")
    return tuple(values)


def _insert(width: int) -> str:
    return f"INSERT INTO wide VALUES ({', '.join('?' * width)})"


def test_a_1600_column_table_migrates_and_verifies(make_db, target):
    rows = [_row(k, WIDTH) for k in range(1, 6)]
    src = make_db(_ddl(WIDTH), rows={_insert(WIDTH): rows})
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text[-3000:]
    assert res.messages("verified") == ["wide: ok"]
    got = query(target, "SELECT c1, c2, c3, c1598, c1599 FROM wide ORDER BY id")
    assert got == [(r[1], r[2], r[3], r[1598], r[1599]) for r in rows]
    assert query(
        target, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'wide'"
    ) == [(WIDTH,)]
    again = run_cli("verify", "--source", src, "--target", target)
    assert again.code == 0, again.text[-3000:]


def test_two_sources_of_a_1600_column_table_merge_and_verify(make_db, target):
    first = [_row(k, WIDTH) for k in range(1, 5)]
    second = [_row(k, WIDTH) for k in (3, 4, 5, 6)]  # 3 and 4 identical: stored once
    a = make_db(_ddl(WIDTH), rows={_insert(WIDTH): first})
    b = make_db(_ddl(WIDTH), rows={_insert(WIDTH): second})
    res = run_cli("run", "--source", a, "--source", b, "--target", target, "--verify")
    assert res.code == 0, res.text[-3000:]
    assert res.messages("verified") == ["wide: ok"]
    assert query(target, "SELECT id FROM wide ORDER BY id") == [(k,) for k in range(1, 7)]


def test_a_conflict_in_a_1600_column_table_names_the_key(make_db, target):
    changed = list(_row(2, WIDTH))
    changed[1599] = "changed"
    a = make_db(_ddl(WIDTH), rows={_insert(WIDTH): [_row(1, WIDTH), _row(2, WIDTH)]})
    b = make_db(_ddl(WIDTH), rows={_insert(WIDTH): [tuple(changed)]})
    res = run_cli("run", "--source", a, "--source", b, "--target", target, "--verify")
    assert res.code == 1, res.text[-3000:]
    assert "same key as an earlier source, different content" in res.text


def test_a_1600_column_table_without_primary_key_merges_identical_rows_once(make_db, target):
    ddl = _ddl(WIDTH).replace("id INTEGER PRIMARY KEY", "id INTEGER")
    a = make_db(ddl, rows={_insert(WIDTH): [_row(1, WIDTH), _row(2, WIDTH)]})
    b = make_db(ddl, rows={_insert(WIDTH): [_row(2, WIDTH), _row(3, WIDTH)]})
    res = run_cli("run", "--source", a, "--source", b, "--target", target, "--verify")
    assert res.code == 0, res.text[-3000:]
    assert res.messages("verified") == ["wide: ok"]
    assert query(target, "SELECT id FROM wide ORDER BY id") == [(1,), (2,), (3,)]


def test_plan_reads_a_1600_column_table_and_lists_a_bad_value_near_its_end(make_db):
    row = list(_row(1, WIDTH))
    assert KINDS[1592 % len(KINDS)] == "INTEGER"
    row[1592] = "x"  # text in an INTEGER column (the checks read 2 columns per column)
    rows = [tuple(row), *(_row(k, WIDTH) for k in range(2, 12))]
    src = make_db(_ddl(WIDTH), rows={_insert(WIDTH): rows})
    res = run_cli("plan", "--source", src)
    assert res.code == 1, res.text[-3000:]
    problems = [e for e in res.events if e["event"] == "problem"]
    assert [(p["rowid"], p["column"]) for p in problems] == [("1", "c1592")]
    assert "x" in str(problems[0]["value"])


def test_a_1600_column_table_batched_by_measured_size_migrates_and_verifies(
    make_db, target, monkeypatch
):
    """Rows measured one by one (a sum over 1,600 columns, kept shallow for SQLite) and large
    values flagged per column (too many for one query: then none is streamed)."""
    monkeypatch.setattr(source, "BATCH_BYTES", 2 * 1024)
    monkeypatch.setattr(source, "STREAM_BYTES", 8)
    rows = [_row(k, WIDTH) for k in range(1, 9)]
    src = make_db(_ddl(WIDTH), rows={_insert(WIDTH): rows})
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text[-3000:]
    assert res.messages("verified") == ["wide: ok"]
    assert query(target, "SELECT count(*) FROM wide") == [(8,)]
