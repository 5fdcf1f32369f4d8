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
# Never enrol the instance in paid RDS Extended Support when its major leaves standard support:
# the create/upgrade fails instead, and a person decides.
ENGINE_LIFECYCLE_SUPPORT = "open-source-rds-extended-support-disabled"
STORAGE_TYPE = "gp3"
CLOUDWATCH_LOG_EXPORTS = ("postgresql", "upgrade")
KMS_DELETION_WINDOW_DAYS = 30  # the longest AWS allows: a scheduled key deletion can be cancelled
ENHANCED_MONITORING_POLICY = "service-role/AmazonRDSEnhancedMonitoringRole"

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
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    tags: Mapping[str, str]


def parameter_group_parameters() -> list[dict[str, str]]:
    """The parameter group's parameters, in the provider's shape, sorted by name."""
    return [
        {"name": name, "value": value, "apply_method": method}
        for name, (value, method) in sorted(PARAMETERS.items())
    ]


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

        self.kms_key_arn = None
        if cfg.create_kms_key:
            key = aws.kms.Key(
                f"{name}-key",
                description=f"Encrypts the {cfg.identifier} database, its snapshots, "
                "Performance Insights data and its credentials secret",
                enable_key_rotation=True,
                deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
                tags=with_name(tags, f"{name}-key"),
                opts=child,
            )
            aws.kms.Alias(
                f"{name}-key-alias",
                name=f"alias/{cfg.identifier}",
                target_key_id=key.key_id,
                opts=child,
            )
            self.kms_key_arn = key.arn

        parameter_group = aws.rds.ParameterGroup(
            f"{name}-params",
            family=cfg.parameter_group_family,
            description=f"{cfg.identifier}: TLS only, slow-query/connection/lock-wait logging",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(**p) for p in parameter_group_parameters()
            ],
            tags=with_name(tags, f"{name}-params"),
            opts=child,
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
            password=pulumi.Output.secret(args.password),
            port=cfg.port,
            db_subnet_group_name=args.subnet_group_name,
            vpc_security_group_ids=args.security_group_ids,
            parameter_group_name=parameter_group.name,
            publicly_accessible=False,
            network_type="IPV4",
            iam_database_authentication_enabled=True,
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
            tags=with_name(tags, cfg.identifier),
            opts=child,
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
