"""Several SQLite files (one per old pod) into one database: duplicates once, conflicts decided."""

from __future__ import annotations

import pytest

from tests.migration.conftest import query, run_cli, tables_in

pytestmark = pytest.mark.db

SCHEMA = """
CREATE TABLE owners (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL);
CREATE TABLE pets (id INTEGER PRIMARY KEY AUTOINCREMENT, owner_id INTEGER REFERENCES owners(id),
                   name TEXT NOT NULL);
CREATE TABLE tags (pet_id INTEGER REFERENCES pets(id), tag TEXT);
"""
SEED = """INSERT INTO owners VALUES (1, 'seed@example.com'); INSERT INTO pets VALUES (1, 1, 'Seed');
INSERT INTO tags VALUES (1, 'seed');"""


def test_identical_rows_in_two_sources_are_stored_once(make_db, target):
    a = make_db(SCHEMA + SEED + "INSERT INTO pets VALUES (2, 1, 'OnlyA');", name="a.db")
    b = make_db(
        SCHEMA
        + SEED
        + "INSERT INTO pets VALUES (3, 1, 'OnlyB'); INSERT INTO tags VALUES (3, 'b');",
        name="b.db",
    )
    res = run_cli("run", "--source", a, "--source", b, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert query(target, "SELECT id, owner_id, name FROM pets ORDER BY id") == [
        (1, 1, "Seed"),
        (2, 1, "OnlyA"),
        (3, 1, "OnlyB"),
    ]
    assert query(target, "SELECT pet_id, tag FROM tags ORDER BY pet_id") == [(1, "seed"), (3, "b")]
    decisions = res.messages("decision")
    assert f"{b}: table 'pets': 1 row(s) identical to an earlier source's: stored once" in decisions
    assert f"{b}: table 'tags': 1 row(s) identical to an earlier source's: stored once" in decisions
    assert res.messages("verified") == ["owners: ok", "pets: ok", "tags: ok"]


def test_same_key_different_content_is_refused_and_listed_by_default(make_db, target):
    a = make_db(SCHEMA + SEED + "INSERT INTO pets VALUES (2, 1, 'Rex');", name="a.db")
    b = make_db(SCHEMA + SEED + "INSERT INTO pets VALUES (2, 1, 'Tom');", name="b.db")
    res = run_cli("run", "--source", a, "--source", b, "--target", target)
    assert res.code == 1
    problems = [e for e in res.events if e["event"] == "problem"]
    assert [(p["source"], p["table"], p["rowid"], p["reason"]) for p in problems] == [
        (b, "pets", "2", "same key as an earlier source, different content")
    ]
    assert "use --on-conflict renumber" in res.messages("failed")[0]
    assert tables_in(target) == []


def test_renumber_gives_later_rows_new_keys_and_rewrites_their_foreign_keys(make_db, target):
    a = make_db(
        SCHEMA
        + SEED
        + "INSERT INTO pets VALUES (2, 1, 'Rex'); INSERT INTO tags VALUES (2, 'rex');",
        name="a.db",
    )
    b = make_db(
        SCHEMA
        + SEED
        + """
        INSERT INTO owners VALUES (2, 'bob@example.com');
        INSERT INTO pets VALUES (2, 2, 'Tom'), (3, 2, 'Kit');
        INSERT INTO tags VALUES (2, 'tom'), (3, 'kit');
        INSERT INTO sqlite_sequence VALUES ('zzz', 0);""",
        name="b.db",
    )
    res = run_cli(
        "run",
        "--source",
        a,
        "--source",
        b,
        "--target",
        target,
        "--on-conflict",
        "renumber",
        "--verify",
    )
    assert res.code == 0, res.text
    assert query(target, "SELECT id, owner_id, name FROM pets ORDER BY id") == [
        (1, 1, "Seed"),
        (2, 1, "Rex"),
        (3, 2, "Kit"),
        (4, 2, "Tom"),
    ]
    assert query(target, "SELECT pet_id, tag FROM tags ORDER BY tag") == [
        (3, "kit"),
        (2, "rex"),
        (1, "seed"),
        (4, "tom"),
    ]
    assert (
        f"{b}: table 'pets': 1 row(s) share a key with an earlier source but differ: given new "
        "keys (2->4); this file's foreign keys to them rewritten" in res.messages("decision")
    )
    assert query(
        target, "SELECT source, table_name, old_key, new_key FROM petstore_migration.renumbered"
    ) == [(b, "pets", 2, 4)]
    assert query(target, "INSERT INTO pets (owner_id, name) VALUES (1, 'next') RETURNING id") == [
        (5,)
    ]
    again = run_cli(
        "run",
        "--source",
        a,
        "--source",
        b,
        "--target",
        target,
        "--on-conflict",
        "renumber",
        "--verify",
    )
    assert again.code == 2  # the target changed (the insert above): a rerun must not pass silently
    assert again.messages("failed")[0].endswith(
        "source and target differ now: table pets: the target changed since the migration "
        "(4 rows then, 5 now; written after the migration, e.g. by the app), the sources did not; "
        "nothing was changed"
    )
    verify = run_cli("verify", "--source", a, "--source", b, "--target", target)
    assert verify.messages("verified") == ["owners: ok", "pets: MISMATCH", "tags: ok"]


def test_three_overlapping_sources_merge_in_order(make_db, target):
    a = make_db(SCHEMA + SEED, name="a.db")
    b = make_db(SCHEMA + SEED + "INSERT INTO pets VALUES (2, 1, 'B2');", name="b.db")
    c = make_db(
        SCHEMA
        + SEED
        + "INSERT INTO pets VALUES (2, 1, 'C2'), (3, 1, 'C3'); INSERT INTO tags VALUES (2, 'c2');",
        name="c.db",
    )
    res = run_cli(
        "run",
        "--source",
        a,
        "--source",
        b,
        "--source",
        c,
        "--target",
        target,
        "--on-conflict",
        "renumber",
        "--verify",
    )
    assert res.code == 0, res.text
    assert query(target, "SELECT id, name FROM pets ORDER BY id") == [
        (1, "Seed"),
        (2, "B2"),
        (3, "C3"),
        (4, "C2"),
    ]
    assert query(target, "SELECT pet_id, tag FROM tags ORDER BY tag") == [(4, "c2"), (1, "seed")]
    assert query(target, "SELECT count(*) FROM owners") == [(1,)]
    rerun = run_cli(
        "run",
        "--source",
        a,
        "--source",
        b,
        "--source",
        c,
        "--target",
        target,
        "--on-conflict",
        "renumber",
        "--verify",
    )
    assert rerun.code == 0, rerun.text
    assert rerun.messages("verified") == ["owners: ok", "pets: ok", "tags: ok"]


def test_renumber_refuses_tables_without_an_integer_key(make_db, target):
    schema = "CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT);"
    a = make_db(schema + "INSERT INTO kv VALUES ('x', '1');", name="a.db")
    b = make_db(schema + "INSERT INTO kv VALUES ('x', '2');", name="b.db")
    res = run_cli(
        "run", "--source", a, "--source", b, "--target", target, "--on-conflict", "renumber"
    )
    assert res.code == 1
    assert [e["reason"] for e in res.events if e["event"] == "problem"] == [
        "same key as an earlier source, different content (renumbering needs a single integer key)"
    ]
    assert tables_in(target) == []


def test_sources_with_different_schemas_are_a_configuration_error(make_db, target):
    a = make_db("CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT);", name="a.db")
    b = make_db("CREATE TABLE pets (id INTEGER PRIMARY KEY, title TEXT);", name="b.db")
    res = run_cli("run", "--source", a, "--source", b, "--target", target)
    assert res.code == 2
    assert (
        "table 'pets' has columns ['id', 'title'], but the first source's has ['id', 'name']"
        in res.messages("failed")[0]
    )


def test_unique_values_clashing_across_sources_are_listed(make_db, target):
    schema = "CREATE TABLE owners (id INTEGER PRIMARY KEY, email TEXT UNIQUE);"
    a = make_db(schema + "INSERT INTO owners VALUES (1, 'x@example.com');", name="a.db")
    b = make_db(schema + "INSERT INTO owners VALUES (2, 'x@example.com');", name="b.db")
    res = run_cli("run", "--source", a, "--source", b, "--target", target)
    assert res.code == 1
    assert [
        (e["table"], e["column"], e["value"]) for e in res.events if e["event"] == "problem"
    ] == [("owners", "email", "'x@example.com'")]  # as `plan` lists it
    assert tables_in(target) == []


def test_renumber_rewrites_references_within_the_same_table(make_db, target):
    schema = (
        "CREATE TABLE staff (id INTEGER PRIMARY KEY, name TEXT, boss_id INTEGER REFERENCES staff);"
    )
    a = make_db(schema + "INSERT INTO staff VALUES (1, 'A-boss', NULL);", name="a.db")
    b = make_db(
        schema + "INSERT INTO staff VALUES (1, 'B-boss', NULL), (2, 'B-worker', 1);", name="b.db"
    )
    res = run_cli(
        "run",
        "--source",
        a,
        "--source",
        b,
        "--target",
        target,
        "--on-conflict",
        "renumber",
        "--verify",
    )
    assert res.code == 0, res.text
    assert query(target, "SELECT id, name, boss_id FROM staff ORDER BY id") == [
        (1, "A-boss", None),
        (2, "B-worker", 3),
        (3, "B-boss", None),
    ]
