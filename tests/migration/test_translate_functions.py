"""SQLite functions translated exactly: each view is computed by SQLite and by PostgreSQL over
the same rows (edge cases: NULL, negative, non-ASCII, leap days, sub-millisecond seconds) and
the results must be equal value for value (floats too, bit for bit); what PostgreSQL cannot
reproduce exactly is refused by name."""

from __future__ import annotations

import random
import sqlite3
import uuid
from typing import Any

import apsw
import psycopg
import pytest
from psycopg import sql

from migration import render, translate
from tests.migration.conftest import run_cli


@pytest.fixture
def unicode_target(pg_server):
    """A fresh database whose lower() folds every letter, as on RDS (en_US.UTF-8): the test
    server's default C locale folds ASCII only, which would hide a lower()-based NOCASE."""
    name = f"u_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C' "
                "LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'"
            ).format(sql.Identifier(name))
        )
    url = pg_server.url_for(name)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT lower('ÄÉ')").fetchone() == ("äé",)
    try:
        yield url
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


pytestmark = pytest.mark.db

EDGE_TIMES = [
    "2024-02-29",
    "2024-02-29 23:59:59",
    "2000-02-29 12:00",
    "1900-02-28 00:00:00",
    "2100-02-28 23:59:59.999",
    "1970-01-01 00:00:00",
    "1969-12-31 23:59:59.999",
    "2000-01-01 00:00:00.0005",  # sub-millisecond: SQLite's double arithmetic decides
    "2000-01-01 00:00:12.0005",
    "1999-12-31 23:59:59.9996",  # SQLite keeps at most .999 of a second
    "1999-12-31 23:59:59.999999",
    "2024-01-31 10:00:00",
    "2023-12-31T23:59:59",
    "1600-03-01 06:30:00.25",
    "9998-12-31 23:59:59",
    None,
]


def _times(count: int = 300) -> list[str | None]:
    rnd = random.Random(20261201)  # noqa: S311 - fixed seed: reproducible test data
    out: list[str | None] = list(EDGE_TIMES)
    for _ in range(count):
        day = f"{rnd.randint(1600, 9998):04d}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
        clock = f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}"
        digits = rnd.randint(0, 6)
        frac = "." + "".join(rnd.choice("0123456789") for _ in range(digits)) if digits else ""
        out.append(f"{day} {clock}{frac}")
    return out


TIME_VIEWS = {
    "jd": "julianday(d)",
    "jd_ts": "julianday(ts)",
    "plus_days": "date(d, '+1 days')",
    "minus_days": "datetime(ts, '-400 days')",
    "hours": "datetime(d, '+36 hours')",
    "minutes": "time(d, '-90 minutes')",
    "seconds": "datetime(d, '+3601 seconds')",
    "month_start": "datetime(d, 'start of month', '-1 days')",
    "day_start": "strftime('%Y-%m-%d %H:%M:%S', d, 'start of day')",
    "year_start": "julianday(d, 'start of year')",
    "upper_case_modifier": "date(d, 'START OF MONTH', '+1 DAY')",
    "past_9999": "date(d, '+3000 days')",  # SQLite: NULL past 9999-12-31
    "past_9999_jd": "julianday(d, '+3000 days')",
    "there_and_back": "datetime(d, '+3000 days', '-3000 days')",  # only the result counts
}


def _compare_views(src: str, target: str, views: list[str]) -> None:
    """SQLite's side through apsw: the SQLite the engine bundles (date edge cases differ between
    SQLite versions, e.g. 3.40 rounds 23:59:59.9996 up to the next day, 3.42+ keeps .999)."""
    lite = apsw.Connection(src, flags=apsw.SQLITE_OPEN_READONLY)
    try:
        with psycopg.connect(target) as conn:
            for view in views:
                expected = list(lite.execute(f"SELECT * FROM {view} ORDER BY id"))
                got = conn.execute(f"SELECT * FROM {view} ORDER BY id").fetchall()
                assert len(got) == len(expected), view
                for e, g in zip(expected, got, strict=True):
                    assert g == e, (view, e, g)
                    assert [type(v) for v in g] == [type(v) for v in e], (view, e, g)
    finally:
        lite.close()


