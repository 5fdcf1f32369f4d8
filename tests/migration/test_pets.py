"""The Pet Store's pets table end to end: types, values, identity, rerun, verification."""

from __future__ import annotations

import psycopg
import pytest

from migration import load
from tests.migration.conftest import query, run_cli, tables_in, write_in_other_process

pytestmark = pytest.mark.db

PETS = """
CREATE TABLE pets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(50) NOT NULL,
    species VARCHAR(50) NOT NULL,
    breed VARCHAR(50),
    age FLOAT,
    price FLOAT NOT NULL,
    status VARCHAR(20) DEFAULT 'available'
);
"""
ROWS = [
    (1, "Rex", "dog", "Beagle", 3.5, 120.0, "available"),
    (2, "Tom", "cat", None, None, 0.1 + 0.2, "sold"),
    (7, "Nemo", "fish", "Clown", 0.25, 1e-300, None),
]
INSERT = "INSERT INTO pets VALUES (?, ?, ?, ?, ?, ?, ?)"


def test_run_copies_every_pets_value_exactly_with_declared_types(make_db, target):
    src = make_db(PETS, rows={INSERT: ROWS})
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert (
        query(target, "SELECT id, name, species, breed, age, price, status FROM pets ORDER BY id")
        == ROWS
    )
    types = dict(
        query(
            target,
            "SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns "
            "c "
            "JOIN pg_attribute a ON a.attrelid = 'pets'::regclass AND a.attname = c.column_name "
            "WHERE table_name = 'pets'",
        )
    )
    assert types == {
        "id": "bigint",
        "name": "character varying(50)",
        "species": "character varying(50)",
        "breed": "character varying(50)",
        "age": "double precision",
        "price": "double precision",
        "status": "character varying(20)",
    }
    assert res.messages("verified") == ["pets: ok"]


