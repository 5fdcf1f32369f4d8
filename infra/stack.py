"""The whole stack: read the configuration once and wire the components in order."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.alarms import Alarms, AlarmsArgs
from infra.config import StackConfig, load_config, resolve_network
from infra.credentials import (
    DatabaseSecret,
    DatabaseSecretArgs,
    MasterPassword,
    MasterPasswordArgs,
    RolePasswords,
)
from infra.database import Database, DatabaseArgs
from infra.k8s import KubernetesWiring, KubernetesWiringArgs
from infra.network import Network, NetworkArgs
from infra.tags import base_tags


def define_stack(config: StackConfig | None = None) -> dict[str, pulumi.Output[object]]:
    """Create every resource of the current stack and return the stack outputs to export."""
    cfg = config or load_config()
    tags = base_tags(cfg.stack, cfg.environment)
    name = f"petstore-{cfg.stack}"
    db = cfg.database

    identity = aws.get_caller_identity_output()
    partition = aws.get_partition_output().partition
    network_ids = resolve_network(cfg.network)

    network = Network(
        name,
        NetworkArgs(
            vpc_id=network_ids.vpc_id,
            private_subnet_ids=network_ids.private_subnet_ids,
            source_security_group_ids=network_ids.cluster_security_group_ids,
            port=db.port,
            tags=tags,
        ),
    )
    password = MasterPassword(
        f"{name}-master-password", MasterPasswordArgs(version=cfg.credentials.password_version)
    )
    role_passwords = RolePasswords(
        f"{name}-role-passwords",
        owner_version=cfg.credentials.password_version,
        app_password_version=cfg.credentials.app_password_version,
    )
    database = Database(
        name,
        DatabaseArgs(
            config=db,
            subnet_group_name=network.subnet_group_name,
            security_group_ids=[network.security_group_id],
            password=password.result,
            password_version=cfg.credentials.password_version,
            account_id=identity.account_id,
            partition=partition,
            region=cfg.region,
            production=cfg.production,
            tags=tags,
        ),
    )
    secret = DatabaseSecret(
        f"{name}-credentials",
        DatabaseSecretArgs(
            identifier=database.identifier,
            host=database.address,
            port=database.port,
            username=db.master_username,
            password=password.result,
            dbname=db.db_name,
            kms_key_arn=database.kms_key_arn,
            recovery_window_days=cfg.credentials.secret_recovery_window_days,
            production=cfg.production,
            tags=tags,
        ),
    )
    alarms = Alarms(
        f"{name}-alarms",
        AlarmsArgs(
            identifier=database.identifier,
            instance_class=db.instance_class,
            allocated_storage_gib=db.allocated_storage_gib,
            max_allocated_storage_gib=db.max_allocated_storage_gib,
            emails=cfg.alarms.emails,
            https_endpoints=cfg.alarms.https_endpoints,
            sqs_queue_arns=cfg.alarms.sqs_queue_arns,
            account_id=identity.account_id,
            partition=partition,
            region=cfg.region,
            production=cfg.production,
            tags=tags,
        ),
    )
    wiring = KubernetesWiring(
        f"{name}-k8s",
        KubernetesWiringArgs(
            config=cfg.kubernetes,
            environment=cfg.stack,
            host=database.address,
            port=database.port,
            dbname=db.db_name,
            master_username=db.master_username,
            master_password=password.result,
            owner_password=role_passwords.owner,
            app_passwords=role_passwords.app,
            password_version=cfg.credentials.password_version,
            app_password_version=cfg.credentials.app_password_version,
        ),
    )
    return {
        "endpoint": database.endpoint,
        "address": database.address,
        "port": database.port,
        "instanceId": database.identifier,
        "secretArn": secret.arn,
        "kubernetesNamespace": wiring.namespace,
        "kubernetesSecretName": wiring.app_secret_name,
        "migrationSecretName": wiring.migration_secret_name,
        "jobName": wiring.job_name,
        "rolesJobName": wiring.roles_job_name,
        "databaseTarget": pulumi.Output.from_input(wiring.database_target),
        "alarmTopicArn": alarms.topic_arn,
        "alarmSubscriptionsPending": alarms.pending_subscriptions,
    }