def _migrate(make_db, target: str, script: str, rows: dict[str, list[tuple[object, ...]]]) -> str:
    src = make_db(script, rows=rows)
    plan = run_cli("plan", "--source", src, "--target", target)
    assert plan.code == 0, plan.text
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    return src


def test_julianday_and_date_modifiers_equal_sqlite_on_the_same_rows(make_db, target):
    views = "".join(
        f"CREATE VIEW {name} AS SELECT id, {expr} AS v FROM t;\n"
        for name, expr in TIME_VIEWS.items()
    )
    script = f"CREATE TABLE t (id INTEGER PRIMARY KEY, d TEXT, ts DATETIME);\n{views}"
    rows = [(i, v, v) for i, v in enumerate(_times())]
    src = _migrate(make_db, target, script, {"INSERT INTO t VALUES (?, ?, ?)": rows})
    _compare_views(src, target, list(TIME_VIEWS))


NUMBERS = [0, 1, -1, 42, -(2**63), 2**63 - 1, None, 7]
TEXTS = ["", "x", "ÄÖü", "100%", "a%sb", None, "日本語", "tab\tnew\nline"]


def test_printf_of_integers_and_text_equals_sqlite(make_db, target):
    views = {
        "p_all": "printf('%d|%s|%%|%s', n, s, n)",
        "p_none": "printf('plain %% text')",
        "p_fmt": "format('x%dy', n)",
        "p_null": "printf('[%s][%d]', NULL, NULL)",
        "p_literal": "printf('%d %s', -5, 'é')",
    }
    script = "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, s TEXT);\n" + "".join(
        f"CREATE VIEW {name} AS SELECT id, {expr} AS v FROM t;\n" for name, expr in views.items()
    )
    rows = [(i, n, s) for i, (n, s) in enumerate(zip(NUMBERS, TEXTS, strict=True))]
    src = _migrate(make_db, target, script, {"INSERT INTO t VALUES (?, ?, ?)": rows})
    _compare_views(src, target, list(views))


def _words(count: int = 200) -> list[tuple[str | None, str | None]]:
    rnd = random.Random(7)  # noqa: S311 - fixed seed: reproducible test data
    alphabet = "aAbBzZ_@[`{~ 09äÄéÉß\u017f\u0131\u0130"  # long s, dotless i, dotted I
    pairs: list[tuple[str | None, str | None]] = [
        ("ABC", "abc"),
        ("Ä", "ä"),  # not equal in SQLite: NOCASE folds ASCII only
        ("_", "a"),
        ("_", "A"),
        ("Straße", "STRASSE"),
        ("", ""),
        (None, "a"),
        ("a", None),
        ("abc", "ABCD"),
    ]
    for _ in range(count):
        a = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 4)))
        b = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 4)))
        pairs.append((a, b if rnd.random() < 0.7 else a.swapcase()))
    return pairs


def test_collate_nocase_comparisons_fold_ascii_only_like_sqlite(make_db, unicode_target):
    target = unicode_target
    views = {
        "eq": "a = b COLLATE NOCASE",
        "ne": "a COLLATE NOCASE <> b",
        "lt": "a < b COLLATE NOCASE",
        "ge": "a COLLATE NOCASE >= b COLLATE NOCASE",
        "lit": "a = 'abc' COLLATE NOCASE",
    }
    script = "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT);\n" + "".join(
        f"CREATE VIEW {name} AS SELECT id, {expr} AS v FROM t;\n" for name, expr in views.items()
    )
    rows = [(i, a, b) for i, (a, b) in enumerate(_words())]
    src = _migrate(make_db, target, script, {"INSERT INTO t VALUES (?, ?, ?)": rows})
    with psycopg.connect(target) as conn:  # PostgreSQL says true/false, SQLite 1/0
        for view in views:
            conn.execute(f"CREATE TABLE {view}_int AS SELECT id, CAST(v AS int) AS v FROM {view}")
    lite = sqlite3.connect(src)
    for view in views:
        lite.execute(f"CREATE TABLE {view}_int AS SELECT id, v FROM {view}")
    lite.commit()
    lite.close()
    _compare_views(src, target, [f"{v}_int" for v in views])


