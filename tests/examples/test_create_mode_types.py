"""Create mode keeps what the app meant where the SQLite file says so (issue 8 point 3): a column
declared JSON, or under Django's `CHECK (JSON_VALID(col) OR col IS NULL)`, becomes jsonb; one
declared UUID becomes uuid when every value is one; one declared TIMESTAMPTZ / TIMESTAMP WITH
TIME ZONE becomes timestamptz. Values convert exactly and `--verify` compares them as their type.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pytest

from tests.migration.conftest import query, run_cli

pytestmark = [pytest.mark.examples, pytest.mark.db]

U1 = uuid.UUID("0b6e1c1e-7d43-4b7a-9a55-1f0f5a0c0001")
U2 = uuid.UUID("5f1d2b8e-3c4a-4e6f-8a9b-0c1d2e3f4a01")
SCHEMA = """
CREATE TABLE docs (
    id INTEGER PRIMARY KEY,
    body JSON,
    meta text NULL CHECK ((JSON_VALID("meta") OR "meta" IS NULL)),
    ref UUID,
    ref_dashed uuid,
    seen TIMESTAMP WITH TIME ZONE,
    seen_tz timestamptz(3),
    plain DATETIME,
    fraction TIMESTAMP WITH TIME ZONE
);
"""
ROWS = [
    (
        1,
        '{"b": [1, 2.50, null], "a": "ü"}',
        '{"k": 1}',
        U1.hex,
        str(U2),
        "2024-01-02 03:04:05.123456",
        "2024-06-30T23:00:00+02:00",
        "2024-01-02 03:04:05",
        "2020-01-01 00:00:00.5",
    ),
    (2, "null", "[]", U2.bytes, U1.hex.upper(), "1999-12-31T23:59:59Z", 0, None, None),
    (3, None, None, None, None, None, None, None, None),
    (
        4,
        "[12345678901234567890.5, 1e400]",
        '"text"',
        U2.hex,
        str(U1),
        1700000000,
        "2024-02-29",
        None,
        None,
    ),
]
INSERT = "INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


def types_of(url: str, table: str) -> dict[str, str]:
    rows = query(
        url,
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        (table,),
    )
    return {str(a): str(b) for a, b in rows}


def test_declared_json_uuid_and_timestamptz_keep_their_meaning(
    make_db: Callable[..., str], target: str
) -> None:
    src = make_db(SCHEMA, rows={INSERT: ROWS})
    res = run_cli("run", "--source", src, "--target", target, "--verify", "--schema", "create")
    assert res.code == 0, res.text
    assert types_of(target, "docs") == {
        "id": "bigint",
        "body": "jsonb",
        "meta": "jsonb",
        "ref": "uuid",
        "ref_dashed": "uuid",
        "seen": "timestamp with time zone",
        "seen_tz": "timestamp with time zone",
        "plain": "timestamp without time zone",
        "fraction": "timestamp with time zone",
    }
    got = query(target, "SELECT * FROM docs ORDER BY id")
    utc = dt.UTC
    assert got[0][1:] == (
        {"a": "ü", "b": [1, 2.50, None]},
        {"k": 1},
        U1,
        U2,
        dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=utc),
        dt.datetime(2024, 6, 30, 21, 0, tzinfo=utc),
        dt.datetime(2024, 1, 2, 3, 4, 5),  # noqa: DTZ001 - a plain DATETIME stays naive
        dt.datetime(2020, 1, 1, 0, 0, 0, 500000, tzinfo=utc),
    )
    assert got[1][1:7] == (
        None,
        [],
        U2,
        U1,
        dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=utc),
        dt.datetime(1970, 1, 1, tzinfo=utc),
    )
    assert got[2][1:] == (None,) * 8
    assert got[3][5] == dt.datetime.fromtimestamp(1700000000, utc)
    # JSON null stays JSON null, SQL NULL stays NULL; numbers stay exact
    assert query(target, "SELECT id, body IS NULL, jsonb_typeof(body) FROM docs ORDER BY id") == [
        (1, False, "object"),
        (2, False, "null"),
        (3, True, None),
        (4, False, "array"),
    ]
    assert query(target, "SELECT body::text FROM docs WHERE id = 4") == [
        ("[12345678901234567890.5, " + "1" + "0" * 400 + "]",)
    ]
    # the app's queries work: jsonb operators, uuid and timestamptz comparisons
    assert query(target, "SELECT id FROM docs WHERE body ->> 'a' = 'ü'") == [(1,)]
    assert query(target, "SELECT id FROM docs WHERE ref = %s", (U2,)) == [(2,), (4,)]
    since = dt.datetime(2024, 6, 30, 20, 0, tzinfo=utc)
    assert query(target, "SELECT id FROM docs WHERE seen_tz >= %s", (since,)) == [(1,)]


def test_the_json_valid_check_is_implied_by_jsonb_not_created(
    make_db: Callable[..., str], target: str
) -> None:
    src = make_db(SCHEMA, rows={INSERT: ROWS})
    res = run_cli("plan", "--source", src, "--schema", "create")
    assert res.code == 0, res.text
    assert "implied by the jsonb type" in res.text
    assert run_cli("run", "--source", src, "--target", target, "--schema", "create").code == 0
    assert query(
        target,
        "SELECT count(*) FROM pg_constraint WHERE conrelid = 'docs'::regclass AND contype = 'c'",
    ) == [(0,)]


def test_a_uuid_column_with_a_value_that_is_not_one_stays_text(
    make_db: Callable[..., str], target: str
) -> None:
    src = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, ref UUID);",
        rows={"INSERT INTO t VALUES (?, ?)": [(1, U1.hex), (2, "not-a-uuid")]},
    )
    res = run_cli("run", "--source", src, "--target", target, "--verify", "--schema", "create")
    assert res.code == 0, res.text
    assert types_of(target, "t")["ref"] == "text"
    assert "1 value(s) are not UUIDs" in res.text
    assert query(target, "SELECT ref FROM t ORDER BY id") == [(U1.hex,), ("not-a-uuid",)]


@pytest.mark.parametrize(
    ("declared", "value", "reason"),
    [
        ("JSON", "{not json", "not valid JSON"),
        ("JSON", "NaN", "not valid JSON"),
        ("TIMESTAMPTZ", "yesterday", "ISO 8601 timestamp"),
        ("TIMESTAMP WITH TIME ZONE", "2024-02-30 10:00", "not a valid date/time"),
    ],
)
def test_a_value_the_app_type_cannot_hold_is_refused_and_listed(
    make_db: Callable[..., str], target: str, declared: str, value: str, reason: str
) -> None:
    src = make_db(
        f"CREATE TABLE t (id INTEGER PRIMARY KEY, v {declared});",
        rows={"INSERT INTO t VALUES (?, ?)": [(1, None), (7, value)]},
    )
    plan = run_cli("plan", "--source", src, "--schema", "create")
    assert plan.code == 1, plan.text
    problems = [e for e in plan.events if e["event"] == "problem"]
    assert [(p["table"], p["rowid"], p["column"]) for p in problems] == [("t", "7", "v")]
    assert reason in str(problems[0]["reason"])
    res = run_cli("run", "--source", src, "--target", target, "--schema", "create")
    assert res.code == 1, res.text
    assert query(target, "SELECT count(*) FROM pg_tables WHERE tablename = 't'") == [(0,)]


def test_defaults_of_the_app_types_are_carried_over(
    make_db: Callable[..., str], target: str
) -> None:
    src = make_db(
        f"""CREATE TABLE t (
            id INTEGER PRIMARY KEY,
            doc JSON NOT NULL DEFAULT '{{"a": [1, null]}}',
            ref UUID DEFAULT '{U1.hex}',
            at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
            at2 timestamp with time zone DEFAULT (datetime('now'))
        );""",
        rows={"INSERT INTO t (id) VALUES (?)": [(1,)]},
    )
    res = run_cli("run", "--source", src, "--target", target, "--verify", "--schema", "create")
    assert res.code == 0, res.text
    query(target, "INSERT INTO t (id) VALUES (2)")
    rows = query(
        target,
        "SELECT doc, ref, now() - at < interval '1 minute', at2 IS NOT NULL FROM t WHERE id = 2",
    )
    assert rows == [({"a": [1, None]}, U1, True, True)]
