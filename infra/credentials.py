"""Credentials: the master password (random, URL-safe, secret end to end) and the AWS Secrets
Manager secret holding the standard RDS connection JSON; plus the pure builders of that payload
and of libpq connection URIs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.tags import with_name

PASSWORD_LENGTH = 32  # ~190 bits from 62+4 symbols; RDS for PostgreSQL allows 8-128
# RFC 3986 "unreserved" punctuation only: nothing that breaks a URI, a shell or RDS's rules
# (RDS refuses / @ " and space in master passwords).
PASSWORD_SPECIALS = "-_.~"  # noqa: S105 - an alphabet, not a password
AWS_MANAGED_SECRETS_KEY = "alias/aws/secretsmanager"

SSLMODE_REQUIRE = "require"
SSLMODE_VERIFY_FULL = "verify-full"


@dataclass(frozen=True)
class MasterPasswordArgs:
    """The rotation counter: bump it and ``pulumi up`` to rotate."""

    version: int


@dataclass(frozen=True)
class DatabaseSecretArgs:
    """What goes into the Secrets Manager secret, and how it is protected."""

    identifier: pulumi.Input[str]
    host: pulumi.Input[str]
    port: pulumi.Input[int]
    username: str
    password: pulumi.Input[str]
    dbname: str
    kms_key_arn: pulumi.Input[str] | None
    recovery_window_days: int
    production: bool
    tags: Mapping[str, str]


def database_url(
    *,
    user: str,
    password: str,
    host: str,
    port: int,
    dbname: str,
    sslmode: str,
    sslrootcert: str | None = None,
) -> str:
    """A libpq connection URI with percent-encoded credentials, database and query values."""

    def enc(value: str) -> str:
        return quote(value, safe="")

    query = f"sslmode={enc(sslmode)}"
    if sslrootcert is not None:
        query += f"&sslrootcert={quote(sslrootcert, safe='/')}"
    return f"postgresql://{enc(user)}:{enc(password)}@{host}:{port}/{enc(dbname)}?{query}"


def rds_secret_payload(
    *, host: str, port: int, username: str, password: str, dbname: str, identifier: str
) -> dict[str, str | int]:
    """The standard RDS secret JSON shape (what RDS rotation functions and tools expect)."""
    return {
        "engine": "postgres",
        "host": host,
        "port": port,
        "username": username,
        "password": password,
        "dbname": dbname,
        "dbInstanceIdentifier": identifier,
    }


# The database roles (see migration/roles.py, which the roles Job runs as the master user).
OWNER_ROLE = (
    "petstore_owner"  # owns the app's schema; the migration and schema command log in as it
)
APP_GROUP_ROLE = "petstore_app"  # NOLOGIN: rows-only privileges on the app's schema
APP_LOGINS = ("petstore_app_a", "petstore_app_b")  # the app alternates between these two
APP_SCHEMA = "public"


def app_login_versions(app_password_version: int) -> dict[str, int]:
    """The password version of each app login for ``appPasswordVersion`` N: login a holds the
    latest odd version <= N, login b the latest even one (0: its first password). Bumping N
    changes exactly the login the app is NOT using, which then becomes the active one."""
    odd = app_password_version if app_password_version % 2 else app_password_version - 1
    even = app_password_version - 1 if app_password_version % 2 else app_password_version
    return {APP_LOGINS[0]: odd, APP_LOGINS[1]: even}


def active_app_login(app_password_version: int) -> str:
    """The login the app's Secret names for ``appPasswordVersion`` N (a when odd, b when even)."""
    return APP_LOGINS[0] if app_password_version % 2 else APP_LOGINS[1]


class RolePasswords(pulumi.ComponentResource):
    """Random passwords of the owner role (rotates with ``passwordVersion``) and of the two app
    logins (each with its own version, see ``app_login_versions``)."""

    owner: pulumi.Output[str]
    app: dict[str, pulumi.Output[str]]

    def __init__(
        self,
        name: str,
        owner_version: int,
        app_password_version: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("petstore-rds:credentials:RolePasswords", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.owner = _random_password(f"{name}-owner", owner_version, child)
        self.app = {
            login: _random_password(f"{name}-{login}", version, child)
            for login, version in app_login_versions(app_password_version).items()
        }
        self.register_outputs({"owner": self.owner, **self.app})


def _random_password(name: str, version: int, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    password = random.RandomPassword(
        name,
        length=PASSWORD_LENGTH,
        special=True,
        override_special=PASSWORD_SPECIALS,
        min_lower=2,
        min_upper=2,
        min_numeric=2,
        min_special=1,
        keepers={"version": str(version)},
        opts=opts,
    )
    return pulumi.Output.secret(password.result)


class MasterPassword(pulumi.ComponentResource):
    """The database's master password; rotating it is a change of ``version``."""

    result: pulumi.Output[str]

    def __init__(
        self, name: str, args: MasterPasswordArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("petstore-rds:credentials:MasterPassword", name, None, opts)
        password = random.RandomPassword(
            f"{name}-random",
            length=PASSWORD_LENGTH,
            special=True,
            override_special=PASSWORD_SPECIALS,
            min_lower=2,
            min_upper=2,
            min_numeric=2,
            min_special=1,
            keepers={"version": str(args.version)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.result = pulumi.Output.secret(password.result)
        self.register_outputs({"result": self.result})


class DatabaseSecret(pulumi.ComponentResource):
    """An AWS Secrets Manager secret (KMS-encrypted, with a recovery window) holding the
    standard RDS JSON built from the instance's outputs."""

    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: DatabaseSecretArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("petstore-rds:credentials:DatabaseSecret", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name_prefix=pulumi.Output.concat(args.identifier, "-master-"),
            description=pulumi.Output.concat(
                "Master credentials of the RDS PostgreSQL instance ",
                args.identifier,
                " (managed by Pulumi: rotate with passwordVersion, not in the console)",
            ),
            kms_key_id=args.kms_key_arn or AWS_MANAGED_SECRETS_KEY,
            recovery_window_in_days=args.recovery_window_days,
            tags=with_name(dict(args.tags), f"{name}-secret"),
            # Production: neither `pulumi destroy` nor a replacement deletes it.
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(protect=args.production, retain_on_delete=args.production),
            ),
        )
        payload = pulumi.Output.all(args.host, args.port, args.password, args.identifier).apply(
            lambda a: json.dumps(
                rds_secret_payload(
                    host=a[0],
                    port=int(a[1]),
                    username=args.username,
                    password=a[2],
                    dbname=args.dbname,
                    identifier=a[3],
                ),
                sort_keys=True,
            )
        )
        secret_payload: pulumi.Output[str] = pulumi.Output.secret(payload)
        aws.secretsmanager.SecretVersion(
            f"{name}-version",
            secret_id=secret.id,
            secret_string=secret_payload,
            opts=child,
        )
        self.arn = secret.arn
        self.register_outputs({"arn": self.arn})