def _refusal(expr: str) -> str:
    cols = {"d": ("d", "text"), "n": ("n", "int"), "r": ("r", "double"), "s": ("s", "text")}
    rel = render.Relation("t", cols, list(cols))
    with pytest.raises(translate.TranslationError) as info:
        translate.view_query(f"CREATE VIEW v AS SELECT {expr} AS x FROM t", str.lower, {"t": rel})
    return str(info.value)


@pytest.mark.parametrize(
    ("expr", "named"),
    [
        ("date(d, '+1 months')", "date modifier '+1 months'"),
        ("date(d, '+1 years')", "date modifier '+1 years'"),
        ("date(d, '+1.5 days')", "date modifier '+1.5 days'"),
        ("datetime(d, 'localtime')", "date modifier 'localtime'"),
        ("datetime(n, 'unixepoch')", "a date function over a number"),
        ("datetime(d, 'unixepoch')", "date modifier 'unixepoch'"),
        ("date(d, 'weekday 0')", "date modifier 'weekday 0'"),
        ("date(d, s)", "a date modifier that is not a string literal"),
        ("julianday(r)", "a date function over a number"),
        ("printf('%.2f', r)", "printf conversion '%.'"),
        ("printf('%5d', n)", "printf conversion '%5'"),
        ("printf('%s', r)", "printf '%s' of a double value"),
        ("printf('%d', s)", "printf '%d' of a text value"),
        ("printf(s, n)", "function 'printf' with a format that is not a string literal"),
        ("printf('%d', n, n)", "function 'printf' with more arguments than conversions"),
        ("typeof(n)", "function 'TYPEOF'"),
        ("strftime('%f', d)", "strftime '%f' without a modifier"),
        (
            "date('2024-01-01 10:00+02:00')",
            "a date function over the text '2024-01-01 10:00+02:00'",
        ),
        ("datetime('2024-01-01T23:30Z', '+1 days')", "over the text '2024-01-01T23:30Z'"),
        ("julianday('2024-02-30')", "over the text '2024-02-30'"),
        ("date('2024-13-01')", "over the text '2024-13-01'"),
        ("time('25:00')", "over the text '25:00'"),
        ("datetime('2024-01-01 10:00:00.0005')", "over the text '2024-01-01 10:00:00.0005'"),
        ("strftime('%H:%M:%f', d)", "strftime '%f' without a modifier"),
        ("s = 'x' COLLATE RTRIM", "COLLATE 'RTRIM' in a comparison"),
        ("n = 1 COLLATE NOCASE", "COLLATE NOCASE over a value that is not text"),
    ],
)
def test_what_postgresql_cannot_reproduce_exactly_is_refused_by_name(expr, named):
    assert named in _refusal(expr)


def test_date_functions_stay_out_of_indexes_and_generated_columns():
    cols = {"d": ("d", "text")}
    rel = render.Relation("t", cols, ["d"])
    for expr in ("julianday(d)", "date(d, '+1 days')"):
        node = translate._parse(f"SELECT {expr}").expressions[0]
        with pytest.raises(translate.TranslationError, match="index or generated column"):
            translate.table_expression(node, rel, "t", str.lower, immutable=True)


NOCASE_TABLE = (
    "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT COLLATE NOCASE UNIQUE, tag TEXT);\n"
    "CREATE UNIQUE INDEX t_tag ON t (tag COLLATE NOCASE);\n"
)


def _accepted(run: Any, statement: str, params: tuple[object, ...]) -> bool:
    """Whether a database accepts an INSERT (False: a UNIQUE violation)."""
    try:
        run(statement, params)
    except (apsw.ConstraintError, psycopg.errors.UniqueViolation):
        return False
    return True