def _count_write_row(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record each call of psycopg's public per-row COPY API (the fallback path)."""
    calls: list[int] = []
    real_write_row = psycopg.Copy.write_row
    monkeypatch.setattr(
        psycopg.Copy, "write_row", lambda self, row: calls.append(1) or real_write_row(self, row)
    )
    return calls


def test_load_falls_back_to_public_write_row_without_psycopgs_private_encoder(
    make_db, target, monkeypatch
):
    # as if a psycopg upgrade had renamed the private internals the fast path uses
    monkeypatch.setattr(load._RowWriter, "INTERNALS", ("format_row_binary_renamed",))
    calls = _count_write_row(monkeypatch)
    src = make_db(PETS, rows={INSERT: ROWS})
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert len(calls) == len(ROWS)
    assert (
        query(target, "SELECT id, name, species, breed, age, price, status FROM pets ORDER BY id")
        == ROWS
    )
    assert res.messages("verified") == ["pets: ok"]


def test_pinned_psycopg_still_has_the_internals_of_the_fast_copy_path(make_db, target, monkeypatch):
    """A canary for psycopg upgrades: the fallback is correct but about a fifth slower."""
    calls = _count_write_row(monkeypatch)
    src = make_db(PETS, rows={INSERT: ROWS})
    assert run_cli("run", "--source", src, "--target", target).code == 0
    assert calls == []  # every row went through the batch encoder
    assert query(target, "SELECT count(*) FROM pets") == [(len(ROWS),)]


def test_identity_continues_after_max_id_and_sqlite_sequence(make_db, target):
    src = make_db(
        PETS
        + "INSERT INTO pets (id, name, species, price) VALUES (40, 'gone', 'dog', 1);"
        + "DELETE FROM pets WHERE id = 40;",
        rows={INSERT: ROWS},
    )
    assert run_cli("run", "--source", src, "--target", target).code == 0
    new_id = query(
        target,
        "INSERT INTO pets (name, species, price) VALUES ('New', 'dog', 5) RETURNING id, status",
    )
    assert new_id == [
        (41, "available")
    ]  # after sqlite_sequence (40), not just max(id) (7); default kept


def test_rerun_with_same_source_is_a_verified_noop(make_db, target):
    src = make_db(PETS, rows={INSERT: ROWS})
    assert run_cli("run", "--source", src, "--target", target, "--verify").code == 0
    again = run_cli("run", "--source", src, "--target", target, "--verify")
    assert again.code == 0, again.text
    assert "already migrated and verified: nothing to do" in again.messages("done")
    assert query(target, "SELECT count(*) FROM pets") == [(3,)]
    assert query(target, "SELECT count(*) FROM petstore_migration.runs") == [(1,)]


def test_rerun_after_the_source_changed_is_refused_and_says_which_side_moved(make_db, target):
    src = make_db(PETS, rows={INSERT: ROWS})
    assert run_cli("run", "--source", src, "--target", target, "--verify").code == 0
    write_in_other_process(src, "INSERT INTO pets (name, species, price) VALUES ('New', 'cat', 1)")
    again = run_cli("run", "--source", src, "--target", target, "--verify")
    assert again.code == 2
    assert again.messages("failed")[0].endswith(
        "source and target differ now: table pets: the sources changed since the migration "
        "(3 rows then, 4 now), the target did not; nothing was changed"
    )
    assert query(target, "SELECT count(*) FROM pets") == [(3,)]
    assert query(target, "SELECT count(*) FROM petstore_migration.runs") == [(1,)]


def test_run_against_target_migrated_from_other_sources_is_refused(make_db, target):
    first = make_db(PETS, name="a.db", rows={INSERT: ROWS})
    other = make_db(PETS, name="b.db", rows={INSERT: ROWS[:1]})
    assert run_cli("run", "--source", first, "--target", target).code == 0
    res = run_cli("run", "--source", other, "--target", target)
    assert res.code == 2
    assert "already holds a completed migration from a.db" in res.messages("failed")[0]
    assert query(target, "SELECT count(*) FROM pets") == [(3,)]


def test_existing_nonempty_table_is_never_overwritten_without_replace(make_db, target):
    # --schema create: the tool's own definitions (--schema existing keeps the app's)
    src = make_db(PETS, rows={INSERT: ROWS})
    query(target, "CREATE TABLE pets (id int, name text); INSERT INTO pets VALUES (99, 'app row')")
    res = run_cli("run", "--source", src, "--target", target, "--schema", "create")
    assert res.code == 2
    assert "already has data in table(s) pets" in res.messages("failed")[0]
    assert query(target, "SELECT id, name FROM pets") == [(99, "app row")]
    replaced = run_cli(
        "run", "--source", src, "--target", target, "--replace", "--schema", "create"
    )
    assert replaced.code == 0, replaced.text
    assert query(target, "SELECT count(*) FROM pets") == [(3,)]


def test_existing_empty_table_is_replaced_and_reported(make_db, target):
    src = make_db(PETS, rows={INSERT: ROWS})
    query(target, "CREATE TABLE pets (id serial primary key)")
    res = run_cli("run", "--source", src, "--target", target, "--schema", "create")
    assert res.code == 0, res.text
    assert any("already existed empty" in m for m in res.messages("reported"))


def test_verify_command_detects_a_changed_value(make_db, target):
    src = make_db(PETS, rows={INSERT: ROWS})
    assert run_cli("run", "--source", src, "--target", target).code == 0
    assert run_cli("verify", "--source", src, "--target", target).code == 0
    query(target, "UPDATE pets SET price = price + 1e-12 WHERE id = 1")
    res = run_cli("verify", "--source", src, "--target", target)
    assert res.code == 1
    assert res.messages("verified") == ["pets: MISMATCH"]


def test_verify_reports_missing_target_table(make_db, target):
    src = make_db(PETS, rows={INSERT: ROWS})
    res = run_cli("verify", "--source", src, "--target", target)
    assert res.code == 1
    assert "missing in the target: pets" in res.messages("failed")[0]
    assert tables_in(target) == []
