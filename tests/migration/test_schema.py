"""Schema carried over: keys, constraints, indexes, generated columns, views; the rest reported."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from tests.migration.conftest import query, run_cli, tables_in

pytestmark = pytest.mark.db

SHOP = """
CREATE TABLE owners (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT COLLATE NOCASE,
                     created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE pets (id INTEGER PRIMARY KEY AUTOINCREMENT,
                   owner_id INTEGER REFERENCES owners(id) ON DELETE CASCADE ON UPDATE SET NULL,
                   name TEXT NOT NULL CHECK (length(name) > 0), price REAL NOT NULL DEFAULT 0,
                   status TEXT DEFAULT 'available',
                   CONSTRAINT price_positive CHECK (price >= 0));
CREATE TABLE visits (pet_id INTEGER NOT NULL, day DATE NOT NULL, vet TEXT,
                     PRIMARY KEY (pet_id, day),
                     FOREIGN KEY (pet_id) REFERENCES pets(id));
CREATE TABLE visit_notes (pet_id INTEGER, day DATE, note TEXT,
                          FOREIGN KEY (pet_id, day) REFERENCES visits(pet_id, day)
                          ON DELETE CASCADE);
CREATE INDEX pets_available ON pets (price DESC) WHERE status = 'available';
CREATE INDEX pets_lower_name ON pets (lower(name));
CREATE UNIQUE INDEX owners_name_nocase ON owners (name COLLATE NOCASE);
CREATE VIEW available AS SELECT p.id, p.name, ifnull(o.email, '-') AS email
    FROM pets p LEFT JOIN owners o ON o.id = p.owner_id
    WHERE p.status = 'available';
CREATE VIEW expensive AS SELECT id, name FROM available
    WHERE id IN (SELECT id FROM pets WHERE price > 100);
CREATE VIEW odd AS SELECT id, julianday('now') - julianday(created_at) AS age_days,
    printf('%5.2f', id) AS p FROM owners;
CREATE TRIGGER pets_touch AFTER UPDATE ON pets
    BEGIN UPDATE pets SET status = status WHERE id = NEW.id; END;
INSERT INTO owners VALUES (1, 'a@example.com', 'Ann', '2024-01-01 00:00:00'),
                          (2, 'b@example.com', 'Bob', '2024-01-02 00:00:00');
INSERT INTO pets VALUES (1, 1, 'Rex', 150, 'available'), (2, 2, 'Tom', 20, 'sold'),
                        (3, NULL, 'Kit', 5, 'available');
INSERT INTO visits VALUES (1, '2024-05-01', 'Dr. Who'), (1, '2024-06-01', NULL);
INSERT INTO visit_notes VALUES (1, '2024-05-01', 'all good');
"""


@pytest.fixture
def shop(make_db, target):
    src = make_db(SHOP)
    res = run_cli("run", "--source", src, "--target", target, "--verify", "--skip", "view:odd")
    assert res.code == 0, res.text
    return target, res


def test_a_view_that_cannot_be_created_refuses_the_run_unless_skipped_by_name(make_db, target):
    src = make_db(SHOP)
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 1
    assert res.messages("failed") == [
        (
            "1 object(s) of the source schema cannot be created in PostgreSQL; nothing was "
            "written: view 'odd': not translated: printf conversion '%5' is not on the allowlist "
            "of what is translated (to migrate without it: --skip view:odd)"
        )
    ]
    assert tables_in(target) == []


def constraints(url: str, table: str) -> dict[str, str]:
    return dict(
        query(
            url,
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = "
            "%s::regclass",
            (table,),
        )
    )


def indexes(url: str, table: str) -> dict[str, str]:
    return dict(
        query(url, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", (table,))
    )


def test_primary_keys_unique_and_composite_foreign_keys_with_actions(shop):
    url, _ = shop
    assert constraints(url, "visits")["visits_pkey"] == "PRIMARY KEY (pet_id, day)"
    assert constraints(url, "owners")["owners_email_key"] == "UNIQUE (email)"
    assert (
        constraints(url, "pets")["pets_owner_id_fkey"]
        == "FOREIGN KEY (owner_id) REFERENCES owners(id) ON UPDATE SET NULL ON DELETE CASCADE"
    )
    assert constraints(url, "visit_notes")["visit_notes_pet_id_day_fkey"] == (
        "FOREIGN KEY (pet_id, day) REFERENCES visits(pet_id, day) ON DELETE CASCADE"
    )
    assert query(
        url, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated"
    ) == [(0,)]
    query(url, "DELETE FROM owners WHERE id = 2")  # cascades to pet 2
    assert query(url, "SELECT id FROM pets ORDER BY id") == [(1,), (3,)]
    with pytest.raises(
        psycopg.errors.ForeignKeyViolation
    ):  # pet 1 has visits, which do not cascade
        query(url, "DELETE FROM owners WHERE id = 1")


def test_check_constraints_are_enforced_in_postgresql(shop):
    url, _ = shop
    assert constraints(url, "pets")["price_positive"] == "CHECK ((price >= (0)::double precision))"
    with pytest.raises(psycopg.errors.CheckViolation):
        query(url, "INSERT INTO pets (name, price) VALUES ('', 1)")
    with pytest.raises(psycopg.errors.CheckViolation):
        query(url, "INSERT INTO pets (name, price) VALUES ('x', -1)")


def test_defaults_and_identity_work_for_new_rows(shop):
    url, _ = shop
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    row = query(
        url, "INSERT INTO owners (email) VALUES ('c@example.com') RETURNING id, created_at"
    )[0]
    assert row[0] == 3
    assert (
        before - dt.timedelta(seconds=5) <= row[1] <= before + dt.timedelta(seconds=5)
    )  # UTC, like SQLite's CURRENT_TIMESTAMP
    assert query(url, "INSERT INTO pets (name) VALUES ('New') RETURNING id, price, status") == [
        (4, 0.0, "available")
    ]


def test_partial_expression_and_nocase_indexes(shop):
    url, res = shop
    ix = indexes(url, "pets")
    assert ix["pets_available"].endswith(
        "USING btree (price DESC) WHERE (status = 'available'::text)"
    )
    assert ix["pets_lower_name"].endswith("USING btree (lower(name))")
    assert indexes(url, "owners")["owners_name_nocase"].startswith(
        "CREATE UNIQUE INDEX owners_name_nocase ON public.owners USING btree "
        "(translate(name, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'::text, 'abcdefghijklmnopqrstuvwxyz'::text))"
    )
    reported = res.messages("reported")
    assert any(
        "COLLATE NOCASE on 'name' carried over as translate(name, 'A..Z', 'a..z')" in m
        for m in reported
    )
    assert any(
        "column 'name': column collation NOCASE not carried over" in m for m in res.messages("note")
    )


def test_views_are_translated_and_created_and_the_rest_reported_by_name(shop):
    url, res = shop
    assert query(url, "SELECT id, name, email FROM available ORDER BY id") == [
        (1, "Rex", "a@example.com"),
        (3, "Kit", "-"),
    ]
    assert query(url, "SELECT id, name FROM expensive") == [(1, "Rex")]
    reported = res.messages("reported")
    assert (
        "view 'odd': not translated: printf conversion '%5' is not on the allowlist of what is "
        "translated: not carried over: skipped with --skip view:odd"
    ) in reported
    assert any("trigger 'pets_touch' on 'pets': not carried over" in m for m in reported)


def test_generated_columns_are_computed_by_postgresql(make_db, target):
    src = make_db("""
        CREATE TABLE items (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL, price REAL NOT NULL,
                            total REAL GENERATED ALWAYS AS (qty * price) STORED,
                            label TEXT AS ('item-' || id) VIRTUAL);
        INSERT INTO items (id, qty, price) VALUES (1, 2, 2.5), (2, 3, 0.1);
    """)
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert query(target, "SELECT total, label FROM items ORDER BY id") == [
        (5.0, "item-1"),
        (3 * 0.1, "item-2"),
    ]
    assert query(
        target, "INSERT INTO items (id, qty, price) VALUES (3, 4, 1) RETURNING total, label"
    ) == [(4.0, "item-3")]
    assert any("VIRTUAL generated column created as STORED" in m for m in res.messages("reported"))


GENERATED_HEX = """
CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT, h TEXT GENERATED ALWAYS AS (hex(x)) STORED);
INSERT INTO t (id, x) VALUES (1, 'ab'), (2, NULL), (3, 'é');
"""
GENERATED_CHAIN = """
CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT, g1 TEXT GENERATED ALWAYS AS (x || 'a') STORED,
                g2 TEXT GENERATED ALWAYS AS (g1 || 'b') STORED, n INTEGER DEFAULT 3);
