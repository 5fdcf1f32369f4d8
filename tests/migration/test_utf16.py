"""UTF-16 source files (PRAGMA encoding = 'UTF-16le' / 'UTF-16be'): names, definitions and text
values migrate exactly; text that is not valid UTF-16 (which SQLite would convert without
complaint, pairing a lone surrogate with the next code unit) is refused by row and column."""

from __future__ import annotations

import sqlite3

import pytest

from tests.migration.conftest import query, run_cli

pytestmark = pytest.mark.db

SCHEMA = """
CREATE TABLE "Tiere_ä🐾" (id INTEGER PRIMARY KEY, "näme" TEXT NOT NULL CHECK (length("näme") > 0),
                         data BLOB, v VARCHAR(5), n REAL);
CREATE INDEX "ix_ä" ON "Tiere_ä🐾" ("näme");
CREATE VIEW "sicht_ö" AS SELECT id, "näme" || '✓' AS x FROM "Tiere_ä🐾";
"""
ROWS = [
    (1, "ü🐾x", b"\x00\xff", "ääääá", 1.5),
    (2, "z" * 5000 + "é", None, None, None),  # a long text: read whole (not streamed as bytes)
    (3, "日本語\u200b", b"", "🐾", -0.0),
    (4, "tab\tnew\nline ' \"", b"x", "", None),
]


def _utf16_db(tmp_path, encoding: str, extra: str = "") -> str:
    path = tmp_path / f"{encoding}.db"
    conn = sqlite3.connect(path)
    conn.executescript(f"PRAGMA encoding = '{encoding}';" + SCHEMA)
    conn.executemany('INSERT INTO "Tiere_ä🐾" VALUES (?, ?, ?, ?, ?)', ROWS)
    if extra:
        conn.executescript(extra)
    conn.commit()
    assert conn.execute("PRAGMA encoding").fetchone() == (encoding,)
    conn.close()
    return str(path)


@pytest.mark.parametrize("encoding", ["UTF-16le", "UTF-16be"])
def test_a_utf16_file_migrates_names_and_text_exactly(tmp_path, target, encoding):
    src = _utf16_db(tmp_path, encoding)
    plan = run_cli("plan", "--source", src, "--target", target)
    assert plan.code == 0, plan.text
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert query(target, 'SELECT id, "näme", data, v, n FROM "tiere_ä🐾" ORDER BY id') == ROWS
    assert query(target, 'SELECT x FROM "sicht_ö" WHERE id = 1') == [("ü🐾x✓",)]
    assert query(target, "SELECT indexname FROM pg_indexes WHERE indexname = 'ix_ä'") == [("ix_ä",)]
    assert [e for e in res.events if e["event"] == "verified"], res.text


@pytest.mark.parametrize(
    ("encoding", "units"),
    [("UTF-16le", "00D86100"), ("UTF-16be", "D8000061")],  # a lone high surrogate, then 'a'
)
def test_text_that_is_not_valid_utf16_is_refused_by_row_and_column(
    tmp_path, target, encoding, units
):
    extra = (
        f"INSERT INTO \"Tiere_ä🐾\" (id, \"näme\", v) VALUES (9, 'ok', CAST(X'{units}' AS TEXT));"
    )
    src = _utf16_db(tmp_path, encoding, extra)
    for command in ("plan", "run"):
        res = run_cli(command, "--source", src, "--target", target)
        assert res.code == 1, res.text
        problems = [e for e in res.events if e["event"] == "problem"]
        assert [(str(p["rowid"]), p["column"], p["reason"]) for p in problems] == [
            ("9", "v", f"text is not valid {encoding}")
        ]
    assert query(target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_invalid_utf16_text_cast_to_bytea_keeps_its_raw_bytes(tmp_path, target):
    extra = (
        "INSERT INTO \"Tiere_ä🐾\" (id, \"näme\", v) VALUES (9, 'ok', CAST(X'00D86100' AS TEXT));"
    )
    src = _utf16_db(tmp_path, "UTF-16le", extra)
    res = run_cli(
        "run", "--source", src, "--target", target, "--verify", "--cast", "Tiere_ä🐾.v=bytea"
    )
    assert res.code == 0, res.text
    assert query(target, 'SELECT id, v FROM "tiere_ä🐾" WHERE id IN (1, 9) ORDER BY id') == [
        (1, "ääääá".encode("utf-16-le")),  # what SQLite's CAST(v AS BLOB) gives in this file
        (9, b"\x00\xd8\x61\x00"),
    ]