def test_unique_nocase_index_folds_ascii_only_like_sqlite(make_db, unicode_target):
    """A UNIQUE NOCASE key is as strict as SQLite's, no stricter: each candidate row is inserted
    into the SQLite file and the migrated table, and both must accept or refuse it alike."""
    rows = [(1, "Äpfel", "Éclair"), (2, "äpfel", "éclair"), (3, "abc", "x")]
    src = _migrate(make_db, unicode_target, NOCASE_TABLE, {"INSERT INTO t VALUES (?, ?, ?)": rows})
    with psycopg.connect(unicode_target, autocommit=True) as conn:
        assert conn.execute("SELECT id, name, tag FROM t ORDER BY id").fetchall() == rows
        ddl = conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 't'").fetchall()
        assert not [d for (d,) in ddl if "lower(" in d], ddl
    candidates = [
        ("ABC", "y"),  # ASCII fold: clashes with 'abc' in both
        ("ÄPFEL", "z"),  # non-ASCII: distinct in SQLite
        ("äPFEL", "w"),  # clashes with 'äpfel' once ASCII is folded
        ("q", "ÉCLAIR"),
        ("r", "X"),
        ("ß", "\u017f"),  # long s
        ("SS", "s"),
    ]
    lite = apsw.Connection(src)
    try:
        with psycopg.connect(unicode_target, autocommit=True) as conn:
            for i, (name, tag) in enumerate(candidates, start=10):
                row = (i, name, tag)
                in_lite = _accepted(lite.execute, "INSERT INTO t VALUES (?, ?, ?)", row)
                in_pg = _accepted(conn.execute, "INSERT INTO t VALUES (%s, %s, %s)", row)
                assert in_pg == in_lite, (name, tag, in_lite, in_pg)
    finally:
        lite.close()


def test_rows_of_two_files_clashing_under_nocase_refuse_and_non_ascii_do_not(
    make_db, unicode_target
):
    a = make_db(NOCASE_TABLE, rows={"INSERT INTO t VALUES (?, ?, ?)": [(1, "Äpfel", "1")]})
    b = make_db(NOCASE_TABLE, rows={"INSERT INTO t VALUES (?, ?, ?)": [(2, "äpfel", "2")]})
    res = run_cli("run", "--source", a, "--source", b, "--target", unicode_target, "--verify")
    assert res.code == 0, res.text
    with psycopg.connect(unicode_target) as conn:
        assert conn.execute("SELECT name FROM t ORDER BY id").fetchall() == [("Äpfel",), ("äpfel",)]
        conn.execute("DROP TABLE t")
    c = make_db(NOCASE_TABLE, rows={"INSERT INTO t VALUES (?, ?, ?)": [(1, "abc", "1")]})
    d = make_db(NOCASE_TABLE, rows={"INSERT INTO t VALUES (?, ?, ?)": [(2, "ABC", "2")]})
    res = run_cli("run", "--source", c, "--source", d, "--target", unicode_target)
    assert res.code != 0, res.text
    with psycopg.connect(unicode_target) as conn:  # nothing half-written
        assert conn.execute("SELECT to_regclass('public.t')").fetchone() == (None,)


def test_nocase_index_on_a_column_that_is_not_text_is_refused_by_name(make_db, unicode_target):
    src = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER);\n"
        "CREATE INDEX t_n ON t (n COLLATE NOCASE);\n",
        rows={"INSERT INTO t VALUES (?, ?)": [(1, 5)]},
    )
    res = run_cli("run", "--source", src, "--target", unicode_target)
    assert res.code != 0
    assert "COLLATE NOCASE on 'n', a column that is not text" in res.text, res.text
    assert "--skip index:t_n" in res.text, res.text
    assert (
        run_cli("run", "--source", src, "--target", unicode_target, "--skip", "index:t_n").code == 0
    )


GENERATED_BOOL = """
CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, b REAL, s TEXT,
    gt INTEGER GENERATED ALWAYS AS (a > b) STORED,
    eq REAL GENERATED ALWAYS AS (a = b OR s IS NULL) VIRTUAL,
    nc INTEGER GENERATED ALWAYS AS (NOT (s = 'x' COLLATE NOCASE)) STORED);
"""


def test_boolean_generated_columns_hold_sqlites_one_and_zero(make_db, target):
    """SQLite stores a comparison as 1/0/NULL (1.0/0.0 in a REAL column); PostgreSQL refused a
    boolean expression for a bigint column. Both sides' stored values must be equal."""
    rows = [
        (1, 2, 1.0, "X"),
        (2, 1, 2.0, "y"),
        (3, 2, 2.0, None),
        (4, None, 1.0, "x"),
        (5, 1, None, None),
    ]
    src = _migrate(make_db, target, GENERATED_BOOL, {"INSERT INTO t VALUES (?, ?, ?, ?)": rows})
    lite = apsw.Connection(src, flags=apsw.SQLITE_OPEN_READONLY)
    try:
        expected = list(lite.execute("SELECT id, gt, eq, nc FROM t ORDER BY id"))
    finally:
        lite.close()
    with psycopg.connect(target) as conn:
        got = conn.execute("SELECT id, gt, eq, nc FROM t ORDER BY id").fetchall()
    assert got == expected
    assert [[type(v) for v in r] for r in got] == [[type(v) for v in r] for r in expected]
    assert {r[1] for r in got} == {0, 1, None}  # the rows reach every case