INSERT INTO t (id, x) VALUES (1, 'p'), (2, NULL);
"""


def _refusal_messages(res) -> list[str]:
    return [e["message"] for e in res.events if e["event"] == "refused"]


def _generated_kind(target: str, column: str) -> str:
    (row,) = query(
        target,
        "SELECT attgenerated FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = %s",
        (column,),
    )
    return str(row[0])


def test_untranslatable_generated_column_refuses_run_and_plan_alike(make_db, target):
    src = make_db(GENERATED_HEX)
    expected = (
        "generated column t.h: not translated: function 'HEX' is not on the allowlist of what "
        "is translated (to carry its stored values as a plain column: --skip generated:t.h)"
    )
    plan = run_cli("plan", "--source", src, "--target", target)
    assert plan.code == 1, plan.text
    assert _refusal_messages(plan) == [expected]
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 1, res.text
    (failed,) = res.messages("failed")
    assert failed.endswith("nothing was written: " + expected)
    assert tables_in(target) == []


def test_skipped_generated_column_carries_the_stored_values_as_a_plain_column(make_db, target):
    src = make_db(GENERATED_HEX)
    plan = run_cli("plan", "--source", src, "--target", target, "--skip", "generated:T.h")
    assert plan.code == 0, plan.text
    res = run_cli("run", "--source", src, "--target", target, "--verify", "--skip", "generated:t.h")
    assert res.code == 0, res.text
    assert query(target, "SELECT id, h FROM t ORDER BY id") == [
        (1, "6162"),
        (2, ""),  # SQLite's hex(NULL) is '': the values SQLite stored, not recomputed
        (3, "C3A9"),
    ]
    assert _generated_kind(target, "h") == ""  # plain: the app writes it from now on
    note = (
        "generated column t.h: not translated: function 'HEX' is not on the allowlist of what is "
        "translated: carried over as a plain column with its stored values: skipped with --skip "
        "generated:t.h"
    )
    assert note in res.messages("reported")
    assert [m for m in plan.messages("reported") if m.startswith("generated column")] == [note]


def test_generated_column_postgresql_rejects_is_refused_by_name(make_db, target):
    src = make_db(GENERATED_CHAIN)
    expected = (
        "generated column t.g2: PostgreSQL rejected the translation (cannot use generated column "
        '"g1" in column generation expression) (to carry its stored values as a plain column: '
        "--skip generated:t.g2)"
    )
    plan = run_cli("plan", "--source", src, "--target", target)
    assert plan.code == 1, plan.text
    assert _refusal_messages(plan) == [expected]
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 1, res.text
    (failed,) = res.messages("failed")
    assert failed.endswith("nothing was written: " + expected)
    assert tables_in(target) == []
    res = run_cli(
        "run", "--source", src, "--target", target, "--verify", "--skip", "generated:t.g2"
    )
    assert res.code == 0, res.text
    assert query(target, "SELECT id, g1, g2, n FROM t ORDER BY id") == [
        (1, "pa", "pab", 3),
        (2, None, None, 3),
    ]
    assert (_generated_kind(target, "g1"), _generated_kind(target, "g2")) == ("s", "")
    assert query(target, "INSERT INTO t (id, x) VALUES (3, 'q') RETURNING g1, n") == [("qa", 3)]


def test_a_translatable_generated_column_may_be_skipped_too(make_db, target):
    src = make_db(GENERATED_CHAIN)
    res = run_cli("run", "--source", src, "--target", target, "--skip", "generated:t.g1")
    assert res.code == 0, res.text
    assert (_generated_kind(target, "g1"), _generated_kind(target, "g2")) == ("", "s")
    assert query(target, "SELECT g1, g2 FROM t ORDER BY id") == [("pa", "pab"), (None, None)]
    assert (
        "generated column t.g1: carried over as a plain column with its stored values: skipped "
        "with --skip generated:t.g1"
    ) in res.messages("reported")


def test_without_rowid_and_strict_tables(make_db, target):
    src = make_db("""
        CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID;
        CREATE TABLE s (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, t TEXT, b BLOB, r REAL,
                        a ANY) STRICT;
        INSERT INTO kv VALUES ('b', 2), ('a', 1);
        INSERT INTO s VALUES (1, 10, 'x', x'01', 1.5, 7), (2, 20, NULL, NULL, NULL, 8);
    """)
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert query(target, "SELECT k, v FROM kv ORDER BY k") == [("a", 1), ("b", 2)]
    assert constraints(target, "kv")["kv_pkey"] == "PRIMARY KEY (k)"
    assert query(target, "SELECT n, t, b, r, a FROM s ORDER BY id") == [
        (10, "x", b"\x01", 1.5, 7),
        (20, None, None, None, 8),
    ]


AWKWARD = """
CREATE TABLE "Order Items" ("Item ID" INTEGER PRIMARY KEY, "select" TEXT, "CamelCase" INTEGER,
                            "quote""d" TEXT);
