"""Property-based round trips: random tables and values survive run --verify exactly."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from tests.migration.conftest import run_cli

pytestmark = [pytest.mark.db, pytest.mark.property]

TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)
COLUMNS = {
    "INTEGER": st.integers(-(2**63), 2**63 - 1),
    "REAL": st.floats(allow_nan=False),
    "TEXT": TEXT,
    "VARCHAR(8)": TEXT,
    "BLOB": st.binary(max_size=30),
    "BOOLEAN": st.sampled_from([0, 1]),
    "DATETIME": st.datetimes(
        min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)
    ).map(lambda d: d.isoformat(" ")),
    "SMALLINT": st.integers(-(2**15), 2**15 - 1),
}


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[tuple[object, ...]]]:
    kinds = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=5))
    row = st.tuples(*(st.none() | COLUMNS[k] for k in kinds))
    rows = draw(st.lists(row, max_size=15))
    return kinds, rows


def expected(kind: str, value: object) -> object:
    if value is None:
        return None
    if kind == "BOOLEAN":
        return value == 1
    if kind == "DATETIME":
        return dt.datetime.fromisoformat(str(value))
    return value


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(table=tables())
def test_random_tables_round_trip_exactly(table, pg_server, tmp_path_factory):
    kinds, rows = table
    path = Path(tmp_path_factory.mktemp("prop")) / "src.db"
    cols = ", ".join(f'"c{i} {k}" {k}' for i, k in enumerate(kinds))
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, {cols})")
        conn.executemany(
            f"INSERT INTO t VALUES (?, {', '.join('?' * len(kinds))})",
            [(i, *r) for i, r in enumerate(rows, 1)],
        )
    with sqlite3.connect(path) as conn:  # what SQLite itself stored (e.g. -0.0 becomes 0.0)
        stored = conn.execute("SELECT * FROM t ORDER BY id").fetchall()
    conn.close()
    name = f"p_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = pg_server.url_for(name)
    try:
        res = run_cli("run", "--source", str(path), "--target", url, "--verify")
        assert res.code == 0, res.text
        with psycopg.connect(url) as pg:
            got = pg.execute("SELECT * FROM t ORDER BY id").fetchall()
        want = [
            (r[0], *(expected(k, v) for k, v in zip(kinds, r[1:], strict=True))) for r in stored
        ]
        assert [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in got] == want
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.lists(
        st.floats(allow_nan=False) | st.integers(-(2**53), 2**53).map(float),
        min_size=1,
        max_size=50,
    )
)
def test_float_canonical_form_agrees_between_python_and_postgresql(values, pg_server):
    from migration.typemap import canon_double

    with psycopg.connect(pg_server.admin_url) as pg:
        got = [
            r[0]
            for r in pg.execute(
                "SELECT encode(float8send(v), 'hex') FROM unnest(%s::float8[]) WITH ORDINALITY AS "
                "u(v, n) ORDER BY n",
                (values,),
            )
        ]
    assert got == [canon_double(v) for v in values]
