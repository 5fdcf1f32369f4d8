"""`plan` is a complete dry run: everything `run` refuses, listed at once, with run's exit code;
and `run` lists every problem at once too (not one column or one table per round)."""

from __future__ import annotations

import pytest

from migration import preflight
from tests.migration.conftest import run_cli, tables_in

PODS = """
CREATE TABLE owners (id INTEGER PRIMARY KEY, email TEXT UNIQUE);
CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT, owner_id INTEGER REFERENCES owners(id));
INSERT INTO owners VALUES (1, 'a@example.com');
INSERT INTO pets VALUES (1, 'Rex', 1);
"""


def _problems(res):
    return sorted(
        (str(e["source"]).rsplit("/", 1)[-1], e["table"], e["column"], e["reason"])
        for e in res.events
        if e["event"] == "problem"
    )


def test_plan_refuses_two_files_holding_one_id_with_different_content(make_db):
    a = make_db(PODS, "pod0.db")
    b = make_db(PODS.replace("'Rex'", "'Max'"), "pod1.db")
    res = run_cli("plan", "--source", a, "--source", b)
    assert res.code == 1, res.text
    assert _problems(res) == [
        ("pod1.db", "pets", "id", "same key as an earlier source, different content")
    ]
    assert res.messages("plan") == [
        "run would refuse: 1 problem(s); nothing would be written (exit 1)"
    ]


def test_identical_rows_in_two_files_are_no_problem(make_db):
    a = make_db(PODS, "pod0.db")
    b = make_db(PODS, "pod1.db")
    res = run_cli("plan", "--source", a, "--source", b, "--log-format", "text")
    assert res.code == 0, res.text
    assert "Every value fits its target type." in res.out
    assert "No conflicting rows across sources, UNIQUE clashes, NULL keys or orphan" in res.out


def test_plan_with_renumber_predicts_new_keys_instead_of_refusing(make_db):
    a = make_db(PODS, "pod0.db")
    b = make_db(PODS.replace("'Rex'", "'Max'"), "pod1.db")
    res = run_cli("plan", "--source", a, "--source", b, "--on-conflict", "renumber")
    assert res.code == 0, res.text
    expected = (
        "pod1.db: table 'pets': 1 row(s) share a key with an earlier source but differ: they "
        "will get new keys (--on-conflict renumber)"
    )
    assert [m.rsplit("/", 1)[-1] for m in res.messages("decision")] == [expected]


HOSTILE = (
    PODS
    + """
INSERT INTO owners VALUES (7, 'shared@example.com');
INSERT INTO pets VALUES (9, 'Ghost', 40);
CREATE TABLE tags (a TEXT, b INTEGER, PRIMARY KEY (a, b));
INSERT INTO tags VALUES (NULL, 1);
"""
)


@pytest.mark.db
def test_plan_and_run_list_the_same_problems_at_once_with_exit_1(make_db, target):
    a = make_db(HOSTILE, "pod0.db")
    b = make_db(
        HOSTILE.replace("'Rex'", "'Max'")
        .replace("(7, 'shared", "(8, 'shared")
        .replace("'yes'", "'no'"),
        "pod1.db",
    )
    expected = [
        (
            "pod0.db",
            "pets",
            "owner_id",
            "foreign key to owners: no such row in any source (1 row(s))",
        ),
        ("pod0.db", "tags", "a,b", "NULL in the primary key (PostgreSQL keys are NOT NULL)"),
        ("pod1.db", "owners", "email", "UNIQUE (email): 2 different rows in "),
        ("pod1.db", "pets", "id", "same key as an earlier source, different content"),
        (
            "pod1.db",
            "pets",
            "owner_id",
            "foreign key to owners: no such row in any source (1 row(s))",
        ),
        ("pod1.db", "tags", "a,b", "NULL in the primary key (PostgreSQL keys are NOT NULL)"),
    ]

    def cells(res):
        return [(f, t, c) for f, t, c, _r in _problems(res)]

    plan = run_cli("plan", "--source", a, "--source", b)
    assert plan.code == 1, plan.text
    assert [
        (f, t, c, r.split("/")[0] if r.startswith("UNIQUE") else r)
        for f, t, c, r in _problems(plan)
    ] == expected
    run = run_cli("run", "--source", a, "--source", b, "--target", target)
    assert run.code == 1, run.text
    assert cells(run) == [(f, t, c) for f, t, c, _r in expected]  # the same cells, one round
    assert tables_in(target) == []


@pytest.mark.db
def test_run_lists_bad_values_of_every_column_in_one_round(make_db, target):
    src = make_db(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, flag BOOLEAN, n INTEGER, d DATE, x TEXT);"
        "INSERT INTO t VALUES (1, 2, 'ten', 'not a date', 'ok');"
        "INSERT INTO t VALUES (2, 1, 3.5, '2024-02-30', 'ok');"
    )
    plan = run_cli("plan", "--source", src)
    run = run_cli("run", "--source", src, "--target", target)
    assert plan.code == run.code == 1, (plan.text, run.text)
    cells = sorted((e["rowid"], e["column"]) for e in plan.events if e["event"] == "problem")
    assert len(cells) >= 4
    assert sorted((e["rowid"], e["column"]) for e in run.events if e["event"] == "problem") == [
        (str(r), c) for r, c in cells
    ]
    assert tables_in(target) == []


def test_sort_key_follows_sqlite_order_of_storage_classes():
    values = ["b", 2.5, None, b"\x00", 3, "a", -1]
    ordered = sorted(values, key=lambda v: preflight._order([v]))
    assert ordered == [None, -1, 2.5, 3, "a", "b", b"\x00"]


def test_problem_line_names_the_value_once():
    from migration.errors import Problem

    p = Problem("f.db", "t", 3, "flag", "2", "INTEGER value 2 is not a boolean (0 or 1)")
    assert p.describe() == (
        "f.db: table 't' row 3 column 'flag': INTEGER value 2 is not a boolean (0 or 1)"
    )
    q = Problem("f.db", "t", "-", "code", "'x'", "UNIQUE (code): 2 rows share this value")
    assert q.describe() == (
        "f.db: table 't' column 'code': UNIQUE (code): 2 rows share this value (value 'x')"
    )
