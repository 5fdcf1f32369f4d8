"""A source is read as one snapshot while the app (another process) keeps writing to it."""

from __future__ import annotations

from migration.source import Source
from tests.migration.conftest import write_in_other_process

WAL_PETS = """
PRAGMA journal_mode=WAL;
CREATE TABLE pets (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(50) NOT NULL);
INSERT INTO pets (name) VALUES ('Rex'), ('Tom'), ('Kit');
"""
APP_WRITES = """
INSERT INTO pets (name) VALUES ('Late');
UPDATE pets SET name = 'Changed' WHERE id = 1;
DELETE FROM pets WHERE id = 2;
"""


def _rows(src: Source) -> list[tuple[object, ...]]:
    return [r for b in src.batches("SELECT id, name FROM pets ORDER BY id", 2) for r in b]


def test_source_keeps_its_snapshot_while_another_process_commits(make_db):
    path = make_db(WAL_PETS)
    src = Source(path, 0, lambda _level, _message: None)
    try:
        assert _rows(src) == [(1, "Rex"), (2, "Tom"), (3, "Kit")]
        write_in_other_process(path, APP_WRITES)  # WAL: the writer commits despite our reader
        assert _rows(src) == [(1, "Rex"), (2, "Tom"), (3, "Kit")]
        assert src.one("SELECT count(*), max(id) FROM pets") == (3, 3)
    finally:
        src.close()
    fresh = Source(path, 0, lambda _level, _message: None)
    try:  # the writes did land: a new snapshot sees them
        assert _rows(fresh) == [(1, "Changed"), (3, "Kit"), (4, "Late")]
    finally:
        fresh.close()