def test_boolean_generated_column_of_another_type_is_refused_by_name(make_db, target):
    src = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a INTEGER, "
        "g TEXT GENERATED ALWAYS AS (a > 1) STORED);",
        rows={"INSERT INTO t (id, a) VALUES (?, ?)": [(1, 2)]},
    )
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code != 0
    assert "a boolean expression in a generated column of type text" in res.text, res.text
    assert "--skip generated:t.g" in res.text, res.text


FRACTION_VIEWS = {
    "f_seconds": "strftime('%f', d, '+1 seconds')",
    "f_around": "strftime('%H:%M:%f|%%f|%S%f.', ts, '+0 days')",
    "f_modified": "strftime('%Y-%m-%d %H:%M:%f', d, '+1 seconds', 'start of day', '+3601 seconds')",
    "f_start": "strftime('%f', d, 'start of month')",
}


def test_strftime_f_after_a_modifier_rounds_milliseconds_like_sqlite(make_db, target):
    """%f after a modifier is SQLite's rounded milliseconds (00.0005 -> 00.001), where
    to_char's MS truncates."""
    views = "".join(
        f"CREATE VIEW {name} AS SELECT id, {expr} AS v FROM t;\n"
        for name, expr in FRACTION_VIEWS.items()
    )
    script = f"CREATE TABLE t (id INTEGER PRIMARY KEY, d TEXT, ts DATETIME);\n{views}"
    rows = [(i, v, v) for i, v in enumerate(_times())]
    src = _migrate(make_db, target, script, {"INSERT INTO t VALUES (?, ?, ?)": rows})
    _compare_views(src, target, list(FRACTION_VIEWS))
    with psycopg.connect(target) as conn:
        got = conn.execute(
            "SELECT f.v FROM f_seconds f JOIN t USING (id) WHERE t.d = '2000-01-01 00:00:12.0005'"
        ).fetchone()
    assert got == ("13.001",)


def test_strftime_f_on_every_half_millisecond_equals_sqlite(make_db, target):
    """Every fraction that ends in half a millisecond (where rounding decides), at seconds
    0, 28, 37 and 59: the binary double sits above, below or exactly on the tie (.0625)."""
    times = [f"2024-02-29 12:34:{sec:02d}.{q:03d}5" for sec in (0, 28, 37, 59) for q in range(1000)]
    views = {"f_mod": "strftime('%S.%f', d, '+1 seconds')", "f_day": "strftime('%f', d, '-1 days')"}
    script = "CREATE TABLE t (id INTEGER PRIMARY KEY, d TEXT);\n" + "".join(
        f"CREATE VIEW {name} AS SELECT id, {expr} AS v FROM t;\n" for name, expr in views.items()
    )
    rows = [(i, v) for i, v in enumerate(times)]
    src = _migrate(make_db, target, script, {"INSERT INTO t VALUES (?, ?)": rows})
    _compare_views(src, target, list(views))


def test_plain_time_literals_equal_sqlite(make_db, target):
    literals = ["2024-02-29", "2024-02-29 23:59", "2023-12-31T23:59:59", "1999-12-31 23:59:59.999"]
    views = {
        f"lit{i}": f"datetime('{v}', '+1 seconds') || '|' || julianday('{v}') || '|' || date('{v}')"
        for i, v in enumerate(literals)
    }
    script = "CREATE TABLE t (id INTEGER PRIMARY KEY);\n" + "".join(
        f"CREATE VIEW {name} AS SELECT id, {expr} AS v FROM t;\n" for name, expr in views.items()
    )
    src = _migrate(make_db, target, script, {"INSERT INTO t VALUES (?)": [(1,)]})
    _compare_views(src, target, list(views))
