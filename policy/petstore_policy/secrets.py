"""Secrets Manager rules: an explicit KMS key (customer-managed in production), a description."""

from __future__ import annotations

from collections.abc import Iterator

from petstore_policy.environment import Environment
from petstore_policy.rules import Resource, ResourcePolicy, as_number, get, is_set, shown

SECRETS_MANAGER_SECRET = "aws:secretsmanager/secret:Secret"  # noqa: S105 (a type token)
# The AWS-managed key: encrypts, but its key policy cannot be scoped to this stack's readers.
AWS_MANAGED_KEY_ALIAS = "alias/aws/secretsmanager"
# recoveryWindowInDays 0 deletes the secret at once, with no way to restore it.
FORCE_DELETE_WINDOW_DAYS = 0


def _kms_key(resource: Resource, env: Environment) -> Iterator[str]:
    if not is_set(resource.props, "kmsKeyId"):
        yield "kmsKeyId is unset; name the KMS key that encrypts the secret"
        return
    if not env.production:
        return
    key = get(resource.props, "kmsKeyId")
    if isinstance(key, str) and key.endswith(AWS_MANAGED_KEY_ALIAS):
        yield (
            f"kmsKeyId is {key!r}, the AWS-managed key; a production secret must use the "
            "stack's customer-managed key"
        )
    window = get(resource.props, "recoveryWindowInDays")
    if as_number(window) == FORCE_DELETE_WINDOW_DAYS:
        yield (
            f"recoveryWindowInDays is {shown(window)}; a production secret must keep a "
            "recovery window (7-30 days) so a deletion can be undone"
        )


def _description(resource: Resource, env: Environment) -> Iterator[str]:
    if not is_set(resource.props, "description"):
        yield "description is unset; say what the secret holds and who reads it"


SECRETS_POLICIES: tuple[ResourcePolicy, ...] = (
    ResourcePolicy(
        "secretsmanager-kms-key",
        "baseline: encryption key control",
        "Secrets Manager secrets must name the KMS key that encrypts them.",
        "the key must be customer-managed (not alias/aws/secretsmanager) and the secret must "
        "keep a recovery window (recoveryWindowInDays is not 0).",
        frozenset({SECRETS_MANAGER_SECRET}),
        _kms_key,
    ),
    ResourcePolicy(
        "secretsmanager-description",
        "baseline: auditable secrets",
        "Secrets Manager secrets must carry a description.",
        "",
        frozenset({SECRETS_MANAGER_SECRET}),
        _description,
    ),
)
