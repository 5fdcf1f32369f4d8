"""json_valid is rendered as IS JSON, which PostgreSQL has from 16 on while the stacks allow 14
and 15: on an older server every object that needs it is refused by name before any DDL,
naming the server's version (the version-gated logic is a pure function, given the major)."""

from __future__ import annotations

import psycopg
import pytest

from migration import compat, plan, render, translate
from migration.source import Source
from tests.migration.conftest import query, run_cli, tables_in

JSON_SCHEMA = """
CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT, meta TEXT,
                   flag INTEGER GENERATED ALWAYS AS (CASE WHEN json_valid(meta) THEN 1 ELSE 0 END)
                     STORED,
                   CONSTRAINT body_json CHECK (json_valid(body) OR length(body) > 100));
CREATE INDEX docs_json ON docs (id) WHERE json_valid(meta);
CREATE VIEW valid_docs AS SELECT id FROM docs WHERE json_valid(body);
CREATE VIEW plain_docs AS SELECT id, 'x IS JSON)' AS words FROM docs;
INSERT INTO docs (id, body, meta) VALUES (1, '{"a": 1}', '[1]'), (2, '[]', 'not json');
"""
KEYS = ["generated:docs.flag", "check:docs.body_json", "index:docs_json", "view:valid_docs"]


def _expr(text: str) -> object:
    rel = render.Relation("t", {"x": ("x", "text")}, ["x"])
    node = translate._parse(f"SELECT {text}").expressions[0]
    return translate.table_expression(node, rel, "t", str.lower)


@pytest.mark.parametrize(
    ("text", "uses"),
    [
        ("json_valid(x)", True),
        ("CASE WHEN x IS NULL THEN 0 ELSE NOT json_valid(x) END", True),
        ("x = 'y IS JSON)'", False),  # the words inside a literal are not the predicate
        ("lower(x)", False),
    ],
)
def test_the_is_json_predicate_is_found_in_the_rendered_tree(text, uses):
    assert compat.uses_is_json(_expr(text)) is uses  # type: ignore[arg-type]


@pytest.fixture
def json_plan(make_db):
    src = Source(make_db(JSON_SCHEMA), 0, lambda _level, _message: None)
    try:
        yield plan.build([src], plan.Namer("lower"), {}), [src]
    finally:
        src.close()


@pytest.mark.parametrize("major", [14, 15])
def test_before_16_every_object_using_is_json_is_refused_naming_the_version(json_plan, major):
    p, sources = json_plan
    found = compat.json_refusals(p, sources, major)
    assert sorted(r.key for r in found) == sorted(KEYS)
    why = (
        "uses IS JSON (SQLite's json_valid), which needs PostgreSQL 16 or later; the target "
        f"runs PostgreSQL {major}"
    )
    assert {r.why for r in found} == {why}


@pytest.mark.parametrize("major", [16, 17, 18])
def test_from_16_on_nothing_is_refused(json_plan, major):
    p, sources = json_plan
    assert compat.json_refusals(p, sources, major) == []


@pytest.mark.db
def test_on_the_real_server_the_json_objects_are_created_and_enforce_json(make_db, target):
    src = make_db(JSON_SCHEMA)
    res = run_cli("run", "--source", src, "--target", target, "--verify")
    assert res.code == 0, res.text
    assert query(target, "SELECT id, flag FROM docs ORDER BY id") == [(1, 1), (2, 0)]
    assert query(target, "SELECT id FROM valid_docs ORDER BY id") == [(1,), (2,)]
    with pytest.raises(psycopg.errors.CheckViolation):
        query(target, "INSERT INTO docs (id, body) VALUES (3, '{not json')")


@pytest.mark.db
@pytest.mark.parametrize("command", ["plan", "run"])
def test_on_a_15_server_plan_and_run_refuse_before_any_ddl(make_db, target, monkeypatch, command):
    monkeypatch.setattr(compat, "server_major", lambda _conn: 15)
    src = make_db(JSON_SCHEMA)
    res = run_cli(command, "--source", src, "--target", target)
    assert res.code == 1, res.text
    (failed,) = res.messages("failed")
    assert failed.startswith(
        "4 object(s) of the source schema need a newer PostgreSQL than the target's 15; "
        "nothing was written: "
    )
    for key in KEYS:
        assert f"--skip {key})" in failed
    assert "the target runs PostgreSQL 15" in failed
    assert tables_in(target) == []
    skips = [arg for key in KEYS for arg in ("--skip", key)]
    res = run_cli(command, "--source", src, "--target", target, *skips)
    assert res.code == 0, res.text
