"""Database: the customer-managed KMS key (optional), the parameter group, the enhanced-monitoring
role and the RDS for PostgreSQL instance."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.config import DatabaseConfig
from infra.tags import with_name

ENGINE = "postgres"
# Never enrol the instance in paid RDS Extended Support. With it disabled, RDS itself upgrades
# the instance to the next major version at the end of the major's standard support (AWS
# announces the date months ahead): plan the major upgrade (blue/green) before that date.
ENGINE_LIFECYCLE_SUPPORT = "open-source-rds-extended-support-disabled"
STORAGE_TYPE = "gp3"
CLOUDWATCH_LOG_EXPORTS = ("postgresql", "upgrade")
KMS_DELETION_WINDOW_DAYS = 30  # the longest AWS allows: a scheduled key deletion can be cancelled
ENHANCED_MONITORING_POLICY = "service-role/AmazonRDSEnhancedMonitoringRole"
# Blue/green deployments of RDS for PostgreSQL replicate logically: the parameter group must
# turn it on (static: takes effect at the next reboot, so it is set from the first create).
LOGICAL_REPLICATION_PARAMETER = ("rds.logical_replication", ("1", "pending-reboot"))

# Parameter-group settings (name -> (value, apply method)); units in the comments.
PARAMETERS: dict[str, tuple[str, str]] = {
    "rds.force_ssl": ("1", "immediate"),  # refuse unencrypted connections
    "log_min_duration_statement": ("1000", "immediate"),  # ms: log statements slower than 1 s
    "log_connections": ("1", "immediate"),  # log every connection (who, from where)
    "log_disconnections": ("1", "immediate"),  # and its end, with the session's duration
    "log_lock_waits": ("1", "immediate"),  # log waits longer than deadlock_timeout (1 s)
    "log_temp_files": ("10240", "immediate"),  # kB: log temp files of 10 MiB or more
    "log_autovacuum_min_duration": ("10000", "immediate"),  # ms: log autovacuum runs over 10 s
    "log_statement": ("ddl", "immediate"),  # log schema changes (the migration's DDL)
}


@dataclass(frozen=True)
class DatabaseArgs:
    """The validated database settings plus the network and password it needs."""

    config: DatabaseConfig
    subnet_group_name: pulumi.Input[str]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    password: pulumi.Input[str]
    password_version: int
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: str
    production: bool
    tags: Mapping[str, str]


def parameter_group_parameters(blue_green: bool = False) -> list[dict[str, str]]:
    """The parameter group's parameters, in the provider's shape, sorted by name."""
    table = dict(PARAMETERS)
    if blue_green:
        table[LOGICAL_REPLICATION_PARAMETER[0]] = LOGICAL_REPLICATION_PARAMETER[1]
    return [
        {"name": name, "value": value, "apply_method": method}
        for name, (value, method) in sorted(table.items())
    ]


def log_group_names(identifier: str) -> list[str]:
    """The CloudWatch log groups RDS writes the exported logs to (created by the stack first,
    so they get a retention and a key instead of RDS's never-expiring, unkeyed default)."""
    return [f"/aws/rds/instance/{identifier}/{log}" for log in CLOUDWATCH_LOG_EXPORTS]


def database_key_policy(account_id: str, partition: str, region: str, identifier: str) -> str:
    """The database CMK's explicit key policy: the account administers it (IAM policies decide
    who else); RDS, Secrets Manager and Performance Insights use it only through their own
    service in this account and region; CloudWatch Logs only for this instance's log groups."""
    root = f"arn:{partition}:iam::{account_id}:root"
    log_groups = (
        f"arn:{partition}:logs:{region}:{account_id}:log-group:/aws/rds/instance/{identifier}/*"
    )
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministers",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "UseThroughRdsAndSecretsManager",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:CreateGrant",
                        "kms:ListGrants",
                        "kms:DescribeKey",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:CallerAccount": account_id,
                            "kms:ViaService": [
                                f"rds.{region}.amazonaws.com",
                                f"secretsmanager.{region}.amazonaws.com",
                            ],
                        }
                    },
                },
                {
                    "Sid": "CloudWatchLogsForThisInstance",
                    "Effect": "Allow",
                    "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                    "Action": [
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    "Resource": "*",
                    "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
                },
            ],
        },
        sort_keys=True,
    )


