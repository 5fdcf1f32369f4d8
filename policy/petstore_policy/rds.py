"""RDS rules, after AWS Security Hub's Foundational Security Best Practices (FSBP) RDS controls.

Each check reads the wire-format inputs of ``aws:rds/instance:Instance`` (or of the parameter
group) and yields one message per violation, naming the property, its value and what is
expected. Production-only demands (Multi-AZ, deletion protection, 7-day backups, a
customer-managed key) are gated on ``env.production``.

Security Hub RDS.10 (IAM database authentication) is deliberately not enforced: the app logs in
with one of two rotating password logins that own nothing (docs/architecture.md, "Database
roles"); IAM tokens expire every 15 minutes, which the app's connection pool cannot refresh, and
a rule requiring a setting nothing uses proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from petstore_policy.environment import Environment
from petstore_policy.rules import (
    MISSING,
    Resource,
    ResourcePolicy,
    StackPolicy,
    as_list,
    as_number,
    get,
    is_set,
    peek,
    shown,
)

RDS_INSTANCE = "aws:rds/instance:Instance"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
EVENT_SUBSCRIPTION = "aws:rds/eventSubscription:EventSubscription"

# Enhanced-monitoring intervals RDS accepts, in seconds (0 disables it).
MONITORING_INTERVALS_S = (1, 5, 10, 15, 30, 60)
# Backup retention, in days: FSBP RDS.11's default minimum, demanded in production.
PRODUCTION_BACKUP_RETENTION_DAYS = 7
# Outside production, backups must at least be on (retention 0 disables them).
MINIMUM_BACKUP_RETENTION_DAYS = 1
# CloudWatch log exports FSBP RDS.9 / RDS.36 expect from an RDS for PostgreSQL instance.
POSTGRES_LOG_EXPORTS = ("postgresql", "upgrade")
# Engine defaults that FSBP RDS.25 counts as "not custom".
DEFAULT_ADMIN_USERNAMES = frozenset({"postgres", "admin", "root", "rdsadmin", "administrator"})
# RDS certificate authorities valid past 2024 (rds-ca-2019 expired in August 2024).
CURRENT_CA_IDENTIFIERS = frozenset({"rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1", "rds-ca-ecc384-g1"})
# Event categories FSBP RDS.20 requires a db-instance subscription to cover.
REQUIRED_EVENT_CATEGORIES = ("maintenance", "configuration change", "failure")

_INSTANCE = frozenset({RDS_INSTANCE})


def _is_postgres(resource: Resource) -> bool:
    engine = get(resource.props, "engine")
    return isinstance(engine, str) and engine.startswith(("postgres", "aurora-postgresql"))


def _no_public_access(resource: Resource, env: Environment) -> Iterator[str]:
    value = get(resource.props, "publiclyAccessible")
    if value is True:
        yield (
            "publiclyAccessible is true; set it to false so the database is reachable "
            "only inside its VPC"
        )


def _encrypted(resource: Resource, env: Environment) -> Iterator[str]:
    value = get(resource.props, "storageEncrypted")
    if value is not True:
        yield f"storageEncrypted is {shown(value)}; it must be true (encryption at rest)"
    if env.production and not is_set(resource.props, "kmsKeyId"):
        yield (
            "kmsKeyId is unset; a production database must be encrypted with a customer-managed "
            "KMS key, not the AWS-managed aws/rds key"
        )


def _multi_az(resource: Resource, env: Environment) -> Iterator[str]:
    if not env.production:
        return
    value = get(resource.props, "multiAz")
    if value is not True:
        yield f"multiAz is {shown(value)}; a production database must be Multi-AZ"


def _enhanced_monitoring(resource: Resource, env: Environment) -> Iterator[str]:
    interval = as_number(get(resource.props, "monitoringInterval"))
    if interval is None or interval not in MONITORING_INTERVALS_S:
        shown_value = shown(get(resource.props, "monitoringInterval"))
        yield (
            f"monitoringInterval is {shown_value}; enhanced monitoring needs one of "
            f"{', '.join(str(i) for i in MONITORING_INTERVALS_S)} seconds"
        )
    if not is_set(resource.props, "monitoringRoleArn"):
        yield "monitoringRoleArn is unset; enhanced monitoring needs its IAM role"


def _deletion_protection(resource: Resource, env: Environment) -> Iterator[str]:
    if not env.production:
        return
    props = resource.props
    value = get(props, "deletionProtection")
    if value is not True:
        yield (
            f"deletionProtection is {shown(value)}; a production database must be "
            "protected from deletion"
        )
    if get(props, "skipFinalSnapshot") is True:
        yield (
            "skipFinalSnapshot is true; a production database must take a final snapshot "
            "when deleted"
        )
    if not is_set(props, "finalSnapshotIdentifier"):
        yield "finalSnapshotIdentifier is unset; a production database needs a named final snapshot"


def _log_exports(resource: Resource, env: Environment) -> Iterator[str]:
    exports = [str(e) for e in as_list(get(resource.props, "enabledCloudwatchLogsExports"))]
    if _is_postgres(resource):
        missing = [log for log in POSTGRES_LOG_EXPORTS if log not in exports]
        if missing:
            yield (
                f"enabledCloudwatchLogsExports is {exports!r}; it must include "
                f"{', '.join(repr(m) for m in missing)} to publish PostgreSQL logs to CloudWatch"
            )
    elif not exports:
        yield "enabledCloudwatchLogsExports is empty; publish the engine's logs to CloudWatch"


def _backups(resource: Resource, env: Environment) -> Iterator[str]:
    raw = get(resource.props, "backupRetentionPeriod")
    days = as_number(raw)
    minimum = PRODUCTION_BACKUP_RETENTION_DAYS if env.production else MINIMUM_BACKUP_RETENTION_DAYS
    if days is None or days < minimum:
        where = "in production" if env.production else "(automatic backups on)"
        yield f"backupRetentionPeriod is {shown(raw)} days; it must be at least {minimum} {where}"


def _auto_minor_upgrade(resource: Resource, env: Environment) -> Iterator[str]:
    value = get(resource.props, "autoMinorVersionUpgrade")
    if value is False:
        yield "autoMinorVersionUpgrade is false; it must be true so security patches are applied"


def _copy_tags(resource: Resource, env: Environment) -> Iterator[str]:
    value = get(resource.props, "copyTagsToSnapshot")
    if value is not True:
        yield f"copyTagsToSnapshot is {shown(value)}; it must be true"


def _in_vpc(resource: Resource, env: Environment) -> Iterator[str]:
    if not is_set(resource.props, "dbSubnetGroupName"):
        yield (
            "dbSubnetGroupName is unset; the instance must live in the stack's private "
            "DB subnet group"
        )
    if not is_set(resource.props, "vpcSecurityGroupIds"):
        yield (
            "vpcSecurityGroupIds is empty; the instance must be guarded by the stack's "
            "security group"
        )


def _custom_admin(resource: Resource, env: Environment) -> Iterator[str]:
    value = get(resource.props, "username")
    if value is MISSING:
        yield (
            "username is unset; choose a custom master username (the engine default is 'postgres')"
        )
    elif isinstance(value, str) and value.lower() in DEFAULT_ADMIN_USERNAMES:
        yield f"username is {value!r}, an engine default; choose a custom master username"


def _force_ssl_instance(resource: Resource, env: Environment) -> Iterator[str]:
    if not is_set(resource.props, "parameterGroupName"):
        yield (
            "parameterGroupName is unset; attach the stack's parameter group "
            "(the one that sets rds.force_ssl=1)"
        )
        return
    name = peek(resource.props, "parameterGroupName")
    if isinstance(name, str) and name.startswith("default."):
        yield (
            f"parameterGroupName is {name!r}, an AWS default group; attach the stack's "
            "parameter group that sets rds.force_ssl=1"
        )


def _force_ssl_parameter_group(resource: Resource, env: Environment) -> Iterator[str]:
    family = get(resource.props, "family")
    if not (isinstance(family, str) and family.startswith("postgres")):
        return
    values = {
        str(get(p, "name")): get(p, "value")
        for p in as_list(get(resource.props, "parameters"))
        if get(p, "name") is not MISSING
    }
    value = values.get("rds.force_ssl", MISSING)
    if str(value) != "1" and as_number(value) != 1:
        yield (
            f"parameter rds.force_ssl is {shown(value)}; it must be '1' so every "
            "connection uses TLS"
        )


def _force_ssl(resource: Resource, env: Environment) -> Iterator[str]:
    if resource.type == RDS_INSTANCE:
        yield from _force_ssl_instance(resource, env)
    else:
        yield from _force_ssl_parameter_group(resource, env)


def _current_ca(resource: Resource, env: Environment) -> Iterator[str]:
    value = get(resource.props, "caCertIdentifier")
    if value not in CURRENT_CA_IDENTIFIERS:
        yield (
            f"caCertIdentifier is {shown(value)}; set a current CA "
            f"({', '.join(sorted(CURRENT_CA_IDENTIFIERS))}) so clients can verify the server"
        )


def _event_subscription(
    resources: Sequence[Resource], env: Environment
) -> Iterator[tuple[str, Resource | None]]:
    instances = [r for r in resources if r.type == RDS_INSTANCE]
    if not instances:
        return
    covering = []
    for sub in (r for r in resources if r.type == EVENT_SUBSCRIPTION):
        if get(sub.props, "sourceType") != "db-instance" or get(sub.props, "enabled") is False:
            continue
        categories = [str(c) for c in as_list(get(sub.props, "eventCategories"))]
        # An empty list subscribes to every category.
        if not categories or all(c in categories for c in REQUIRED_EVENT_CATEGORIES):
            covering.append(sub)
    if not covering:
        names = ", ".join(repr(r.name) for r in instances)
        wanted = ", ".join(repr(c) for c in REQUIRED_EVENT_CATEGORIES)
        message = (
            f"no enabled RDS event subscription with sourceType 'db-instance' covers "
            f"{wanted} events for {names}"
        )
        yield message, instances[0]


RDS_POLICIES: tuple[ResourcePolicy, ...] = (
    ResourcePolicy(
        "rds-2-no-public-access",
        "Security Hub RDS.2",
        "RDS instances must not be publicly accessible.",
        "",
        _INSTANCE,
        _no_public_access,
    ),
    ResourcePolicy(
        "rds-3-encrypted-at-rest",
        "Security Hub RDS.3",
        "RDS instances must have storage encryption at rest.",
        "the key must be a customer-managed KMS key (kmsKeyId set).",
        _INSTANCE,
        _encrypted,
    ),
    ResourcePolicy(
        "rds-5-multi-az",
        "Security Hub RDS.5",
        "RDS instances must run in multiple Availability Zones.",
        "multiAz must be true (development stacks may run single-AZ).",
        _INSTANCE,
        _multi_az,
    ),
    ResourcePolicy(
        "rds-6-enhanced-monitoring",
        "Security Hub RDS.6",
        "RDS instances must have enhanced monitoring (interval and IAM role).",
        "",
        _INSTANCE,
        _enhanced_monitoring,
    ),
    ResourcePolicy(
        "rds-8-deletion-protection",
        "Security Hub RDS.8",
        "RDS instances must be protected from deletion.",
        "deletionProtection must be true and a named final snapshot taken "
        "(development stacks may be torn down freely).",
        _INSTANCE,
        _deletion_protection,
    ),
    ResourcePolicy(
        "rds-9-36-postgresql-logs-to-cloudwatch",
        "Security Hub RDS.9, RDS.36",
        "RDS for PostgreSQL must export the postgresql and upgrade logs to CloudWatch Logs.",
        "",
        _INSTANCE,
        _log_exports,
    ),
    ResourcePolicy(
        "rds-11-automatic-backups",
        "Security Hub RDS.11",
        "RDS instances must have automatic backups (retention of at least "
        f"{MINIMUM_BACKUP_RETENTION_DAYS} day).",
        f"retention must be at least {PRODUCTION_BACKUP_RETENTION_DAYS} days.",
        _INSTANCE,
        _backups,
    ),
    ResourcePolicy(
        "rds-13-auto-minor-version-upgrade",
        "Security Hub RDS.13",
        "RDS instances must apply automatic minor version upgrades.",
        "",
        _INSTANCE,
        _auto_minor_upgrade,
    ),
    ResourcePolicy(
        "rds-17-copy-tags-to-snapshots",
        "Security Hub RDS.17",
        "RDS instances must copy their tags to snapshots.",
        "",
        _INSTANCE,
        _copy_tags,
    ),
    ResourcePolicy(
        "rds-18-in-vpc",
        "Security Hub RDS.18",
        "RDS instances must be deployed in a VPC (DB subnet group and security groups).",
        "",
        _INSTANCE,
        _in_vpc,
    ),
    ResourcePolicy(
        "rds-25-custom-admin-username",
        "Security Hub RDS.25",
        "RDS instances must use a custom administrator username, not the engine default.",
        "",
        _INSTANCE,
        _custom_admin,
    ),
    ResourcePolicy(
        "rds-force-ssl",
        "baseline: TLS in transit",
        "RDS for PostgreSQL must use a parameter group with rds.force_ssl=1.",
        "",
        frozenset({RDS_INSTANCE, PARAMETER_GROUP}),
        _force_ssl,
    ),
    ResourcePolicy(
        "rds-current-ca",
        "baseline: current RDS CA",
        "RDS instances must use a current certificate authority (rds-ca-*-g1).",
        "",
        _INSTANCE,
        _current_ca,
    ),
)

RDS_STACK_POLICIES: tuple[StackPolicy, ...] = (
    StackPolicy(
        "rds-20-event-subscription",
        "Security Hub RDS.20",
        "An enabled RDS event subscription must cover the stack's DB instances' maintenance, "
        "configuration-change and failure events.",
        "",
        _event_subscription,
    ),
)