CREATE INDEX "Idx Camel" ON "Order Items" ("CamelCase");
INSERT INTO "Order Items" VALUES (1, 'from', 2, 'q');
"""


def test_awkward_identifiers_are_quoted_and_lowered_by_default(make_db, target):
    src = make_db(AWKWARD)
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert query(
        target, 'SELECT "item id", "select", camelcase, "quote""d" FROM "order items"'
    ) == [(1, "from", 2, "q")]
    assert "idx camel" in indexes(target, "order items")


def test_identifiers_preserve_keeps_the_case(make_db, target):
    src = make_db(AWKWARD)
    res = run_cli(
        "run", "--source", src, "--target", target, "--identifiers", "preserve", "--verify"
    )
    assert res.code == 0, res.text
    assert query(target, 'SELECT "Item ID", "CamelCase" FROM "Order Items"') == [(1, 2)]


def test_lower_folds_ascii_only_like_postgresql_unquoted_names(make_db, target):
    src = make_db(
        'CREATE TABLE "ÄPFEL" ("Größe" INTEGER, "SIZE" INTEGER); INSERT INTO "ÄPFEL" VALUES (1, 2);'
    )
    assert run_cli("run", "--source", src, "--target", target, "--verify").code == 0
    assert query(target, "SELECT Größe, SIZE FROM ÄPFEL") == [
        (1, 2)
    ]  # unquoted, as the app writes them


def test_names_that_collide_in_postgresql_are_an_error_and_nothing_is_written(make_db, target):
    src = make_db(
        "CREATE TABLE pets (id INTEGER PRIMARY KEY, name TEXT); CREATE INDEX PETS_PKEY ON pets "
        "(name);"
    )
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 2
    assert res.messages("failed") == [
        (
            "primary key of 'pets' and index 'PETS_PKEY' on 'pets' both need the PostgreSQL name "
            "'pets_pkey' (tables, views and indexes share one namespace) (use --identifiers "
            "preserve to keep the case)"
        )
    ]
    assert tables_in(target) == []


def test_orphan_foreign_keys_in_the_source_are_refused_and_listed(make_db, target):
    src = make_db("""
        CREATE TABLE owners (id INTEGER PRIMARY KEY);
        CREATE TABLE pets (id INTEGER PRIMARY KEY, owner_id INTEGER REFERENCES owners(id));
        INSERT INTO owners VALUES (1); INSERT INTO pets VALUES (1, 1), (2, 99);
    """)
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 1
    assert [
        (e["table"], e["column"], e["value"], e["reason"])
        for e in res.events
        if e["event"] == "problem"
    ] == [("pets", "owner_id", "99", "foreign key to owners: no such row in any source (1 row(s))")]
    assert tables_in(target) == []


def test_null_in_a_text_primary_key_is_refused_with_the_constraint_named(make_db, target):
    src = make_db(
        "CREATE TABLE tags (name TEXT PRIMARY KEY, n INTEGER);"
        "INSERT INTO tags VALUES ('a', 1), (NULL, 2);"
    )
    res = run_cli("run", "--source", src, "--target", target)
    assert res.code == 1
    problems = [e for e in res.events if e["event"] == "problem"]
    assert [(p["table"], p["column"], p["rowid"], p["reason"]) for p in problems] == [
        ("tags", "name", "2", "NULL in the primary key (PostgreSQL keys are NOT NULL)")
    ]  # as `plan` lists it
    assert res.messages("failed") == [
        "1 row(s) conflict across sources or break a key; nothing was written"
    ]
    assert tables_in(target) == []
