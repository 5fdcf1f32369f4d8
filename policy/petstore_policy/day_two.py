"""Day-two rules: explicit KMS key policies, production's stateful resources protected from
`pulumi destroy` and replacement, and no app-facing Kubernetes Secret carrying the RDS master
user (the app logs in with its own least-privilege roles)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from petstore_policy.environment import Environment
from petstore_policy.rules import Resource, ResourcePolicy, StackPolicy, get, is_set
from pulumi_policy.proxy import UnknownValueError

KMS_KEY = "aws:kms/key:Key"
RDS_INSTANCE = "aws:rds/instance:Instance"
SECRETS_MANAGER_SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 - a type token
K8S_SECRET = "kubernetes:core/v1:Secret"  # noqa: S105 - a type token
# What production must never lose to a destroy or a replacement.
PROTECTED_TYPES = frozenset({RDS_INSTANCE, KMS_KEY, SECRETS_MANAGER_SECRET})
# The one Kubernetes Secret allowed to hold the master login: the roles Job's (label value).
ROLES_COMPONENT = "database-roles"
COMPONENT_LABEL = "app.kubernetes.io/component"
DB_USER_KEYS = ("DB_USER", "PGUSER", "username", "user")


def _explicit_key_policy(resource: Resource, env: Environment) -> Iterator[str]:
    if not is_set(resource.props, "policy"):
        yield (
            "policy is unset, so AWS applies its default key policy; state who administers and "
            "who may use the key (and under which conditions) explicitly"
        )


def _protected(resource: Resource, env: Environment) -> Iterator[str]:
    if env.production and not resource.protect:
        yield (
            "the protect resource option is off; a production database, its key and its secret "
            "must be protected from `pulumi destroy` and replacement (protect=True)"
        )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _secret_texts(props: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The Secret's key/value pairs (stringData, and data decoded from base64)."""
    pairs: dict[str, str] = {}
    try:
        string_data = get(props, "stringData")
        data = get(props, "data")
    except UnknownValueError:
        return {}, []
    if isinstance(string_data, Mapping):
        pairs.update({str(k): str(v) for k, v in string_data.items()})
    if isinstance(data, Mapping):
        for key, value in data.items():
            try:
                pairs.setdefault(str(key), base64.b64decode(str(value)).decode("utf-8"))
            except (binascii.Error, UnicodeDecodeError):
                continue
    return pairs, list(_strings(list(pairs.values())))


def _carries_user(pairs: Mapping[str, str], texts: Sequence[str], user: str) -> str | None:
    for key in DB_USER_KEYS:
        if pairs.get(key) == user:
            return f"{key} is {user!r}"
    for text in texts:
        if f"//{user}:" in text or f"//{user}@" in text or f'"{user}"' in text:
            return f"a connection string logs in as {user!r}"
    return None


def _no_master_in_app_secret(
    resources: Sequence[Resource], env: Environment
) -> Iterator[tuple[str, Resource | None]]:
    masters = set()
    for instance in (r for r in resources if r.type == RDS_INSTANCE):
        try:
            user = get(instance.props, "username")
        except UnknownValueError:
            continue
        if isinstance(user, str) and user:
            masters.add(user)
    for secret in (r for r in resources if r.type == K8S_SECRET):
        try:
            component = get(secret.props, "metadata", "labels", COMPONENT_LABEL)
        except UnknownValueError:
            component = None
        if component == ROLES_COMPONENT:
            continue  # the roles Job's own Secret: the one place the master login goes
        pairs, texts = _secret_texts(secret.props)
        for user in sorted(masters):
            found = _carries_user(pairs, texts, user)
            if found:
                message = (
                    f"{K8S_SECRET} {secret.name!r}: {found}, the RDS master user; give the app "
                    "its own least-privilege role (only the roles Job's Secret, labelled "
                    f"{COMPONENT_LABEL}={ROLES_COMPONENT}, may hold the master login)"
                )
                yield message, secret


DAY_TWO_POLICIES: tuple[ResourcePolicy, ...] = (
    ResourcePolicy(
        "kms-explicit-key-policy",
        "baseline: key control",
        "KMS keys must carry an explicit key policy.",
        "",
        frozenset({KMS_KEY}),
        _explicit_key_policy,
    ),
    ResourcePolicy(
        "protect-stateful-resources",
        "baseline: no accidental destroy",
        "Production databases, their KMS keys and secrets must carry Pulumi's protect option.",
        "RDS instances, KMS keys and Secrets Manager secrets must have protect=True.",
        PROTECTED_TYPES,
        _protected,
    ),
)

DAY_TWO_STACK_POLICIES: tuple[StackPolicy, ...] = (
    StackPolicy(
        "no-master-user-in-app-secret",
        "baseline: least privilege",
        "No Kubernetes Secret other than the roles Job's may carry the RDS master user.",
        "",
        _no_master_in_app_secret,
    ),
)
