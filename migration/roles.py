"""Database roles for least privilege: an owner role that owns (and migrates) the app's schema,
a group role with only the app's data privileges, and two login roles in that group that the
app alternates between so a password rotation never breaks a live connection.

Run by the stack's roles Job as the RDS master user (``python -m migration.roles --spec-file
PATH``, the spec a mounted Secret). Idempotent: every run converges the roles, passwords and
grants to the spec. Passwords are sent as SCRAM-SHA-256 verifiers computed by libpq on the
client, so neither the statement text nor the server log (``log_statement=ddl``) ever holds a
password. Identifiers only through ``psycopg.sql.Identifier``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from migration.errors import UsageError
from migration.redact import redact, url_password

# The app's data privileges: rows only, never DDL, TRUNCATE or REFERENCES.
APP_TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
APP_SEQUENCE_PRIVILEGES = ("USAGE", "SELECT")  # nextval/currval for identity and serial columns
# Objects the owner creates later (the migration, the app's schema command) get the app's grants.
_DEFAULT_PRIVILEGES = "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "


@dataclass(frozen=True)
class Login:
    """A login role and its password."""

    name: str
    password: str

    def __repr__(self) -> str:
        return f"Login({self.name!r}, password=***)"


@dataclass(frozen=True)
class RolesSpec:
    """What the roles Job converges the database to."""

    admin_url: str
    database: str
    schema: str
    owner: Login
    app_group: str
    app_users: tuple[Login, ...]

    def __repr__(self) -> str:
        return f"RolesSpec(database={self.database!r}, owner={self.owner!r}, ...)"


def read_spec(path: str) -> RolesSpec:
    """The spec in a JSON file; errors name the file and the missing key, never a value."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return RolesSpec(
            admin_url=str(raw["admin_url"]),
            database=str(raw["database"]),
            schema=str(raw.get("schema", "public")),
            owner=Login(str(raw["owner"]["name"]), str(raw["owner"]["password"])),
            app_group=str(raw["app_group"]),
            app_users=tuple(Login(str(u["name"]), str(u["password"])) for u in raw["app_users"]),
        )
    except OSError as exc:
        raise UsageError(f"--spec-file {path}: cannot read it ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError) as exc:
        kind = type(exc).__name__
        raise UsageError(
            f"--spec-file {path}: not a roles spec ({kind} {exc.args[:1]!r})"
        ) from None


def _verifier(conn: psycopg.Connection, login: Login) -> str:
    """The SCRAM-SHA-256 verifier of the login's password, computed client-side by libpq."""
    raw = conn.pgconn.encrypt_password(
        login.password.encode(), login.name.encode(), b"scram-sha-256"
    )
    return raw.decode("ascii")


def _ensure_role(conn: psycopg.Connection, name: str, login: bool) -> None:
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    if exists is None:
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(name)))
    attributes = "LOGIN" if login else "NOLOGIN"
    conn.execute(
        sql.SQL("ALTER ROLE {} WITH " + attributes + " NOCREATEDB NOCREATEROLE").format(
            sql.Identifier(name)
        )
    )


def _set_password(conn: psycopg.Connection, login: Login) -> None:
    conn.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(login.name), sql.Literal(_verifier(conn, login))
        )
    )


def apply(spec: RolesSpec) -> list[str]:
    """Converge roles and grants to ``spec`` in one transaction; returns what it did."""
    owner, group, schema = (
        sql.Identifier(spec.owner.name),
        sql.Identifier(spec.app_group),
        sql.Identifier(spec.schema),
    )
    database = sql.Identifier(spec.database)
    table_privs = sql.SQL(", ").join(sql.SQL(p) for p in APP_TABLE_PRIVILEGES)
    seq_privs = sql.SQL(", ").join(sql.SQL(p) for p in APP_SEQUENCE_PRIVILEGES)
    with psycopg.connect(spec.admin_url) as conn:
        _ensure_role(conn, spec.owner.name, login=True)
        _set_password(conn, spec.owner)
        _ensure_role(conn, spec.app_group, login=False)
        for user in spec.app_users:
            _ensure_role(conn, user.name, login=True)
            _set_password(conn, user)
            conn.execute(sql.SQL("GRANT {} TO {}").format(group, sql.Identifier(user.name)))
        # The admin may act for the owner (default privileges below); it created the role.
        conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(owner))
        for statement in (
            "GRANT CONNECT, CREATE ON DATABASE {database} TO {owner}",
            "GRANT CONNECT ON DATABASE {database} TO {group}",
            "REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC",
            "GRANT USAGE, CREATE ON SCHEMA {schema} TO {owner}",
            "GRANT USAGE ON SCHEMA {schema} TO {group}",
            _DEFAULT_PRIVILEGES + "GRANT {table_privs} ON TABLES TO {group}",
            _DEFAULT_PRIVILEGES + "GRANT {seq_privs} ON SEQUENCES TO {group}",
            "GRANT {table_privs} ON ALL TABLES IN SCHEMA {schema} TO {group}",
            "GRANT {seq_privs} ON ALL SEQUENCES IN SCHEMA {schema} TO {group}",
        ):
            conn.execute(
                sql.SQL(statement).format(
                    database=database,
                    owner=owner,
                    group=group,
                    schema=schema,
                    table_privs=table_privs,
                    seq_privs=seq_privs,
                )
            )
    users = ", ".join(u.name for u in spec.app_users)
    return [
        f"owner role {spec.owner.name}: login, password set, CREATE on {spec.schema}",
        f"app group {spec.app_group}: {', '.join(APP_TABLE_PRIVILEGES)} on {spec.schema}",
        f"app logins {users}: passwords set, members of {spec.app_group}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the roles Job; exit 0 done, 2 bad spec or database error."""
    parser = argparse.ArgumentParser(prog="python -m migration.roles", description=__doc__)
    parser.add_argument("--spec-file", required=True, metavar="PATH")
    args = parser.parse_args(argv)
    try:
        spec = read_spec(args.spec_file)
        for line in apply(spec):
            print(json.dumps({"event": "roles", "message": line}), flush=True)
    except UsageError as exc:
        print(json.dumps({"event": "failed", "message": str(exc)}), file=sys.stderr)
        return exc.exit_code
    except psycopg.Error as exc:
        secrets = tuple(p for p in (url_password(spec.admin_url), spec.owner.password) if p)
        secrets += tuple(u.password for u in spec.app_users)
        message = redact(f"PostgreSQL error: {exc}", secrets)
        print(json.dumps({"event": "failed", "message": message}), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