def monitoring_assume_role_policy(account_id: str) -> str:
    """The trust policy of the enhanced-monitoring role (RDS's monitoring service, this account)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "monitoring.rds.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                }
            ],
        },
        sort_keys=True,
    )


# Random bytes in the final snapshot's name: a fixed name would make the second deletion of a
# re-created instance fail (RDS refuses to overwrite a snapshot). 4 bytes = 8 hex characters.
FINAL_SNAPSHOT_SUFFIX_BYTES = 4


def final_snapshot_identifier(identifier: str, suffix: str) -> str:
    """The name of the snapshot RDS takes when the instance is deleted: unique per instance,
    so that a stack destroyed and created again does not collide with its earlier snapshot."""
    return f"{identifier}-final-{suffix}"


class Database(pulumi.ComponentResource):
    """The RDS for PostgreSQL instance with its parameter group, monitoring role and (prod) CMK."""

    address: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    port: pulumi.Output[int]
    identifier: pulumi.Output[str]
    arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str] | None

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("petstore-rds:database:Database", name, None, opts)
        cfg = args.config
        tags = dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)

        # Production: `pulumi destroy` or a replacement cannot delete the instance, its key or
        # its secret (protect), and removing them from the program leaves them in AWS
        # (retain_on_delete).
        guarded = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(protect=args.production, retain_on_delete=args.production)
        )
        self.kms_key_arn = None
        if cfg.create_kms_key:
            key = aws.kms.Key(
                f"{name}-key",
                description=f"Encrypts the {cfg.identifier} database, its snapshots, "
                "Performance Insights data, its log groups and its credentials secret",
                enable_key_rotation=True,
                deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
                policy=pulumi.Output.all(args.account_id, args.partition).apply(
                    lambda a: database_key_policy(a[0], a[1], args.region, cfg.identifier)
                ),
                tags=with_name(tags, f"{name}-key"),
                opts=guarded,
            )
            aws.kms.Alias(
                f"{name}-key-alias",
                name=f"alias/{cfg.identifier}",
                target_key_id=key.key_id,
                opts=child,
            )
            self.kms_key_arn = key.arn

        # Created before the instance, so RDS writes into them rather than creating its own.
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-log-{log_name.rsplit('/', 1)[1]}",
                name=log_name,
                retention_in_days=cfg.log_retention_days,
                kms_key_id=self.kms_key_arn,
                tags=with_name(tags, log_name),
                opts=child,
            )
            for log_name in log_group_names(cfg.identifier)
        ]

        # One group per engine major, kept (retain_on_delete) when the next major's group
        # replaces it: the instance still uses the old one until its upgrade completes, and
        # AWS refuses to delete a group in use (InvalidDBParameterGroupState). The runbook
        # deletes the old group once the instance reports the new one.
        parameter_group = aws.rds.ParameterGroup(
            f"{name}-params-pg{cfg.engine_major_version}",
            name_prefix=f"{cfg.identifier}-pg{cfg.engine_major_version}-",
            family=cfg.parameter_group_family,
            description=f"{cfg.identifier}: TLS only, slow-query/connection/lock-wait logging",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(**p)
                for p in parameter_group_parameters(cfg.blue_green_update)
            ],
            tags=with_name(tags, f"{name}-params-pg{cfg.engine_major_version}"),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(retain_on_delete=True, delete_before_replace=False)
            ),
        )

        monitoring_role_arn: pulumi.Output[str] | None = None
        if cfg.monitoring_interval_seconds > 0:
            role = aws.iam.Role(
                f"{name}-monitoring",
                description=f"RDS enhanced monitoring for {cfg.identifier}",
                assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                    monitoring_assume_role_policy
                ),
                tags=with_name(tags, f"{name}-monitoring"),
                opts=child,
            )
            attachment = aws.iam.RolePolicyAttachment(
                f"{name}-monitoring-policy",
                role=role.name,
                policy_arn=pulumi.Output.concat(
                    "arn:", args.partition, ":iam::aws:policy/", ENHANCED_MONITORING_POLICY
                ),
                opts=child,
            )
            # The instance must not start before the role can be assumed with its policy.
            monitoring_role_arn = pulumi.Output.all(role.arn, attachment.id).apply(lambda a: a[0])

        final_snapshot: pulumi.Output[str] | None = None
        if cfg.final_snapshot:
            # Kept for the instance's lifetime; a new stack (or a new identifier) gets a new one.
            suffix = random.RandomId(
                f"{name}-final-snapshot-suffix",
                byte_length=FINAL_SNAPSHOT_SUFFIX_BYTES,
                keepers={"identifier": cfg.identifier},
                opts=child,
            )
            final_snapshot = suffix.hex.apply(
                lambda h: final_snapshot_identifier(cfg.identifier, h)
            )

        self.instance = aws.rds.Instance(
            f"{name}-instance",
            identifier=cfg.identifier,
            engine=ENGINE,
            engine_version=str(cfg.engine_major_version),
            engine_lifecycle_support=ENGINE_LIFECYCLE_SUPPORT,
            allow_major_version_upgrade=True,  # a major upgrade is a deliberate config change
            auto_minor_version_upgrade=True,
            instance_class=cfg.instance_class,
            storage_type=STORAGE_TYPE,
            allocated_storage=cfg.allocated_storage_gib,
            max_allocated_storage=cfg.max_allocated_storage_gib,
            iops=cfg.storage_iops,
            storage_throughput=cfg.storage_throughput_mibps,
            storage_encrypted=True,
            kms_key_id=self.kms_key_arn,
            db_name=cfg.db_name,
            username=cfg.master_username,
            # Write-only: sent to RDS, never stored in the instance's state; bump the version
            # (passwordVersion) to send a new one.
            password_wo=pulumi.Output.secret(args.password),
            password_wo_version=args.password_version,
            port=cfg.port,
            db_subnet_group_name=args.subnet_group_name,
            vpc_security_group_ids=args.security_group_ids,
            parameter_group_name=parameter_group.name,
            publicly_accessible=False,
            network_type="IPV4",
            # No IAM database authentication: the app uses password logins it can rotate
            # without failed connections (docs/architecture.md, "Database roles").
            iam_database_authentication_enabled=False,
            ca_cert_identifier=cfg.ca_cert_identifier,
            enabled_cloudwatch_logs_exports=list(CLOUDWATCH_LOG_EXPORTS),
            performance_insights_enabled=True,
            performance_insights_retention_period=cfg.performance_insights_retention_days,
            performance_insights_kms_key_id=self.kms_key_arn,
            database_insights_mode=cfg.database_insights_mode,
            monitoring_interval=cfg.monitoring_interval_seconds,
            monitoring_role_arn=monitoring_role_arn,
            multi_az=cfg.multi_az,
            backup_retention_period=cfg.backup_retention_days,
            backup_window=cfg.backup_window,
            maintenance_window=cfg.maintenance_window,
            copy_tags_to_snapshot=True,
            deletion_protection=cfg.deletion_protection,
            skip_final_snapshot=not cfg.final_snapshot,
            final_snapshot_identifier=final_snapshot,
            delete_automated_backups=not cfg.final_snapshot,
            apply_immediately=cfg.apply_immediately,
            # A major upgrade (or class/parameter change) runs as an RDS blue/green deployment:
            # the green copy is upgraded and switched over in about a minute.
            blue_green_update=aws.rds.InstanceBlueGreenUpdateArgs(enabled=cfg.blue_green_update),
            tags=with_name(tags, cfg.identifier),
            opts=pulumi.ResourceOptions.merge(
                guarded, pulumi.ResourceOptions(depends_on=log_groups)
            ),
        )
        self.address = self.instance.address
        self.endpoint = self.instance.endpoint
        self.port = self.instance.port
        self.identifier = self.instance.identifier
        self.arn = self.instance.arn
        self.register_outputs(
            {
                "address": self.address,
                "endpoint": self.endpoint,
                "port": self.port,
                "identifier": self.identifier,
                "arn": self.arn,
            }
        )
