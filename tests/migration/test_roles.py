"""The roles Job's bootstrap on a real PostgreSQL, run as an RDS-like master (CREATEROLE and
CREATEDB, owner of the database, not a superuser): the migration runs as the owner role and
owns what it creates, the app's logins read and write rows but change no schema, a rotation of
one app login leaves the other's connections working, and no password reaches the statement
log."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from migration import roles
from tests.migration.conftest import PgServer, _ensure_alive, query, run_cli

PETS = """
CREATE TABLE pets (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL);
INSERT INTO pets (name) VALUES ('Rex'), ('Zoë');
"""


def _url(base: str, user: str, password: str, database: str) -> str:
    parts = urlsplit(base)
    netloc = f"{quote(user)}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc, path="/" + database))


@pytest.fixture
def rds_like(pg_server: PgServer) -> Iterator[dict[str, str]]:
    """A database owned by a non-superuser master with CREATEROLE, as RDS creates it."""
    _ensure_alive(pg_server)
    tag = uuid.uuid4().hex[:8]
    master, database = f"master_{tag}", f"app_{tag}"
    names = {
        "master": master,
        "database": database,
        "owner": f"owner_{tag}",
        "group": f"app_{tag}_rw",
        "a": f"app_{tag}_a",
        "b": f"app_{tag}_b",
    }
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD 'master-pw'").format(
                sql.Identifier(master)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(database), sql.Identifier(master)
            )
        )
    try:
        yield names
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            for key in ("a", "b", "group", "owner", "master"):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(names[key])))


def _spec(
    pg_server: PgServer, names: dict[str, str], tmp_path: Path, passwords: dict[str, str]
) -> Path:
    path = tmp_path / f"roles-{uuid.uuid4().hex[:6]}.json"
    path.write_text(
        json.dumps(
            {
                "admin_url": _url(
                    pg_server.admin_url, names["master"], "master-pw", names["database"]
                ),
                "database": names["database"],
                "schema": "public",
                "owner": {"name": names["owner"], "password": passwords["owner"]},
                "app_group": names["group"],
                "app_users": [
                    {"name": names["a"], "password": passwords["a"]},
                    {"name": names["b"], "password": passwords["b"]},
                ],
            }
        ),
        encoding="utf-8",
    )
    return path


def test_migration_as_owner_then_app_logins_have_rows_only(
    pg_server: PgServer, rds_like: dict[str, str], tmp_path: Path, make_db
) -> None:
    pw = {"owner": "own-Pw-1", "a": "app-a-Pw-1", "b": "app-b-Pw-1"}
    assert roles.main(["--spec-file", str(_spec(pg_server, rds_like, tmp_path, pw))]) == 0
    db = rds_like["database"]
    owner_url = _url(pg_server.admin_url, rds_like["owner"], pw["owner"], db)

    res = run_cli("run", "--source", make_db(PETS), "--target", owner_url, "--verify")
    assert res.code == 0, res.text

    owners = query(
        owner_url,
        "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S') ORDER BY 1",
    )
    assert owners == [("pets", rds_like["owner"]), ("pets_id_seq", rds_like["owner"])]

    for user in ("a", "b"):
        app_url = _url(pg_server.admin_url, rds_like[user], pw[user], db)
        with psycopg.connect(app_url, autocommit=True) as conn:
            assert conn.execute("SELECT name FROM pets ORDER BY id").fetchall() == [
                ("Rex",),
                ("Zoë",),
            ]
            new_id = conn.execute("INSERT INTO pets (name) VALUES ('Tom') RETURNING id").fetchone()
            assert new_id is not None
            assert new_id[0] >= 3
            conn.execute("UPDATE pets SET name = 'Tim' WHERE name = 'Tom'")
            conn.execute("DELETE FROM pets WHERE name = 'Tim'")
            for ddl in (
                "CREATE TABLE intruder (x int)",
                "DROP TABLE pets",
                "ALTER TABLE pets ADD COLUMN y int",
                "TRUNCATE pets",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(ddl)
            super_or_owner = conn.execute(
                "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
                "WHERE rolname = current_user"
            ).fetchone()
            assert super_or_owner == (False, False, False)


def test_rotating_one_app_login_leaves_the_other_working_and_is_idempotent(
    pg_server: PgServer, rds_like: dict[str, str], tmp_path: Path
) -> None:
    db = rds_like["database"]
    first = {"owner": "own-Pw-1", "a": "app-a-Pw-1", "b": "app-b-Pw-1"}
    assert roles.main(["--spec-file", str(_spec(pg_server, rds_like, tmp_path, first))]) == 0
    a_url = _url(pg_server.admin_url, rds_like["a"], first["a"], db)
    live = psycopg.connect(a_url, autocommit=True)  # an app pod on login a, mid-rotation
    try:
        rotated = {**first, "b": "app-b-Pw-2"}
        spec = _spec(pg_server, rds_like, tmp_path, rotated)
        assert roles.main(["--spec-file", str(spec)]) == 0
        assert roles.main(["--spec-file", str(spec)]) == 0  # a re-run changes nothing

        assert live.execute("SELECT 1").fetchone() == (1,)
        psycopg.connect(a_url).close()  # new connections on a still work
        psycopg.connect(_url(pg_server.admin_url, rds_like["b"], "app-b-Pw-2", db)).close()
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(_url(pg_server.admin_url, rds_like["b"], "app-b-Pw-1", db))
    finally:
        live.close()


def test_passwords_never_appear_in_the_statement_log(
    pg_server: PgServer, rds_like: dict[str, str], tmp_path: Path
) -> None:
    pw = {"owner": "own-SECRET-1", "a": "app-SECRET-a", "b": "app-SECRET-b"}
    spec = roles.read_spec(str(_spec(pg_server, rds_like, tmp_path, pw)))
    statements: list[str] = []
    original = psycopg.Connection.execute

    def recording(self, query, params=None, **kw):  # type: ignore[no-untyped-def]
        text = query.as_string(self) if hasattr(query, "as_string") else str(query)
        statements.append(text)
        return original(self, query, params, **kw)

    psycopg.Connection.execute = recording  # type: ignore[method-assign]
    try:
        roles.apply(spec)
    finally:
        psycopg.Connection.execute = original  # type: ignore[method-assign]
    password_statements = [s for s in statements if " PASSWORD " in s]
    assert len(password_statements) == 3
    assert all("'SCRAM-SHA-256$4096:" in s for s in password_statements)
    assert not [s for s in statements if "SECRET" in s]
    assert "SECRET" not in repr(spec)


def test_a_bad_spec_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "roles.json"
    path.write_text('{"admin_url": "postgresql://m:TOPSECRET@h/db"}', encoding="utf-8")
    assert roles.main(["--spec-file", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"--spec-file {path}: not a roles spec (KeyError ('database',))" in err
    assert "TOPSECRET" not in err
